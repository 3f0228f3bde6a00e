/* tests/kernel/test_matmul.c - every matmul op on every code path this CPU has,
 * against a float64 reference, at awkward sizes around the block sizes. */
#include "testutil.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernel/matmul.h"
#include "kernel/matmul_impl.h"
#include <math.h>
#include <omp.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 23) - 1.0);
}
static float *rand_f32(size_t cnt) {
    float *p = malloc(cnt * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < cnt; i++) p[i] = frand();
    return p;
}
static uint16_t *rand_bf16(size_t cnt) {
    uint16_t *p = malloc(cnt * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < cnt; i++) p[i] = f32_to_bf16(frand());
    return p;
}
static float bf16r(float f) { return bf16_to_f32(f32_to_bf16(f)); }

#define TOL 1e-5

/* Checks got[i] against ref[i] + beta*y0[i], scaled by mag[i] = sum |terms|. */
static void check(const char *what, int lvl, int m, int n, int k, float beta, const float *got,
                  const double *ref, const double *mag, const float *y0, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        double want = ref[i] + (beta != 0.0f ? beta * (double)y0[i] : 0.0);
        double scale = mag[i] + (beta != 0.0f ? fabs(beta * (double)y0[i]) : 0.0) + 1e-30;
        double err = fabs((double)got[i] - want);
        if (!(err <= TOL * scale)) {
            fail_msg("%s level %s m=%d n=%d k=%d beta=%g: element %zu = %.9g, want %.9g (err %.3g, scale %.3g)",
                     what, kmm_level_name((KmmLevel)lvl), m, n, k, beta, i, got[i], want, err, scale);
        }
    }
}

/* ref[m,n] = a[m,k] . b[n,k]^T in float64 (or a . b with b[k,n] when bt == 0). */
static void ref_nt(const float *a, const float *b, int m, int n, int k, double *ref, double *mag) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (int q = 0; q < k; q++) {
                double t = (double)a[(size_t)i * k + q] * b[(size_t)j * k + q];
                s += t;
                sa += fabs(t);
            }
            ref[(size_t)i * n + j] = s;
            mag[(size_t)i * n + j] = sa;
        }
}

static const int sizes[][3] = {
    {1, 1, 1},     {1, 300, 77},   {17, 33, 65},  {64, 768, 768}, {2, 7, 3},     {4, 33, 31},
    {5, 31, 33},   {12, 32, 256},  {13, 33, 257}, {11, 64, 512},  {25, 65, 513}, {97, 40, 300},
    {385, 37, 19}, {3, 1000, 5},   {100, 1, 9},   {7, 130, 1},    {200, 95, 258}, {30, 2081, 40},
};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* Runs fn for each level this CPU supports, then restores the automatic one. */
static KmmLevel saved_level;
static int setup(void **state) {
    (void)state;
    saved_level = kmm_level();
    return 0;
}
static int teardown(void **state) {
    (void)state;
    kmm_level_set(saved_level);
    kmm_f32_own_gemm_force(-1);
    kmm_bf16_gemm_dp_force(-1);
    return 0;
}

