/* core/dtype.c - tensor element types. */
#include "dtype.h"

static const char *names[DT_COUNT] = {"F32", "F16", "BF16", "Q8_0", "F64", "I32", "I64"};

const char *dtype_name(DType t) { return (unsigned)t < DT_COUNT ? names[t] : "?"; }

size_t dtype_nbytes(DType t, uint64_t n, int *ok) {
    uint64_t per = 0;
    *ok = 1;
    switch (t) {
    case DT_F32: case DT_I32: per = 4; break;
    case DT_F16: case DT_BF16: per = 2; break;
    case DT_F64: case DT_I64: per = 8; break;
    case DT_Q8_0:
        if (n % Q8_0_BLOCK) { *ok = 0; return 0; }
        n /= Q8_0_BLOCK;
        per = Q8_0_BYTES;
        break;
    default: *ok = 0; return 0;
    }
    if (n > SIZE_MAX / per) { *ok = 0; return 0; }
    return (size_t)(n * per);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exponent: correct */
    return (uint16_t)h;
}

void dtype_to_f32(DType t, const void *src, float *dst, size_t n) {
    switch (t) {
    case DT_F32: memcpy(dst, src, n * 4); break;
    /* element-wise memcpy: the source may be unaligned (safetensors offsets are free) */
    case DT_F16: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = f16_to_f32(h); }
        break;
    }
    case DT_BF16: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = bf16_to_f32(h); }
        break;
    }
    case DT_F64: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) { double v; memcpy(&v, s + 8 * i, 8); dst[i] = (float)v; }
        break;
    }
    case DT_Q8_0: {
        const uint8_t *b = src;
        for (size_t i = 0; i < n / Q8_0_BLOCK; i++, b += Q8_0_BYTES) {
            uint16_t dh = (uint16_t)(b[0] | (b[1] << 8));
            float d = f16_to_f32(dh);
            const int8_t *q = (const int8_t *)(b + 2);
            for (int j = 0; j < Q8_0_BLOCK; j++) dst[i * Q8_0_BLOCK + j] = d * (float)q[j];
        }
        break;
    }
    case DT_I32: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) { int32_t v; memcpy(&v, s + 4 * i, 4); dst[i] = (float)v; }
        break;
    }
    case DT_I64: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) { int64_t v; memcpy(&v, s + 8 * i, 8); dst[i] = (float)v; }
        break;
    }
    default: break;
    }
}

void dtype_from_f32(DType t, const float *src, void *dst, size_t n) {
    switch (t) {
    case DT_F32: memcpy(dst, src, n * 4); break;
    case DT_F16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = f32_to_f16(src[i]);
        break;
    }
    case DT_BF16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = f32_to_bf16(src[i]);
        break;
    }
    default: break;
    }
}
