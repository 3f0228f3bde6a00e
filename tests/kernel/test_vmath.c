/* tests/kernel/test_vmath.c - the exp row reductions on every level this CPU has,
 * against double-precision exp, at lengths around the vector width, with the edge
 * values a softmax row meets (-inf from masks, huge negative gaps, NaN); and the row
 * log-sum-exp / log-softmax policy against a float64 reference: random rows of the widths
 * a vocabulary has, -inf (masks), huge and tiny magnitudes, a temperature scale, all -inf,
 * +inf and NaN rows; the argmax's first index. */
#include "testutil.h"
#include "kernel/matmul.h"
#include "kernel/vmath.h"
#include <math.h>
#include <string.h>

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

/* ---- the row log-sum-exp / log-softmax policy (vmath.h), against a float64 reference
 * (max-subtracted, exp and sum in double) ---- */

static double ref_lse(const float *x, int n, double scale) {
    double m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (isinf(m)) return m;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp(((double)x[i] - m) * scale);
    return m * scale + log(s);
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

static void check_lse_rows(KmmLevel lvl) {
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

static void check_lse_edges(KmmLevel lvl) {
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

/* SwiGLU's gate g / (1 + exp(-g)) * u against float64, on every length's tail, at any
 * offset (the threads' shares start anywhere), out in place as well. */
static void check_silu(KmmLevel lvl) {
    enum { N = 100 };
    float g[N + 3], u[N + 3], y[N + 3];
    for (int i = 0; i < N + 3; i++) {
        g[i] = (float)(((i * 37) % 201) - 100) * 0.17f; /* -17 .. 17 */
        u[i] = (float)(((i * 53) % 19) - 9) * 0.31f;
    }
    for (int off = 0; off < 3; off++)
        for (int n = 1; n <= N; n += 7) {
            kvec_silu_mul(y + off, g + off, u + off, (size_t)n);
            for (int i = off; i < off + n; i++) {
                double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * (double)u[i];
                if (!(fabs((double)y[i] - want) <= 1e-6 * fabs(want) + 1e-30))
                    fail_msg("level %s n=%d: silu_mul[%d] = %.9g, float64 %.9g", kmm_level_name(lvl), n, i, (double)y[i], want);
            }
        }
    memcpy(y, g, sizeof g);
    kvec_silu_mul(y, y, u, N); /* in place */
    for (int i = 0; i < N; i++) {
        double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * (double)u[i];
        if (!(fabs((double)y[i] - want) <= 1e-6 * fabs(want) + 1e-30)) fail_msg("level %s: in place [%d]", kmm_level_name(lvl), i);
    }
}

static void test_silu(void **state) {
    (void)state;
    for_each_level(check_silu);
}

static void test_random(void **state) {
    (void)state;
    for_each_level(check_random);
}
static void test_edges(void **state) {
    (void)state;
    for_each_level(check_edges);
}
static void test_lse_rows(void **state) {
    (void)state;
    for_each_level(check_lse_rows);
}
static void test_lse_edges(void **state) {
    (void)state;
    for_each_level(check_lse_edges);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_lse_rows),
        cmocka_unit_test(test_lse_edges),
        cmocka_unit_test(test_silu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
