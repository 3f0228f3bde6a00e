/* kernel/matmul_bf16.c - the bf16 engine choice (ours or oneDNN), the mixed-precision
 * products (both operands rounded to bf16, fp32 accumulation) and the dispatch report.
 * Design and measurements: docs/kernels.md ("Matrix engine"). */
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- engine choice */

static int g_engine_force = -1; /* kmm_bf16_engine_set */
static int g_engine_env = -2;   /* MUSCLE_DNNL: -1 unset, 0, 1 */

void kmm_bf16_engine_set(int v) { __atomic_store_n(&g_engine_force, v < 0 ? -1 : !!v, __ATOMIC_RELAXED); }

int kmm_env_switch(int *cache, const char *name, const char *meaning) {
    int e = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (e != -2) return e;
    const char *s = getenv(name);
    e = -1;
    if (s && *s) {
        if (strcmp(s, "0") == 0) e = 0;
        else if (strcmp(s, "1") == 0) e = 1;
        else fprintf(stderr, "muscle: warning: %s=%s ignored (%s)\n", name, s, meaning);
    }
    __atomic_store_n(cache, e, __ATOMIC_RELAXED);
    return e;
}

static int engine_env(void) { return kmm_env_switch(&g_engine_env, "MUSCLE_DNNL", "0: ours, 1: oneDNN"); }

KmmEngine kmm_bf16_engine(void) {
    int f = __atomic_load_n(&g_engine_force, __ATOMIC_RELAXED);
    if (f < 0) f = engine_env();
    if (f == 0) return KMM_ENGINE_OWN;
    if (!kdnnl_ready()) return KMM_ENGINE_OWN;
    if (f == 1) return KMM_ENGINE_DNNL;
    /* automatic, only when the level is not capped: oneDNN where it runs AMX, and where
     * it runs vdpbf16ps on a CPU that issues it at full rate (AMD: measured 1.03-1.54x
     * our GEMM forward, 2x backward on Zen 5); on Intel without AMX vdpbf16ps is
     * half-rate and our fp32-FMA GEMM is the faster one (docs/kernels.md) */
    if (kmm_level() < KMM_AVX512BF16) return KMM_ENGINE_OWN;
    if (kdnnl_has_amx()) return KMM_ENGINE_DNNL;
    return strcmp(kdnnl_isa(), "avx512_core_bf16") == 0 && kmm_bf16_gemm_uses_dp() ? KMM_ENGINE_DNNL : KMM_ENGINE_OWN;
}

/* ---------------------------------------------------------------- time per kind */

/* MUSCLE_KMM_TIMES=1: each bf16 product adds its wall time (ns) to its kind's counter
 * (thread-seconds when products run on several threads at once). */
static int g_times_env = -2;
static long long g_times[KMM_TIME_COUNT];

