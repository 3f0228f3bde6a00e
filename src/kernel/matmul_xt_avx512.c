/* kernel/matmul_xt_avx512.c - fp32 small-m products (batched decoding steps, prefill
 * chunks: up to 64 rows of x against W [n, k]) in broadcast form, with the bits of the
 * dot-product kernel kmm_small_f32_avx512 (matmul_avx512.c), which serves them by
 * default: this form measured no faster (m = 16: 0.87-1.05x; m = 64: 0.5-0.95x, one
 * thread, docs/kernels.md), so it runs only with MUSCLE_F32_XT=1.
 *
 * The dot-product kernel gives y[i][r] = hsum16(s), s[l] = the fma chain from +0 over
 * x[i][p] W[r][p] for p = l, l + 16, ... (a masked tail chunk adds +0 to the lanes past
 * k), and hsum16's tree: T_j = (s[4j] + s[4j+2]) + (s[4j+1] + s[4j+3]),
 * y = (T0 + T1) + (T2 + T3). Here the same chains and the same tree run with the lanes of
 * a vector holding 16 rows of x instead of 16 values of k: x is transposed once per call
 * into xt [k][16 nq] (lane l of vector q = x row 16q + l, zero past m); R rows of W are
 * read in place and each element W[r][p] is broadcast against the nq vectors of xt[p]
 * (acc[r][q] = fma(W[r][p], xt[p][q], acc[r][q]), so a product is the same as in the dot
 * form). The residue classes l = p mod 16 run one after another over blocks of 256
 * columns (the chains of a class meet their previous values through a small buffer; a
 * store and a load do not change a float), then the tree adds the 16 chains elementwise.
 *
 * So a row of x gets the same bits here as alone (m = 1) - the generators rely on it
 * (greedy ids batched = single-stream) - while W is read once per call, from memory, in
 * row order (the next rows prefetched to L2 evenly over the passes), and every FMA does 16
 * useful lanes, where the dot form reloads the m rows of x for every 4 rows of W. The cost
 * that keeps it from winning: one broadcast load per FMA at m = 16 (the dot form's 4 x 4
 * tile: 0.5), and the 16 passes' accumulator reloads. */
#include "kernel/matmul_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

#define XT_KB 256  /* columns of W per block (a multiple of 16) */

static inline void put(float *yo, float v, float beta) { *yo = beta == 0.0f ? v : v + beta * *yo; }

/* Rows w.. (nr <= R valid; the others repeat the last, not stored) against all m rows of
 * x (xt: [k][16 NQ]); outputs y[i*ldy + r]. sv: [16][R][NQ] vectors of scratch. */
