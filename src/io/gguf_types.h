/* io/gguf_types.h - GGUF's value and ggml tensor type tables, private to the reader
 * (gguf.c) and the writer (gguf_write.c). Static data in a header: each of the two files
 * gets its own copy of these few hundred bytes. */
#ifndef MUSCLE_IO_GGUF_TYPES_H
#define MUSCLE_IO_GGUF_TYPES_H

#include <stdint.h>

#include "core/dtype.h"
#include "gguf.h"


static const char *const value_type_names[GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
static const uint8_t value_type_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct {
    const char *name;
    uint32_t blck;  /* elements per block; 0 = a type removed from GGUF */
    uint32_t size;  /* bytes per block */
    int supported;
    DType dt;
} GgmlTypeInfo;

/* (block size, bytes per block) as in ggml / gguf-py's GGML_QUANT_SIZES. */
static const GgmlTypeInfo ggml_types[] = {
    [0] = {"F32", 1, 4, 1, DT_F32},
    [1] = {"F16", 1, 2, 1, DT_F16},
    [2] = {"Q4_0", 32, 18, 0, DT_F32},
    [3] = {"Q4_1", 32, 20, 0, DT_F32},
    [4] = {"Q4_2", 0, 0, 0, DT_F32},
    [5] = {"Q4_3", 0, 0, 0, DT_F32},
    [6] = {"Q5_0", 32, 22, 0, DT_F32},
    [7] = {"Q5_1", 32, 24, 0, DT_F32},
    [8] = {"Q8_0", 32, 34, 1, DT_Q8_0},
    [9] = {"Q8_1", 32, 36, 0, DT_F32},
    [10] = {"Q2_K", 256, 84, 0, DT_F32},
    [11] = {"Q3_K", 256, 110, 0, DT_F32},
    [12] = {"Q4_K", 256, 144, 0, DT_F32},
    [13] = {"Q5_K", 256, 176, 0, DT_F32},
    [14] = {"Q6_K", 256, 210, 0, DT_F32},
    [15] = {"Q8_K", 256, 292, 0, DT_F32},
    [16] = {"IQ2_XXS", 256, 66, 0, DT_F32},
    [17] = {"IQ2_XS", 256, 74, 0, DT_F32},
    [18] = {"IQ3_XXS", 256, 98, 0, DT_F32},
    [19] = {"IQ1_S", 256, 50, 0, DT_F32},
    [20] = {"IQ4_NL", 32, 18, 0, DT_F32},
    [21] = {"IQ3_S", 256, 110, 0, DT_F32},
    [22] = {"IQ2_S", 256, 82, 0, DT_F32},
    [23] = {"IQ4_XS", 256, 136, 0, DT_F32},
    [24] = {"I8", 1, 1, 0, DT_F32},
    [25] = {"I16", 1, 2, 0, DT_F32},
    [26] = {"I32", 1, 4, 1, DT_I32},
    [27] = {"I64", 1, 8, 1, DT_I64},
    [28] = {"F64", 1, 8, 1, DT_F64},
    [29] = {"IQ1_M", 256, 56, 0, DT_F32},
    [30] = {"BF16", 1, 2, 1, DT_BF16},
    [31] = {"Q4_0_4_4", 0, 0, 0, DT_F32},
    [32] = {"Q4_0_4_8", 0, 0, 0, DT_F32},
    [33] = {"Q4_0_8_8", 0, 0, 0, DT_F32},
    [34] = {"TQ1_0", 256, 54, 0, DT_F32},
    [35] = {"TQ2_0", 256, 66, 0, DT_F32},
    [36] = {"IQ4_NL_4_4", 0, 0, 0, DT_F32},
    [37] = {"IQ4_NL_4_8", 0, 0, 0, DT_F32},
    [38] = {"IQ4_NL_8_8", 0, 0, 0, DT_F32},
    [39] = {"MXFP4", 32, 17, 0, DT_F32},
    [40] = {"NVFP4", 64, 36, 0, DT_F32},
    [41] = {"Q1_0", 128, 18, 0, DT_F32},
    [42] = {"Q2_0", 64, 18, 0, DT_F32},
};
#define GGML_N_TYPES (sizeof ggml_types / sizeof ggml_types[0])

#endif
