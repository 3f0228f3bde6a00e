/* kernel/kpanel_avx512.c - fp32 products y = x W^T against a panel copy of W (kpanel.c):
 * panel p holds outputs 16p..16p+15 as [k][16] (zero past n), so per column p of the
 * reduction one vector load serves 16 outputs and x[i][p] is broadcast against it. Every
 * output is ONE fma chain from +0 over p = 0, 1, .., k-1 (then + beta y), whatever m, the
 * row block or the panel group: a row of x gets the same bits alone (m = 1, generation's
 * single stream) as in a batch (kmm_xwt_panel in matmul.h; tests/kernel/test_kpanel.c).
 *
 * Tiles: m = 1 runs one panel at a time, without software prefetch: one stream of W per
 * thread, which the hardware prefetchers follow at full speed. Measured on a 110M-sized
 * product from memory, 2 threads (AMD EPYC Zen 5, session 11): 50-52 GB/s one panel at a
 * time against 33 GB/s for the former 8 panels at once with a prefetch 16 lines ahead (and
 * 41-43 for 8 without it): interleaved streams of W, even 2, lose bandwidth here, and one
 * fma chain's latency (64 bytes of W per FMA) is not the limit. m = 2, 3 run groups of 4 panels
 * (8 and 12 chains); m >= 4 runs row blocks of at most 8 rows against groups of 3 panels
 * (24 accumulators, 3 loads and 8 broadcasts per 24 FMAs), the group's panels staying in
 * cache across the row blocks while the next group's are prefetched: without that the
 * first row block of every group waited on memory (2.7 times as long as the others at
 * m = 16). Measured at m = 16 on the 85 products of a 110M step, 2 threads, alternating
 * (bench/RESULTS.md, session 8): 8 x 3 with the prefetch 10.95 ms, 6 x 4 with it 11.95,
 * 8 x 3 without it 13.15, the former 6 x 4 12.80. */
#include "kernel/matmul_impl.h"

#include <immintrin.h>
#include <stddef.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Rows x[0..mr) (MR >= mr; the others repeat row mr-1, not stored) against panels
 * pw + j*ps (j < np <= NP; the others repeat the last, not stored); outputs y[i*ldy + 16j + c]
 * for c < lc in the last panel (16 in the others). Meanwhile panels j = pb, pb + nb, ..
 * below nnp of the next group nx are prefetched, line p at step p (nnp = 0: none). MR and
 * NP are literals (the accumulators must be registers, not a variable-length array). */
#define TILE(NAME, MR, NP, PF) \
    static T512 void NAME(const float *pw, size_t ps, int k, const float *x, size_t ldx, int mr, int np, int lc, \
                          float *y, size_t ldy, float beta, const float *nx, int nnp, int pb, int nb) { \
        __m512 acc[MR][NP]; \
        const float *xr[MR], *wp[NP]; \
        for (int i = 0; i < MR; i++) xr[i] = x + (size_t)(i < mr ? i : mr - 1) * ldx; \
        for (int j = 0; j < NP; j++) wp[j] = pw + (size_t)(j < np ? j : np - 1) * ps; \
        for (int i = 0; i < MR; i++) \
            for (int j = 0; j < NP; j++) acc[i][j] = _mm512_setzero_ps(); \
        for (int p = 0; p < k; p++) { \
            __m512 w[NP]; \
            for (int j = 0; j < NP; j++) w[j] = _mm512_load_ps(wp[j] + (size_t)p * 16); \
            if (PF) \
                for (int j = 0; j < NP; j++) _mm_prefetch((const char *)(wp[j] + (size_t)(p + PF) * 16), _MM_HINT_T0); \
            for (int j = pb; j < nnp; j += nb) _mm_prefetch((const char *)(nx + j * ps + (size_t)p * 16), _MM_HINT_T0); \
            for (int i = 0; i < MR; i++) { \
                __m512 xb = _mm512_set1_ps(xr[i][p]); \
                for (int j = 0; j < NP; j++) acc[i][j] = _mm512_fmadd_ps(xb, w[j], acc[i][j]); \
            } \
        } \
        const __m512 vb = _mm512_set1_ps(beta); \
        for (int i = 0; i < MR; i++) \
            for (int j = 0; j < NP; j++) { \
                if (i >= mr || j >= np) continue; \
                __mmask16 mk = j == np - 1 ? (__mmask16)((1u << lc) - 1u) : (__mmask16)0xffff; \
                float *yo = y + (size_t)i * ldy + (size_t)j * 16; \
                __m512 v = acc[i][j]; \
                if (beta != 0.0f) v = _mm512_add_ps(v, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk, yo))); \
                _mm512_mask_storeu_ps(yo, mk, v); \
            } \
    }

TILE(tile_m1, 1, 1, 0)
TILE(tile_r2, 2, 4, 0)
TILE(tile_r3, 3, 4, 0)
TILE(tile_r4, 4, 3, 0)
TILE(tile_r5, 5, 3, 0)
TILE(tile_r6, 6, 3, 0)
TILE(tile_r7, 7, 3, 0)
TILE(tile_r8, 8, 3, 0)

typedef void Tile(const float *, size_t, int, const float *, size_t, int, int, int, float *, size_t, float,
                  const float *, int, int, int);
/* by rows: m = 2, 3 alone; m >= 4 in blocks of 4..8 rows */
static Tile *const tiles[9] = {NULL, NULL, tile_r2, tile_r3, tile_r4, tile_r5, tile_r6, tile_r7, tile_r8};

int kmm_panel_group(int m) { return m == 1 ? 1 : m <= 3 ? 4 : 3; }

/* Panels [p0, p1) of pw (panels of ps = 16 k floats; n outputs in all) against all m rows. */
T512 void kmm_panel_f32_avx512(const float *pw, int n, int k, const float *x, int m, float *y, size_t ldy, float beta,
                               int p0, int p1) {
    const size_t ps = (size_t)k * 16;
    const int NP = kmm_panel_group(m);
    for (int g = p0; g < p1; g += NP) {
        int np = p1 - g < NP ? p1 - g : NP;
        int lc = n - (g + np - 1) * 16;
        if (lc > 16) lc = 16;
        const float *pg = pw + (size_t)g * ps;
        float *yg = y + (size_t)g * 16;
        if (m == 1) {
            tile_m1(pg, ps, k, x, 0, 1, np, lc, yg, 0, beta, NULL, 0, 0, 1);
            continue;
        }
        /* row blocks of at most 8, as even as they come (m = 16: 8, 8; m = 17: 6, 6, 5), m >= 4 */
        const int nb = (m + 7) / 8;
        /* the next group in [p0, p1) (nnp panels, 0 past the last), its panel j prefetched
         * by row block j mod nb */
        const int left = p1 - (g + NP), nnp = left < 0 ? 0 : left < NP ? left : NP;
        const float *nx = nnp ? pg + NP * ps : NULL;
        for (int b = 0, i = 0; b < nb; b++) {
            int mr = (m - i) / (nb - b) + ((m - i) % (nb - b) != 0);
            tiles[mr](pg, ps, k, x + (size_t)i * k, (size_t)k, mr, np, lc, yg + (size_t)i * ldy, ldy, beta, nx, nnp, b,
                      nb);
            i += mr;
        }
    }
}