static void test_xwt_and_xw(void **state) {
    (void)state;
    for (int s = 0; s < NSIZES; s++) {
        int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        float *x = rand_f32((size_t)m * k), *dy = rand_f32((size_t)m * n);
        float *wf = rand_f32((size_t)n * k);
        uint16_t *wb = rand_bf16((size_t)n * k);
        float *wbf = malloc((size_t)n * k * sizeof(float)), *xr = malloc((size_t)m * k * sizeof(float));
        for (size_t i = 0; i < (size_t)n * k; i++) wbf[i] = bf16_to_f32(wb[i]);
        for (size_t i = 0; i < (size_t)m * k; i++) xr[i] = bf16r(x[i]);
        /* transposes for the backward reference: dx = dy . W = dy . (W^T)^T */
        float *wft = malloc((size_t)n * k * sizeof(float)), *wbt = malloc((size_t)n * k * sizeof(float));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++) {
                wft[(size_t)j * n + i] = wf[(size_t)i * k + j];
                wbt[(size_t)j * n + i] = wbf[(size_t)i * k + j];
            }
        size_t cy = (size_t)m * n, cx = (size_t)m * k;
        double *rf = malloc(cy * 8), *mf = malloc(cy * 8), *rb = malloc(cy * 8), *mb = malloc(cy * 8);
        double *rdf = malloc(cx * 8), *mdf = malloc(cx * 8), *rdb = malloc(cx * 8), *mdb = malloc(cx * 8);
        ref_nt(x, wf, m, n, k, rf, mf);
        ref_nt(xr, wbf, m, n, k, rb, mb);
        ref_nt(dy, wft, m, k, n, rdf, mdf);
        ref_nt(dy, wbt, m, k, n, rdb, mdb);
        float *y0 = rand_f32(cy), *dx0 = rand_f32(cx);
        float *y = malloc(cy * sizeof(float)), *dx = malloc(cx * sizeof(float));
        KWeight kf, kb;
        assert_int_equal(kweight_init_f32(&kf, wf, n, k), 0);
        assert_int_equal(kweight_init_bf16(&kb, wb, n, k), 0);
        for (int v = 0; v < 2 * ((int)kmm_level_cpu() + 1); v++) {
            int lvl = v / 2;
            if ((v & 1) && lvl < KMM_AVX512) continue;
            assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
            kmm_f32_own_gemm_force(v & 1);
            kmm_bf16_gemm_dp_force(v & 1);
            for (int bi = 0; bi < 2; bi++) {
                float beta = bi ? 1.0f : 0.0f;
                /* beta == 0 must not read the output: start from NaN */
                for (size_t i = 0; i < cy; i++) y[i] = bi ? y0[i] : NAN;
                kmm_xwt(&kf, x, m, y, beta);
                check("xwt f32", lvl, m, n, k, beta, y, rf, mf, y0, cy);
                for (size_t i = 0; i < cy; i++) y[i] = bi ? y0[i] : NAN;
                kmm_xwt(&kb, x, m, y, beta);
                check("xwt bf16", lvl, m, n, k, beta, y, rb, mb, y0, cy);
                for (size_t i = 0; i < cx; i++) dx[i] = bi ? dx0[i] : NAN;
                kmm_xw(&kf, dy, m, dx, beta);
                check("xw f32", lvl, m, n, k, beta, dx, rdf, mdf, dx0, cx);
                for (size_t i = 0; i < cx; i++) dx[i] = bi ? dx0[i] : NAN;
                kmm_xw(&kb, dy, m, dx, beta);
                check("xw bf16", lvl, m, n, k, beta, dx, rdb, mdb, dx0, cx);
            }
            /* a beta other than 0 and 1 */
            memcpy(y, y0, cy * sizeof(float));
            kmm_xwt(&kb, x, m, y, -0.5f);
            check("xwt bf16", lvl, m, n, k, -0.5f, y, rb, mb, y0, cy);
        }
        kweight_free(&kf);
        kweight_free(&kb);
        free(x); free(dy); free(wf); free(wb); free(wbf); free(xr); free(wft); free(wbt);
        free(rf); free(mf); free(rb); free(mb); free(rdf); free(mdf); free(rdb); free(mdb);
        free(y0); free(dx0); free(y); free(dx);
    }
}

static void test_dw(void **state) {
    (void)state;
    static const int ds[][3] = {{1, 1, 1}, {17, 33, 65}, {256, 96, 80}, {3, 300, 77}, {300, 2100, 45}, {513, 37, 70}};
    for (int s = 0; s < 6; s++) {
        int m = ds[s][0], n = ds[s][1], k = ds[s][2];
        float *dy = rand_f32((size_t)m * n), *x = rand_f32((size_t)m * k);
        float *dyt = malloc((size_t)m * n * sizeof(float)), *xt = malloc((size_t)m * k * sizeof(float));
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) dyt[(size_t)j * m + i] = dy[(size_t)i * n + j];
            for (int j = 0; j < k; j++) xt[(size_t)j * m + i] = x[(size_t)i * k + j];
        }
        size_t c = (size_t)n * k;
        double *ref = malloc(c * 8), *mag = malloc(c * 8);
        ref_nt(dyt, xt, n, k, m, ref, mag);
        float *w0 = rand_f32(c), *dw = malloc(c * sizeof(float));
        for (int v = 0; v < 2 * ((int)kmm_level_cpu() + 1); v++) {
            int lvl = v / 2;
            if ((v & 1) && lvl < KMM_AVX512) continue;
            assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
            kmm_f32_own_gemm_force(v & 1);
            kmm_bf16_gemm_dp_force(v & 1);
            for (int bi = 0; bi < 2; bi++) {
                for (size_t i = 0; i < c; i++) dw[i] = bi ? w0[i] : NAN;
                kmm_dw(dy, x, m, n, k, dw, (float)bi);
                check("dw", lvl, m, n, k, (float)bi, dw, ref, mag, w0, c);
            }
        }
        free(dy); free(x); free(dyt); free(xt); free(ref); free(mag); free(w0); free(dw);
    }
}

