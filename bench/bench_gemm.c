/* bench/bench_gemm.c - GFLOP/s of the matmul layer against OpenBLAS at the
 * transformer shapes. Built and run by bench/gemm.sh (OMP_NUM_THREADS=2).
 * Usage: bench_gemm [seconds-per-measurement [engine]]   (default 0.3)
 * "engine": only the bf16 engine table (issue 20): our bf16 GEMM against oneDNN's
 * bf16 matmul (AMX where the CPU has it) and our fp32, at the shapes of a 110M model. */
#include "core/dtype.h"
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *openblas_get_corename(void);

static double min_secs = 0.3;
static int use_cpu_time; /* BENCH_CPUTIME=1: process CPU time / threads */

typedef void (*RunFn)(void *ctx);

/* Wall time, or with BENCH_CPUTIME=1 the process CPU time divided by the
 * thread count: on a shared machine that estimates the time the call would
 * take with both cores to itself (run with OMP_WAIT_POLICY=passive so that
 * waiting threads do not burn CPU time). */
static double now(void) {
    if (!use_cpu_time) return omp_get_wtime();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (ts.tv_sec + ts.tv_nsec * 1e-9) / omp_get_max_threads();
}

/* Best of 3 windows of at least min_secs/3 each: seconds per call. */
static double timeit(RunFn fn, void *ctx) {
    fn(ctx); /* warm up (packs, page faults) */
    double best = 1e30;
    for (int w = 0; w < 3; w++) {
        int reps = 0;
        double t0 = now(), t;
        do {
            fn(ctx);
            reps++;
            t = now() - t0;
        } while (t < min_secs / 3);
        if (t / reps < best) best = t / reps;
    }
    return best;
}

typedef struct {
    int m, n, k;
    const float *x, *dy, *wf;
    float *y, *dx, *dw;
    KWeight *kw;
} Ctx;

static void run_sgemm(void *p) {
    Ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->m, c->n, c->k, 1.0f, c->x, c->k, c->wf,
                c->k, 0.0f, c->y, c->n);
}
static void run_sgemv(void *p) {
    Ctx *c = p;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, c->n, c->k, 1.0f, c->wf, c->k, c->x, 1, 0.0f, c->y, 1);
}
static void run_sgemm_nn(void *p) { /* dy . W */
    Ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->m, c->k, c->n, 1.0f, c->dy, c->n, c->wf,
                c->k, 0.0f, c->dx, c->k);
}
static void run_xwt(void *p) {
    Ctx *c = p;
    kmm_xwt(c->kw, c->x, c->m, c->y, 0.0f);
}
static void run_xw(void *p) {
    Ctx *c = p;
    kmm_xw(c->kw, c->dy, c->m, c->dx, 0.0f);
}
static void run_dw(void *p) {
    Ctx *c = p;
    kmm_dw(c->dy, c->x, c->m, c->n, c->k, c->dw, 0.0f);
}

static void run_xw_mixed(void *p) {
    Ctx *c = p;
    kmm_xw_bf16(c->kw, c->dy, c->m, c->dx, 0.0f);
}
/* attention-sized products: [m, k] . [n, k]^T, both rounded to bf16 */
static void run_att_bf16(void *p) {
    Ctx *c = p;
    kmm_bf16_nt(c->m, c->n, c->k, c->x, c->k, c->wf, c->k, c->y, c->n, 1.0f, 0.0f);
}
static void run_att_f32(void *p) {
    Ctx *c = p;
    kmm_f32_nt(c->m, c->n, c->k, c->x, c->k, c->wf, c->k, c->y, c->n, 1.0f, 0.0f);
}

/* Seconds per call of fn on the bf16 engine e (KMM_ENGINE_OWN / _DNNL). */
static double on_engine(int e, RunFn fn, Ctx *c) {
    kmm_bf16_engine_set(e);
    double t = timeit(fn, c);
    kmm_bf16_engine_set(-1);
    return t;
}

