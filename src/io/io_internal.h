/* io/io_internal.h - helpers shared by the container parsers and writers of src/io.
 * Private to src/io (and its tests/fuzzers): not part of the public API. */
#ifndef MUSCLE_IO_INTERNAL_H
#define MUSCLE_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- checked arithmetic */

/* *out = a * b; returns 0, or -1 on overflow (then *out is unspecified). */
static inline int io_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int io_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}
/* Rounds x up to a multiple of the power of two `align`; -1 on overflow. */
static inline int io_align_up(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (io_add_u64(x, align - 1, &t)) return -1;
    *out = t & ~(align - 1);
    return 0;
}

static inline uint32_t io_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t io_le64(const uint8_t *p) {
    return (uint64_t)io_le32(p) | (uint64_t)io_le32(p + 4) << 32;
}
static inline void io_put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void io_put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---------------------------------------------------------------- text */

/* Strict UTF-8 check: utf8_valid_prefix of core/utf8.h. */
#include "core/utf8.h"

/* A printable, bounded rendering of a (possibly hostile) name for error messages:
 * at most ~60 characters, bytes outside printable ASCII shown as \xNN, "..." when cut.
 * Returns buf. */
#define IO_QUOTE_CAP 96
char *io_quote(char buf[IO_QUOTE_CAP], const char *s, size_t len);

/* ---------------------------------------------------------------- growable byte buffer */

/* Headers are built in a StrBuf (core/strbuf.h). */
#include "core/strbuf.h"

/* Appends s (n bytes) as a JSON string literal, escaped like serde_json and
 * Python's json.dumps(ensure_ascii=False): \" \\ \b \f \n \r \t, other control
 * characters as \u00xx, every other byte as is. */
void io_buf_json_str(StrBuf *b, const char *s, size_t n);

/* ---------------------------------------------------------------- conversion */

#include "core/dtype.h"
/* dtype_to_f32 that also accepts data not aligned to the element size (bounces
 * through an aligned buffer then). */
void io_to_f32(DType t, const uint8_t *data, uint64_t numel, float *dst);

/* ---------------------------------------------------------------- name index */

/* Sorts idx[0..n) so that names[idx[i]] are in strcmp order. `names` is an array of
 * `n` records of `stride` bytes whose first member is a `const char *` / `char *`. */
void io_index_sort(uint32_t *idx, size_t n, const void *records, size_t stride);
/* Binary search in such an index; returns the record index or -1. */
long io_index_find(const uint32_t *idx, size_t n, const void *records, size_t stride, const char *name);
/* Binary search in records already sorted by name; returns the record index or -1. */
long io_sorted_find(const void *records, size_t n, size_t stride, const char *name);

#endif
