/* tests/kernel/test_kpanel.c - panel copies of fp32 weights (kernel/matmul.h, KPanel) and
 * kmm_xwt_panel against a scalar reference of the order it promises: per output one fma
 * chain from +0 over p = 0..k-1 (y = chain, or chain + beta y). Exact bits on ragged
 * shapes (m 1..17, 33, 64; n not a multiple of 16 nor of the 4- and 8-panel groups; k odd),
 * one thread and two (the panel split), so a row of x gets the same bits at every m. */
#include "testutil.h"
#include "kernel/matmul.h"
#include "rand_bf16.h"
#include <math.h>
#include <omp.h>

static float ref_seq(const float *x, const float *w, int k) {
    float s = 0.0f;
    for (int p = 0; p < k; p++) s = fmaf(x[p], w[p], s);
    return s;
}

static int have_avx512(void) {
    if (kmm_level_cpu() >= KMM_AVX512) return 1;
    printf("# skipped: this CPU has no AVX-512\n");
    return 0;
}

static void check(int m, int n, int k, float beta) {
    float *w = rand_f32((size_t)n * k), *x = rand_f32((size_t)m * k), *y0 = rand_f32((size_t)m * n);
    float *y = malloc((size_t)m * n * sizeof *y);
    assert_non_null(y);
    if (m > 2) x[k - 1] = -0.0f, w[(size_t)(n - 1) * k] = 0.0f; /* signed zeros in the sums */
    KWeight kw;
    KPanel kp;
    assert_int_equal(kweight_init_f32(&kw, w, n, k), 0);
    assert_int_equal(kpanel_init(&kp, &kw), 0);
    assert_int_equal(kpanel_bytes(&kp), (size_t)(n + 15) / 16 * k * 16 * sizeof(float));
    memcpy(y, y0, (size_t)m * n * sizeof *y);
    kmm_xwt_panel(&kp, x, m, y, beta);
    for (int i = 0; i < m; i++)
        for (int r = 0; r < n; r++) {
            float v = ref_seq(x + (size_t)i * k, w + (size_t)r * k, k), want = beta == 0.0f ? v : v + beta * y0[(size_t)i * n + r];
            float got = y[(size_t)i * n + r];
            if (memcmp(&got, &want, sizeof got) != 0)
                fail_msg("panel m=%d n=%d k=%d beta=%g: y[%d][%d] = %.9g, want %.9g", m, n, k, (double)beta, i, r,
                         (double)got, (double)want);
        }
    kpanel_free(&kp);
    kweight_free(&kw);
    free(w); free(x); free(y0); free(y);
}

static void test_panel_exact_ragged(void **state) {
    (void)state;
    if (!have_avx512()) return;
    KmmLevel keep = kmm_level();
    assert_int_equal(kmm_level_set(KMM_AVX512), 0);
    const int ns[] = {1, 5, 16, 33, 70, 130, 257};
    const int ks[] = {1, 7, 16, 17, 301, 531};
    const int ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33, 64};
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        for (int mi = 0; mi < 19; mi++)
            for (int ni = 0; ni < 7; ni++)
                for (int ki = 0; ki < 6; ki++) {
                    int m = ms[mi];
                    if (m > 4 && (m + ni + ki) % 3) continue; /* a sample of the larger ones */
                    check(m, ns[ni], ks[ki], (m + ki) % 3 == 0 ? 0.5f : 0.0f);
                }
        check(1, 1000, 770, 0.0f); /* 8-panel groups and a ragged last group */
        check(16, 2000, 99, 1.0f);
    }
    assert_int_equal(kmm_level_set(keep), 0);
}

/* Nothing built for bf16 weights or below level avx512 (the callers fall back to kmm_xwt). */
static void test_panel_declines(void **state) {
    (void)state;
    uint16_t wb[4 * 3] = {0};
    KWeight kw;
    KPanel kp;
    assert_int_equal(kweight_init_bf16(&kw, wb, 4, 3), 0);
    assert_int_equal(kpanel_init(&kp, &kw), 1);
    assert_null(kp.p);
    kweight_free(&kw);
    float wf[4 * 3] = {0};
    assert_int_equal(kweight_init_f32(&kw, wf, 4, 3), 0);
    KmmLevel keep = kmm_level();
    assert_int_equal(kmm_level_set(KMM_AVX2), 0);
    assert_int_equal(kpanel_init(&kp, &kw), 1);
    assert_null(kp.p);
    assert_int_equal(kmm_level_set(keep), 0);
    kweight_free(&kw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_panel_exact_ragged),
        cmocka_unit_test(test_panel_declines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
