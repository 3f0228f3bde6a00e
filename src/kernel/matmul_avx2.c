/* kernel/matmul_avx2.c - AVX2+FMA gemv for small m (chosen at run time). */
#include "kernel/matmul_impl.h"

#include <immintrin.h>

#define T2 __attribute__((target("avx2,fma")))

static inline void put(float *yo, float v, float beta) { *yo = beta == 0.0f ? v : v + beta * *yo; }

T2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

T2 static inline __m256 ld_bf16(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float wval_f32(const float *w, size_t i) { return w[i]; }
static inline float wval_bf16(const uint16_t *w, size_t i) {
    union { uint32_t u; float f; } v = {.u = (uint32_t)w[i] << 16};
    return v.f;
}

/* 4 rows of W at a time, two 8-wide accumulators a row, scalar tail. */
#define GEMV2_BODY(LOADW, WVAL)                                                             \
    for (int r = r0; r < r1; r += 4) {                                                      \
        int nrow = r1 - r < 4 ? r1 - r : 4;                                                 \
        size_t o[4];                                                                        \
        for (int j = 0; j < 4; j++) o[j] = (size_t)(r + (j < nrow ? j : 0)) * k;            \
        for (int i = 0; i < m; i++) {                                                       \
            const float *xi = x + (size_t)i * k;                                            \
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                     \
            __m256 t0 = s0, t1 = s0, t2 = s0, t3 = s0;                                      \
            int kk = 0;                                                                     \
            for (; kk + 16 <= k; kk += 16) {                                                \
                __m256 xa = _mm256_loadu_ps(xi + kk), xb = _mm256_loadu_ps(xi + kk + 8);    \
                s0 = _mm256_fmadd_ps(LOADW(o[0] + kk), xa, s0);                             \
                t0 = _mm256_fmadd_ps(LOADW(o[0] + kk + 8), xb, t0);                         \
                s1 = _mm256_fmadd_ps(LOADW(o[1] + kk), xa, s1);                             \
                t1 = _mm256_fmadd_ps(LOADW(o[1] + kk + 8), xb, t1);                         \
                s2 = _mm256_fmadd_ps(LOADW(o[2] + kk), xa, s2);                             \
                t2 = _mm256_fmadd_ps(LOADW(o[2] + kk + 8), xb, t2);                         \
                s3 = _mm256_fmadd_ps(LOADW(o[3] + kk), xa, s3);                             \
                t3 = _mm256_fmadd_ps(LOADW(o[3] + kk + 8), xb, t3);                         \
            }                                                                               \
            float v[4] = {hsum8(_mm256_add_ps(s0, t0)), hsum8(_mm256_add_ps(s1, t1)),       \
                          hsum8(_mm256_add_ps(s2, t2)), hsum8(_mm256_add_ps(s3, t3))};      \
            for (int j = 0; j < 4; j++) {                                                   \
                float tail = 0.0f;                                                          \
                for (int q = kk; q < k; q++) tail += xi[q] * WVAL(w, o[j] + q);             \
                v[j] += tail;                                                               \
            }                                                                               \
            float *yo = y + (size_t)i * ldy + r;                                            \
            for (int j = 0; j < nrow; j++) put(yo + j, v[j], beta);                         \
        }                                                                                   \
    }

#define LOAD_F32(off) _mm256_loadu_ps(w + (off))
#define LOAD_BF16(off) ld_bf16(w + (off))

T2 void kmm_gemv_f32_avx2(const float *w, int k, const float *x, int m, float *y, size_t ldy,
                          float beta, int r0, int r1) {
    GEMV2_BODY(LOAD_F32, wval_f32)
}

T2 void kmm_gemv_bf16_avx2(const uint16_t *w, int k, const float *x, int m, float *y, size_t ldy,
                           float beta, int r0, int r1) {
    GEMV2_BODY(LOAD_BF16, wval_bf16)
}
