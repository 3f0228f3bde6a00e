/* kernel/matmul.c - weight handles, dispatch, portable paths, sgemm wrappers,
 * and the blocked GEMM driver for bf16 weights (micro-kernels in
 * matmul_avx512.c, small-m gemv in matmul_avx512.c / matmul_avx2.c). */
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include "core/dtype.h"
#include "core/error.h"

#include <cblas.h>
#include <cpuid.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest m served by the gemv kernels instead of a GEMM (see docs/kernels.md). */
#define F32_GEMV_MAX_M 1
#define BF16_GEMV_MAX_M 4
/* Portable bf16 path: rows of W converted to f32 per sgemm call. */
#define PORT_NB 256

/* ---------------------------------------------------------------- levels */

static int g_level = -1; /* KmmLevel once decided */

static int cpu_has_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;
}

KmmLevel kmm_level_cpu(void) {
    static int cached = -1;
    int l = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (l >= 0) return (KmmLevel)l;
    __builtin_cpu_init();
    l = KMM_PORTABLE;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        l = KMM_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
            l = KMM_AVX512;
            if (cpu_has_bf16()) l = KMM_AVX512BF16;
        }
    }
    __atomic_store_n(&cached, l, __ATOMIC_RELAXED);
    return (KmmLevel)l;
}

/* The automatic choice: vdpbf16ps only where it outruns fp32 FMA (AMD). */
static KmmLevel level_auto(void) {
    KmmLevel c = kmm_level_cpu();
    if (c == KMM_AVX512BF16 && !__builtin_cpu_is("amd")) return KMM_AVX512;
    return c;
}

const char *kmm_level_name(KmmLevel l) {
    switch (l) {
    case KMM_PORTABLE: return "portable";
    case KMM_AVX2: return "avx2";
    case KMM_AVX512: return "avx512";
    case KMM_AVX512BF16: return "avx512bf16";
    }
    return "?";
}

int kmm_level_parse(const char *s, KmmLevel *out) {
    static const char *names[] = {"portable", "avx2", "avx512", "avx512bf16"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (KmmLevel)i;
            return 0;
        }
    if (strcmp(s, "auto") == 0) {
        *out = level_auto();
        return 0;
    }
    return err_set("kernel level '%s': expected portable, avx2, avx512, avx512bf16 or auto", s);
}

KmmLevel kmm_level(void) {
    int l = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
    if (l >= 0) return (KmmLevel)l;
    KmmLevel want = level_auto();
    const char *env = getenv("MUSCLE_KERNEL");
    if (env && *env) {
        KmmLevel e;
        if (kmm_level_parse(env, &e) == 0) {
            want = e > kmm_level_cpu() ? kmm_level_cpu() : e;
        } else {
            fprintf(stderr, "muscle: warning: MUSCLE_KERNEL=%s ignored (portable, avx2, avx512, "
                            "avx512bf16, auto)\n", env);
        }
    }
    __atomic_store_n(&g_level, (int)want, __ATOMIC_RELAXED);
    return want;
}

int kmm_level_set(KmmLevel l) {
    if ((int)l < KMM_PORTABLE || l > KMM_AVX512BF16) return err_set("kernel level %d: out of range", (int)l);
    if (l > kmm_level_cpu())
        return err_set("kernel level %s: this CPU supports at most %s", kmm_level_name(l),
                       kmm_level_name(kmm_level_cpu()));
    __atomic_store_n(&g_level, (int)l, __ATOMIC_RELAXED);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static void *xalloc(size_t bytes) {
    size_t sz = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, sz ? sz : 64);
    if (!p) {
        fprintf(stderr, "muscle: fatal: out of memory (%zu bytes) in a matrix product\n", bytes);
        abort();
    }
    return p;
}

static inline float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(f)); }

/* Static split of [0, total) among nt parts; part t gets [*lo, *hi). */
static inline void split(int total, int nt, int t, int *lo, int *hi) {
    *lo = (int)((long long)total * t / nt);
    *hi = (int)((long long)total * (t + 1) / nt);
}

