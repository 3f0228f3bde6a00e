/* tests/kernel/test_matmul_dnnl.c - the bf16 matrix engine (issue 20): oneDNN's bf16
 * matmul (matmul_dnnl.c) and the mixed-precision products (matmul_bf16.c) on both
 * engines, against a float64 reference of the bf16-rounded operands and against our
 * own bf16 GEMM, on random shapes with ragged edges (m, n, k not multiples of any
 * tile: 1..257). Runs on whatever ISA this CPU has and prints which implementation
 * oneDNN chose (AMX: brg:avx512_core_amx; AVX512-BF16: brg:avx512_core_bf16).
 *
 * Tolerance: both operands are bf16, so every product is exact in fp32 and the only
 * error is the fp32 summation, bounded for any order by gamma_(k+2) * sum |a_i b_i|
 * (gamma_j = j u / (1 - j u), u = 2^-24; +2 for vdpbf16ps's pairwise step and beta):
 * each element is checked against (k + 2) * 2^-24 * (sum |terms| + |beta y0|).
 * oneDNN is a build dependency (scripts/deps.sh): without a CPU engine the first test
 * fails with a message, it is never skipped. */
#include "testutil.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include <math.h>

#include "rand_bf16.h"
static double bf(float f) { return (double)bf16_to_f32(f32_to_bf16(f)); }

/* got[i*ldc + j] against alpha sum_p A(i,p) B(p,j) + beta y0 with A, B rounded to bf16;
 * A(i,p) = a[i*sam + p*sak], B(p,j) = b[p*sbk + j*sbn]. Returns the worst err / bound. */
static double check(const char *what, int m, int n, int k, const float *a, long sam, long sak, const float *b, long sbk,
                    long sbn, const float *got, int ldc, const float *y0, float alpha, float beta) {
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double t = bf(a[i * sam + p * sak]) * bf(b[p * sbk + j * sbn]);
                s += t;
                mag += fabs(t);
            }
            double yb = beta != 0.0f ? (double)beta * y0[(size_t)i * ldc + j] : 0.0;
            double want = alpha * s + yb, bound = (k + 2) * ldexp(1.0, -24) * (fabs(alpha) * mag + fabs(yb)) + 1e-30;
            double err = fabs((double)got[(size_t)i * ldc + j] - want);
            if (!(err <= bound))
                fail_msg("%s m=%d n=%d k=%d alpha=%g beta=%g: [%d,%d] = %.9g, want %.9g (err %.3g > bound %.3g)", what, m,
                         n, k, alpha, beta, i, j, got[(size_t)i * ldc + j], want, err, bound);
            if (err / bound > worst) worst = err / bound;
        }
    return worst;
}

static void test_engine_present(void **st) {
    (void)st;
    if (!kdnnl_ready())
        fail_msg("oneDNN has no CPU engine: it is a dependency now (scripts/deps.sh installs libdnnl-dev)");
    char impl[64];
    if (!kdnnl_impl(256, 768, 768, impl, sizeof impl)) fail_msg("oneDNN: no bf16 matmul for 256x768x768: %s", err_msg());
    print_message("# CPU level %s, oneDNN ISA %s, AMX %s; oneDNN bf16 matmul: %s; default bf16 engine: %s\n",
                  kmm_level_name(kmm_level_cpu()), kdnnl_isa(), kdnnl_has_amx() ? "yes" : "no", impl,
                  kmm_bf16_engine() == KMM_ENGINE_DNNL ? "oneDNN" : "ours");
    char rep[2048];
    kmm_dispatch_report(rep, sizeof rep);
    assert_non_null(strstr(rep, "bf16 engine:"));
    assert_non_null(strstr(rep, kdnnl_isa()));
}