/* The fp32 wrappers (sgemm or our GEMM), with leading dimensions wider than
 * the matrices, alpha and beta. */
static void test_f32_wrappers(void **state) {
    (void)state;
    static const int dims[][3] = {{9, 13, 21}, {37, 70, 300}, {1, 1, 1}};
    const int ld = 310;
    float *a = rand_f32((size_t)ld * ld), *b = rand_f32((size_t)ld * ld), *c0 = rand_f32((size_t)ld * ld);
    float *c = malloc((size_t)ld * ld * sizeof(float));
    for (int v = 0; v < 2 * ((int)kmm_level_cpu() + 1); v++) {
        int lvl = v / 2;
        if ((v & 1) && lvl < KMM_AVX512) continue;
        assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
        kmm_f32_own_gemm_force(v & 1);
            kmm_bf16_gemm_dp_force(v & 1);
        for (int d = 0; d < 3; d++)
            for (int op = 0; op < 3; op++) {
                int m = dims[d][0], n = dims[d][1], k = dims[d][2];
                memcpy(c, c0, (size_t)ld * ld * sizeof(float));
                if (op == 0) kmm_f32_nt(m, n, k, a, ld, b, ld, c, ld, 0.5f, 2.0f);
                if (op == 1) kmm_f32_nn(m, n, k, a, ld, b, ld, c, ld, 0.5f, 2.0f);
                if (op == 2) kmm_f32_tn(m, n, k, a, ld, b, ld, c, ld, 0.5f, 2.0f);
                for (int i = 0; i < ld; i++)
                    for (int j = 0; j < ld; j++) {
                        size_t o = (size_t)i * ld + j;
                        if (i >= m || j >= n) {
                            assert_true(c[o] == c0[o]); /* outside C: untouched */
                            continue;
                        }
                        double s = 0, sa = 0;
                        for (int q = 0; q < k; q++) {
                            double av = op == 2 ? a[(size_t)q * ld + i] : a[(size_t)i * ld + q];
                            double bv = op == 0 ? b[(size_t)j * ld + q] : b[(size_t)q * ld + j];
                            s += av * bv;
                            sa += fabs(av * bv);
                        }
                        double want = 0.5 * s + 2.0 * c0[o];
                        if (!(fabs(c[o] - want) <= TOL * (0.5 * sa + 2.0 * fabs(c0[o]))))
                            fail_msg("f32 wrapper op %d level %d own %d m=%d n=%d k=%d: c[%d,%d] = %.9g, want %.9g",
                                     op, lvl, v & 1, m, n, k, i, j, c[o], want);
                    }
            }
    }
    free(a); free(b); free(c0); free(c);
}

/* x is rounded to bf16 nearest-even on every path: with k = 1 each output is
 * a single exact product, so the result must match bit for bit. */