/* ---------------------------------------------------------------- weights */

static int check_dims(const char *what, const void *data, int n, int k) {
    if (!data) return err_set("%s: NULL data", what);
    if (n < 1 || k < 1) return err_set("%s: shape [%d, %d]: both sides must be >= 1", what, n, k);
    return 0;
}

int kweight_init_f32(KWeight *w, const float *data, int n, int k) {
    memset(w, 0, sizeof *w);
    if (check_dims("kweight_init_f32", data, n, k)) return -1;
    w->type = KW_F32;
    w->n = n;
    w->k = k;
    w->f32 = data;
    return 0;
}

int kweight_init_bf16(KWeight *w, const uint16_t *data, int n, int k) {
    memset(w, 0, sizeof *w);
    if (check_dims("kweight_init_bf16", data, n, k)) return -1;
    w->type = KW_BF16;
    w->n = n;
    w->k = k;
    w->bf16 = data;
    if (kmm_level_cpu() < KMM_AVX512) return 0;
    size_t kq = (size_t)(k + 1) / 2, npan = (size_t)(n + KMM_NR - 1) / KMM_NR;
    size_t bytes = npan * kq * KMM_NR * sizeof(uint32_t);
    uint32_t *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) return err_set("kweight_init_bf16: [%d, %d]: out of memory for the packed copy (%zu bytes)", n, k, bytes);
#pragma omp parallel for schedule(static)
    for (long long pan = 0; pan < (long long)npan; pan++) {
        uint32_t *dst = p + (size_t)pan * kq * KMM_NR;
        for (int c = 0; c < KMM_NR; c++) {
            size_t row = (size_t)pan * KMM_NR + c;
            const uint16_t *src = row < (size_t)n ? data + row * k : NULL;
            for (size_t q = 0; q < kq; q++) {
                uint32_t lo = 0, hi = 0;
                if (src) {
                    lo = src[2 * q];
                    if (2 * q + 1 < (size_t)k) hi = src[2 * q + 1];
                }
                dst[q * KMM_NR + c] = lo | hi << 16;
            }
        }
    }
    w->packed = p;
    w->packed_bytes = bytes;
    return 0;
}

void kweight_free(KWeight *w) {
    if (!w) return;
    free(w->packed);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- sgemm wrappers */

void kmm_f32_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void kmm_f32_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void kmm_f32_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---------------------------------------------------------------- portable bf16 */

/* Rows [r0, r1) of y for small m; x already rounded to bf16. */
static void gemv_bf16_portable(const uint16_t *w, int k, const float *x, int m, float *y,
                               size_t ldy, float beta, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint16_t *wr = w + (size_t)r * k;
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * k;
            float s[8] = {0};
            int kk = 0;
            for (; kk + 8 <= k; kk += 8)
                for (int j = 0; j < 8; j++) s[j] += xi[kk + j] * bf16_to_f32(wr[kk + j]);
            for (int j = 0; kk < k; kk++, j++) s[j] += xi[kk] * bf16_to_f32(wr[kk]);
            float v = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            float *yo = y + (size_t)i * ldy + r;
            *yo = beta == 0.0f ? v : v + beta * *yo;
        }
    }
}

static void convert_rows(const uint16_t *w, int k, int r0, int r1, float *dst) {
    size_t cnt = (size_t)(r1 - r0) * k;
    const uint16_t *src = w + (size_t)r0 * k;
    for (size_t i = 0; i < cnt; i++) dst[i] = bf16_to_f32(src[i]);
}

/* y = round(x) . W^T + beta y by blocks of PORT_NB rows of W converted to f32. */
static void xwt_bf16_portable(const KWeight *w, const float *xr, int m, float *y, float beta) {
    int n = w->n, k = w->k;
    int nb = n < PORT_NB ? n : PORT_NB;
    float *wf = xalloc((size_t)nb * k * sizeof(float));
    for (int r0 = 0; r0 < n; r0 += PORT_NB) {
        int r1 = r0 + PORT_NB < n ? r0 + PORT_NB : n;
        convert_rows(w->bf16, k, r0, r1, wf);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, r1 - r0, k, 1.0f, xr, k, wf, k,
                    beta, y + r0, n);
    }
    free(wf);
}

