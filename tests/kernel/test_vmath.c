/* tests/kernel/test_vmath.c - the exp row reductions on every level this CPU has,
 * against double-precision exp, at lengths around the vector width, with the edge
 * values a softmax row meets (-inf from masks, huge negative gaps, NaN). */
#include "testutil.h"
#include "kernel/matmul.h"
#include "kernel/vmath.h"
#include <math.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float frand(float lo, float hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(rng_state >> 40) / (double)(1ull << 24));
}

static const int lengths[] = {1, 2, 15, 16, 17, 31, 32, 33, 100, 512, 32000};

static void for_each_level(void (*fn)(KmmLevel)) {
    KmmLevel saved = kmm_level();
    for (int l = KMM_PORTABLE; l <= (int)kmm_level_cpu(); l++) {
        assert_int_equal(kmm_level_set((KmmLevel)l), 0);
        fn((KmmLevel)l);
    }
    assert_int_equal(kmm_level_set(saved), 0);
}

static void check_random(KmmLevel lvl) {
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int n = lengths[li];
        float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        assert_non_null(x);
        assert_non_null(y);
        float mx_ref = -INFINITY;
        for (int i = 0; i < n; i++) {
            x[i] = frand(-30.0f, 20.0f);
            mx_ref = x[i] > mx_ref ? x[i] : mx_ref;
        }
        float mx = kvec_max(x, n);
        if (mx != mx_ref) fail_msg("level %s n=%d: max %g, want %g", kmm_level_name(lvl), n, (double)mx, (double)mx_ref);
        double ref = 0.0;
        for (int i = 0; i < n; i++) ref += exp((double)(x[i] - mx)); /* the float difference is what both compute */
        double got = kvec_sum_exp(x, mx, n);
        if (!(fabs(got - ref) <= 1e-6 * ref))
            fail_msg("level %s n=%d: sum exp %.9g, want %.9g", kmm_level_name(lvl), n, got, ref);
        kvec_exp_scale(y, x, mx, 0.5f, n);
        for (int i = 0; i < n; i++) {
            double want = 0.5 * exp((double)(x[i] - mx));
            if (!(fabs((double)y[i] - want) <= 3e-7 * want + 1e-37))
                fail_msg("level %s n=%d: exp_scale[%d] = %.9g, want %.9g", kmm_level_name(lvl), n, i, (double)y[i], want);
        }
        kvec_exp_scale(x, x, mx, 1.0f, n); /* in place */
        for (int i = 0; i < n; i++) assert_true(x[i] == y[i] * 2.0f);
        free(x);
        free(y);
    }
}

static void check_edges(KmmLevel lvl) {
    /* -inf (a masked logit) gives 0; -120 underflows to 0 or a subnormal; 0 gives 1; 88 is finite */
    float x[19] = {-INFINITY, -120.0f, -87.0f, 0.0f, -1e-8f, 1e-8f, 88.0f, -0.34657359f, 0.34657359f};
    for (int i = 9; i < 19; i++) x[i] = -INFINITY;
    float y[19];
    kvec_exp_scale(y, x, 0.0f, 1.0f, 19);
    assert_true(y[0] == 0.0f);
    assert_true(y[1] >= 0.0f && y[1] < 1e-44f);
    for (int i = 2; i < 9; i++) {
        double want = exp((double)x[i]);
        if (!(fabs((double)y[i] - want) <= 3e-7 * want))
            fail_msg("level %s: exp(%g) = %.9g, want %.9g", kmm_level_name(lvl), (double)x[i], (double)y[i], want);
    }
    for (int i = 9; i < 19; i++) assert_true(y[i] == 0.0f);
    assert_true(kvec_max(x, 19) == 88.0f);
    /* a row of -inf but one: exactly 1 */
    float row[40];
    for (int i = 0; i < 40; i++) row[i] = -INFINITY;
    row[37] = 3.0f;
    assert_true(kvec_max(row, 40) == 3.0f);
    assert_true(kvec_sum_exp(row, 3.0f, 40) == 1.0);
    /* NaN propagates into the sum instead of vanishing */
    row[5] = NAN;
    assert_true(isnan(kvec_sum_exp(row, 3.0f, 40)));
}

static void test_random(void **state) {
    (void)state;
    for_each_level(check_random);
}
static void test_edges(void **state) {
    (void)state;
    for_each_level(check_edges);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