static void test_bf16_rounding_exact(void **state) {
    (void)state;
    const float xs[] = {1.00390625f, 1.01171875f, -1.00390625f, 3.14159265f, 1e-3f, -7.77e5f, 0.33333334f};
    const int nx = 7, n = 37;
    uint16_t wb[37];
    for (int j = 0; j < n; j++) wb[j] = f32_to_bf16(0.75f + 0.125f * (float)j * (j & 1 ? -1.0f : 1.0f));
    int ms[] = {1, 3, 7 * 4};
    for (int lvl = 0; lvl <= (int)kmm_level_cpu(); lvl++) {
        assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
        KWeight w;
        assert_int_equal(kweight_init_bf16(&w, wb, n, 1), 0);
        for (int mi = 0; mi < 3; mi++) {
            int m = ms[mi];
            float x[28], y[28 * 37];
            for (int i = 0; i < m; i++) x[i] = xs[i % nx] * (float)(1 + i / nx);
            kmm_xwt(&w, x, m, y, 0.0f);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    float want = bf16r(x[i]) * bf16_to_f32(wb[j]);
                    if (y[i * n + j] != want)
                        fail_msg("level %s m=%d: y[%d,%d] = %.9g, want %.9g", kmm_level_name((KmmLevel)lvl),
                                 m, i, j, y[i * n + j], want);
                }
        }
        kweight_free(&w);
    }
}

/* Same call twice => same bits, on every path, for gemv and GEMM sizes. */
static void test_deterministic(void **state) {
    (void)state;
    const int n = 300, k = 515;
    float *wf = rand_f32((size_t)n * k), *x = rand_f32((size_t)200 * k), *dy = rand_f32((size_t)200 * n);
    uint16_t *wb = rand_bf16((size_t)n * k);
    float *y1 = malloc((size_t)200 * n * 4), *y2 = malloc((size_t)200 * n * 4);
    float *d1 = malloc((size_t)200 * k * 4), *d2 = malloc((size_t)200 * k * 4);
    KWeight kf, kb;
    assert_int_equal(kweight_init_f32(&kf, wf, n, k), 0);
    assert_int_equal(kweight_init_bf16(&kb, wb, n, k), 0);
    int ms[] = {1, 3, 37, 200};
    for (int v = 0; v < 2 * ((int)kmm_level_cpu() + 1); v++) {
        int lvl = v / 2;
        if ((v & 1) && lvl < KMM_AVX512) continue;
        assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
        kmm_f32_own_gemm_force(v & 1);
            kmm_bf16_gemm_dp_force(v & 1);
        for (int mi = 0; mi < 4; mi++)
            for (int wi = 0; wi < 2; wi++) {
                const KWeight *w = wi ? &kb : &kf;
                int m = ms[mi];
                kmm_xwt(w, x, m, y1, 0.0f);
                kmm_xwt(w, x, m, y2, 0.0f);
                assert_memory_equal(y1, y2, (size_t)m * n * 4);
                kmm_xw(w, dy, m, d1, 0.0f);
                kmm_xw(w, dy, m, d2, 0.0f);
                assert_memory_equal(d1, d2, (size_t)m * k * 4);
            }
    }
    kweight_free(&kf);
    kweight_free(&kb);
    free(wf); free(x); free(dy); free(wb); free(y1); free(y2); free(d1); free(d2);
}

/* Batched decoding's promise (matmul_impl.h, small-m products): a row of x gets the same
 * bits in a product of m <= 64 rows as alone, fp32 weights at avx2 and up, bf16 weights
 * at avx512bf16 - so greedy ids of a batch equal single-stream ones. */
static void test_row_bits_independent_of_m(void **state) {
    (void)state;
    const int shapes[][2] = {{300, 515}, {33, 64}, {70, 31}, {1, 768}};
    const int ms[] = {2, 3, 4, 5, 8, 16, 37, 64};
    for (int si = 0; si < 4; si++) {
        int n = shapes[si][0], k = shapes[si][1];
        float *wf = rand_f32((size_t)n * k), *x = rand_f32((size_t)64 * k);
        uint16_t *wb = rand_bf16((size_t)n * k);
        float *y1 = malloc((size_t)64 * n * 4), *ym = malloc((size_t)64 * n * 4);
        KWeight kf, kb;
        assert_int_equal(kweight_init_f32(&kf, wf, n, k), 0);
        assert_int_equal(kweight_init_bf16(&kb, wb, n, k), 0);
        for (int lvl = KMM_AVX2; lvl <= (int)kmm_level_cpu(); lvl++) {
            assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
            for (int wi = 0; wi < 2; wi++) {
                const KWeight *w = wi ? &kb : &kf;
                if (wi && lvl < KMM_AVX512BF16) continue;
                for (int i = 0; i < 64; i++) kmm_xwt(w, x + (size_t)i * k, 1, y1 + (size_t)i * n, 0.0f);
                for (int mi = 0; mi < 8; mi++) {
                    int m = ms[mi];
                    kmm_xwt(w, x, m, ym, 0.0f);
                    for (int i = 0; i < m; i++)
                        if (memcmp(y1 + (size_t)i * n, ym + (size_t)i * n, (size_t)n * 4) != 0)
                            fail_msg("level %s %s n=%d k=%d: row %d of m=%d differs from the row alone",
                                     kmm_level_name((KmmLevel)lvl), wi ? "bf16" : "f32", n, k, i, m);
                }
            }
        }
        kweight_free(&kf);
        kweight_free(&kb);
        free(wf); free(x); free(wb); free(y1); free(ym);
    }
}