/* dx = dy . W + beta dx, reducing over blocks of PORT_NB rows of W. */
static void xw_bf16_portable(const KWeight *w, const float *dy, int m, float *dx, float beta) {
    int n = w->n, k = w->k;
    int nb = n < PORT_NB ? n : PORT_NB;
    float *wf = xalloc((size_t)nb * k * sizeof(float));
    for (int r0 = 0; r0 < n; r0 += PORT_NB) {
        int r1 = r0 + PORT_NB < n ? r0 + PORT_NB : n;
        convert_rows(w->bf16, k, r0, r1, wf);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, r1 - r0, 1.0f, dy + r0, n, wf,
                    k, r0 == 0 ? beta : 1.0f, dx, k);
    }
    free(wf);
}

/* ---------------------------------------------------------------- bf16 GEMM driver */

/* Packs rows [r0, r0+mr) x cols [pc, pc+kc) of a (row stride lda) into one
 * micro-tile: f32 [2kq][MR] (dp == 0; rounded to bf16 when rnd) or bf16
 * pairs [kq][MR] (dp == 1). Missing rows / the odd last column are zero. */
static void pack_a_tile(const float *a, size_t lda, int mr, int pc, int kc, int dp, int rnd, void *dst) {
    int kq = (kc + 1) / 2;
    if (dp) {
        uint32_t *d = dst;
        for (int r = 0; r < KMM_MR; r++) {
            const float *src = r < mr ? a + (size_t)r * lda + pc : NULL;
            for (int q = 0; q < kq; q++) {
                uint32_t v = 0;
                if (src) {
                    v = f32_to_bf16(src[2 * q]);
                    if (2 * q + 1 < kc) v |= (uint32_t)f32_to_bf16(src[2 * q + 1]) << 16;
                }
                d[(size_t)q * KMM_MR + r] = v;
            }
        }
    } else {
        float *d = dst;
        for (int r = 0; r < KMM_MR; r++) {
            const float *src = r < mr ? a + (size_t)r * lda + pc : NULL;
            for (int kk = 0; kk < 2 * kq; kk++) {
                float v = 0.0f;
                if (src && kk < kc) v = rnd ? bf16_round(src[kk]) : src[kk];
                d[(size_t)kk * KMM_MR + r] = v;
            }
        }
    }
}

/* Packs, for the backward product, reduction rows [pc, pc+kc) of W (its n
 * axis) into panels over its k axis: panel p, pair q, column c holds
 * W[pc+2q][32p+c] | W[pc+2q+1][32p+c] << 16. Panel stride KC/2 * NR. */
static void pack_b_xw_panel(const KWeight *w, int pc, int kc, int p, uint32_t *dst) {
    int kq = (kc + 1) / 2, c0 = p * KMM_NR;
    int nc = w->k - c0 < KMM_NR ? w->k - c0 : KMM_NR;
    for (int q = 0; q < kq; q++) {
        const uint16_t *lo = w->bf16 + (size_t)(pc + 2 * q) * w->k + c0;
        const uint16_t *hi = 2 * q + 1 < kc ? lo + w->k : NULL;
        uint32_t *d = dst + (size_t)q * KMM_NR;
        int c = 0;
        if (hi)
            for (; c < nc; c++) d[c] = lo[c] | (uint32_t)hi[c] << 16;
        else
            for (; c < nc; c++) d[c] = lo[c];
        for (; c < KMM_NR; c++) d[c] = 0;
    }
}

/* C[m, nout] = A[m, kred] . B + beta C with B the bf16 weight: xw == 0 is the
 * forward product (B = W^T, from the packed copy, A rounded to bf16),
 * xw == 1 the backward one (B = W, packed per call, A kept in f32, fma kernel). */
