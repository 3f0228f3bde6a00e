/* io/safetensors.h - Hugging Face safetensors files: reader, sharded sets, writer.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON
 *   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * then the data area; offsets are relative to its first byte (8 + N).
 * The reader validates everything before exposing anything (see docs/formats.md):
 * a file is accepted only if the reference implementation would accept it, plus a few
 * stricter checks (unique names, UTF-8, nesting depth, no NUL in names).
 * Tensor data is never copied: pointers go into the read-only mapping.
 */
#ifndef MUSCLE_IO_SAFETENSORS_H
#define MUSCLE_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/file.h"

#define ST_MAX_HEADER 100000000u /* bytes of JSON header, as the reference implementation */
#define ST_MAX_DIMS 8
#define ST_MAX_DEPTH 32 /* JSON nesting (a valid header needs 3) */

/* ---------------------------------------------------------------- reading */

typedef struct {
    char *name;             /* NUL-terminated UTF-8 (first member: used by the name index) */
    const char *dtype_name; /* as written: "F32", "BF16", "I8", "F8_E4M3", ... */
    int supported;          /* 1 when dtype is set: F32, F16, BF16, F64, I32, I64 */
    DType dtype;            /* valid only when supported */
    int ndim;               /* 0 (scalar) .. ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS]; /* PyTorch order: shape[ndim-1] varies fastest */
    uint64_t numel;
    uint64_t offset;        /* of the data, from the start of the data area */
    size_t nbytes;
    const uint8_t *data;    /* into the mapping; NOT necessarily aligned to the element size */
} StTensor;

typedef struct {
    char *key;   /* first member: used by the name index */
    char *value;
} StMeta;

typedef struct {
    MappedFile map;         /* when opened with st_open */
    char *name;             /* path or display name, for messages */
    size_t header_len;      /* N */
    const uint8_t *data;    /* data area */
    size_t data_size;
    StTensor *tensors;      /* in data-offset order */
    size_t n_tensors;
    StMeta *meta;           /* __metadata__, sorted by key */
    size_t n_meta;
    uint32_t *by_name;      /* tensor indices sorted by name */
} StFile;

/* Maps and validates a file. On error returns -1 (message names the path) and f is
 * left closed (st_close is harmless). */
int st_open(StFile *f, const char *path);
/* Same from memory; `buf` must outlive f. `display_name` is used in messages. */
int st_parse_buffer(StFile *f, const void *buf, size_t size, const char *display_name);
void st_close(StFile *f);

/* NULL when absent (no error message set: absence is often expected). */
const StTensor *st_tensor_find(const StFile *f, const char *name);
/* __metadata__ value, NULL when absent. */
const char *st_meta_get(const StFile *f, const char *key);

/* Converts a tensor of a supported dtype to floats (dst holds t->numel); safe for
 * unaligned data. Errors name the file and tensor (unsupported dtype). */
int st_tensor_to_f32(const StFile *f, const StTensor *t, float *dst);

/* ---------------------------------------------------------------- sharded sets */

/* A parsed model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: file}}. */
typedef struct {
    char *tensor; /* first member: sorted by it */
    char *file;   /* a plain file name in the index's folder (never a path) */
} StIndexEntry;

typedef struct {
    char *name;           /* path or display name */
    StIndexEntry *entries; /* weight_map, sorted by tensor name */
    size_t n_entries;
    char **files;         /* distinct shard file names, sorted */
    size_t n_files;
    StMeta *meta;         /* "metadata": scalars as text (numbers printed as integers when integral) */
    size_t n_meta;
} StIndex;

int st_index_parse_buffer(StIndex *ix, const char *json, size_t n, const char *display_name);
void st_index_free(StIndex *ix);

typedef struct {
    char *name;                 /* first member: sorted by it */
    const StTensor *tensor;
    size_t shard;               /* index into shards[] */
} StSetEntry;

typedef struct {
    char *path;                 /* what was opened */
    StFile *shards;
    size_t n_shards;
    StSetEntry *entries;        /* every tensor of the set, sorted by name */
    size_t n_entries;
    StIndex index;              /* empty when the set is a single file */
} StSet;

/* Opens a model:
 *  - a folder with model.safetensors.index.json (every shard opened once; every
 *    weight_map entry must exist in its shard; tensors of a shard that the
 *    weight_map does not list are ignored), or with model.safetensors;
 *  - a path to an *.index.json file;
 *  - a path to one .safetensors file. */
int st_set_open(StSet *s, const char *path);
void st_set_close(StSet *s);
/* NULL when absent; *shard (optional) receives the shard holding it. */
const StTensor *st_set_tensor_find(const StSet *s, const char *name, const StFile **shard);

/* ---------------------------------------------------------------- writing */

typedef struct {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    size_t nbytes;
    const void *data;   /* caller's memory, not copied */
    int from_f32;       /* data is float[numel], converted to dtype while writing */
} StWriterTensor;

typedef struct {
    StWriterTensor *tensors;
    size_t n_tensors, cap_tensors;
    StMeta *meta;
    size_t n_meta, cap_meta;
    int failed;         /* an add failed: write refuses */
} StWriter;

void st_writer_init(StWriter *w);
/* Adds a tensor whose bytes (little-endian, `dtype`: F32, F16, BF16, F64, I32, I64)
 * are at `data`. The memory is NOT copied: it must stay valid until st_writer_write. */
int st_writer_add(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape, const void *data);
/* Adds a tensor given as floats, stored as `dtype` (F32, F16 or BF16, rounded to
 * nearest even). `src` is not copied either. */
int st_writer_add_f32(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape, const float *src);
/* Sets a __metadata__ entry (replaces an earlier value of the same key). */
int st_writer_meta_set(StWriter *w, const char *key, const char *value);
/* Writes atomically, laid out like the reference implementation: tensors sorted by
 * dtype in the reference's order, descending (I64, F64, F32, I32, BF16, F16), then by
 * name; data back to back in that order; compact JSON header with __metadata__ first
 * (keys sorted), padded with spaces to a multiple of 8 bytes. Refuses duplicate names. */
int st_writer_write(const StWriter *w, const char *path);
void st_writer_free(StWriter *w);

#endif