/* Decoding attention's one-row products (kmm_row_nt / kmm_row_nn) against a double
 * reference, head sizes with and without a 16-tail, at every level; the score of key j
 * (and an output column) has the same bits whatever n is (a query row's attention does not
 * depend on how many keys share its call). */
static void test_row_products(void **state) {
    (void)state;
    const int hds[] = {64, 80, 24, 7, 128, 200};
    const int keys[] = {1, 2, 15, 16, 17, 33, 100};
    for (int lvl = KMM_PORTABLE; lvl <= (int)kmm_level_cpu(); lvl++) {
        assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
        for (int hi = 0; hi < 6; hi++)
            for (int ki = 0; ki < 7; ki++) {
                int hd = hds[hi], T = keys[ki];
                size_t ld = (size_t)hd + 13; /* a stride wider than a row, like a cache's kvd */
                float *q = rand_f32((size_t)hd), *kv = rand_f32((size_t)T * ld), *p = rand_f32((size_t)T);
                float *s = malloc((size_t)T * 4), *s1 = malloc(4), *o = malloc((size_t)hd * 4), *o1 = malloc((size_t)hd * 4);
                kmm_row_nt(T, hd, q, kv, ld, s, 0.125f);
                for (int j = 0; j < T; j++) {
                    double ref = 0, mag = 0;
                    for (int d = 0; d < hd; d++) {
                        ref += (double)q[d] * kv[(size_t)j * ld + d];
                        mag += fabs((double)q[d] * kv[(size_t)j * ld + d]);
                    }
                    assert_true(fabs(s[j] - 0.125 * ref) <= 1e-6 * 0.125 * mag + 1e-30);
                    kmm_row_nt(1, hd, q, kv + (size_t)j * ld, ld, s1, 0.125f);
                    assert_memory_equal(s1, s + j, 4);
                }
                kmm_row_nn(hd, T, p, kv, ld, o);
                for (int d = 0; d < hd; d++) {
                    double ref = 0, mag = 0;
                    for (int j = 0; j < T; j++) {
                        ref += (double)p[j] * kv[(size_t)j * ld + d];
                        mag += fabs((double)p[j] * kv[(size_t)j * ld + d]);
                    }
                    assert_true(fabs(o[d] - ref) <= 1e-6 * mag + 1e-30);
                }
                if (hd > 16) { /* the first 16 columns alone: the same bits */
                    kmm_row_nn(16, T, p, kv, ld, o1);
                    assert_memory_equal(o1, o, 16 * 4);
                }
                free(q); free(kv); free(p); free(s); free(s1); free(o); free(o1);
            }
    }
}

/* The one-row products reading bf16 rows in place (a bf16 KV cache) give the bits of
 * widening the rows to fp32 first and calling kmm_row_nt / kmm_row_nn, at every level:
 * head sizes with and without a 16-tail, key counts around the blocks of 16, a stride wider
 * than a row and a first row not 64-byte aligned. */