static void gemm_bf16(const KWeight *w, int xw, int dp, const float *a, int m, float *c, float beta) {
    const int nout = xw ? w->k : w->n, kred = xw ? w->n : w->k;
    const int npan = (nout + KMM_NR - 1) / KMM_NR, mt = (m + KMM_MR - 1) / KMM_MR;
    const size_t lda = (size_t)kred, ldc = (size_t)nout;
    const size_t kq_all = (size_t)(kred + 1) / 2;
    const uint32_t *pre = w->packed;
    if (xw) dp = 0;
    uint32_t *bbuf = xw ? xalloc((size_t)npan * (KMM_KC / 2) * KMM_NR * sizeof(uint32_t)) : NULL;
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int t0, t1, p0, p1;
        if (mt >= 4 * nt || npan < nt) { /* split rows of x */
            split(mt, nt, t, &t0, &t1);
            p0 = 0;
            p1 = npan;
        } else { /* split panels of outputs */
            t0 = 0;
            t1 = mt;
            split(npan, nt, t, &p0, &p1);
        }
        const int m0 = t0 * KMM_MR, m1 = t1 * KMM_MR < m ? t1 * KMM_MR : m;
        /* f32 A tiles hold 2kq floats per row, dp tiles kq pairs: KC floats a row covers both. */
        void *abuf = xalloc((size_t)KMM_MC * KMM_KC * sizeof(float));
        for (int pc = 0; pc < kred; pc += KMM_KC) {
            const int kc = kred - pc < KMM_KC ? kred - pc : KMM_KC, kq = (kc + 1) / 2;
            const int mode = pc ? KMM_ACC : beta == 0.0f ? KMM_STORE : KMM_BETA;
            const uint32_t *bbase;
            size_t pstride;
            if (xw) {
#pragma omp for schedule(static)
                for (int p = 0; p < npan; p++)
                    pack_b_xw_panel(w, pc, kc, p, bbuf + (size_t)p * (KMM_KC / 2) * KMM_NR);
                bbase = bbuf;
                pstride = (size_t)(KMM_KC / 2) * KMM_NR;
            } else {
                bbase = pre + (size_t)(pc / 2) * KMM_NR;
                pstride = kq_all * KMM_NR;
            }
            const size_t tile_elems = (size_t)KMM_MR * (dp ? kq : 2 * kq); /* 4-byte elements */
            for (int ic = m0; ic < m1; ic += KMM_MC) {
                const int mc = m1 - ic < KMM_MC ? m1 - ic : KMM_MC;
                const int ntile = (mc + KMM_MR - 1) / KMM_MR;
                for (int ti = 0; ti < ntile; ti++) {
                    int r = ic + ti * KMM_MR, mr = m1 - r < KMM_MR ? m1 - r : KMM_MR;
                    pack_a_tile(a + (size_t)r * lda, lda, mr, pc, kc, dp, !xw,
                                (uint32_t *)abuf + ti * tile_elems);
                }
                for (int p = p0; p < p1; p++) {
                    const uint32_t *bp = bbase + (size_t)p * pstride;
                    const int nr = nout - p * KMM_NR < KMM_NR ? nout - p * KMM_NR : KMM_NR;
                    for (int ti = 0; ti < ntile; ti++) {
                        int r = ic + ti * KMM_MR, mr = m1 - r < KMM_MR ? m1 - r : KMM_MR;
                        float *cp = c + (size_t)r * ldc + (size_t)p * KMM_NR;
                        const uint32_t *ap = (const uint32_t *)abuf + ti * tile_elems;
                        if (dp)
                            kmm_ukr_dp_avx512bf16(kq, ap, bp, cp, ldc, mr, nr, mode, beta);
                        else
                            kmm_ukr_fma_avx512(kq, (const float *)ap, bp, cp, ldc, mr, nr, mode, beta);
                    }
                }
            }
            if (xw) {
#pragma omp barrier
            }
        }
        free(abuf);
    }
    free(bbuf);
}

