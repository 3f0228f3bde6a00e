/* tests/kernel/test_matmul_dnnl_pack.c - frozen bf16 weights laid out once for the
 * engine that reads them (issue 20): oneDNN's reordered copy (format_tag::any) and our
 * packed panels, built on a weight's first product and kept in its cache.
 *
 * - the product on the weights reordered once equals the product on the plain layout
 *   (oneDNN re-packs it every call: MUSCLE_DNNL_PACK=0), both within the fp32
 *   summation bound of the float64 reference of the bf16-rounded operands (the bound of
 *   test_matmul_dnnl.c); the worst difference between the two is printed;
 * - a layout is built only when a product needs it (a weight used by small products
 *   only keeps no copy), once (the same copy on later calls and from many threads at
 *   once), shared by a struct copy (a tied classifier), dropped by
 *   kweight_bf16_changed (the next product sees the new values);
 * - the backward product dx = dy W through a frozen weight (kmm_xw_bf16) on oneDNN runs
 *   on a second cached copy in the layout oneDNN prefers for that use: within the same
 *   bound as the plain layout (the two compared bit for bit), built on the first such
 *   product only, stale until kweight_repack_bf16 refreshes it (checked both ways);
 * - the products' per-thread buffers (kscratch.c) are freed by kmm_scratch_release.
 * Runs on whatever ISA this CPU has and prints the layout oneDNN chose. */
#include "testutil.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include <math.h>

#include "rand_bf16.h"
static uint16_t *to_bf16(const float *f, size_t cnt) {
    uint16_t *h = malloc((cnt ? cnt : 1) * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < cnt; i++) h[i] = f32_to_bf16(f[i]);
    return h;
}

/* y[m, nout] against bf16(x[m, red]) . B + beta y0, B(p, j) = wb[j*sj + p*sp] in bf16,
 * within (red + 2) 2^-24 (sum |terms| + |beta y0|). Returns the worst err / bound. */
static double check_prod(const char *what, int m, int nout, int red, const float *x, const uint16_t *wb, size_t sj,
                         size_t sp, const float *y, const float *y0, float beta) {
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < nout; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < red; p++) {
                double t = (double)bf16_to_f32(f32_to_bf16(x[(size_t)i * red + p])) * bf16_to_f32(wb[j * sj + p * sp]);
                s += t;
                mag += fabs(t);
            }
            double yb = beta != 0.0f ? (double)beta * y0[(size_t)i * nout + j] : 0.0;
            double want = s + yb, bound = (red + 2) * ldexp(1.0, -24) * (mag + fabs(yb)) + 1e-30;
            double err = fabs((double)y[(size_t)i * nout + j] - want);
            if (!(err <= bound))
                fail_msg("%s m=%d out=%d red=%d beta=%g: [%d,%d] = %.9g, want %.9g (err %.3g > bound %.3g)", what, m, nout,
                         red, beta, i, j, y[(size_t)i * nout + j], want, err, bound);
            if (err / bound > worst) worst = err / bound;
        }
    return worst;
}

/* y[m, n] against bf16(x) . W^T + beta y0 (W [n, k] given as bf16). */
static double check_xwt(const char *what, int m, int n, int k, const float *x, const uint16_t *wb, const float *y,
                        const float *y0, float beta) {
    return check_prod(what, m, n, k, x, wb, (size_t)k, 1, y, y0, beta);
}

static void run(const KWeight *w, const float *x, int m, const float *y0, float *y, float beta) {
    memcpy(y, y0, (size_t)m * w->n * sizeof(float));
    kmm_xwt(w, x, m, y, beta);
}

