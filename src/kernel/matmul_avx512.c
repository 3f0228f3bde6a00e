/* kernel/matmul_avx512.c - AVX-512 micro-kernels and gemv (chosen at run time;
 * the rest of the library is built for plain x86-64). */
#include "kernel/matmul_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

/* Writes acc (one row of 32 outputs) to c under masks, per mode. */
#define STORE_ROW(cr, a0, a1)                                                           \
    do {                                                                                \
        if (alpha != 1.0f) {                                                            \
            a0 = _mm512_mul_ps(va, a0);                                                 \
            a1 = _mm512_mul_ps(va, a1);                                                 \
        }                                                                               \
        if (mode == KMM_STORE) {                                                        \
            _mm512_mask_storeu_ps((cr), k0, (a0));                                      \
            _mm512_mask_storeu_ps((cr) + 16, k1, (a1));                                 \
        } else {                                                                        \
            __m512 o0 = _mm512_maskz_loadu_ps(k0, (cr)), o1 = _mm512_maskz_loadu_ps(k1, (cr) + 16); \
            if (mode == KMM_BETA) {                                                     \
                o0 = _mm512_fmadd_ps(vb, o0, (a0));                                     \
                o1 = _mm512_fmadd_ps(vb, o1, (a1));                                     \
            } else {                                                                    \
                o0 = _mm512_add_ps(o0, (a0));                                           \
                o1 = _mm512_add_ps(o1, (a1));                                           \
            }                                                                           \
            _mm512_mask_storeu_ps((cr), k0, o0);                                        \
            _mm512_mask_storeu_ps((cr) + 16, k1, o1);                                   \
        }                                                                               \
    } while (0)

#define COL_MASKS                                                                       \
    const __mmask16 k0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);               \
    const __mmask16 k1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0; \
    const __m512 vb = _mm512_set1_ps(beta), va = _mm512_set1_ps(alpha)

/* The C tile is likely out of L1/L2 (C of the whole product exceeds L2):
 * fetch it while the tile is being computed. */
#define PREFETCH_C                                                                      \
    for (int r = 0; r < mr; r++) {                                                      \
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);                 \
        _mm_prefetch((const char *)(c + (size_t)r * ldc + nr - 1), _MM_HINT_T0);        \
    }

