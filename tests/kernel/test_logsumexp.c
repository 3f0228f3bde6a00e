/* tests/kernel/test_logsumexp.c - the row log-sum-exp / log-softmax policy of kernel/vmath.h
 * on every level this CPU has, against a float64 reference (max-subtracted, exp and sum in
 * double): random rows of the widths a vocabulary has, rows with -inf (masks), huge and
 * tiny magnitudes, a temperature scale, all -inf, +inf and NaN; the argmax's first index. */
#include "testutil.h"
#include "kernel/matmul.h"
#include "kernel/vmath.h"
#include <math.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(float lo, float hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(rng_state >> 40) / (double)(1ull << 24));
}

static double ref_lse(const float *x, int n, double scale) {
    double m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (isinf(m)) return m;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp(((double)x[i] - m) * scale);
    return m * scale + log(s);
}

static void for_each_level(void (*fn)(KmmLevel)) {
    KmmLevel saved = kmm_level();
    for (int l = KMM_PORTABLE; l <= (int)kmm_level_cpu(); l++) {
        assert_int_equal(kmm_level_set((KmmLevel)l), 0);
        fn((KmmLevel)l);
    }
    assert_int_equal(kmm_level_set(saved), 0);
}

/* |lse - ref| within 1e-6 of the sum (relative), plus the float rounding of the input scale */
static void expect_lse(KmmLevel lvl, const char *what, const float *x, int n, double scale) {
    double want = ref_lse(x, n, scale);
    float m = kvec_max(x, n);
    double got = scale == 1.0 ? kvec_logsumexp(x, n) : kvec_lse(x, m, scale, n);
    double tol = 1e-6 + 1e-7 * fabs(want);
    if (!(fabs(got - want) <= tol))
        fail_msg("level %s %s n=%d scale %g: lse %.12g, float64 %.12g (|diff| %.2e > %.2e)", kmm_level_name(lvl), what, n,
                 scale, got, want, fabs(got - want), tol);
}

static void check_rows(KmmLevel lvl) {
    static const int lengths[] = {1, 2, 15, 16, 17, 33, 100, 4099, 32000};
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        int n = lengths[li];
        float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        assert_non_null(x);
        assert_non_null(y);
        for (int i = 0; i < n; i++) x[i] = frand(-30.0f, 20.0f);
        expect_lse(lvl, "random", x, n, 1.0);
        expect_lse(lvl, "random at T=0.7", x, n, 1.0 / 0.7);
        expect_lse(lvl, "random at T=2", x, n, 0.5);
        /* flat row: log n exactly up to rounding */
        for (int i = 0; i < n; i++) y[i] = 3.0f;
        expect_lse(lvl, "flat", y, n, 1.0);
        /* huge magnitudes: nothing overflows (max-subtracted) */
        for (int i = 0; i < n; i++) y[i] = x[i] * 1e6f;
        expect_lse(lvl, "huge", y, n, 1.0);
        for (int i = 0; i < n; i++) y[i] = 3e38f - (float)(i % 7) * 1e32f;
        expect_lse(lvl, "near FLT_MAX", y, n, 1.0);
        /* tiny differences */
        for (int i = 0; i < n; i++) y[i] = x[i] * 1e-6f;
        expect_lse(lvl, "tiny", y, n, 1.0);
        /* masked positions (-inf) beside finite ones */
        for (int i = 0; i < n; i++) y[i] = (i % 3) ? -INFINITY : x[i];
        expect_lse(lvl, "masked", y, n, 1.0);
        /* log-softmax in place: the row of logs of probabilities, summing to 1 */
        memcpy(y, x, (size_t)n * sizeof *y);
        kvec_log_softmax(y, n);
        double want = ref_lse(x, n, 1.0), psum = 0.0;
        for (int i = 0; i < n; i++) {
            double d = (double)y[i] - ((double)x[i] - want);
            if (!(fabs(d) <= 2e-6 + 2.4e-7 * fabs((double)x[i] - want)))
                fail_msg("level %s n=%d: log_softmax[%d] = %.9g, float64 %.9g", kmm_level_name(lvl), n, i, (double)y[i],
                         (double)x[i] - want);
            psum += exp((double)y[i]);
        }
        if (!(fabs(psum - 1.0) <= 2e-6)) fail_msg("level %s n=%d: probabilities sum to %.9g", kmm_level_name(lvl), n, psum);
        /* argmax: the first of equal maxima */
        x[n / 2] = 25.0f;
        x[n - 1] = 25.0f;
        assert_int_equal(kvec_argmax(x, n), n == 1 ? 0 : n / 2);
        free(x);
        free(y);
    }
}

static void check_edges(KmmLevel lvl) {
    (void)lvl;
    float row[40];
    for (int i = 0; i < 40; i++) row[i] = -INFINITY;
    assert_true(kvec_logsumexp(row, 40) == -INFINITY); /* everything masked */
    row[37] = 3.0f;
    assert_true(kvec_logsumexp(row, 40) == 3.0);        /* one finite: exactly it */
    assert_true(kvec_lse(row, 3.0f, 0.5, 40) == 1.5);
    assert_int_equal(kvec_argmax(row, 40), 37);
    kvec_log_softmax(row, 40);
    assert_true(row[37] == 0.0f && row[0] == -INFINITY);
    row[2] = INFINITY;
    assert_true(kvec_logsumexp(row, 40) == INFINITY);
    row[2] = 1.0f;
    row[5] = NAN;
    assert_true(isnan(kvec_logsumexp(row, 40)));
    /* two equal terms: log 2 above them */
    float two[2] = {-5.0f, -5.0f};
    assert_true(fabs(kvec_logsumexp(two, 2) - (-5.0 + log(2.0))) < 1e-7);
}

static void test_rows(void **state) {
    (void)state;
    for_each_level(check_rows);
}
static void test_edges(void **state) {
    (void)state;
    for_each_level(check_edges);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