static int engine_table(const float *wf, const uint16_t *wb, const float *x, const float *dy, float *y, float *dx) {
    char rep[2048];
    kmm_dispatch_report(rep, sizeof rep);
    printf("%s", rep);
    printf("\n== bf16 engine: GFLOP/s (ratio oneDNN / ours bf16); ours bf16 = the default GEMM of this level\n");
    printf("%-22s %5s %6s %6s | %9s | %9s | %9s (%5s)\n", "product", "M", "N", "K", "ours f32", "ours bf16", "oneDNN",
           "ratio");
    static const int sh[][3] = {{1024, 768, 768}, {1024, 2048, 768}, {1024, 768, 2048}, {1024, 32000, 768},
                                {256, 768, 768},  {64, 768, 768},    {16, 768, 768}};
    for (int i = 0; i < 7; i++) {
        int m = sh[i][0], n = sh[i][1], k = sh[i][2];
        KWeight kf, kb;
        kweight_init_f32(&kf, wf, n, k);
        kweight_init_bf16(&kb, wb, n, k);
        Ctx c = {m, n, k, x, dy, wf, y, dx, NULL, &kf};
        double fl = 2.0 * m * n * k / 1e9;
        double tf = timeit(run_xwt, &c);
        c.kw = &kb;
        double to = on_engine(KMM_ENGINE_OWN, run_xwt, &c), td = on_engine(KMM_ENGINE_DNNL, run_xwt, &c);
        printf("%-22s %5d %6d %6d | %9.1f | %9.1f | %9.1f (%5.2fx)\n", "forward x.W^T", m, n, k, fl / tf, fl / to,
               fl / td, to / td);
        fflush(stdout);
        if (i < 3) {
            c.kw = &kf;
            tf = timeit(run_xw, &c);
            c.kw = &kb;
            to = on_engine(KMM_ENGINE_OWN, run_xw_mixed, &c);
            td = on_engine(KMM_ENGINE_DNNL, run_xw_mixed, &c);
            printf("%-22s %5d %6d %6d | %9.1f | %9.1f | %9.1f (%5.2fx)\n", "backward bf16(dy).W", m, n, k, fl / tf,
                   fl / to, fl / td, to / td);
            fflush(stdout);
        }
        kweight_free(&kf);
        kweight_free(&kb);
    }
    /* one head of attention at T = 256, hd = 64: scores Q K^T */
    Ctx c = {256, 256, 64, x, dy, wf, y, dx, NULL, NULL};
    double fl = 2.0 * 256 * 256 * 64 / 1e9;
    double tf = timeit(run_att_f32, &c), to = on_engine(KMM_ENGINE_OWN, run_att_bf16, &c),
           td = on_engine(KMM_ENGINE_DNNL, run_att_bf16, &c);
    printf("%-22s %5d %6d %6d | %9.1f | %9.1f | %9.1f (%5.2fx)\n", "attention Q.K^T", 256, 256, 64, fl / tf, fl / to,
           fl / td, to / td);
    return 0;
}