static long long times_now(void) {
    if (kmm_env_switch(&g_times_env, "MUSCLE_KMM_TIMES", "1: time the bf16 products by kind") != 1) return -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void times_add(KmmTimeKind kind, long long t0) {
    if (t0 < 0) return;
    __atomic_fetch_add(&g_times[kind], times_now() - t0, __ATOMIC_RELAXED);
}

void kmm_times_get(double secs[KMM_TIME_COUNT]) {
    for (int i = 0; i < KMM_TIME_COUNT; i++) secs[i] = 1e-9 * (double)__atomic_load_n(&g_times[i], __ATOMIC_RELAXED);
}

const char *kmm_time_name(KmmTimeKind kind) {
    static const char *const names[KMM_TIME_COUNT] = {"forward_xWt", "backward_dyW", "dW_tn", "other_mixed", "attention",
                                                      "round_bf16"};
    return kind >= 0 && kind < KMM_TIME_COUNT ? names[kind] : "?";
}

/* ---------------------------------------------------------------- operands */

/* The operands' bf16 copies live in the calling thread's grown-once buffers (kscratch.c:
 * KSCR_A, KSCR_B), not in a malloc per call. */

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* f32_to_bf16 (core/dtype.h) on 16 lanes, the same bits: round to nearest even, NaN kept
 * quiet (the top half with the quiet bit set); denormals are not flushed (vcvtneps2bf16
 * would flush them, so it is not used). */
T512 static inline __m256i bf16x16(__m512i u) {
    const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

/* One row: d (b16) = bf16(s), or f (f32) = the rounded value as fp32. */
T512 static void round_row_avx512(const float *s, int cols, uint16_t *d, float *f) {
    int c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m256i h = bf16x16(_mm512_castps_si512(_mm512_loadu_ps(s + c)));
        if (d) _mm256_storeu_si256((__m256i *)(d + c), h);
        else _mm512_storeu_si512(f + c, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (c < cols) {
        const __mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
        __m256i h = bf16x16(_mm512_castps_si512(_mm512_maskz_loadu_ps(m, s + c)));
        if (d) _mm256_mask_storeu_epi16(d + c, m, h);
        else _mm512_mask_storeu_epi32(f + c, m, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

/* dst[r*cols + c] = bf16(src[r*ld + c]) as bf16 bits (b16) or as the rounded fp32 (f32). */
static void round_rows(const float *src, int rows, int cols, int ld, uint16_t *b16, float *f32) {
    const int v512 = kmm_level() >= KMM_AVX512;
    const long long t0 = times_now();
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)rows * cols))
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        if (v512) {
            round_row_avx512(s, cols, b16 ? b16 + (size_t)r * cols : NULL, b16 ? NULL : f32 + (size_t)r * cols);
        } else if (b16) {
            uint16_t *d = b16 + (size_t)r * cols;
            for (int c = 0; c < cols; c++) d[c] = f32_to_bf16(s[c]);
        } else {
            float *d = f32 + (size_t)r * cols;
            for (int c = 0; c < cols; c++) d[c] = bf16_to_f32(f32_to_bf16(s[c]));
        }
    }
    times_add(KMM_TIME_ROUND, t0);
}

static void dnnl_or_die(int rc) {
    if (rc == 0) return;
    /* the primitive existed for the report's shape; a failure here is a oneDNN bug or
     * out of memory: the operations return void, so say it and stop */
    fprintf(stderr, "muscle: fatal: %s\n", err_msg());
    abort();
}

int kmm_dnnl_xwt(const KWeight *w, const float *x, int m, float *y, float beta) {
    if (w->type != KW_BF16) return -1;
    const long long t0 = times_now();
    kscratch_enter();
    uint16_t *xb = kscratch_get(KSCR_A, (size_t)m * w->k * sizeof(uint16_t));
    round_rows(x, m, w->k, w->k, xb, NULL);
    int rc = kdnnl_xwt_bf16(w, xb, m, y, beta);
    kscratch_leave();
    times_add(KMM_TIME_XWT, t0);
    return rc;
}

/* The three layouts of kmm_bf16_*: A is [m, k] (or stored [k, m] when ta), B is [n, k]
 * (tb) or [k, n]. */
static void mixed(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                  int ldc, float alpha, float beta) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    const long long t0 = times_now();
    /* the attention runs its products one head per thread; the weight gradients are tn */
    const KmmTimeKind kind = omp_in_parallel() ? KMM_TIME_ATTN : ta ? KMM_TIME_DW : KMM_TIME_MIXED;
    kscratch_enter();
    if (kmm_bf16_engine() == KMM_ENGINE_DNNL) {
        uint16_t *ab = kscratch_get(KSCR_A, (size_t)ar * ac * sizeof(uint16_t));
        uint16_t *bb = kscratch_get(KSCR_B, (size_t)br * bc * sizeof(uint16_t));
        round_rows(a, ar, ac, lda, ab, NULL);
        round_rows(b, br, bc, ldb, bb, NULL);
        int rc = kdnnl_gemm_bf16(m, n, k, ab, ta ? 1 : k, ta ? m : 1, bb, tb ? 1 : n, tb ? k : 1, c, ldc, alpha, beta);
        kscratch_leave();
        times_add(kind, t0);
        dnnl_or_die(rc);
        return;
    }
    float *af = kscratch_get(KSCR_A, (size_t)ar * ac * sizeof(float));
    float *bf = kscratch_get(KSCR_B, (size_t)br * bc * sizeof(float));
    round_rows(a, ar, ac, lda, NULL, af);
    round_rows(b, br, bc, ldb, NULL, bf);
    if (ta) kmm_f32_tn(m, n, k, af, ac, bf, bc, c, ldc, alpha, beta);
    else if (tb) kmm_f32_nt(m, n, k, af, ac, bf, bc, c, ldc, alpha, beta);
    else kmm_f32_nn(m, n, k, af, ac, bf, bc, c, ldc, alpha, beta);
    kscratch_leave();
    times_add(kind, t0);
}

void kmm_bf16_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                 float alpha, float beta) {
    mixed(0, 1, m, n, k, a, lda, b, ldb, c, ldc, alpha, beta);
}

