/* kernel/transpose_avx512.h - a 16 x 16 fp32 transpose in registers (internal; include
 * only from files whose functions are compiled with AVX-512 enabled). */
#ifndef MUSCLE_KERNEL_TRANSPOSE_AVX512_H
#define MUSCLE_KERNEL_TRANSPOSE_AVX512_H

#include <immintrin.h>

/* c[j] lane i = r[i] lane j: unpack 32, unpack 64, then two 128-bit lane shuffles. */
__attribute__((target("avx512f"), always_inline)) static inline void kmm_tr16_avx512(const __m512 *r, __m512 *c) {
    __m512 a[16], b[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m512d x0 = _mm512_castps_pd(a[4 * g]), x1 = _mm512_castps_pd(a[4 * g + 1]);
        __m512d x2 = _mm512_castps_pd(a[4 * g + 2]), x3 = _mm512_castps_pd(a[4 * g + 3]);
        b[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(x0, x2));
        b[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x0, x2));
        b[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(x1, x3));
        b[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(x1, x3));
    }
    /* b[4g+j] lane L = rows 4g..4g+3 of column 4L+j */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512 p = _mm512_shuffle_f32x4(b[j], b[4 + j], 0x44), q = _mm512_shuffle_f32x4(b[j], b[4 + j], 0xee);
        __m512 p2 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0x44);
        __m512 q2 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0xee);
        c[j] = _mm512_shuffle_f32x4(p, p2, 0x88);
        c[4 + j] = _mm512_shuffle_f32x4(p, p2, 0xdd);
        c[8 + j] = _mm512_shuffle_f32x4(q, q2, 0x88);
        c[12 + j] = _mm512_shuffle_f32x4(q, q2, 0xdd);
    }
}

#endif