/* The reordered-once product against the plain-layout product and the reference. */
static void test_pack_once_same_product(void **st) {
    (void)st;
    if (!kdnnl_ready()) fail_msg("oneDNN has no CPU engine: it is a dependency (scripts/deps.sh installs libdnnl-dev)");
    char lay[32], impl[64];
    if (!kdnnl_weights_layout(256, 768, 768, lay, sizeof lay) || !kdnnl_impl(256, 768, 768, impl, sizeof impl))
        fail_msg("oneDNN: no bf16 matmul for 256x768x768: %s", err_msg());
    print_message("# oneDNN ISA %s, forward product %s, weights layout %s\n", kdnnl_isa(), impl, lay);
    static const int sh[][3] = {{65, 1, 1}, {65, 33, 31}, {100, 130, 129}, {257, 64, 257}, {130, 300, 250}, {200, 768, 96}};
    double worst_once = 0, worst_plain = 0, maxdiff = 0;
    int identical = 0, total = 0;
    kmm_bf16_engine_set(1);
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        for (int bi = 0; bi < 2; bi++) {
            int m = sh[s][0], n = sh[s][1], k = sh[s][2];
            float beta = bi ? 1.0f : 0.0f;
            float *x = rand_f32((size_t)m * k), *wf = rand_f32((size_t)n * k), *y0 = rand_f32((size_t)m * n);
            float *yp = malloc((size_t)m * n * sizeof(float)), *yo = malloc((size_t)m * n * sizeof(float));
            float *again = malloc((size_t)m * n * sizeof(float));
            uint16_t *wb = to_bf16(wf, (size_t)n * k);
            KWeight w;
            assert_int_equal(kweight_init_bf16(&w, wb, n, k), 0);
            kdnnl_pack_force(0);
            run(&w, x, m, y0, yp, beta);
            assert_int_equal(kweight_cache_bytes(&w), 0); /* the plain path builds nothing */
            kdnnl_pack_force(1);
            run(&w, x, m, y0, yo, beta);
            size_t bytes = kweight_cache_bytes(&w);
            assert_true(bytes >= (size_t)n * k * sizeof(uint16_t)); /* the reordered copy (padded) */
            assert_null(w.cache->packed);                           /* and not our panels */
            const void *copy = w.cache->dnnl;
            run(&w, x, m, y0, again, beta); /* built once: the same copy, the same bits */
            assert_ptr_equal(w.cache->dnnl, copy);
            assert_int_equal(kweight_cache_bytes(&w), bytes);
            assert_memory_equal(again, yo, (size_t)m * n * sizeof(float));
            double r = check_xwt("reordered once", m, n, k, x, wb, yo, y0, beta);
            if (r > worst_once) worst_once = r;
            r = check_xwt("plain layout", m, n, k, x, wb, yp, y0, beta);
            if (r > worst_plain) worst_plain = r;
            int same = memcmp(yp, yo, (size_t)m * n * sizeof(float)) == 0;
            identical += same;
            total++;
            for (size_t i = 0; i < (size_t)m * n; i++) {
                double d = fabs((double)yp[i] - yo[i]) / (fabs((double)yp[i]) + 1e-30);
                if (d > maxdiff) maxdiff = d;
            }
            kweight_free(&w);
            free(x), free(wf), free(y0), free(yp), free(yo), free(again), free(wb);
        }
    }
    kdnnl_pack_force(-1);
    kmm_bf16_engine_set(-1);
    print_message("# reordered once vs plain layout: %d of %d products bit-identical, worst relative difference %.3g; "
                  "worst error / bound: reordered %.3f, plain %.3f\n",
                  identical, total, maxdiff, worst_once, worst_plain);
}

/* Layouts are built on first need only, the one the engine reads. */
static void test_pack_lazy(void **st) {
    (void)st;
    const int n = 96, k = 80, m = 100;
    float *x = rand_f32((size_t)m * k), *wf = rand_f32((size_t)n * k), *y0 = rand_f32((size_t)m * n);
    float *y = malloc((size_t)m * n * sizeof(float));
    uint16_t *wb = to_bf16(wf, (size_t)n * k);
    KWeight w;
    assert_int_equal(kweight_init_bf16(&w, wb, n, k), 0);
    assert_int_equal(kweight_cache_bytes(&w), 0);
    /* up to 4 rows: gemv on the plain layout on every engine and level */
    run(&w, x, 4, y0, y, 0.0f);
    assert_int_equal(kweight_cache_bytes(&w), 0);
    check_xwt("gemv", 4, n, k, x, wb, y, y0, 0.0f);
    if (kmm_level() >= KMM_AVX512BF16) { /* up to 64 rows: the small-m kernel, plain layout */
        run(&w, x, 64, y0, y, 0.0f);
        assert_int_equal(kweight_cache_bytes(&w), 0);
        check_xwt("small-m", 64, n, k, x, wb, y, y0, 0.0f);
    }
    if (kmm_level() >= KMM_AVX512) { /* ours: the packed panels, exactly that size */
        kmm_bf16_engine_set(0);
        run(&w, x, m, y0, y, 1.0f);
        check_xwt("ours", m, n, k, x, wb, y, y0, 1.0f);
        size_t kq = (size_t)(k + 1) / 2, npan = (size_t)(n + KMM_NR - 1) / KMM_NR;
        assert_int_equal(kweight_cache_bytes(&w), npan * kq * KMM_NR * sizeof(uint32_t));
        assert_null(w.cache->dnnl);
    }
    kmm_bf16_engine_set(1); /* then oneDNN adds its copy */
    run(&w, x, m, y0, y, 0.0f);
    check_xwt("oneDNN", m, n, k, x, wb, y, y0, 0.0f);
    assert_non_null(w.cache->dnnl);
    kmm_bf16_engine_set(-1);
    kweight_free(&w);
    assert_null(w.cache);
    kweight_free(&w); /* twice: harmless */
    free(x), free(wf), free(y0), free(y), free(wb);
}