/* Plain fp32: per k, 2 vectors of B against 12 broadcasts of A. */
T512 void kmm_ukr_f32_avx512(int kc, const float *ap, const float *bp, float *c, size_t ldc, int mr,
                             int nr, int mode, float beta, float alpha) {
    __m512 acc[KMM_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < KMM_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    PREFETCH_C;
    for (int kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
        for (int r = 0; r < KMM_MR; r++) {
            __m512 a = _mm512_set1_ps(ap[r * KMM_KC]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
        ap += 1;
        bp += 32;
    }
    COL_MASKS;
#pragma GCC unroll 12
    for (int r = 0; r < KMM_MR; r++)
        if (r < mr) STORE_ROW(c + (size_t)r * ldc, acc[r][0], acc[r][1]);
}

/* fp32 FMA on bf16 weights: a pair vector v holds 16 outputs x (k even, k odd);
 * v << 16 is the even-k f32 vector, v & 0xffff0000 the odd-k one. */
T512 void kmm_ukr_fma_avx512(int kq, const float *ap, const uint32_t *bp, float *c, size_t ldc,
                             int mr, int nr, int mode, float beta, float alpha) {
    __m512 acc[KMM_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < KMM_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    PREFETCH_C;
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int q = 0; q < kq; q++) {
        __m512i v0 = _mm512_loadu_si512(bp), v1 = _mm512_loadu_si512(bp + 16);
        __m512 b0 = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16));
        __m512 b1 = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16));
#pragma GCC unroll 12
        for (int r = 0; r < KMM_MR; r++) {
            __m512 a = _mm512_set1_ps(ap[r * KMM_KC]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
        b0 = _mm512_castsi512_ps(_mm512_and_si512(v0, hi));
        b1 = _mm512_castsi512_ps(_mm512_and_si512(v1, hi));
#pragma GCC unroll 12
        for (int r = 0; r < KMM_MR; r++) {
            __m512 a = _mm512_set1_ps(ap[r * KMM_KC + 1]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
        ap += 2;
        bp += 32;
    }
    COL_MASKS;
#pragma GCC unroll 12
    for (int r = 0; r < KMM_MR; r++)
        if (r < mr) STORE_ROW(c + (size_t)r * ldc, acc[r][0], acc[r][1]);
}

/* vdpbf16ps: per lane, acc += a.lo*b.lo + a.hi*b.hi with a = one bf16 pair of x. */
TBF16 void kmm_ukr_dp_avx512bf16(int kq, const uint32_t *ap, const uint32_t *bp, float *c,
                                 size_t ldc, int mr, int nr, int mode, float beta, float alpha) {
    __m512 acc[KMM_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < KMM_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    PREFETCH_C;
    for (int q = 0; q < kq; q++) {
        __m512bh v0 = (__m512bh)_mm512_loadu_si512(bp), v1 = (__m512bh)_mm512_loadu_si512(bp + 16);
#pragma GCC unroll 12
        for (int r = 0; r < KMM_MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[r * (KMM_KC / 2)]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, v0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, v1);
        }
        ap += 1;
        bp += 32;
    }
    COL_MASKS;
#pragma GCC unroll 12
    for (int r = 0; r < KMM_MR; r++)
        if (r < mr) STORE_ROW(c + (size_t)r * ldc, acc[r][0], acc[r][1]);
}

/* ------------------------------------------------------------------ gemv */

static inline void put(float *yo, float v, float beta) { *yo = beta == 0.0f ? v : v + beta * *yo; }

/* bf16 gemv with fp32 FMA: a 32-element chunk of a W row loads as 16 pairs;
 * v << 16 holds its even elements, v & 0xffff0000 its odd ones, matched by x
 * pre-split per chunk into 16 even then 16 odd values (xp, rows of kp). */
T512 void kmm_gemv_bf16_avx512(const uint16_t *w, int k, const float *xp, int m, float *y,
                               size_t ldy, float beta, int r0, int r1) {
    const size_t kp = (size_t)(k + 31) & ~(size_t)31;
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int r = r0; r < r1; r += 4) {
        int nrow = r1 - r < 4 ? r1 - r : 4;
        const uint16_t *w0 = w + (size_t)r * k, *w1 = w + (size_t)(r + (nrow > 1)) * k,
                       *w2 = w + (size_t)(r + (nrow > 2) * 2) * k, *w3 = w + (size_t)(r + (nrow > 3) * 3) * k;
        for (int i = 0; i < m; i++) {
            const float *xi = xp + (size_t)i * kp;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            __m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
#define PAIR(s, t, p, msk)                                                                  \
    do {                                                                                    \
        __m512i v = _mm512_maskz_loadu_epi16((msk), (p));                                   \
        s = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, s);          \
        t = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), xo, t);           \
    } while (0)
            for (int kk = 0; kk < k; kk += 32) {
                __mmask32 msk = k - kk >= 32 ? 0xffffffffu : (__mmask32)((1u << (k - kk)) - 1);
                __m512 xe = _mm512_loadu_ps(xi + kk), xo = _mm512_loadu_ps(xi + kk + 16);
                PAIR(s0, t0, w0 + kk, msk);
                PAIR(s1, t1, w1 + kk, msk);
                PAIR(s2, t2, w2 + kk, msk);
                PAIR(s3, t3, w3 + kk, msk);
            }
#undef PAIR
            float *yo = y + (size_t)i * ldy + r;
            put(yo, _mm512_reduce_add_ps(_mm512_add_ps(s0, t0)), beta);
            if (nrow > 1) put(yo + 1, _mm512_reduce_add_ps(_mm512_add_ps(s1, t1)), beta);
            if (nrow > 2) put(yo + 2, _mm512_reduce_add_ps(_mm512_add_ps(s2, t2)), beta);
            if (nrow > 3) put(yo + 3, _mm512_reduce_add_ps(_mm512_add_ps(s3, t3)), beta);
        }
    }
}

/* ------------------------------------------------------------------ small-m products */

/* Batched decoding (m = 1..64 rows of x against W [n, k]): tiles of RW rows of W x MX
 * rows of x (RW * MX = 16 accumulators), one accumulator per (x row, W row) summing its
 * products chunk by chunk along k (16 fp32 or 32 bf16 elements, the tail masked), then
 * one fixed tree across the 16 lanes (hsum16). The order of every sum depends on k
 * only, not on m or on the tile shape, so a row of x gets the same bits alone (m = 1,
 * single-stream decoding) as among 64 (a batched step). Each tile loads RW + MX vectors
 * per RW * MX FMAs, and a 4-row block of W stays in L1 while every row of x passes. */

