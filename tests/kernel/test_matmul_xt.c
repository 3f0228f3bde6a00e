/* tests/kernel/test_matmul_xt.c - the fp32 small-m kernel (kernel/matmul_impl.h) of
 * products outside generation (and of generation with MUSCLE_F32_PANELS=0): the
 * dot-product form kmm_small_f32_avx512 against a scalar reference of the summation order
 * it promises - per output, 16 fma chains from +0 over the columns
 * p = l mod 16 (a tail chunk adds +0 to the classes past k), then the fixed tree
 * T_j = (s[4j] + s[4j+2]) + (s[4j+1] + s[4j+3]), y = (T0 + T1) + (T2 + T3). Exact bits on
 * ragged shapes (m 1..17 and up to 64, n not a multiple of the kernels' row blocks, k not
 * a multiple of 16 and across the 256-column block), beta 0 and not, a row range
 * [r0, r1) (a thread's share), and through kmm_xwt at level avx512 (so a row of x gets
 * the same bits at every m, which batched decoding relies on). */
#include "testutil.h"
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include "rand_bf16.h"
#include <math.h>

/* The promised order, one rounding per step. */
static float ref_dot(const float *x, const float *w, int k) {
    float s[16];
    int k16 = k & ~15;
    for (int l = 0; l < 16; l++) {
        s[l] = 0.0f;
        for (int p = l; p < k16; p += 16) s[l] = fmaf(x[p], w[p], s[l]);
        if (k16 < k) s[l] = k16 + l < k ? fmaf(x[k16 + l], w[k16 + l], s[l]) : s[l] + 0.0f;
    }
    float T[4];
    for (int j = 0; j < 4; j++) T[j] = (s[4 * j] + s[4 * j + 2]) + (s[4 * j + 1] + s[4 * j + 3]);
    return (T[0] + T[1]) + (T[2] + T[3]);
}

static int have_avx512(void) {
    if (kmm_level_cpu() >= KMM_AVX512) return 1;
    printf("# skipped: this CPU has no AVX-512\n");
    return 0;
}

typedef void SmallF32(const float *w, int k, const float *x, int m, float *y, size_t ldy, float beta, int r0, int r1);

/* Exact bits against the reference; y starts at y0 (beta != 0 reads it). */
static void check_kernel(SmallF32 *f, const char *name, int m, int n, int k, float beta, int r0, int r1) {
    float *w = rand_f32((size_t)n * k), *x = rand_f32((size_t)m * k), *y0 = rand_f32((size_t)m * n);
    float *y = malloc((size_t)m * n * sizeof *y);
    assert_non_null(y);
    if (m > 2) x[k - 1] = -0.0f, w[(size_t)(n - 1) * k] = 0.0f; /* signed zeros in the sums */
    memcpy(y, y0, (size_t)m * n * sizeof *y);
    f(w, k, x, m, y, (size_t)n, beta, r0, r1);
    for (int i = 0; i < m; i++)
        for (int r = 0; r < n; r++) {
            float want = y0[(size_t)i * n + r];
            if (r >= r0 && r < r1) {
                float v = ref_dot(x + (size_t)i * k, w + (size_t)r * k, k);
                want = beta == 0.0f ? v : v + beta * want;
            }
            float got = y[(size_t)i * n + r];
            if (memcmp(&got, &want, sizeof got) != 0)
                fail_msg("%s m=%d n=%d k=%d beta=%g rows [%d, %d): y[%d][%d] = %.9g, want %.9g", name, m, n, k,
                         (double)beta, r0, r1, i, r, (double)got, (double)want);
        }
    free(w); free(x); free(y0); free(y);
}

static void test_small_f32_exact_ragged(void **state) {
    (void)state;
    if (!have_avx512()) return;
    const int ns[] = {1, 5, 13, 16, 33, 70};
    const int ks[] = {1, 7, 16, 17, 255, 256, 300, 531};
    {
        SmallF32 *f = kmm_small_f32_avx512;
        const char *name = "dot";
        for (int m = 1; m <= 17; m++)
            for (int ni = 0; ni < 6; ni++)
                for (int ki = 0; ki < 8; ki++) {
                    if (m > 3 && (m + ni + ki) % 3) continue; /* a sample of the larger ones */
                    check_kernel(f, name, m, ns[ni], ks[ki], (m + ki) % 3 == 0 ? 0.5f : 0.0f, 0, ns[ni]);
                }
        const int big[][3] = {{33, 70, 300}, {48, 13, 17}, {64, 70, 531}, {64, 33, 16}, {20, 5, 1}};
        for (int b = 0; b < 5; b++) check_kernel(f, name, big[b][0], big[b][1], big[b][2], b == 1 ? 0.25f : 0.0f, 0, big[b][1]);
        check_kernel(f, name, 23, 100, 300, 0.0f, 32, 70); /* a thread's share: other rows untouched */
        check_kernel(f, name, 16, 100, 40, 0.5f, 64, 100);
    }
}

/* kmm_xwt at level avx512 on m <= 64 gives the reference's bits (so every m alike). */
static void test_xwt_small_m_exact(void **state) {
    (void)state;
    if (!have_avx512()) return;
    KmmLevel keep = kmm_level();
    assert_int_equal(kmm_level_set(KMM_AVX512), 0);
    const int n = 97, k = 770;
    float *w = rand_f32((size_t)n * k), *x = rand_f32((size_t)64 * k), *y = malloc((size_t)64 * n * 4);
    KWeight kw;
    assert_int_equal(kweight_init_f32(&kw, w, n, k), 0);
    const int ms[] = {1, 2, 4, 5, 11, 12, 16, 33, 64};
    for (int mi = 0; mi < 9; mi++) {
        int m = ms[mi];
        kmm_xwt(&kw, x, m, y, 0.0f);
        for (int i = 0; i < m; i++)
            for (int r = 0; r < n; r++) {
                float want = ref_dot(x + (size_t)i * k, w + (size_t)r * k, k), got = y[(size_t)i * n + r];
                if (memcmp(&got, &want, sizeof got) != 0)
                    fail_msg("kmm_xwt m=%d: y[%d][%d] = %.9g, want %.9g", m, i, r, (double)got, (double)want);
            }
    }
    kweight_free(&kw);
    free(w); free(x); free(y);
    assert_int_equal(kmm_level_set(keep), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_f32_exact_ragged),
        cmocka_unit_test(test_xwt_small_m_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