/* New values: kweight_bf16_changed drops the layouts; without it the product would use
 * the stale copy (checked: it still gives the old values). */
static void test_pack_changed(void **st) {
    (void)st;
    const int n = 70, k = 90, m = 80;
    float *x = rand_f32((size_t)m * k), *wf = rand_f32((size_t)n * k), *y0 = rand_f32((size_t)m * n);
    float *y = malloc((size_t)m * n * sizeof(float)), *yold = malloc((size_t)m * n * sizeof(float));
    uint16_t *wb = to_bf16(wf, (size_t)n * k), *old = to_bf16(wf, (size_t)n * k);
    for (int e = 0; e < 2; e++) {
        if (e == 0 && kmm_level() < KMM_AVX512) continue;
        kmm_bf16_engine_set(e);
        memcpy(wb, old, (size_t)n * k * sizeof(uint16_t));
        KWeight w;
        assert_int_equal(kweight_init_bf16(&w, wb, n, k), 0);
        run(&w, x, m, y0, yold, 0.0f);
        for (size_t i = 0; i < (size_t)n * k; i++) wb[i] = f32_to_bf16(-2.0f * bf16_to_f32(old[i]) + 0.25f);
        run(&w, x, m, y0, y, 0.0f); /* stale: still the old weights */
        assert_memory_equal(y, yold, (size_t)m * n * sizeof(float));
        kweight_bf16_changed(&w);
        assert_int_equal(kweight_cache_bytes(&w), 0);
        run(&w, x, m, y0, y, 0.0f);
        check_xwt(e ? "changed, oneDNN" : "changed, ours", m, n, k, x, wb, y, y0, 0.0f);
        /* kweight_repack_bf16 (mixed-precision training, every step): the built copies are
         * refreshed in place, same bytes, the new values */
        size_t bytes = kweight_cache_bytes(&w);
        assert_true(bytes > 0);
        memcpy(wb, old, (size_t)n * k * sizeof(uint16_t));
        kweight_repack_bf16(&w);
        assert_int_equal(kweight_cache_bytes(&w), bytes);
        run(&w, x, m, y0, y, 0.0f);
        assert_memory_equal(y, yold, (size_t)m * n * sizeof(float));
        kweight_free(&w);
    }
    kmm_bf16_engine_set(-1);
    free(x), free(wf), free(y0), free(y), free(yold), free(wb), free(old);
}

/* The first products on one weight from many threads at once (and through a struct
 * copy, as a tied classifier): one copy, the bits of one thread alone. */
static void test_pack_concurrent(void **st) {
    (void)st;
    enum { JOBS = 8, M = 72, N = 64, K = 96 };
    float *x = rand_f32((size_t)JOBS * M * K), *wf = rand_f32((size_t)N * K);
    float *c1 = malloc((size_t)JOBS * M * N * sizeof(float)), *c2 = malloc((size_t)JOBS * M * N * sizeof(float));
    uint16_t *wb = to_bf16(wf, (size_t)N * K);
    for (int e = 0; e < 2; e++) {
        if (e == 0 && kmm_level() < KMM_AVX512) continue;
        kmm_bf16_engine_set(e);
        KWeight w, shared;
        assert_int_equal(kweight_init_bf16(&w, wb, N, K), 0);
        shared = w;
        for (int j = 0; j < JOBS; j++) kmm_xwt(&shared, x + (size_t)j * M * K, M, c1 + (size_t)j * M * N, 0.0f);
        size_t bytes = kweight_cache_bytes(&w);
        assert_true(bytes > 0);
        kweight_free(&w);
        assert_int_equal(kweight_init_bf16(&w, wb, N, K), 0);
#pragma omp parallel for schedule(dynamic) num_threads(4)
        for (int j = 0; j < JOBS; j++) kmm_xwt(&w, x + (size_t)j * M * K, M, c2 + (size_t)j * M * N, 0.0f);
        assert_memory_equal(c1, c2, (size_t)JOBS * M * N * sizeof(float));
        assert_int_equal(kweight_cache_bytes(&w), bytes);
        kweight_free(&w);
    }
    kmm_bf16_engine_set(-1);
    free(x), free(wf), free(c1), free(c2), free(wb);
}