/* Element e of the result = the sum of the 16 lanes of v[e] (the same tree for every e:
 * lanes (0+2)+(1+3) per 128-bit block, then blocks (0+1)+(2+3)). */
T512 static inline __m512 hsum16(const __m512 *v) {
    __m512 u[8], w[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        u[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(u[2 * i]), b = _mm512_castps_pd(u[2 * i + 1]);
        w[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
    __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(w[2], w[3], 0x88), _mm512_shuffle_f32x4(w[2], w[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xdd));
}

/* y[i*ldy + r] = tot[i*RW + r] (+ beta y) for r < nrow, i < nx. */
T512 static inline void small_store(__m512 tot, int RW, int nrow, int nx, float *y, size_t ldy, float beta) {
    float t[16] __attribute__((aligned(64)));
    memcpy(t, &tot, sizeof t);
    for (int i = 0; i < nx; i++)
        for (int r = 0; r < nrow; r++) put(y + (size_t)i * ldy + r, t[i * RW + r], beta);
}

/* One tile: W rows w.. (nrow <= RW valid, the others repeat the last), x rows x..
 * (nx <= MX valid), outputs y[i*ldy + r]. */
#define SMALL_TILE(NAME, ATTR, TW, TX, CH, MASKT, FULL, TAILMASK, MAC)            \
    ATTR static inline __attribute__((always_inline)) void NAME(const TW *w, size_t k, int nrow, \
        const TX *x, int nx, float *y, size_t ldy, float beta, const int RW, const int MX, int pf) { \
        const TW *wp[16];                                                                       \
        const TX *xp[16];                                                                       \
        __m512 acc[16];                                                                         \
        _Pragma("GCC unroll 16") for (int r = 0; r < RW; r++) wp[r] = w + (size_t)(r < nrow ? r : nrow - 1) * k; \
        _Pragma("GCC unroll 16") for (int i = 0; i < MX; i++) xp[i] = x + (size_t)(i < nx ? i : nx - 1) * k;    \
        _Pragma("GCC unroll 16") for (int e = 0; e < 16; e++) acc[e] = _mm512_setzero_ps();     \
        size_t kk = 0;                                                                          \
        for (; kk + CH <= k; kk += CH) {                                                        \
            const MASKT msk = FULL;                                                             \
            if (pf) /* the next RW rows of W, while these are used (one line a row) */          \
                _Pragma("GCC unroll 16") for (int r = 0; r < RW; r++)                           \
                    _mm_prefetch((const char *)((uintptr_t)(wp[r] + kk) + (uintptr_t)RW * k * sizeof(TW)), _MM_HINT_T0); \
            MAC(msk);                                                                           \
        }                                                                                       \
        if (kk < k) {                                                                           \
            const MASKT msk = TAILMASK;                                                         \
            MAC(msk);                                                                           \
        }                                                                                       \
        small_store(hsum16(acc), RW, nrow, nx, y, ldy, beta);                                   \
    }

#define MAC_F32(msk)                                                                            \
    do {                                                                                        \
        __m512 xv[16];                                                                          \
        _Pragma("GCC unroll 16") for (int i = 0; i < MX; i++) {                                 \
            xv[i] = _mm512_maskz_loadu_ps(msk, xp[i] + kk);                                     \
            __asm__("" : "+v"(xv[i]));                                                          \
        }                                                                                       \
        _Pragma("GCC unroll 16") for (int r = 0; r < RW; r++) {                                 \
            __m512 wv = _mm512_maskz_loadu_ps(msk, wp[r] + kk);                                 \
            __asm__("" : "+v"(wv)); /* in a register: one load, not one per FMA */               \
            _Pragma("GCC unroll 16") for (int i = 0; i < MX; i++)                               \
                acc[i * RW + r] = _mm512_fmadd_ps(wv, xv[i], acc[i * RW + r]);                  \
        }                                                                                       \
    } while (0)

#define MAC_BF16(msk)                                                                           \
    do {                                                                                        \
        __m512bh xv[16];                                                                        \
        _Pragma("GCC unroll 16") for (int i = 0; i < MX; i++) {                                 \
            xv[i] = (__m512bh)_mm512_maskz_loadu_epi16(msk, xp[i] + kk);                        \
            __asm__("" : "+v"(xv[i]));                                                          \
        }                                                                                       \
        _Pragma("GCC unroll 16") for (int r = 0; r < RW; r++) {                                 \
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(msk, wp[r] + kk);                  \
            __asm__("" : "+v"(wv));                                                             \
            _Pragma("GCC unroll 16") for (int i = 0; i < MX; i++)                               \
                acc[i * RW + r] = _mm512_dpbf16_ps(acc[i * RW + r], wv, xv[i]);                 \
        }                                                                                       \
    } while (0)

SMALL_TILE(tile_f32, T512, float, float, 16, __mmask16, (__mmask16)0xffff,
           (__mmask16)((1u << (k - kk)) - 1), MAC_F32)
SMALL_TILE(tile_bf16, TBF16, uint16_t, uint16_t, 32, __mmask32, (__mmask32)0xffffffffu,
           (__mmask32)((1u << (k - kk)) - 1), MAC_BF16)

/* Rows [r0, r1) of W (r0 a multiple of 16 or r1 = n) against all m rows of x: blocks of
 * 16 rows of W; 4x4 tiles over the x rows in fours, then 8x2 and 16x1 for the rest. */
#define SMALL_DRIVER(NAME, ATTR, TW, TX, TILE)                                                  \
    ATTR void NAME(const TW *w, int k, const TX *x, int m, float *y, size_t ldy, float beta, int r0, int r1) { \
        const size_t K = (size_t)k;                                                             \
        for (int rb = r0; rb < r1; rb += 16) {                                                  \
            const int nb = r1 - rb < 16 ? r1 - rb : 16;                                         \
            int i = 0;                                                                          \
            for (int s = 0; s < nb; s += 4) {                                                   \
                const int ns = nb - s < 4 ? nb - s : 4;                                         \
                for (i = 0; i + 4 <= m; i += 4)                                                 \
                    TILE(w + (size_t)(rb + s) * K, K, ns, x + (size_t)i * K, 4, y + (size_t)i * ldy + rb + s, ldy, beta, 4, 4, i == 0); \
            }                                                                                   \
            i = m & ~3;                                                                         \
            if (m - i >= 2) {                                                                   \
                for (int s = 0; s < nb; s += 8)                                                 \
                    TILE(w + (size_t)(rb + s) * K, K, nb - s < 8 ? nb - s : 8, x + (size_t)i * K, 2, \
                         y + (size_t)i * ldy + rb + s, ldy, beta, 8, 2, 0);                     \
                i += 2;                                                                         \
            }                                                                                   \
            if (i < m)                                                                          \
                TILE(w + (size_t)rb * K, K, nb, x + (size_t)i * K, 1, y + (size_t)i * ldy + rb, ldy, beta, 16, 1, 0); \
        }                                                                                       \
    }

SMALL_DRIVER(kmm_small_f32_avx512, T512, float, float, tile_f32)
SMALL_DRIVER(small_bf16_tiles, TBF16 static, uint16_t, uint16_t, tile_bf16)

/* m = 1 (single-stream decoding with bf16 weights): the 16 accumulators of tile_bf16's
 * 16 x 1 tile, filled one W row at a time over the whole of k. Every accumulator sums the
 * same chunks in the same order and goes through the same hsum16, so the bits are the
 * tile's (and a batched step's); what changes is the order of the reads: one stream
 * through the block instead of 16 pieces a row apart. Measured on a 110M-sized bf16 gemv
 * from memory, one thread (AMD EPYC Zen 5): 28-29 GB/s one row at a time against 11-12
 * GB/s with 16 rows (or even 2) interleaved; the chains of consecutive rows overlap. */
TBF16 static void small_bf16_m1(const uint16_t *w, size_t k, int nrow, const uint16_t *x, float *y, float beta) {
    __m512 acc[16];
    const size_t kf = k & ~(size_t)31;
    const __mmask32 tail = (__mmask32)((1u << (k - kf)) - 1);
    for (int r = 0; r < 16; r++) {
        __m512 a = _mm512_setzero_ps();
        if (r < nrow) {
            const uint16_t *wr = w + (size_t)r * k;
            for (size_t kk = 0; kk < kf; kk += 32)
                a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_loadu_si512(wr + kk), (__m512bh)_mm512_loadu_si512(x + kk));
            if (kf < k)
                a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_maskz_loadu_epi16(tail, wr + kf),
                                     (__m512bh)_mm512_maskz_loadu_epi16(tail, x + kf));
        }
        acc[r] = a;
    }
    small_store(hsum16(acc), 16, nrow, 1, y, 0, beta);
}

TBF16 void kmm_small_bf16_avx512bf16(const uint16_t *w, int k, const uint16_t *x, int m, float *y, size_t ldy,
                                     float beta, int r0, int r1) {
    if (m != 1) {
        small_bf16_tiles(w, k, x, m, y, ldy, beta, r0, r1);
        return;
    }
    for (int rb = r0; rb < r1; rb += 16)
        small_bf16_m1(w + (size_t)rb * (size_t)k, (size_t)k, r1 - rb < 16 ? r1 - rb : 16, x, y + rb, beta);
}

/* ------------------------------------------------------------------ one-row products */

/* The rows b_j are fp32 or bf16 (a bf16 KV cache read in place): LOAD(msk, p) gives the
 * 16 elements at p (masked lanes 0) as fp32. bf16 widens exactly (the 16 bits moved up),
 * so both element types run the same fma sequence and a bf16 row gives the bits of its
 * fp32 widening. */
#define ROW_LOAD_F32(msk, p) _mm512_maskz_loadu_ps((msk), (p))
#define ROW_LOAD_BF16(msk, p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((msk), (p))), 16))

/* Both prefetch the rows they read next (a cache's rows of one head are short pieces a
 * whole cache row apart, which the hardware prefetchers do not follow; measured on the 110M
 * width-16 step at 400 positions: attention and the rest 26.3 -> 12.2 ms with bf16 caches,
 * 17.2 -> 15.5 ms with fp32). */

/* c[j] = alpha * a . b_j for j < n (decoding attention's scores: a query against its
 * cached keys): 16 rows of b at a time, one accumulator each summing its 16-element
 * chunks along k (the tail masked), then hsum16 - the order depends on k alone. */
#define ROW_NT(NAME, TB, LOAD)                                                                  \
    T512 void NAME(int n, int k, const float *a, const TB *b, size_t ldb, float *c, float alpha) { \
        const __m512 va = _mm512_set1_ps(alpha);                                                \
        for (int j0 = 0; j0 < n; j0 += 16) {                                                    \
            const int nj = n - j0 < 16 ? n - j0 : 16;                                           \
            for (int e = j0 + 16; e < n && e < j0 + 32; e++) /* the next block's rows */        \
                for (size_t o = 0; o < (size_t)k * sizeof(TB); o += 64)                         \
                    __builtin_prefetch((const char *)(b + (size_t)e * ldb) + o, 0, 3);          \
            const TB *bp[16];                                                                   \
            __m512 acc[16];                                                                     \
            _Pragma("GCC unroll 16") for (int e = 0; e < 16; e++) {                             \
                bp[e] = b + (size_t)(j0 + (e < nj ? e : nj - 1)) * ldb;                         \
                acc[e] = _mm512_setzero_ps();                                                   \
            }                                                                                   \
            for (int p = 0; p < k; p += 16) {                                                   \
                const __mmask16 msk = k - p >= 16 ? 0xffff : (__mmask16)((1u << (k - p)) - 1);  \
                const __m512 av = _mm512_maskz_loadu_ps(msk, a + p);                            \
                _Pragma("GCC unroll 16") for (int e = 0; e < 16; e++)                           \
                    acc[e] = _mm512_fmadd_ps(LOAD(msk, bp[e] + p), av, acc[e]);                 \
            }                                                                                   \
            const __mmask16 mo = nj == 16 ? 0xffff : (__mmask16)((1u << nj) - 1);               \
            _mm512_mask_storeu_ps(c + j0, mo, _mm512_mul_ps(hsum16(acc), va));                  \
        }                                                                                       \
    }

/* c[p] = sum_j a[j] b_j[p] for p < n, j < k (decoding attention's output: the
 * probabilities against the cached values): columns in blocks of 64, two accumulator
 * sets (even and odd j, each summed in j order, then added) to hide the FMA latency. */
#define ROW_NN(NAME, TB, LOAD)                                                                  \
    T512 void NAME(int n, int k, const float *a, const TB *b, size_t ldb, float *c) {           \
        for (int p0 = 0; p0 < n; p0 += 64) {                                                    \
            __mmask16 msk[4];                                                                   \
            __m512 s0[4], s1[4];                                                                \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {                               \
                int left = n - p0 - 16 * q;                                                     \
                msk[q] = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);   \
                s0[q] = s1[q] = _mm512_setzero_ps();                                            \
            }                                                                                   \
            const TB *bc = b + p0;                                                              \
            int j = 0;                                                                          \
            for (; j + 2 <= k; j += 2) {                                                        \
                const __m512 a0 = _mm512_set1_ps(a[j]), a1 = _mm512_set1_ps(a[j + 1]);          \
                const TB *b0 = bc + (size_t)j * ldb, *b1 = b0 + ldb;                            \
                for (int r = j + 8; r < j + 10 && r < k; r++) /* 4 pairs ahead */               \
                    for (size_t o = 0; o < (size_t)(n - p0 < 64 ? n - p0 : 64) * sizeof(TB); o += 64) \
                        __builtin_prefetch((const char *)(bc + (size_t)r * ldb) + o, 0, 3);     \
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {                           \
                    s0[q] = _mm512_fmadd_ps(a0, LOAD(msk[q], b0 + 16 * q), s0[q]);              \
                    s1[q] = _mm512_fmadd_ps(a1, LOAD(msk[q], b1 + 16 * q), s1[q]);              \
                }                                                                               \
            }                                                                                   \
            if (j < k) {                                                                        \
                const __m512 a0 = _mm512_set1_ps(a[j]);                                         \
                const TB *b0 = bc + (size_t)j * ldb;                                            \
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)                             \
                    s0[q] = _mm512_fmadd_ps(a0, LOAD(msk[q], b0 + 16 * q), s0[q]);              \
            }                                                                                   \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)                                 \
                _mm512_mask_storeu_ps(c + p0 + 16 * q, msk[q], _mm512_add_ps(s0[q], s1[q]));    \
        }                                                                                       \
    }

