/* kernel/matmul.c - code-path selection and dispatch, the
 * portable paths (sgemm), the fp32 wrappers, and the blocked GEMM driver for
 * bf16 and fp32 operands (micro-kernels, gemv and packing helpers in
 * matmul_avx512.c / matmul_avx2.c). Design and measurements: docs/kernels.md. */
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include "core/dtype.h"
#include "core/cpu.h"
#include "core/error.h"

#include <cblas.h>
#include <cpuid.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest m served by the gemv kernels instead of a GEMM (see docs/kernels.md). */
#define F32_GEMV_MAX_M 4
/* fp32 weights, m up to 64 (batched decoding steps): still the gemv when the m rows of x
 * stay in L2 (m k 4 bytes <= 512 KiB) - it reads each 4-row block of W once for all m
 * rows, where the GEMM would first pack (transpose) all of W, per call. */
#define F32_GEMV_BATCH_M 64
#define F32_GEMV_BATCH_X_BYTES (512u << 10)
#define BF16_GEMV_MAX_M 4
/* bf16 weights at level avx512bf16: up to 64 rows (batched decoding steps) on the
 * small-m vdpbf16ps kernel, which reads W once for all rows and gives every row the
 * bits it would get alone (matmul_impl.h); the packed GEMM above that. */
#define BF16_SMALL_M 64
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

static KmmLevel level_auto(void) { return kmm_level_cpu(); }

/* At level avx512bf16, the bf16 GEMM uses vdpbf16ps only where it outruns
 * fp32 FMA: on AMD (Zen 4 issues it at the FMA rate, twice the flops); on
 * Intel it issues at half the FMA rate, so the fp32-FMA kernel on widened
 * bf16 is faster there. MUSCLE_BF16_GEMM=dp|fma overrides; so does
 * kmm_bf16_gemm_dp_force() (tests). The gemv uses vdpbf16ps on both. */
static int g_dp_force = -1;
void kmm_bf16_gemm_dp_force(int v) { __atomic_store_n(&g_dp_force, v < 0 ? -1 : !!v, __ATOMIC_RELAXED); }

