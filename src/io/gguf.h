/* io/gguf.h - GGUF (v2 and v3, little-endian) reader and writer.
 *
 * Layout: "GGUF", u32 version, u64 tensor_count, u64 kv_count, the key/value pairs
 * (gguf string key = u64 length + bytes, u32 value type, value), the tensor infos
 * (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset), then, at the
 * next multiple of general.alignment (default 32), the data section; tensor offsets
 * are relative to it.  ggml order: ne[0] varies fastest, so a PyTorch [out, in]
 * weight has ne = {in, out}.
 * The reader checks every count, length and offset against the real size before use
 * (see docs/formats.md). Nothing is copied but keys, names and scalar strings: array
 * and tensor data point into the read-only mapping.
 */
#ifndef MUSCLE_IO_GGUF_H
#define MUSCLE_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/file.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} GgufValueType;

/* ggml tensor types that muscle reads and writes; the reader knows the layout of
 * every other type too (to validate the file) and names them in messages. */
typedef enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_BF16 = 30,
} GgmlType;

const char *gguf_value_type_name(uint32_t t); /* "UINT32", ... or "?" */
const char *gguf_ggml_type_name(uint32_t t);  /* "F16", "Q4_K", ... or "?" */

/* A string inside the file: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} GgufStr;

typedef struct {
    char *key;                /* NUL-terminated copy (first member: used by the index) */
    GgufValueType type;
    const uint8_t *raw;       /* the value's bytes in the file (after the type) ... */
    size_t raw_len;           /* ... and their count */
    GgufStr str;              /* STRING: the text (also NUL-terminated copy in cstr) */
    char *cstr;
    GgufValueType arr_type;   /* ARRAY: element type, count, first element */
    uint64_t arr_count;
    const uint8_t *arr_data;  /* numeric elements, little-endian, possibly unaligned */
    GgufStr *arr_strs;        /* ARRAY of STRING: every element, built once at parse */
} GgufKv;

typedef struct {
    char *name;               /* NUL-terminated copy (first member: used by the index) */
    uint32_t ggml_type;
    const char *type_name;    /* "F16", "Q4_K", ... */
    int supported;            /* 1 when dtype is set: F32, F16, BF16, Q8_0, F64, I32, I64 */
    DType dtype;
    int ndim;                 /* 0..4 */
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] fastest; unused dims are 1 */
    uint64_t numel;
    uint64_t offset;          /* relative to the data section */
    size_t nbytes;
    const uint8_t *data;      /* into the mapping */
} GgufTensor;

typedef struct {
    MappedFile map;           /* when opened with gguf_open */
    char *name;               /* path or display name, for messages */
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;       /* absolute offset of the data section */
    const uint8_t *base;
    size_t size;
    GgufKv *kvs;              /* file order */
    size_t n_kvs;
    GgufTensor *tensors;      /* file order */
    size_t n_tensors;
    uint32_t *kv_by_name, *tensor_by_name;
} GgufFile;

/* Maps and validates a file; -1 with a message naming the path on any error (the
 * struct is then closed). */
int gguf_open(GgufFile *g, const char *path);
/* Same from memory; `buf` must outlive g. */
int gguf_parse_buffer(GgufFile *g, const void *buf, size_t size, const char *display_name);
void gguf_close(GgufFile *g);

/* ---------------------------------------------------------------- keys */

/* NULL when absent (no message set). */
const GgufKv *gguf_kv_find(const GgufFile *g, const char *key);

/* Typed getters: -1 with a message when the key is missing or its value does not
 * fit. Integers convert between integer types when the value fits (an INT32 of 7 is
 * a fine u32); f32 accepts FLOAT32 and FLOAT64; bool only BOOL; string only STRING. */
int gguf_get_u32(const GgufFile *g, const char *key, uint32_t *out);
int gguf_get_i32(const GgufFile *g, const char *key, int32_t *out);
int gguf_get_u64(const GgufFile *g, const char *key, uint64_t *out);
int gguf_get_f32(const GgufFile *g, const char *key, float *out);
int gguf_get_bool(const GgufFile *g, const char *key, int *out);
/* *s is NUL-terminated; *len (optional) is the real length (the text may hold NULs). */
int gguf_get_string(const GgufFile *g, const char *key, const char **s, size_t *len);
/* Any array: element type, count and raw little-endian elements (NULL for strings). */
int gguf_get_array(const GgufFile *g, const char *key, GgufValueType *elem_type, uint64_t *count, const void **data);
/* Array of strings: (pointer, length) of each element. */
int gguf_get_str_array(const GgufFile *g, const char *key, const GgufStr **strs, uint64_t *count);
/* Numeric arrays converted into malloc'd buffers (free() them): f32 from FLOAT32 or
 * FLOAT64; i32 from any integer type whose values fit. */
