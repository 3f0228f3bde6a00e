/* kernel/matmul_avx512.c - AVX-512 micro-kernels and gemv (chosen at run time;
 * the rest of the library is built for plain x86-64). */
#include "kernel/matmul_impl.h"

#include <immintrin.h>

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

/* fp32 gemv: 4 rows of W at a time, two 16-wide accumulators a row. */
#define GEMV_BODY(LOADW)                                                                    \
    for (int r = r0; r < r1; r += 4) {                                                      \
        int nrow = r1 - r < 4 ? r1 - r : 4;                                                 \
        const size_t o0 = (size_t)r * k, o1 = (size_t)(r + (nrow > 1)) * k,                 \
                     o2 = (size_t)(r + (nrow > 2) * 2) * k, o3 = (size_t)(r + (nrow > 3) * 3) * k; \
        for (int i = 0; i < m; i++) {                                                       \
            const float *xi = x + (size_t)i * k;                                            \
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                     \
            __m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;                                      \
            int kk = 0;                                                                     \
            for (; kk + 32 <= k; kk += 32) {                                                \
                __m512 xa = _mm512_loadu_ps(xi + kk), xb = _mm512_loadu_ps(xi + kk + 16);   \
                s0 = _mm512_fmadd_ps(LOADW(o0 + kk, 0xffff), xa, s0);                       \
                t0 = _mm512_fmadd_ps(LOADW(o0 + kk + 16, 0xffff), xb, t0);                  \
                s1 = _mm512_fmadd_ps(LOADW(o1 + kk, 0xffff), xa, s1);                       \
                t1 = _mm512_fmadd_ps(LOADW(o1 + kk + 16, 0xffff), xb, t1);                  \
                s2 = _mm512_fmadd_ps(LOADW(o2 + kk, 0xffff), xa, s2);                       \
                t2 = _mm512_fmadd_ps(LOADW(o2 + kk + 16, 0xffff), xb, t2);                  \
                s3 = _mm512_fmadd_ps(LOADW(o3 + kk, 0xffff), xa, s3);                       \
                t3 = _mm512_fmadd_ps(LOADW(o3 + kk + 16, 0xffff), xb, t3);                  \
            }                                                                               \
            for (; kk < k; kk += 16) {                                                      \
                __mmask16 msk = k - kk >= 16 ? 0xffff : (__mmask16)((1u << (k - kk)) - 1);  \
                __m512 xa = _mm512_maskz_loadu_ps(msk, xi + kk);                            \
                s0 = _mm512_fmadd_ps(LOADW(o0 + kk, msk), xa, s0);                          \
                s1 = _mm512_fmadd_ps(LOADW(o1 + kk, msk), xa, s1);                          \
                s2 = _mm512_fmadd_ps(LOADW(o2 + kk, msk), xa, s2);                          \
                s3 = _mm512_fmadd_ps(LOADW(o3 + kk, msk), xa, s3);                          \
            }                                                                               \
            float *yo = y + (size_t)i * ldy + r;                                            \
            put(yo, _mm512_reduce_add_ps(_mm512_add_ps(s0, t0)), beta);                     \
            if (nrow > 1) put(yo + 1, _mm512_reduce_add_ps(_mm512_add_ps(s1, t1)), beta);   \
            if (nrow > 2) put(yo + 2, _mm512_reduce_add_ps(_mm512_add_ps(s2, t2)), beta);   \
            if (nrow > 3) put(yo + 3, _mm512_reduce_add_ps(_mm512_add_ps(s3, t3)), beta);   \
        }                                                                                   \
    }

#define LOAD_F32(off, msk) _mm512_maskz_loadu_ps((msk), w + (off))

T512 void kmm_gemv_f32_avx512(const float *w, int k, const float *x, int m, float *y, size_t ldy,
                              float beta, int r0, int r1) {
    GEMV_BODY(LOAD_F32)
}

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

/* vdpbf16ps gemv: x given in bf16; 32 elements (16 pairs) per instruction. */
TBF16 void kmm_gemv_bf16_avx512bf16(const uint16_t *w, int k, const uint16_t *xb, int m, float *y,
                                    size_t ldy, float beta, int r0, int r1) {
    for (int r = r0; r < r1; r += 4) {
        int nrow = r1 - r < 4 ? r1 - r : 4;
        const uint16_t *w0 = w + (size_t)r * k, *w1 = w + (size_t)(r + (nrow > 1)) * k,
                       *w2 = w + (size_t)(r + (nrow > 2) * 2) * k, *w3 = w + (size_t)(r + (nrow > 3) * 3) * k;
        for (int i = 0; i < m; i++) {
            const uint16_t *xi = xb + (size_t)i * k;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            __m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
            int kk = 0;
#define DP(acc, p, msk) acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_maskz_loadu_epi16(msk, p), xv)
            for (; kk + 64 <= k; kk += 64) {
                __m512bh xv = (__m512bh)_mm512_loadu_si512(xi + kk);
                DP(s0, w0 + kk, 0xffffffffu); DP(s1, w1 + kk, 0xffffffffu);
                DP(s2, w2 + kk, 0xffffffffu); DP(s3, w3 + kk, 0xffffffffu);
                xv = (__m512bh)_mm512_loadu_si512(xi + kk + 32);
                DP(t0, w0 + kk + 32, 0xffffffffu); DP(t1, w1 + kk + 32, 0xffffffffu);
                DP(t2, w2 + kk + 32, 0xffffffffu); DP(t3, w3 + kk + 32, 0xffffffffu);
            }
            for (; kk < k; kk += 32) {
                __mmask32 msk = k - kk >= 32 ? 0xffffffffu : (__mmask32)((1u << (k - kk)) - 1);
                __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(msk, xi + kk);
                DP(s0, w0 + kk, msk); DP(s1, w1 + kk, msk);
                DP(s2, w2 + kk, msk); DP(s3, w3 + kk, msk);
            }
#undef DP
            float *yo = y + (size_t)i * ldy + r;
            put(yo, _mm512_reduce_add_ps(_mm512_add_ps(s0, t0)), beta);
            if (nrow > 1) put(yo + 1, _mm512_reduce_add_ps(_mm512_add_ps(s1, t1)), beta);
            if (nrow > 2) put(yo + 2, _mm512_reduce_add_ps(_mm512_add_ps(s2, t2)), beta);
            if (nrow > 3) put(yo + 3, _mm512_reduce_add_ps(_mm512_add_ps(s3, t3)), beta);
        }
    }
}

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