/* ---------------------------------------------------------------- small-m gemv */

enum { GV_F32_512, GV_F32_AVX2, GV_BF16_PORT, GV_BF16_AVX2, GV_BF16_512, GV_BF16_DP };

static void gemv_run(int kind, const void *w, int n, int k, const void *x, int m, float *y, float beta) {
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), r0, r1;
        /* split in groups of 4 rows so every thread gets whole row blocks */
        int g0, g1;
        split((n + 3) / 4, nt, t, &g0, &g1);
        r0 = g0 * 4;
        r1 = g1 * 4 < n ? g1 * 4 : n;
        if (r0 < r1) switch (kind) {
            case GV_F32_512: kmm_gemv_f32_avx512(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_F32_AVX2: kmm_gemv_f32_avx2(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_PORT: gemv_bf16_portable(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_AVX2: kmm_gemv_bf16_avx2(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_512: kmm_gemv_bf16_avx512(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_DP: kmm_gemv_bf16_avx512bf16(w, k, x, m, y, n, beta, r0, r1); break;
            }
    }
}

/* ---------------------------------------------------------------- operations */

void kmm_xwt(const KWeight *w, const float *x, int m, float *y, float beta) {
    if (m <= 0) return;
    const int n = w->n, k = w->k;
    const KmmLevel lvl = kmm_level();
    if (w->type == KW_F32) {
        if (m <= F32_GEMV_MAX_M && lvl >= KMM_AVX2) {
            gemv_run(lvl >= KMM_AVX512 ? GV_F32_512 : GV_F32_AVX2, w->f32, n, k, x, m, y, beta);
        } else if (m == 1) {
            if (beta == 0.0f) memset(y, 0, (size_t)n * sizeof(float));
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w->f32, k, x, 1, beta, y, 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w->f32, k, beta, y, n);
        }
        return;
    }
    if (m > BF16_GEMV_MAX_M && lvl >= KMM_AVX512 && w->packed) {
        gemm_bf16(w, 0, lvl >= KMM_AVX512BF16, x, m, y, beta);
        return;
    }
    size_t cnt = (size_t)m * k;
    if (m <= BF16_GEMV_MAX_M && lvl >= KMM_AVX512BF16) {
        uint16_t *xb = xalloc(cnt * sizeof(uint16_t));
        for (size_t i = 0; i < cnt; i++) xb[i] = f32_to_bf16(x[i]);
        gemv_run(GV_BF16_DP, w->bf16, n, k, xb, m, y, beta);
        free(xb);
        return;
    }
    float *xr = xalloc(cnt * sizeof(float));
    for (size_t i = 0; i < cnt; i++) xr[i] = bf16_round(x[i]);
    if (m <= BF16_GEMV_MAX_M)
        gemv_run(lvl >= KMM_AVX512 ? GV_BF16_512 : lvl >= KMM_AVX2 ? GV_BF16_AVX2 : GV_BF16_PORT,
                 w->bf16, n, k, xr, m, y, beta);
    else
        xwt_bf16_portable(w, xr, m, y, beta);
    free(xr);
}

void kmm_xw(const KWeight *w, const float *dy, int m, float *dx, float beta) {
    if (m <= 0) return;
    const int n = w->n, k = w->k;
    if (w->type == KW_F32) {
        if (m == 1) {
            if (beta == 0.0f) memset(dx, 0, (size_t)k * sizeof(float));
            cblas_sgemv(CblasRowMajor, CblasTrans, n, k, 1.0f, w->f32, k, dy, 1, beta, dx, 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, dy, n, w->f32, k, beta, dx, k);
        }
        return;
    }
    if (kmm_level() >= KMM_AVX512)
        gemm_bf16(w, 1, 0, dy, m, dx, beta);
    else
        xw_bf16_portable(w, dy, m, dx, beta);
}

void kmm_dw(const float *dy, const float *x, int m, int n, int k, float *dw, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, dy, n, x, k, beta, dw, k);
}