/* The raw primitive: all three operand layouts the library uses, alpha, beta, ragged. */
static void test_dnnl_gemm_random(void **st) {
    (void)st;
    double worst = 0;
    for (int it = 0; it < 40; it++) {
        int m = 1 + (int)(urand() % 130), n = 1 + (int)(urand() % 130), k = 1 + (int)(urand() % 257);
        int lay = it % 3; /* 0: A.B^T (forward), 1: A.B, 2: A^T.B */
        float alpha = it % 4 == 1 ? 0.125f : 1.0f, beta = it % 5 == 2 ? 0.5f : it % 5 == 3 ? 1.0f : 0.0f;
        float *a = rand_f32((size_t)m * k), *b = rand_f32((size_t)n * k);
        float *c = rand_f32((size_t)m * n), *y0 = malloc((size_t)m * n * sizeof(float));
        memcpy(y0, c, (size_t)m * n * sizeof(float));
        uint16_t *ab = malloc((size_t)m * k * 2), *bb = malloc((size_t)n * k * 2);
        for (size_t i = 0; i < (size_t)m * k; i++) ab[i] = f32_to_bf16(a[i]);
        for (size_t i = 0; i < (size_t)n * k; i++) bb[i] = f32_to_bf16(b[i]);
        long sam = lay == 2 ? 1 : k, sak = lay == 2 ? m : 1, sbk = lay == 0 ? 1 : n, sbn = lay == 0 ? k : 1;
        if (kdnnl_gemm_bf16(m, n, k, ab, sam, sak, bb, sbk, sbn, c, n, alpha, beta) != 0) fail_msg("%s", err_msg());
        double w = check("kdnnl_gemm_bf16", m, n, k, a, sam, sak, b, sbk, sbn, c, n, y0, alpha, beta);
        if (w > worst) worst = w;
        free(a), free(b), free(c), free(y0), free(ab), free(bb);
    }
    print_message("# oneDNN bf16 product, 40 random shapes: worst error %.3f of the bound\n", worst);
}

/* kmm_xwt on a bf16 weight: oneDNN against our GEMM and the reference; m > 4 (the gemv
 * paths are ours on both engines), beta 0 and 1, the same bits twice. */
static void test_xwt_engines(void **st) {
    (void)st;
    static const int sh[][3] = {{5, 1, 1}, {13, 33, 31}, {37, 65, 257}, {100, 7, 64}, {257, 130, 129}, {12, 32, 256}};
    double worst[2] = {0, 0};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int m = sh[s][0], n = sh[s][1], k = sh[s][2];
        float *x = rand_f32((size_t)m * k), *wf = rand_f32((size_t)n * k), *y0 = rand_f32((size_t)m * n);
        uint16_t *wb = malloc((size_t)n * k * 2);
        for (size_t i = 0; i < (size_t)n * k; i++) {
            wb[i] = f32_to_bf16(wf[i]);
            wf[i] = bf16_to_f32(wb[i]);
        }
        KWeight w;
        assert_int_equal(kweight_init_bf16(&w, wb, n, k), 0);
        float *y[2], *again = malloc((size_t)m * n * sizeof(float));
        for (int e = 0; e < 2; e++) {
            kmm_bf16_engine_set(e);
            float beta = s % 2 ? 1.0f : 0.0f;
            y[e] = malloc((size_t)m * n * sizeof(float));
            memcpy(y[e], y0, (size_t)m * n * sizeof(float));
            kmm_xwt(&w, x, m, y[e], beta);
            double r = check(e ? "xwt oneDNN" : "xwt ours", m, n, k, x, k, 1, wf, 1, k, y[e], n, y0, 1.0f, beta);
            if (r > worst[e]) worst[e] = r;
            memcpy(again, y0, (size_t)m * n * sizeof(float));
            kmm_xwt(&w, x, m, again, beta);
            assert_memory_equal(again, y[e], (size_t)m * n * sizeof(float));
        }
        kmm_bf16_engine_set(-1);
        kweight_free(&w);
        free(x), free(wf), free(y0), free(wb), free(y[0]), free(y[1]), free(again);
    }
    print_message("# kmm_xwt bf16: worst error / bound: ours %.3f, oneDNN %.3f\n", worst[0], worst[1]);
}