void kmm_bf16_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                 float alpha, float beta) {
    mixed(0, 0, m, n, k, a, lda, b, ldb, c, ldc, alpha, beta);
}

void kmm_bf16_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                 float alpha, float beta) {
    mixed(1, 0, m, n, k, a, lda, b, ldb, c, ldc, alpha, beta);
}

void kmm_xw_bf16(const KWeight *w, const float *dy, int m, float *dx, float beta) {
    if (m <= 0) return;
    const int n = w->n;
    const long long t0 = times_now();
    kscratch_enter();
    if (w->type == KW_BF16 && m > 4 && kmm_bf16_engine() == KMM_ENGINE_DNNL) {
        uint16_t *db = kscratch_get(KSCR_A, (size_t)m * n * sizeof(uint16_t));
        round_rows(dy, m, n, n, db, NULL);
        int rc = kdnnl_xw_bf16(w, db, m, dx, beta); /* W in its cached layout for this use */
        kscratch_leave();
        times_add(KMM_TIME_XW, t0);
        dnnl_or_die(rc);
        return;
    }
    float *dr = kscratch_get(KSCR_A, (size_t)m * n * sizeof(float));
    round_rows(dy, m, n, n, NULL, dr);
    kmm_xw(w, dr, m, dx, beta);
    kscratch_leave();
    times_add(KMM_TIME_XW, t0);
}

const KmmProducts kmm_products_f32 = {kmm_f32_nt, kmm_f32_nn, kmm_f32_tn, kmm_xw};
const KmmProducts kmm_products_bf16 = {kmm_bf16_nt, kmm_bf16_nn, kmm_bf16_tn, kmm_xw_bf16};

/* ---------------------------------------------------------------- report */

typedef struct {
    char *buf;
    size_t cap, len;
} Out;