static float *rand_f32(size_t cnt, unsigned seed) {
    float *p = malloc(cnt * sizeof *p);
    if (!p) abort();
    for (size_t i = 0; i < cnt; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
    return p;
}

static const int shapes[][2] = {{768, 768},  {2048, 768}, {768, 2048}, {32000, 768},
                                {288, 288},  {768, 288},  {288, 768},  {32000, 288}};
#define NSHAPES 8

/* Runs fn at a forced level (or the default when lvl < 0): seconds per call.
 * avx512 = fp32-FMA bf16 kernels, avx512bf16 = vdpbf16ps kernels. */
static double at_level(int lvl, RunFn fn, Ctx *c) {
    KmmLevel saved = kmm_level();
    if (lvl >= 0 && kmm_level_set((KmmLevel)lvl) != 0) return -1;
    if (lvl == KMM_AVX512BF16) kmm_bf16_gemm_dp_force(1); /* the vdpbf16ps GEMM even on Intel */
    double t = timeit(fn, c);
    kmm_bf16_gemm_dp_force(-1);
    kmm_level_set(saved);
    return t;
}

int main(int argc, char **argv) {
    if (argc > 1) min_secs = atof(argv[1]);
    use_cpu_time = getenv("BENCH_CPUTIME") && atoi(getenv("BENCH_CPUTIME"));
    const int M = 1024;
    int have_bf16 = kmm_level_cpu() >= KMM_AVX512BF16, have_512 = kmm_level_cpu() >= KMM_AVX512;
    printf("threads %d, cpu level %s, default level %s, OpenBLAS core %s, %s time\n", omp_get_max_threads(),
           kmm_level_name(kmm_level_cpu()), kmm_level_name(kmm_level()), openblas_get_corename(),
           use_cpu_time ? "cpu/threads" : "wall");
    size_t maxnk = 32000 * 768;
    float *wf = rand_f32(maxnk, 1), *x = rand_f32((size_t)M * 2048, 2), *dy = rand_f32((size_t)M * 32000, 3);
    uint16_t *wb = malloc(maxnk * sizeof *wb);
    for (size_t i = 0; i < maxnk; i++) wb[i] = f32_to_bf16(wf[i]);
    float *y = malloc((size_t)M * 32000 * sizeof(float)), *dx = malloc((size_t)M * 2048 * sizeof(float));
    float *dw = malloc(maxnk * sizeof(float));
    if (argc > 2 && strcmp(argv[2], "engine") == 0) return engine_table(wf, wb, x, dy, y, dx);

    printf("\n== forward y = x . W^T, M = %d: GFLOP/s (ratio to OpenBLAS sgemm)\n", M);
    printf("%6s %6s | %8s | %16s | %16s %16s %16s\n", "N", "K", "sgemm", "xwt f32 own", "xwt bf16 avx512",
           "bf16 avx512bf16", "bf16 portable");
    for (int s = 0; s < NSHAPES; s++) {
        int n = shapes[s][0], k = shapes[s][1];
        KWeight kf, kb;
        kweight_init_f32(&kf, wf, n, k);
        kweight_init_bf16(&kb, wb, n, k);
        Ctx c = {M, n, k, x, dy, wf, y, dx, dw, &kf};
        double fl = 2.0 * M * n * k / 1e9;
        double tb = timeit(run_sgemm, &c);
        kmm_f32_own_gemm_force(1);
        double tf = timeit(run_xwt, &c);
        kmm_f32_own_gemm_force(-1);
        c.kw = &kb;
        double t512 = have_512 ? at_level(KMM_AVX512, run_xwt, &c) : -1;
        double tdp = have_bf16 ? at_level(KMM_AVX512BF16, run_xwt, &c) : -1;
        double tp = at_level(KMM_PORTABLE, run_xwt, &c);
        printf("%6d %6d | %8.1f | %7.1f (%5.2fx) | %7.1f (%5.2fx) %7.1f (%5.2fx) %7.1f (%5.2fx)\n", n, k, fl / tb,
               fl / tf, tb / tf, t512 > 0 ? fl / t512 : 0, t512 > 0 ? tb / t512 : 0, tdp > 0 ? fl / tdp : 0,
               tdp > 0 ? tb / tdp : 0, fl / tp, tb / tp);
        fflush(stdout);
        kweight_free(&kf);
        kweight_free(&kb);
    }

    printf("\n== decode y = x . W^T, M = 1: us per call and GB/s of weight bytes\n");
    printf("%6s %6s | %17s | %17s | %17s %17s %17s\n", "N", "K", "sgemv f32", "xwt f32", "xwt bf16 avx512",
           "bf16 avx512bf16", "bf16 portable");
    for (int s = 0; s < NSHAPES; s++) {
        int n = shapes[s][0], k = shapes[s][1];
        KWeight kf, kb;
        kweight_init_f32(&kf, wf, n, k);
        kweight_init_bf16(&kb, wb, n, k);
        Ctx c = {1, n, k, x, dy, wf, y, dx, dw, &kf};
        double b4 = 4.0 * n * k / 1e9, b2 = b4 / 2;
        double tb = timeit(run_sgemv, &c);
        double tf = timeit(run_xwt, &c);
        c.kw = &kb;
        double t512 = have_512 ? at_level(KMM_AVX512, run_xwt, &c) : -1;
        double tdp = have_bf16 ? at_level(KMM_AVX512BF16, run_xwt, &c) : -1;
        double tp = at_level(KMM_PORTABLE, run_xwt, &c);
        printf("%6d %6d | %7.1f us %5.1f | %7.1f us %5.1f | %7.1f us %5.1f %7.1f us %5.1f %7.1f us %5.1f\n", n, k,
               tb * 1e6, b4 / tb, tf * 1e6, b4 / tf, t512 * 1e6, b2 / t512, tdp * 1e6, b2 / tdp, tp * 1e6,
               b2 / tp);
        fflush(stdout);
        kweight_free(&kf);
        kweight_free(&kb);
    }

    printf("\n== small M (xwt): GFLOP/s, N = 768, K = 768 (* = default choice)\n");
    printf("%4s | %8s | %8s | %8s %8s\n", "M", "sgemm", "xwt f32*", "bf16 512", "bf16 dp");
    int small_m[] = {1, 2, 3, 4, 5, 8, 16, 32, 64};
    for (int i = 0; i < 9; i++) {
        int n = 768, k = 768, m = small_m[i];
        KWeight kf, kb;
        kweight_init_f32(&kf, wf, n, k);
        kweight_init_bf16(&kb, wb, n, k);
        Ctx c = {m, n, k, x, dy, wf, y, dx, dw, &kf};
        double fl = 2.0 * m * n * k / 1e9;
        double tb = timeit(run_sgemm, &c), tf = timeit(run_xwt, &c);
        c.kw = &kb;
        double t512 = have_512 ? at_level(KMM_AVX512, run_xwt, &c) : -1;
        double tdp = have_bf16 ? at_level(KMM_AVX512BF16, run_xwt, &c) : -1;
        printf("%4d | %8.1f | %8.1f | %8.1f %8.1f\n", m, fl / tb, fl / tf, t512 > 0 ? fl / t512 : 0,
               tdp > 0 ? fl / tdp : 0);
        fflush(stdout);
        kweight_free(&kf);
        kweight_free(&kb);
    }

    printf("\n== backward, M = %d: GFLOP/s  (xw: dx = dy . W; dw = dy^T . x)\n", M);
    printf("%6s %6s | %8s | %8s | %16s %16s | %8s %8s\n", "N", "K", "sgemm nn", "xw f32 own", "xw bf16 avx512",
           "xw bf16 portable", "dw own", "dw sgemm");
    for (int s = 0; s < NSHAPES; s++) {
        int n = shapes[s][0], k = shapes[s][1];
        KWeight kf, kb;
        kweight_init_f32(&kf, wf, n, k);
        kweight_init_bf16(&kb, wb, n, k);
        Ctx c = {M, n, k, x, dy, wf, y, dx, dw, &kf};
        double fl = 2.0 * M * n * k / 1e9;
        kmm_f32_own_gemm_force(1);
        double tb = timeit(run_sgemm_nn, &c), tf = timeit(run_xw, &c);
        c.kw = &kb;
        double t512 = have_512 ? at_level(KMM_AVX512, run_xw, &c) : -1;
        double tp = at_level(KMM_PORTABLE, run_xw, &c);
        double td = timeit(run_dw, &c), tds = at_level(KMM_PORTABLE, run_dw, &c);
        kmm_f32_own_gemm_force(-1);
        printf("%6d %6d | %8.1f | %8.1f | %7.1f (%5.2fx) %7.1f (%5.2fx) | %8.1f %8.1f\n", n, k, fl / tb, fl / tf,
               t512 > 0 ? fl / t512 : 0, t512 > 0 ? tb / t512 : 0, fl / tp, tb / tp, fl / td, fl / tds);
        fflush(stdout);
        kweight_free(&kf);
        kweight_free(&kb);
    }
    free(wf); free(x); free(dy); free(wb); free(y); free(dx); free(dw);
    return 0;
}