int gguf_get_f32_array(const GgufFile *g, const char *key, float **out, uint64_t *count);
int gguf_get_i32_array(const GgufFile *g, const char *key, int32_t **out, uint64_t *count);

/* ---------------------------------------------------------------- tensors */

/* NULL when absent (no message set). */
const GgufTensor *gguf_tensor_find(const GgufFile *g, const char *name);
/* Converts a supported tensor to floats (dst holds t->numel); -1 naming the type otherwise. */
int gguf_tensor_to_f32(const GgufFile *g, const GgufTensor *t, float *dst);

/* ---------------------------------------------------------------- writer */

typedef struct {
    char *key;
    GgufValueType type;
    uint8_t *val;   /* serialized value (as in the file, after the type) */
    size_t len;
} GgufWriterKv;

typedef struct {
    char *name;
    uint32_t ggml_type;
    int ndim;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t numel;
    size_t nbytes;
    const void *data;  /* caller's memory, not copied */
    int from_f32;      /* data is float[numel], converted/quantized while writing */
} GgufWriterTensor;

typedef struct {
    GgufWriterKv *kvs;
    size_t n_kvs, cap_kvs;
    GgufWriterTensor *tensors;
    size_t n_tensors, cap_tensors;
    int failed;        /* a set/add failed: write refuses */
} GgufWriter;

void gguf_writer_init(GgufWriter *w);
void gguf_writer_free(GgufWriter *w);

/* Key/values keep their first insertion order; setting a key again replaces its value.
 * "general.alignment" (UINT32, a power of two) sets the data alignment. */
int gguf_writer_set_u8(GgufWriter *w, const char *key, uint8_t v);
int gguf_writer_set_i8(GgufWriter *w, const char *key, int8_t v);
int gguf_writer_set_u16(GgufWriter *w, const char *key, uint16_t v);
int gguf_writer_set_i16(GgufWriter *w, const char *key, int16_t v);
int gguf_writer_set_u32(GgufWriter *w, const char *key, uint32_t v);
int gguf_writer_set_i32(GgufWriter *w, const char *key, int32_t v);
int gguf_writer_set_f32(GgufWriter *w, const char *key, float v);
int gguf_writer_set_bool(GgufWriter *w, const char *key, int v);
int gguf_writer_set_u64(GgufWriter *w, const char *key, uint64_t v);
int gguf_writer_set_i64(GgufWriter *w, const char *key, int64_t v);
int gguf_writer_set_f64(GgufWriter *w, const char *key, double v);
int gguf_writer_set_string(GgufWriter *w, const char *key, const char *s);
/* Numeric or BOOL array: `count` elements of `elem_type` at data (native = little-endian). */
int gguf_writer_set_array(GgufWriter *w, const char *key, GgufValueType elem_type, const void *data, uint64_t count);
/* Array of strings; lens may be NULL (then strs are NUL-terminated). */
int gguf_writer_set_str_array(GgufWriter *w, const char *key, const char *const *strs, const uint64_t *lens,
                              uint64_t count);
/* Copies a key/value read from another file, whatever its type. */
int gguf_writer_copy_kv(GgufWriter *w, const GgufKv *kv);

/* Tensors in insertion order. `ne` in ggml order (ne[0] fastest).
 * _add: data already in `type` (F32, F16, BF16, Q8_0, F64, I32 or I64), not copied.
 * _add_f32: floats stored as F32, F16, BF16 (round to nearest even) or Q8_0
 *   (ggml's reference quantizer: d = max|x| / 127, q = round(x / d)); not copied. */
int gguf_writer_add_tensor(GgufWriter *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                           const void *data);
int gguf_writer_add_tensor_f32(GgufWriter *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                               const float *src);
/* Writes a GGUF v3 file atomically: header, kvs, tensor infos, zero padding to the
 * alignment, then each tensor's data padded to the alignment. */
int gguf_writer_write(const GgufWriter *w, const char *path);

#endif