T512 static inline __attribute__((always_inline)) void xt_rows(const float *w, size_t K, int nr, const float *xt,
                                                               int m, float *y, size_t ldy, float beta, __m512 *sv,
                                                               const char *pf, size_t pf_bytes, const int R,
                                                               const int NQ) {
    const float *wr[16];
    for (int r = 0; r < R; r++) wr[r] = w + (size_t)(r < nr ? r : nr - 1) * K;
    const size_t K16 = K & ~(size_t)15, xs = (size_t)16 * NQ;
    const int t = (int)(K & 15);
#define SV(l, r, q) sv[((size_t)(l) * R + (r)) * NQ + (q)]
    const size_t passes = 16 * ((K16 + XT_KB - 1) / XT_KB);
    const int pf_lines = passes ? (int)((pf_bytes / 64 + passes - 1) / passes) : 0;
    size_t pfo = 0;
    for (size_t b0 = 0; b0 < K16; b0 += XT_KB) {
        const size_t b1 = K16 - b0 < XT_KB ? K16 : b0 + XT_KB;
        for (int l = 0; l < 16; l++) {
            __m512 acc[16][4];
#pragma GCC unroll 16
            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                for (int q = 0; q < NQ; q++) acc[r][q] = b0 ? SV(l, r, q) : _mm512_setzero_ps();
            /* the next rows (contiguous after these), spread evenly over the passes */
            for (int j = 0; j < pf_lines; j++, pfo += 64)
                if (pfo < pf_bytes) _mm_prefetch(pf + pfo, _MM_HINT_T1);
            for (size_t p = b0 + (size_t)l; p < b1; p += 16) {
                __m512 xv[4];
#pragma GCC unroll 4
                for (int q = 0; q < NQ; q++) xv[q] = _mm512_load_ps(xt + p * xs + 16 * q);
#pragma GCC unroll 16
                for (int r = 0; r < R; r++) {
                    const __m512 wb = _mm512_set1_ps(wr[r][p]);
#pragma GCC unroll 4
                    for (int q = 0; q < NQ; q++) acc[r][q] = _mm512_fmadd_ps(wb, xv[q], acc[r][q]);
                }
            }
#pragma GCC unroll 16
            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                for (int q = 0; q < NQ; q++) SV(l, r, q) = acc[r][q];
        }
    }
    /* the tail chunk: classes l < t take one more product, the others + 0 (the dot form's
     * masked lanes: fma(0, 0, s) = s + 0) */
    for (int l = 0; l < 16; l++)
        for (int r = 0; r < R; r++)
            for (int q = 0; q < NQ; q++) {
                __m512 s = K16 ? SV(l, r, q) : _mm512_setzero_ps();
                if (t) {
                    const size_t p = K16 + (size_t)l;
                    s = l < t ? _mm512_fmadd_ps(_mm512_set1_ps(wr[r][p]), _mm512_load_ps(xt + p * xs + 16 * q), s)
                              : _mm512_add_ps(s, _mm512_setzero_ps());
                }
                SV(l, r, q) = s;
            }
    for (int r = 0; r < R && r < nr; r++)
        for (int q = 0; q < NQ; q++) {
            __m512 T[4];
            for (int j = 0; j < 4; j++)
                T[j] = _mm512_add_ps(_mm512_add_ps(SV(4 * j, r, q), SV(4 * j + 2, r, q)),
                                     _mm512_add_ps(SV(4 * j + 1, r, q), SV(4 * j + 3, r, q)));
            float o[16] __attribute__((aligned(64)));
            _mm512_store_ps(o, _mm512_add_ps(_mm512_add_ps(T[0], T[1]), _mm512_add_ps(T[2], T[3])));
            for (int lane = 0; lane < 16 && 16 * q + lane < m; lane++) put(y + (size_t)(16 * q + lane) * ldy + r, o[lane], beta);
        }
#undef SV
}

#define XT_CASE(NQ, R)                                                                            \
    for (int rb = r0; rb < r1; rb += R) {                                                         \
        const int nn = r1 - rb - R < R ? r1 - rb - R : R; /* rows of the next tile */              \
        xt_rows(w + (size_t)rb * K, K, r1 - rb < R ? r1 - rb : R, xt, m, y + rb, ldy, beta, sv,       \
                (const char *)(w + (size_t)(rb + R) * K), nn > 0 ? (size_t)nn * K * sizeof(float) : 0, R, NQ); \
    }                                                                                             \
    break

T512 void kmm_small_xt_f32_avx512(const float *w, int k, const float *x, int m, float *y, size_t ldy, float beta,
                                  int r0, int r1) {
    const size_t K = (size_t)k;
    const int nq = (m + 15) / 16;
    float *xt = aligned_alloc(64, K * 16 * nq * sizeof(float) + 64);
    __m512 *sv = aligned_alloc(64, (size_t)16 * 12 * sizeof(__m512));
    if (!xt || !sv) {
        fprintf(stderr, "muscle: fatal: out of memory in a small-m fp32 product\n");
        abort();
    }
    memset(xt, 0, K * 16 * nq * sizeof(float));
    kmm_transpose_avx512(x, K, m, k, xt, (size_t)(16 * nq));
    switch (nq) {
    case 1: XT_CASE(1, 12);
    case 2: XT_CASE(2, 6);
    case 3: XT_CASE(3, 4);
    default: XT_CASE(4, 3);
    }
    free(sv);
    free(xt);
}