ROW_NT(kmm_row_nt_avx512, float, ROW_LOAD_F32)
ROW_NT(kmm_row_nt_bf16_avx512, uint16_t, ROW_LOAD_BF16)
ROW_NN(kmm_row_nn_avx512, float, ROW_LOAD_F32)
ROW_NN(kmm_row_nn_bf16_avx512, uint16_t, ROW_LOAD_BF16)

/* ------------------------------------------------------------------ packing */

/* dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols, by 16x16 blocks
 * transposed in registers (unpack 32, unpack 64, then two 128-bit lane shuffles). */
T512 void kmm_transpose_avx512(const float *src, size_t lds, int rows, int cols, float *dst, size_t ldd) {
    for (int i0 = 0; i0 < rows; i0 += 16) {
        const int ni = rows - i0 < 16 ? rows - i0 : 16;
        const __mmask16 mi = ni == 16 ? 0xffff : (__mmask16)((1u << ni) - 1);
        for (int j0 = 0; j0 < cols; j0 += 16) {
            const int nj = cols - j0 < 16 ? cols - j0 : 16;
            const __mmask16 mj = nj == 16 ? 0xffff : (__mmask16)((1u << nj) - 1);
            __m512 r[16], a[16], b[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < ni ? _mm512_maskz_loadu_ps(mj, src + (size_t)(i0 + i) * lds + j0) : _mm512_setzero_ps();
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
                __m512 o[4] = {_mm512_shuffle_f32x4(p, p2, 0x88), _mm512_shuffle_f32x4(p, p2, 0xdd),
                               _mm512_shuffle_f32x4(q, q2, 0x88), _mm512_shuffle_f32x4(q, q2, 0xdd)};
#pragma GCC unroll 4
                for (int l = 0; l < 4; l++)
                    if (4 * l + j < nj) _mm512_mask_storeu_ps(dst + (size_t)(j0 + 4 * l + j) * ldd + i0, mi, o[l]);
            }
        }
    }
}

/* dst[c] = lo[c] | hi[c] << 16 for c < nc (hi == NULL: 0), zero up to 32. */
T512 void kmm_pack_pairs_avx512(const uint16_t *lo, const uint16_t *hi, int nc, uint32_t *dst) {
    for (int c = 0; c < 32; c += 16) {
        int n = nc - c < 0 ? 0 : nc - c > 16 ? 16 : nc - c;
        __mmask16 msk = n == 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(msk, lo + c));
        if (hi) v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(msk, hi + c)), 16));
        _mm512_storeu_si512(dst + c, v);
    }
}