/* dx[m, k] against bf16(dy[m, n]) . W (W [n, k] given as bf16). */
static double check_xw(const char *what, int m, int n, int k, const float *dy, const uint16_t *wb, const float *dx) {
    return check_prod(what, m, k, n, dy, wb, 1, (size_t)k, dx, NULL, 0.0f);
}

static void test_pack_dx(void **st) {
    (void)st;
    if (!kdnnl_ready()) {
        printf("# no oneDNN CPU engine: dx layout not tested\n");
        return;
    }
    const int n = 70, k = 90, m = 80; /* ragged against every block size */
    float *dy = rand_f32((size_t)m * n), *wf = rand_f32((size_t)n * k);
    float *dx = malloc((size_t)m * k * sizeof(float)), *dxp = malloc((size_t)m * k * sizeof(float));
    float *dxold = malloc((size_t)m * k * sizeof(float)), *x = rand_f32((size_t)m * k), *y = malloc((size_t)m * n * sizeof(float));
    uint16_t *wb = to_bf16(wf, (size_t)n * k), *old = to_bf16(wf, (size_t)n * k);
    kmm_bf16_engine_set(1);
    char lay[32] = "?";
    kdnnl_weights_layout(m, k, n, lay, sizeof lay); /* the layout of W for dy W: B [n, k] */
    printf("# oneDNN ISA %s, dy.W weights layout %s\n", kdnnl_isa(), lay);
    KWeight w;
    assert_int_equal(kweight_init_bf16(&w, wb, n, k), 0);
    /* the plain layout (oneDNN re-packs it every call) */
    kdnnl_pack_force(0);
    kmm_xw_bf16(&w, dy, m, dxp, 0.0f);
    assert_int_equal(kweight_cache_bytes(&w), 0);
    kdnnl_pack_force(-1);
    /* the forward product builds only its own copy */
    kmm_xwt(&w, x, m, y, 0.0f);
    size_t fwd = kweight_cache_bytes(&w);
    kmm_xw_bf16(&w, dy, m, dx, 0.0f);
    size_t both = kweight_cache_bytes(&w);
    assert_true(both > fwd);
    double e1 = check_xw("dy.W cached layout", m, n, k, dy, wb, dx), e2 = check_xw("dy.W plain layout", m, n, k, dy, wb, dxp);
    printf("# dy.W: worst err/bound cached %.3f, plain %.3f, bit-identical: %s\n", e1, e2,
           memcmp(dx, dxp, (size_t)m * k * sizeof(float)) ? "no" : "yes");
    memcpy(dxold, dx, (size_t)m * k * sizeof(float));
    /* new values, no refresh: the cached copy is stale (the old product) */
    for (size_t i = 0; i < (size_t)n * k; i++) wb[i] = f32_to_bf16(-2.0f * bf16_to_f32(old[i]) + 0.25f);
    kmm_xw_bf16(&w, dy, m, dx, 0.0f);
    assert_memory_equal(dx, dxold, (size_t)m * k * sizeof(float));
    /* kweight_repack_bf16 refreshes dy W's copy in place too: the new values, same bytes */
    kweight_repack_bf16(&w);
    assert_int_equal(kweight_cache_bytes(&w), both);
    kmm_xw_bf16(&w, dy, m, dx, 0.0f);
    check_xw("dy.W after kweight_repack_bf16", m, n, k, dy, wb, dx);
    /* beta: dx = dy W + beta dx */
    memcpy(dxp, dx, (size_t)m * k * sizeof(float));
    kmm_xw_bf16(&w, dy, m, dxp, 1.0f);
    for (size_t i = 0; i < (size_t)m * k; i++) assert_true(fabsf(dxp[i] - 2.0f * dx[i]) <= 1e-5f * (1.0f + fabsf(dx[i])));
    kweight_free(&w);
    /* the per-thread buffers: held after the products, freed by the release */
    assert_true(kmm_scratch_bytes() > 0);
    kmm_scratch_release();
    assert_int_equal(kmm_scratch_bytes(), 0);
    kmm_bf16_engine_set(-1);
    free(dy), free(wf), free(dx), free(dxp), free(dxold), free(x), free(y), free(wb), free(old);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_once_same_product),
        cmocka_unit_test(test_pack_lazy),
        cmocka_unit_test(test_pack_changed),
        cmocka_unit_test(test_pack_concurrent),
        cmocka_unit_test(test_pack_dx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