static int bf16_gemm_dp(void) {
    static int cached = -1;
    int f = __atomic_load_n(&g_dp_force, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *env = getenv("MUSCLE_BF16_GEMM");
        __builtin_cpu_init();
        v = __builtin_cpu_is("amd");
        if (env && strcmp(env, "dp") == 0) v = 1;
        if (env && strcmp(env, "fma") == 0) v = 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

int kmm_bf16_gemm_uses_dp(void) { return bf16_gemm_dp(); }

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
        KmmLevel e = KMM_PORTABLE;
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

/* Whether fp32 products should use our AVX-512 GEMM rather than sgemm: only
 * when OpenBLAS runs a kernel without AVX-512 on an AVX-512 CPU (OpenBLAS
 * 0.3.21 falls back to "Prescott" on CPUs it does not know, e.g. Xeon model
 * 207, at a quarter of the speed; with its AVX-512 kernels it is ~10% faster
 * than ours). Decided once, from names only, so results stay reproducible. */
static int g_f32_force = -1;
void kmm_f32_own_gemm_force(int v) { __atomic_store_n(&g_f32_force, v < 0 ? -1 : !!v, __ATOMIC_RELAXED); }

static int f32_own_gemm(KmmLevel lvl) {
    static int cached = -1;
    if (lvl < KMM_AVX512) return 0;
    int f = __atomic_load_n(&g_f32_force, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *core = openblas_get_corename();
        v = !(core && (strcasecmp(core, "SkylakeX") == 0 || strcasecmp(core, "Cooperlake") == 0 ||
                       strcasecmp(core, "SapphireRapids") == 0));
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

int kmm_f32_uses_own(void) { return f32_own_gemm(kmm_level()); }

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

/* ---------------------------------------------------------------- GEMM driver */

/* Micro-kernel kinds. */
enum { KT_F32, KT_FMA, KT_DP };
/* Sources of B (the reduction x output operand). */
enum {
    BS_PRE,     /* packed bf16 copy of W[out][red] (kweight_init_bf16) */
    BS_BF16_RO, /* bf16 [red][out], row stride ldb: packed into pairs per call */
    BS_F32_T,   /* f32 [out][red], row stride ldb: transposed into panels per call */
    BS_F32_RO,  /* f32 [red][out], row stride ldb: copied into panels per call */
};
/* Panels packed per barrier-separated group (2 MB of f32 at KC = 256). */
#define KMM_NG 64
/* A tiles per block cycled over the panels (keeps them and C in cache). */
#define KMM_TB 8

typedef struct {
    int kt, bs;
    int m, nout, kred;
    const float *a;
    size_t sa_row, sa_col; /* a(i, p) = a[i*sa_row + p*sa_col] */
    int rnd;               /* round a to bf16 (KT_FMA) */
    const void *b;
    size_t ldb;
    float *c;
    size_t ldc;
    float beta, alpha;
} Gemm;

/* One A micro-tile of rows [r, r+mr), reduction [pc, pc+kc), row-major with
 * row stride KC: f32 (rounded to bf16 for KT_FMA when g->rnd) or, for KT_DP,
 * bf16 pairs with row stride KC/2. Zero-padded to MR rows and an even kc. */
static void pack_a_tile(const Gemm *g, int r, int mr, int pc, int kc, void *dst) {
    const int kq = (kc + 1) / 2, kt = g->kt;
    const float *a = g->a + (size_t)r * g->sa_row + (size_t)pc * g->sa_col;
    const size_t sc = g->sa_col;
    if (kt == KT_DP) {
        uint32_t *d = dst;
        for (int i = 0; i < KMM_MR; i++) {
            uint32_t *di = d + (size_t)i * (KMM_KC / 2);
            if (i >= mr) {
                memset(di, 0, (size_t)kq * sizeof(uint32_t));
                continue;
            }
            const float *s = a + (size_t)i * g->sa_row;
            for (int q = 0; q < kc / 2; q++)
                di[q] = f32_to_bf16(s[2 * q * sc]) | (uint32_t)f32_to_bf16(s[(2 * q + 1) * sc]) << 16;
            if (kc & 1) di[kq - 1] = f32_to_bf16(s[(size_t)(kc - 1) * sc]);
        }
        return;
    }
    float *d = dst;
    const int rnd = kt == KT_FMA && g->rnd, klen = kt == KT_F32 ? kc : 2 * kq;
    for (int i = 0; i < KMM_MR; i++) {
        float *di = d + (size_t)i * KMM_KC;
        if (i >= mr) {
            memset(di, 0, (size_t)klen * sizeof(float));
            continue;
        }
        const float *s = a + (size_t)i * g->sa_row;
        if (sc == 1) {
            if (rnd)
                for (int kk = 0; kk < kc; kk++) di[kk] = bf16_round(s[kk]);
            else
                memcpy(di, s, (size_t)kc * sizeof(float));
        } else if (!rnd) { /* a transposed operand (dw): transpose the whole tile at once */
            kmm_transpose_avx512(a, sc, kc, mr, d, KMM_KC);
            for (int i2 = 0; i2 < mr; i2++)
                if (klen > kc) d[(size_t)i2 * KMM_KC + kc] = 0.0f;
            for (int i2 = mr; i2 < KMM_MR; i2++) memset(d + (size_t)i2 * KMM_KC, 0, (size_t)klen * sizeof(float));
            return;
        } else {
            for (int kk = 0; kk < kc; kk++) di[kk] = bf16_round(s[kk * sc]);
        }
        if (klen > kc) di[kc] = 0.0f;
    }
}

/* Packs panel p (outputs 32p..) for reduction [pc, pc+kc) into dst:
 * f32 [kc][32] or bf16 pairs [kq][32]; zero-padded. */
static void pack_b_panel(const Gemm *g, int p, int pc, int kc, void *dst) {
    const int c0 = p * KMM_NR, nc = g->nout - c0 < KMM_NR ? g->nout - c0 : KMM_NR;
    if (g->bs == BS_BF16_RO) {
        const int kq = (kc + 1) / 2;
        for (int q = 0; q < kq; q++) {
            const uint16_t *lo = (const uint16_t *)g->b + (size_t)(pc + 2 * q) * g->ldb + c0;
            const uint16_t *hi = 2 * q + 1 < kc ? lo + g->ldb : NULL;
            kmm_pack_pairs_avx512(lo, hi, nc, (uint32_t *)dst + (size_t)q * KMM_NR);
        }
    } else if (g->bs == BS_F32_RO) {
        for (int kk = 0; kk < kc; kk++) {
            const float *s = (const float *)g->b + (size_t)(pc + kk) * g->ldb + c0;
            float *d = (float *)dst + (size_t)kk * KMM_NR;
            memcpy(d, s, (size_t)nc * sizeof(float));
            if (nc < KMM_NR) memset(d + nc, 0, (size_t)(KMM_NR - nc) * sizeof(float));
        }
    } else { /* BS_F32_T */
        float *d = dst;
        if (nc < KMM_NR) memset(d, 0, (size_t)kc * KMM_NR * sizeof(float));
        kmm_transpose_avx512((const float *)g->b + (size_t)c0 * g->ldb + pc, g->ldb, nc, kc, d, KMM_NR);
    }
}

/* C[m, nout] = A[m, kred] . B + beta C, blocked: reduction blocks of KC
 * (outermost, so every output sums its blocks in the same order), A packed
 * once per block for the thread's rows, B panels from the packed weight or
 * packed per call in groups of NG panels shared by the threads. Threads split
 * the rows of C (or, when there are few, the panels of each group) statically. */
static void gemm_run(const Gemm *g) {
    const int m = g->m, npan = (g->nout + KMM_NR - 1) / KMM_NR, mt = (m + KMM_MR - 1) / KMM_MR;
    const int kt = g->kt, pre = g->bs == BS_PRE;
    const size_t kq_all = (size_t)(g->kred + 1) / 2;
    /* 4-byte elements of a packed B panel per KC block */
    const size_t bpan = (size_t)(kt == KT_F32 ? KMM_KC : KMM_KC / 2) * KMM_NR;
    const int ng = npan < KMM_NG ? npan : KMM_NG;
    uint32_t *bbuf = pre ? NULL : xalloc((size_t)ng * bpan * sizeof(uint32_t));
#pragma omp parallel if (CPU_PAR((size_t)m * g->nout * g->kred))
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int t0, t1;
        const int msplit = mt >= 4 * nt || npan < nt;
        if (msplit) {
            split(mt, nt, t, &t0, &t1);
        } else {
            t0 = 0;
            t1 = mt;
        }
        const int ntile = t1 - t0, m1 = t1 * KMM_MR < m ? t1 * KMM_MR : m;
        const size_t tile_elems = (size_t)KMM_MR * KMM_KC; /* 4-byte elements, enough for every kind */
        uint32_t *abuf = xalloc((size_t)(ntile ? ntile : 1) * tile_elems * sizeof(uint32_t));
        for (int pc = 0; pc < g->kred; pc += KMM_KC) {
            const int kc = g->kred - pc < KMM_KC ? g->kred - pc : KMM_KC, kq = (kc + 1) / 2;
            const int mode = pc ? KMM_ACC : g->beta == 0.0f ? KMM_STORE : KMM_BETA;
            for (int ti = 0; ti < ntile; ti++) {
                int r = (t0 + ti) * KMM_MR;
                pack_a_tile(g, r, m1 - r < KMM_MR ? m1 - r : KMM_MR, pc, kc, abuf + ti * tile_elems);
            }
            for (int gp = 0; gp < npan; gp += (pre ? npan : ng)) {
                const int ge = pre ? npan : (gp + ng < npan ? gp + ng : npan);
                if (!pre) {
#pragma omp for schedule(static)
                    for (int p = gp; p < ge; p++) pack_b_panel(g, p, pc, kc, bbuf + (size_t)(p - gp) * bpan);
                }
                /* panels of this group for this thread: all (rows split) or a share */
                int q0 = gp, q1 = ge;
                if (!msplit) {
                    split(ge - gp, nt, t, &q0, &q1);
                    q0 += gp;
                    q1 += gp;
                }
                for (int tb = 0; tb < ntile; tb += KMM_TB)
                for (int p = q0; p < q1; p++) {
                    const uint32_t *bp = pre ? (const uint32_t *)g->b + (size_t)p * kq_all * KMM_NR + (size_t)(pc / 2) * KMM_NR
                                             : bbuf + (size_t)(p - gp) * bpan;
                    const int nr = g->nout - p * KMM_NR < KMM_NR ? g->nout - p * KMM_NR : KMM_NR;
                    for (int ti = tb; ti < ntile && ti < tb + KMM_TB; ti++) {
                        int r = (t0 + ti) * KMM_MR, mr = m1 - r < KMM_MR ? m1 - r : KMM_MR;
                        float *cp = g->c + (size_t)r * g->ldc + (size_t)p * KMM_NR;
                        const uint32_t *ap = abuf + ti * tile_elems;
                        if (kt == KT_DP)
                            kmm_ukr_dp_avx512bf16(kq, ap, bp, cp, g->ldc, mr, nr, mode, g->beta, g->alpha);
                        else if (kt == KT_FMA)
                            kmm_ukr_fma_avx512(kq, (const float *)ap, bp, cp, g->ldc, mr, nr, mode, g->beta, g->alpha);
                        else
                            kmm_ukr_f32_avx512(kc, (const float *)ap, (const float *)bp, cp, g->ldc, mr, nr, mode, g->beta, g->alpha);
                    }
                }
                if (!pre) {
#pragma omp barrier
                }
            }
        }
        free(abuf);
    }
    free(bbuf);
}

static void gemm_xwt(const KWeight *w, const float *x, int m, float *y, float beta, int dp) {
    Gemm g = {.m = m, .nout = w->n, .kred = w->k, .a = x, .sa_row = (size_t)w->k, .sa_col = 1,
              .rnd = 1, .c = y, .ldc = (size_t)w->n, .beta = beta, .alpha = 1.0f};
    if (w->type == KW_F32) {
        g.kt = KT_F32;
        g.bs = BS_F32_T;
        g.b = w->f32;
        g.ldb = (size_t)w->k;
    } else {
        g.kt = dp ? KT_DP : KT_FMA;
        g.bs = BS_PRE;
        g.b = kweight_packed(w);
    }
    gemm_run(&g);
}

static void gemm_xw(const KWeight *w, const float *dy, int m, float *dx, float beta) {
    Gemm g = {.m = m, .nout = w->k, .kred = w->n, .a = dy, .sa_row = (size_t)w->n, .sa_col = 1,
              .rnd = 0, .c = dx, .ldc = (size_t)w->k, .beta = beta, .alpha = 1.0f, .ldb = (size_t)w->k};
    if (w->type == KW_F32) {
        g.kt = KT_F32;
        g.bs = BS_F32_RO;
        g.b = w->f32;
    } else {
        g.kt = KT_FMA;
        g.bs = BS_BF16_RO;
        g.b = w->bf16;
    }
    gemm_run(&g);
}

/* ---------------------------------------------------------------- fp32 wrappers */

/* Our GEMM with A(i, p) = a[i*sar + p*sac] and B given as [n][k] (bt) or [k][n]. */
static void own_f32(int m, int n, int k, const float *a, size_t sar, size_t sac, const float *b, int ldb,
                    int bt, float *c, int ldc, float alpha, float beta) {
    Gemm g = {.kt = KT_F32, .bs = bt ? BS_F32_T : BS_F32_RO, .m = m, .nout = n, .kred = k, .a = a,
              .sa_row = sar, .sa_col = sac, .b = b, .ldb = (size_t)ldb, .c = c, .ldc = (size_t)ldc,
              .beta = beta, .alpha = alpha};
    gemm_run(&g);
}

void kmm_f32_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    if (f32_own_gemm(kmm_level()))
        own_f32(m, n, k, a, (size_t)lda, 1, b, ldb, 1, c, ldc, alpha, beta);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void kmm_f32_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    if (f32_own_gemm(kmm_level()))
        own_f32(m, n, k, a, (size_t)lda, 1, b, ldb, 0, c, ldc, alpha, beta);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void kmm_f32_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    if (f32_own_gemm(kmm_level()))
        own_f32(m, n, k, a, 1, (size_t)lda, b, ldb, 0, c, ldc, alpha, beta);
    else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---------------------------------------------------------------- one-row products */

/* Portable bodies, b_j's elements fp32 or bf16 (LOAD(x): one element as fp32; bf16 widens
 * exactly, so both give the same sums). kmm_row_nt: 16 interleaved partial sums, then a
 * fixed tree. */
#define ROW_LOAD_F32(x) (x)
#define ROW_LOAD_BF16(x) bf16_to_f32(x)
#define ROW_NT_PORTABLE(TB, LOAD)                                                       \
    for (int j = 0; j < n; j++) {                                                   \
        const TB *bj = b + (size_t)j * ldb;                             \
        float acc[16] = {0};                                                        \
        for (int p = 0; p < k; p++) acc[p & 15] += a[p] * LOAD(bj[p]);              \
        for (int w = 8; w >= 1; w /= 2)                                             \
            for (int l = 0; l < w; l++) acc[l] += acc[l + w];                       \
        c[j] = acc[0] * alpha;                                                      \
    }
#define ROW_NN_PORTABLE(TB, LOAD)                                                       \
    for (int p = 0; p < n; p++) c[p] = 0.0f;                                        \
    for (int j = 0; j < k; j++) {                                                   \
        const float aj = a[j];                                                      \
        const TB *bj = b + (size_t)j * ldb;                             \
        for (int p = 0; p < n; p++) c[p] += aj * LOAD(bj[p]);                       \
    }

void kmm_row_nt(int n, int k, const float *a, const float *b, size_t ldb, float *c, float alpha) {
    if (kmm_level() >= KMM_AVX512) {
        kmm_row_nt_avx512(n, k, a, b, ldb, c, alpha);
        return;
    }
    ROW_NT_PORTABLE(float, ROW_LOAD_F32)
}

void kmm_row_nt_bf16(int n, int k, const float *a, const uint16_t *b, size_t ldb, float *c, float alpha) {
    if (kmm_level() >= KMM_AVX512) {
        kmm_row_nt_bf16_avx512(n, k, a, b, ldb, c, alpha);
        return;
    }
    ROW_NT_PORTABLE(uint16_t, ROW_LOAD_BF16)
}

void kmm_row_nn(int n, int k, const float *a, const float *b, size_t ldb, float *c) {
    if (kmm_level() >= KMM_AVX512) {
        kmm_row_nn_avx512(n, k, a, b, ldb, c);
        return;
    }
    ROW_NN_PORTABLE(float, ROW_LOAD_F32)
}

void kmm_row_nn_bf16(int n, int k, const float *a, const uint16_t *b, size_t ldb, float *c) {
    if (kmm_level() >= KMM_AVX512) {
        kmm_row_nn_bf16_avx512(n, k, a, b, ldb, c);
        return;
    }
    ROW_NN_PORTABLE(uint16_t, ROW_LOAD_BF16)
}

/* ---------------------------------------------------------------- small-m gemv */

enum { GV_F32_512, GV_F32_AVX2, GV_BF16_PORT, GV_BF16_AVX2, GV_BF16_512, GV_BF16_DP };
/* Rows of W per unit of the threads' split: the small-m kernels work in blocks of 16. */
static int gemv_rows_unit(int kind) { return kind == GV_F32_512 || kind == GV_BF16_DP ? 16 : 4; }

static void gemv_run(int kind, const void *w, int n, int k, const void *x, int m, float *y, float beta) {
#pragma omp parallel if (CPU_PAR((size_t)n * k * m))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), r0, r1, u = gemv_rows_unit(kind);
        /* split in groups of u rows so every thread gets whole row blocks */
        int g0, g1;
        split((n + u - 1) / u, nt, t, &g0, &g1);
        r0 = g0 * u;
        r1 = g1 * u < n ? g1 * u : n;
        if (r0 < r1) switch (kind) {
            case GV_F32_512: kmm_small_f32_avx512(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_F32_AVX2: kmm_gemv_f32_avx2(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_PORT: gemv_bf16_portable(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_AVX2: kmm_gemv_bf16_avx2(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_512: kmm_gemv_bf16_avx512(w, k, x, m, y, n, beta, r0, r1); break;
            case GV_BF16_DP: kmm_small_bf16_avx512bf16(w, k, x, m, y, n, beta, r0, r1); break;
            }
    }
}

/* ---------------------------------------------------------------- operations */

void kmm_xwt(const KWeight *w, const float *x, int m, float *y, float beta) {
    if (m <= 0) return;
    const int n = w->n, k = w->k;
    const KmmLevel lvl = kmm_level();
    if (w->type == KW_F32) {
        int gemv = m <= F32_GEMV_MAX_M || (m <= F32_GEMV_BATCH_M && (size_t)m * k * sizeof(float) <= F32_GEMV_BATCH_X_BYTES);
        if (gemv && lvl >= KMM_AVX2) {
            gemv_run(lvl >= KMM_AVX512 ? GV_F32_512 : GV_F32_AVX2, w->f32, n, k, x, m, y, beta);
        } else if (f32_own_gemm(lvl)) {
            gemm_xwt(w, x, m, y, beta, 0);
        } else if (m == 1) {
            if (beta == 0.0f) memset(y, 0, (size_t)n * sizeof(float));
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w->f32, k, x, 1, beta, y, 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w->f32, k, beta, y, n);
        }
        return;
    }
    /* up to BF16_SMALL_M rows at avx512bf16: the small-m kernel (batched decoding; a row gets the
     * same bits whatever m, which the generators rely on); above: the matrix engine
     * (matmul_bf16.c decides: oneDNN on AMX or where it wins, MUSCLE_DNNL), else our GEMM */
    const int small_bf16 = lvl >= KMM_AVX512BF16 && m <= BF16_SMALL_M;
    if (m > BF16_GEMV_MAX_M && !small_bf16 && kmm_bf16_engine() == KMM_ENGINE_DNNL && kmm_dnnl_xwt(w, x, m, y, beta) == 0)
        return;
    if (m > BF16_GEMV_MAX_M && lvl >= KMM_AVX512 && w->cache && !small_bf16) {
        gemm_xwt(w, x, m, y, beta, lvl >= KMM_AVX512BF16 && bf16_gemm_dp());
        return;
    }
    size_t cnt = (size_t)m * k;
    if (small_bf16) {
        uint16_t *xb = xalloc(cnt * sizeof(uint16_t));
        for (size_t i = 0; i < cnt; i++) xb[i] = f32_to_bf16(x[i]);
        gemv_run(GV_BF16_DP, w->bf16, n, k, xb, m, y, beta);
        free(xb);
        return;
    }
    if (m <= BF16_GEMV_MAX_M && lvl >= KMM_AVX512) { /* x split into even/odd halves per 32 */
        size_t kp = (size_t)(k + 31) & ~(size_t)31;
        float *xp = xalloc((size_t)m * kp * sizeof(float));
        memset(xp, 0, (size_t)m * kp * sizeof(float));
        for (int i = 0; i < m; i++)
            for (int kk = 0; kk < k; kk++)
                xp[i * kp + (kk & ~31) + (kk & 1) * 16 + ((kk & 31) >> 1)] = bf16_round(x[(size_t)i * k + kk]);
        gemv_run(GV_BF16_512, w->bf16, n, k, xp, m, y, beta);
        free(xp);
        return;
    }
    float *xr = xalloc(cnt * sizeof(float));
    for (size_t i = 0; i < cnt; i++) xr[i] = bf16_round(x[i]);
    if (m <= BF16_GEMV_MAX_M)
        gemv_run(lvl >= KMM_AVX2 ? GV_BF16_AVX2 : GV_BF16_PORT, w->bf16, n, k, xr, m, y, beta);
    else
        xwt_bf16_portable(w, xr, m, y, beta);
    free(xr);
}

void kmm_xw(const KWeight *w, const float *dy, int m, float *dx, float beta) {
    if (m <= 0) return;
    const int n = w->n, k = w->k;
    const KmmLevel lvl = kmm_level();
    if (w->type == KW_BF16 ? lvl >= KMM_AVX512 : f32_own_gemm(lvl)) {
        gemm_xw(w, dy, m, dx, beta);
        return;
    }
    if (w->type == KW_F32) {
        if (m == 1) {
            if (beta == 0.0f) memset(dx, 0, (size_t)k * sizeof(float));
            cblas_sgemv(CblasRowMajor, CblasTrans, n, k, 1.0f, w->f32, k, dy, 1, beta, dx, 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, dy, n, w->f32, k, beta, dx, k);
        }
        return;
    }
    xw_bf16_portable(w, dy, m, dx, beta);
}

void kmm_dw(const float *dy, const float *x, int m, int n, int k, float *dw, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    if (f32_own_gemm(kmm_level())) {
        /* A = dy^T (row i = column i of dy), B = x as [red = m][out = k] */
        Gemm g = {.kt = KT_F32, .bs = BS_F32_RO, .m = n, .nout = k, .kred = m, .a = dy, .sa_row = 1,
                  .sa_col = (size_t)n, .b = x, .ldb = (size_t)k, .c = dw, .ldc = (size_t)k, .beta = beta, .alpha = 1.0f};
        gemm_run(&g);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, dy, n, x, k, beta, dw, k);
}