static void test_row_products_bf16(void **state) {
    (void)state;
    const int hds[] = {64, 80, 24, 7, 128};
    const int keys[] = {1, 2, 15, 16, 17, 33, 100};
    for (int lvl = KMM_PORTABLE; lvl <= (int)kmm_level_cpu(); lvl++) {
        assert_int_equal(kmm_level_set((KmmLevel)lvl), 0);
        for (int hi = 0; hi < 5; hi++)
            for (int ki = 0; ki < 7; ki++) {
                const int hd = hds[hi], T = keys[ki];
                const size_t ld = (size_t)hd + 13, cnt = (size_t)T * ld;
                uint16_t *kv16 = rand_bf16(cnt + 3);
                float *kv = malloc(cnt * sizeof *kv), *q = rand_f32((size_t)hd), *p = rand_f32((size_t)T);
                float *s = malloc((size_t)T * 4), *s16 = malloc((size_t)T * 4);
                float *o = malloc((size_t)hd * 4), *o16 = malloc((size_t)hd * 4);
                assert_non_null(kv); assert_non_null(s); assert_non_null(s16); assert_non_null(o); assert_non_null(o16);
                const uint16_t *b16 = kv16 + 3; /* 6 bytes into the buffer */
                dtype_to_f32(DT_BF16, b16, kv, cnt);
                kmm_row_nt(T, hd, q, kv, ld, s, 0.125f);
                kmm_row_nt_bf16(T, hd, q, b16, ld, s16, 0.125f);
                assert_memory_equal(s16, s, (size_t)T * 4);
                kmm_row_nn(hd, T, p, kv, ld, o);
                kmm_row_nn_bf16(hd, T, p, b16, ld, o16);
                assert_memory_equal(o16, o, (size_t)hd * 4);
                free(kv16); free(kv); free(q); free(p); free(s); free(s16); free(o); free(o16);
            }
    }
}

static void test_levels_and_errors(void **state) {
    (void)state;
    KmmLevel l;
    assert_int_equal(kmm_level_parse("portable", &l), 0);
    assert_int_equal(l, KMM_PORTABLE);
    assert_int_equal(kmm_level_parse("avx512bf16", &l), 0);
    assert_int_equal(l, KMM_AVX512BF16);
    assert_int_equal(kmm_level_parse("auto", &l), 0);
    assert_true(l <= kmm_level_cpu());
    assert_int_equal(kmm_level_parse("sse9", &l), -1);
    assert_non_null(strstr(err_msg(), "sse9"));
    assert_int_equal(kmm_level_set((KmmLevel)7), -1);
    assert_true(kmm_level() <= kmm_level_cpu());
    KWeight w;
    float one = 1.0f;
    assert_int_equal(kweight_init_f32(&w, &one, 0, 1), -1);
    assert_non_null(strstr(err_msg(), "[0, 1]"));
    assert_int_equal(kweight_init_bf16(&w, NULL, 1, 1), -1);
    kweight_free(&w);
    kweight_free(NULL);
    /* m == 0 does nothing */
    uint16_t b = 0x3f80;
    float y = 5.0f;
    assert_int_equal(kweight_init_bf16(&w, &b, 1, 1), 0);
    kmm_xwt(&w, &one, 0, &y, 0.0f);
    assert_true(y == 5.0f);
    kweight_free(&w);
}

/* The AVX-512 register transpose used by the packers, at odd sizes. */
static void test_transpose(void **state) {
    (void)state;
    if (kmm_level_cpu() < KMM_AVX512) skip();
    static const int rc[][2] = {{1, 1}, {16, 16}, {17, 5}, {3, 33}, {32, 256}, {12, 255}, {31, 47}};
    for (int t = 0; t < 7; t++) {
        int rows = rc[t][0], cols = rc[t][1], lds = cols + 3, ldd = rows + 5;
        float *src = rand_f32((size_t)rows * lds), *dst = malloc((size_t)cols * ldd * sizeof(float));
        for (size_t i = 0; i < (size_t)cols * ldd; i++) dst[i] = 12345.0f;
        kmm_transpose_avx512(src, lds, rows, cols, dst, ldd);
        for (int j = 0; j < cols; j++)
            for (int i = 0; i < ldd; i++)
                assert_true(dst[(size_t)j * ldd + i] == (i < rows ? src[(size_t)i * lds + j] : 12345.0f));
        free(src);
        free(dst);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_xwt_and_xw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bf16_rounding_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_bits_independent_of_m, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_products, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_products_bf16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_f32_wrappers, setup, teardown),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_levels_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
