/* core/dtype.h - element types of stored tensors and conversions between them. */
#ifndef MUSCLE_CORE_DTYPE_H
#define MUSCLE_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    DT_F32 = 0,
    DT_F16,
    DT_BF16,
    DT_Q8_0, /* GGUF: blocks of 32 int8 with one f16 scale (34 bytes a block) */
    DT_F64,
    DT_I32,
    DT_I64,
    DT_COUNT
} DType;

#define Q8_0_BLOCK 32
#define Q8_0_BYTES 34

const char *dtype_name(DType t);
/* Bytes for n elements (n must be a multiple of the block size for Q8_0);
 * returns 0 and sets *ok=0 on overflow or a bad count. */
size_t dtype_nbytes(DType t, uint64_t n, int *ok);

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even (NaN kept quiet), like PyTorch's .to(torch.bfloat16). */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

/* Converts n elements of type t at src into floats. */
void dtype_to_f32(DType t, const void *src, float *dst, size_t n);
/* Converts n floats into type t (F32, F16, BF16 only). */
void dtype_from_f32(DType t, const float *src, void *dst, size_t n);

#endif
