/* io/io_util.c - helpers shared by the safetensors and GGUF code. */
#include "io_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ UTF-8 */

size_t io_utf8_check(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2; cp = c & 0x1f; min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3; cp = c & 0x0f; min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4; cp = c & 0x07; min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

char *io_quote(char buf[IO_QUOTE_CAP], const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (o + 8 >= IO_QUOTE_CAP || i >= 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = 0;
    return buf;
}

/* ================================================================ byte buffer */

static int buf_reserve(IoBuf *b, size_t extra) {
    if (b->oom) return -1;
    if (extra <= b->cap - b->len) return 0;
    size_t want = b->len + extra;
    if (want < b->len) {
        b->oom = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2) {
            cap = want;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void io_buf_put(IoBuf *b, const void *p, size_t n) {
    if (n == 0 || buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void io_buf_puts(IoBuf *b, const char *s) { io_buf_put(b, s, strlen(s)); }

void io_buf_printf(IoBuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        io_buf_put(b, tmp, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n + 1)) return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void io_buf_json_str(IoBuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    io_buf_put(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        char esc[6];
        size_t el = 0;
        switch (c) {
        case '"': esc[0] = '\\'; esc[1] = '"'; el = 2; break;
        case '\\': esc[0] = '\\'; esc[1] = '\\'; el = 2; break;
        case '\b': esc[0] = '\\'; esc[1] = 'b'; el = 2; break;
        case '\f': esc[0] = '\\'; esc[1] = 'f'; el = 2; break;
        case '\n': esc[0] = '\\'; esc[1] = 'n'; el = 2; break;
        case '\r': esc[0] = '\\'; esc[1] = 'r'; el = 2; break;
        case '\t': esc[0] = '\\'; esc[1] = 't'; el = 2; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
        }
        if (el) {
            io_buf_put(b, s + run, i - run);
            io_buf_put(b, esc, el);
            run = i + 1;
        }
    }
    io_buf_put(b, s + run, n - run);
    io_buf_put(b, "\"", 1);
}

void io_buf_free(IoBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ================================================================ conversion */

void io_to_f32(DType t, const uint8_t *data, uint64_t numel, float *dst) {
    int ok;
    size_t esize = t == DT_Q8_0 ? 1 : dtype_nbytes(t, 1, &ok); /* Q8_0 is read byte by byte */
    if (esize <= 1 || (uintptr_t)data % esize == 0) {
        dtype_to_f32(t, data, dst, (size_t)numel);
        return;
    }
    _Alignas(8) uint8_t tmp[32768];
    size_t per = sizeof tmp / esize;
    for (uint64_t i = 0; i < numel; i += per) {
        size_t k = numel - i < per ? (size_t)(numel - i) : per;
        memcpy(tmp, data + i * esize, k * esize);
        dtype_to_f32(t, tmp, dst + i, k);
    }
}

/* ================================================================ name index */

typedef struct {
    const char *records;
    size_t stride;
} SortCtx;

static const char *rec_name(const char *records, size_t stride, uint32_t i) {
    const char *name;
    memcpy(&name, records + (size_t)i * stride, sizeof name);
    return name;
}

static int idx_cmp(const void *a, const void *b, void *ctx) {
    const SortCtx *c = ctx;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
    int r = strcmp(rec_name(c->records, c->stride, ia), rec_name(c->records, c->stride, ib));
    if (r) return r;
    return ia < ib ? -1 : ia > ib; /* stable: first occurrence first */
}

void io_index_sort(uint32_t *idx, size_t n, const void *records, size_t stride) {
    SortCtx c = {records, stride};
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    if (n > 1) qsort_r(idx, n, sizeof *idx, idx_cmp, &c);
}

long io_index_find(const uint32_t *idx, size_t n, const void *records, size_t stride, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(rec_name(records, stride, idx[mid]), name);
        if (r == 0) return (long)idx[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

long io_sorted_find(const void *records, size_t n, size_t stride, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(rec_name(records, stride, (uint32_t)mid), name);
        if (r == 0) return (long)mid;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}