/* The mixed-precision products (both operands rounded) on both engines. */
static void test_mixed_products(void **st) {
    (void)st;
    for (int e = 0; e < 2; e++) {
        kmm_bf16_engine_set(e);
        for (int it = 0; it < 12; it++) {
            int m = 1 + (int)(urand() % 70), n = 1 + (int)(urand() % 70), k = 1 + (int)(urand() % 150);
            int lda = k + 3, ldb = (it % 3 == 0 ? k : n) + 5, ldc = n + 2; /* strided, like the attention's */
            float alpha = it % 2 ? 0.125f : 1.0f, beta = it % 3 == 1 ? 1.0f : 0.0f;
            float *a = rand_f32((size_t)(m > k ? m : k) * (lda > m ? lda : m + 3));
            float *b = rand_f32((size_t)(n > k ? n : k) * ldb), *c = rand_f32((size_t)m * ldc);
            float *y0 = malloc((size_t)m * ldc * sizeof(float));
            memcpy(y0, c, (size_t)m * ldc * sizeof(float));
            if (it % 3 == 0) {
                kmm_bf16_nt(m, n, k, a, lda, b, ldb, c, ldc, alpha, beta);
                check("bf16_nt", m, n, k, a, lda, 1, b, 1, ldb, c, ldc, y0, alpha, beta);
            } else if (it % 3 == 1) {
                kmm_bf16_nn(m, n, k, a, lda, b, ldb, c, ldc, alpha, beta);
                check("bf16_nn", m, n, k, a, lda, 1, b, ldb, 1, c, ldc, y0, alpha, beta);
            } else {
                int ldt = m + 3; /* A stored [k, m] */
                kmm_bf16_tn(m, n, k, a, ldt, b, ldb, c, ldc, alpha, beta);
                check("bf16_tn", m, n, k, a, 1, ldt, b, ldb, 1, c, ldc, y0, alpha, beta);
            }
            free(a), free(b), free(c), free(y0);
        }
        /* dx = bf16(dy) . W */
        int m = 29, n = 70, k = 45;
        float *dy = rand_f32((size_t)m * n), *wf = rand_f32((size_t)n * k), *dx = rand_f32((size_t)m * k);
        float *y0 = malloc((size_t)m * k * sizeof(float));
        memcpy(y0, dx, (size_t)m * k * sizeof(float));
        uint16_t *wb = malloc((size_t)n * k * 2);
        for (size_t i = 0; i < (size_t)n * k; i++) wb[i] = f32_to_bf16(wf[i]);
        KWeight w;
        assert_int_equal(kweight_init_bf16(&w, wb, n, k), 0);
        kmm_xw_bf16(&w, dy, m, dx, 1.0f);
        check("xw_bf16", m, k, n, dy, n, 1, wf, k, 1, dx, k, y0, 1.0f, 1.0f);
        kweight_free(&w);
        free(dy), free(wf), free(dx), free(y0), free(wb);
    }
    kmm_bf16_engine_set(-1);
}

/* Products run from several threads at once (the attention runs one per head inside a
 * parallel loop): the same bits as one at a time (oneDNN's shared scratchpad raced). */
static void test_dnnl_concurrent(void **st) {
    (void)st;
    enum { JOBS = 16, M = 40, N = 48, K = 72 };
    float *a = rand_f32((size_t)JOBS * M * K), *b = rand_f32((size_t)JOBS * N * K);
    float *c1 = malloc((size_t)JOBS * M * N * sizeof(float)), *c2 = malloc((size_t)JOBS * M * N * sizeof(float));
    kmm_bf16_engine_set(1);
    for (int j = 0; j < JOBS; j++)
        kmm_bf16_nt(M, N, K, a + (size_t)j * M * K, K, b + (size_t)j * N * K, K, c1 + (size_t)j * M * N, N, 1.0f, 0.0f);
    for (int rep = 0; rep < 4; rep++) {
#pragma omp parallel for schedule(dynamic) num_threads(4)
        for (int j = 0; j < JOBS; j++)
            kmm_bf16_nt(M, N, K, a + (size_t)j * M * K, K, b + (size_t)j * N * K, K, c2 + (size_t)j * M * N, N, 1.0f, 0.0f);
        assert_memory_equal(c1, c2, (size_t)JOBS * M * N * sizeof(float));
    }
    kmm_bf16_engine_set(-1);
    free(a), free(b), free(c1), free(c2);
}

/* MUSCLE_DNNL=0 and kmm_bf16_engine_set(0) give ours; set(1) oneDNN. */
static void test_engine_switch(void **st) {
    (void)st;
    kmm_bf16_engine_set(0);
    assert_int_equal(kmm_bf16_engine(), KMM_ENGINE_OWN);
    kmm_bf16_engine_set(1);
    assert_int_equal(kmm_bf16_engine(), KMM_ENGINE_DNNL);
    kmm_bf16_engine_set(-1);
    /* automatic (MUSCLE_DNNL unset, level not capped): oneDNN exactly when it runs AMX, or
     * full-rate vdpbf16ps */
    const char *env = getenv("MUSCLE_DNNL");
    int want = kdnnl_has_amx() || (strcmp(kdnnl_isa(), "avx512_core_bf16") == 0 && kmm_bf16_gemm_uses_dp());
    if ((!env || !*env) && kmm_level() >= KMM_AVX512BF16) assert_int_equal(kmm_bf16_engine() == KMM_ENGINE_DNNL, want);
    /* a level capped below avx512bf16 keeps ours */
    KmmLevel saved = kmm_level();
    if ((!env || !*env) && kmm_level_cpu() >= KMM_AVX512) {
        assert_int_equal(kmm_level_set(KMM_AVX512), 0);
        assert_int_equal(kmm_bf16_engine(), KMM_ENGINE_OWN);
    }
    assert_int_equal(kmm_level_set(saved), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_present), cmocka_unit_test(test_dnnl_gemm_random),
        cmocka_unit_test(test_xwt_engines),    cmocka_unit_test(test_mixed_products),
        cmocka_unit_test(test_dnnl_concurrent), cmocka_unit_test(test_engine_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
