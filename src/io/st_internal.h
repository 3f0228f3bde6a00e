/* io/st_internal.h - what the safetensors reader (safetensors.c) shares with its writer
 * (safetensors_write.c) and its sharded sets (safetensors_set.c). */
#ifndef MUSCLE_IO_ST_INTERNAL_H
#define MUSCLE_IO_ST_INTERNAL_H

#include <stddef.h>

#include "core/dtype.h"
#include "safetensors.h"

typedef struct {
    const char *name;
    unsigned bits;   /* per element (F4 and F6 are packed) */
    int rank;        /* the reference's Dtype order: the writer sorts by it, descending */
    int supported;
    DType dt;
} StDtypeInfo;

/* The safetensors dtype of a core DType (F32, F16, BF16, F64, I32, I64), else NULL. */
const StDtypeInfo *st_dtype_by_core(DType t);
/* qsort order of metadata entries: by key. */
int meta_cmp(const void *a, const void *b);
/* Sorts n metadata entries and refuses a key given twice (naming `name` and `field`). */
int meta_finish(StMeta *m, size_t n, const char *name, const char *field);
/* Frees n metadata entries and the array. */
void meta_free(StMeta *m, size_t n);

#endif