static void say(Out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

size_t kmm_dispatch_report(char *buf, size_t cap) {
    Out o = {buf, cap, 0};
    if (cap) buf[0] = 0;
    const KmmLevel lvl = kmm_level(), cpu = kmm_level_cpu();
    const int ready = kdnnl_ready(), eng = kmm_bf16_engine();
    const dnnl_version_t *v = dnnl_version();
    char impl[64] = "none";
    if (ready && !kdnnl_impl(256, 768, 768, impl, sizeof impl)) snprintf(impl, sizeof impl, "none");
    const char *why = __atomic_load_n(&g_engine_force, __ATOMIC_RELAXED) >= 0 ? "forced by the caller"
                      : engine_env() == 0                                    ? "MUSCLE_DNNL=0"
                      : engine_env() == 1                                    ? "MUSCLE_DNNL=1"
                      : eng == KMM_ENGINE_DNNL && kdnnl_has_amx()            ? "automatic: oneDNN runs AMX here"
                      : eng == KMM_ENGINE_DNNL ? "automatic: oneDNN's vdpbf16ps kernels outrun ours on this CPU"
                                               : "automatic: ours is faster here (no AMX, half-rate vdpbf16ps, or level capped)";
    say(&o, "kernel level: %s (CPU supports %s; MUSCLE_KERNEL caps it)\n", kmm_level_name(lvl), kmm_level_name(cpu));
    say(&o, "oneDNN: %s, version %d.%d.%d, ISA %s, AMX %s\n", ready ? "loaded" : "no CPU engine", v->major, v->minor,
        v->patch, ready ? kdnnl_isa() : "-", ready && kdnnl_has_amx() ? "yes" : "no");
    say(&o, "bf16 engine: %s (%s)\n", eng == KMM_ENGINE_DNNL ? "oneDNN" : "ours", why);
    const char *own_gemm = lvl < KMM_AVX512 ? "bf16->fp32 blocks + sgemm (portable)"
                           : lvl >= KMM_AVX512BF16 && kmm_bf16_gemm_uses_dp() ? "our GEMM, vdpbf16ps"
                                                                              : "our GEMM, fp32 FMA on packed bf16";
    char fwd[160], lay[32];
    if (eng == KMM_ENGINE_DNNL && kdnnl_pack_on() && kdnnl_weights_layout(256, 768, 768, lay, sizeof lay))
        snprintf(fwd, sizeof fwd, "%s, weights reordered once per weight into %s", impl, lay);
    else if (eng == KMM_ENGINE_DNNL)
        snprintf(fwd, sizeof fwd, "%s, plain weights re-packed by oneDNN every call (MUSCLE_DNNL_PACK=0)", impl);
    else
        snprintf(fwd, sizeof fwd, "%s, weights packed once per weight into 32-row panels", own_gemm);
    if (lvl >= KMM_AVX512BF16) { /* matmul.c: up to 64 rows on the small-m kernel (same bits whatever m) */
        say(&o, "bf16 forward x.W^T, m > 64: %s\n", fwd);
        say(&o, "bf16 forward x.W^T, m <= 64: our small-m kernel, vdpbf16ps\n");
    } else {
        say(&o, "bf16 forward x.W^T, m > 4: %s\n", lvl >= KMM_AVX512 || eng == KMM_ENGINE_DNNL ? fwd : own_gemm);
        say(&o, "bf16 forward x.W^T, m <= 4: %s\n", lvl >= KMM_AVX512 ? "our gemv, fp32 FMA (shift/and)"
                                                    : lvl >= KMM_AVX2 ? "our gemv, AVX2"
                                                                      : "scalar gemv");
    }
    say(&o, "bf16 backward dy.W (exact dy): %s\n", lvl >= KMM_AVX512 ? "our GEMM, fp32 FMA on bf16 W" : "bf16->fp32 blocks + sgemm");
    say(&o, "bf16 mixed products (--bf16 attention, backward through frozen weights): %s\n",
        eng == KMM_ENGINE_DNNL ? impl : "operands rounded to bf16, then the fp32 products below");
    if (eng == KMM_ENGINE_DNNL) { /* training: dx = bf16(dy) . W on its own cached copy of W */
        if (kdnnl_pack_on() && kdnnl_weights_layout(256, 768, 768, lay, sizeof lay))
            say(&o, "bf16 backward bf16(dy).W, m > 4: weights reordered once per weight into %s (a second copy, built in training)\n", lay);
        else
            say(&o, "bf16 backward bf16(dy).W, m > 4: plain weights re-packed by oneDNN every call (MUSCLE_DNNL_PACK=0)\n");
    }
    say(&o, "fp32 products: %s (OpenBLAS core %s)\n", kmm_f32_uses_own() ? "our AVX-512 GEMM" : "OpenBLAS sgemm",
        openblas_get_corename());
    return o.len;
}
