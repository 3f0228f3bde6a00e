/* tests/model/test_ops_backward.c - the backward halves of the operations the Phi and Gemma
 * blocks add (model/ops.h, rope_*_partial) against central differences of float64
 * re-implementations written here from the definitions (transformers' LayerNorm,
 * gelu_new / gelu_pytorch_tanh, GemmaRMSNorm's (1 + w), Gemma's embedding normalizer,
 * Phi's partial rotary), each first checked against the engine's forward half, in the
 * style of test_backward.c (gradcheck.h): error max|analytic - numeric| / max|numeric|,
 * and each check shows that a plausible wrong gradient is caught by its tolerance. */
#include "gradcheck.h"
#include "model/ops.h"

#define TOL 1e-4
#define FD_STEP 1e-5

static double worst = 0;

static void check(const char *what, const float *a, const double *num, size_t n) {
    double e = rel_err_fd(a, num, n);
    printf("# %-36s rel err %.2e (tol %.0e)\n", what, e, TOL);
    if (!(e < TOL)) fail_msg("%s: gradient relative error %.3e exceeds %.1e", what, e, TOL);
    if (e > worst) worst = e;
}
static void caught(const char *what, const float *wrong, const double *num, size_t n) {
    double e = rel_err_fd(wrong, num, n);
    printf("# %-36s rel err %.2e: caught\n", what, e);
    if (!(e >= TOL)) fail_msg("%s: a wrong gradient (rel err %.3e) passes", what, e);
}
static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- LayerNorm with bias (Phi) --------------------------------------------- */

enum { N = 3, D = 8 };
typedef struct { double *x, *w, *b, *R; } LnCtx;
static void d_layernorm(double *o, const double *x, const double *w, const double *b, double eps) {
    for (int r = 0; r < N; r++) {
        double mu = 0, var = 0;
        for (int i = 0; i < D; i++) mu += x[r * D + i] / D;
        for (int i = 0; i < D; i++) var += (x[r * D + i] - mu) * (x[r * D + i] - mu) / D;
        for (int i = 0; i < D; i++) o[r * D + i] = (x[r * D + i] - mu) / sqrt(var + eps) * w[i] + b[i];
    }
}
static double ln_obj(void *p) {
    LnCtx *c = p;
    double o[N * D];
    d_layernorm(o, c->x, c->w, c->b, 1e-5);
    return dot(c->R, o, N * D);
}

static void test_layernorm_backward(void **state) {
    (void)state;
    TRng r = {31};
    float x[N * D], w[D], b[D], R[N * D], out[N * D], mean[N], rstd[N], dx[N * D] = {0}, dw[D] = {0}, db[D] = {0};
    trng_fill(&r, x, N * D, 1.5f);
    for (int i = 0; i < N * D; i++) x[i] += 0.7f; /* a mean that matters */
    for (int i = 0; i < D; i++) { w[i] = 1.0f + trng_sym(&r, 0.5f); b[i] = trng_sym(&r, 0.5f); }
    trng_fill(&r, R, N * D, 1.0f);
    layernorm_forward(out, mean, rstd, x, w, b, N, D, 1e-5f);
    LnCtx c = {dup_f64(x, N * D), dup_f64(w, D), dup_f64(b, D), dup_f64(R, N * D)};
    double od[N * D];
    d_layernorm(od, c.x, c.w, c.b, 1e-5);
    assert_true(rel_err_fd(out, od, N * D) < 1e-6);
    layernorm_backward(dx, dw, db, R, x, w, mean, rstd, N, D);
    double nx[N * D], nw[D], nb[D];
    fd_grad(c.x, N * D, FD_STEP, ln_obj, &c, nx);
    fd_grad(c.w, D, FD_STEP, ln_obj, &c, nw);
    fd_grad(c.b, D, FD_STEP, ln_obj, &c, nb);
    check("layernorm dx", dx, nx, N * D);
    check("layernorm dw", dw, nw, D);
    check("layernorm db", db, nb, D);
    /* through the family's dispatcher (stat = rstd then mean), accumulating */
    ModelConfig cfg = {.norm_eps = 1e-5f, .arch = arch_from_model_type("phi")};
    float stat[2 * N], out2[N * D];
    norm_forward(&cfg, out2, stat, x, w, b, N, D);
    assert_memory_equal(out, out2, sizeof out);
    norm_backward(&cfg, dx, dw, db, R, x, w, stat, N, D);
    for (int i = 0; i < D; i++) nb[i] *= 2;
    check("layernorm db accumulated twice", db, nb, D);
    /* wrong: the RMSNorm's derivative (no mean term) */
    float wrong[N * D] = {0};
    for (int t = 0; t < N; t++)
        for (int i = 0; i < D; i++) wrong[t * D + i] = rstd[t] * w[i] * R[t * D + i];
    caught("layernorm dx without the mean terms", wrong, nx, N * D);
    free(c.x); free(c.w); free(c.b); free(c.R);
}

/* ---- RMSNorm times (1 + w) (Gemma) ------------------------------------------- */

typedef struct { double *x, *w, *R; } RmsCtx;
static double rms1_obj(void *p) {
    RmsCtx *c = p;
    double o[N * D], w1[D];
    for (int i = 0; i < D; i++) w1[i] = 1.0 + c->w[i];
    d_rmsnorm(o, c->x, w1, N, D, 1e-6);
    return dot(c->R, o, N * D);
}

static void test_rmsnorm_offset_backward(void **state) {
    (void)state;
    TRng r = {32};
    float x[N * D], w[D], R[N * D], out[N * D], rstd[N], dx[N * D] = {0}, dw[D] = {0};
    trng_fill(&r, x, N * D, 1.5f);
    for (int i = 0; i < D; i++) w[i] = trng_sym(&r, 0.5f); /* around 0: Gemma's weights */
    trng_fill(&r, R, N * D, 1.0f);
    ModelConfig cfg = {.norm_eps = 1e-6f, .norm_offset = 1.0f, .arch = arch_from_model_type("gemma")};
    norm_forward(&cfg, out, rstd, x, w, NULL, N, D);
    RmsCtx c = {dup_f64(x, N * D), dup_f64(w, D), dup_f64(R, N * D)};
    double od[N * D], w1[D];
    for (int i = 0; i < D; i++) w1[i] = 1.0 + c.w[i];
    d_rmsnorm(od, c.x, w1, N, D, 1e-6);
    assert_true(rel_err_fd(out, od, N * D) < 1e-6);
    norm_backward(&cfg, dx, dw, NULL, R, x, w, rstd, N, D);
    double nx[N * D], nw[D];
    fd_grad(c.x, N * D, FD_STEP, rms1_obj, &c, nx);
    fd_grad(c.w, D, FD_STEP, rms1_obj, &c, nw);
    check("rmsnorm (1 + w) dx", dx, nx, N * D);
    check("rmsnorm (1 + w) dw", dw, nw, D);
    /* wrong: the offset forgotten in the backward pass */
    float wrong[N * D] = {0}, wd[D] = {0};
    rmsnorm_off_backward(wrong, wd, R, x, w, 0.0f, rstd, N, D);
    caught("rmsnorm dx with w instead of 1 + w", wrong, nx, N * D);
    free(c.x); free(c.w); free(c.R);
}

/* ---- GELU (tanh) and GeGLU --------------------------------------------------- */

enum { M = 40 };
static double d_gelu(double x) { return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }
typedef struct { double *h1, *h3, *R; int geglu; } ActCtx;
static double act_obj(void *p) {
    ActCtx *c = p;
    double s = 0;
    for (int i = 0; i < M; i++) s += c->R[i] * (c->geglu ? d_gelu(c->h1[i]) * c->h3[i] : d_gelu(c->h1[i]));
    return s;
}

static void test_gelu_geglu_backward(void **state) {
    (void)state;
    TRng r = {33};
    float h1[M], h3[M], R[M], y[M], d1[M], d3[M];
    trng_fill(&r, h1, M, 3.0f);
    trng_fill(&r, h3, M, 1.5f);
    trng_fill(&r, R, M, 1.0f);
    ActCtx c = {dup_f64(h1, M), dup_f64(h3, M), dup_f64(R, M), 0};
    double yd[M], n1[M], n3[M];
    gelu_tanh_forward(y, h1, M);
    for (int i = 0; i < M; i++) yd[i] = d_gelu(c.h1[i]);
    assert_true(rel_err_fd(y, yd, M) < 1e-6);
    gelu_tanh_backward(d1, R, h1, M);
    fd_grad(c.h1, M, FD_STEP, act_obj, &c, n1);
    check("gelu_tanh dx", d1, n1, M);
    float wrong[M];
    for (int i = 0; i < M; i++) wrong[i] = R[i] * 0.5f * (1.0f + erff(h1[i] / sqrtf(2.0f))); /* Phi(x), not the derivative */
    caught("gelu dx = dy * Phi(x)", wrong, n1, M);
    c.geglu = 1;
    geglu_forward(y, h1, h3, M);
    for (int i = 0; i < M; i++) yd[i] = d_gelu(c.h1[i]) * c.h3[i];
    assert_true(rel_err_fd(y, yd, M) < 1e-6);
    memcpy(d1, R, sizeof d1);
    geglu_backward(d1, d3, d1, h1, h3, M); /* dh1 in place of dhg, as the layer does */
    fd_grad(c.h1, M, FD_STEP, act_obj, &c, n1);
    fd_grad(c.h3, M, FD_STEP, act_obj, &c, n3);
    check("geglu dgate", d1, n1, M);
    check("geglu dup", d3, n3, M);
    float sw1[M], sw3[M];
    swiglu_backward(sw1, sw3, R, h1, h3, M);
    caught("geglu dgate with silu's derivative", sw1, n1, M);
    free(c.h1); free(c.h3); free(c.R);
}

/* ---- embedding scale (Gemma) ------------------------------------------------- */

static void test_embed_scale_backward(void **state) {
    (void)state;
    ModelConfig cfg = {.dim = 2048, .arch = arch_from_model_type("gemma")};
    float s = embed_scale_of(&cfg);
    assert_true(s == (float)sqrt(2048.0)); /* the normalizer rounded to float, as transformers */
    cfg.arch = arch_from_model_type("phi");
    assert_true(embed_scale_of(&cfg) == 1.0f);
    /* y = s x: the objective R . y has gradient s R exactly (linear: differences exact too) */
    enum { K = 16 };
    TRng r = {34};
    float x[K], R[K], y[K], dx[K];
    trng_fill(&r, x, K, 1.0f);
    trng_fill(&r, R, K, 1.0f);
    memcpy(y, x, sizeof y);
    embed_scale_forward(y, K, s);
    double num[K];
    for (int i = 0; i < K; i++) {
        assert_true(y[i] == x[i] * s);
        double h = FD_STEP, xp = (double)x[i] + h, xm = (double)x[i] - h;
        num[i] = (R[i] * xp * s - R[i] * xm * s) / (2 * h);
    }
    memcpy(dx, R, sizeof dx);
    embed_scale_backward(dx, K, s);
    check("embedding scale dx", dx, num, K);
    caught("embedding scale gradient left unscaled", R, num, K);
}

/* ---- partial rotary (Phi) ---------------------------------------------------- */

enum { RB = 2, RN = 5, NH = 2, HD = 8, RD = 4, RN_ = RB * RN, LEN = RN_ * NH * HD, S = 16 };
typedef struct { double *x, *R; const float *cosT, *sinT; } PrCtx;
/* the first RD dims of each head turn (pairs (2i, 2i + 1) after the loader's permutation) */
static void d_rope_partial(double *x, const float *cosT, const float *sinT, int pos0) {
    for (int r = 0; r < RN_; r++) {
        int pos = pos0 + r % RN;
        for (int h = 0; h < NH; h++) {
            double *v = x + (size_t)r * NH * HD + (size_t)h * HD;
            for (int i = 0; i < RD / 2; i++) {
                double c = cosT[pos * (RD / 2) + i], s = sinT[pos * (RD / 2) + i], a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}
static double pr_obj(void *p) {
    PrCtx *c = p;
    double y[LEN];
    memcpy(y, c->x, sizeof y);
    d_rope_partial(y, c->cosT, c->sinT, 3);
    return dot(c->R, y, LEN);
}

static void test_rope_partial_backward(void **state) {
    (void)state;
    float cosT[S * RD / 2], sinT[S * RD / 2];
    for (int pos = 0; pos < S; pos++)
        for (int i = 0; i < RD / 2; i++) {
            float f = 1.0f / powf(10000.0f, (float)(2 * i) / (float)RD);
            cosT[pos * RD / 2 + i] = cosf((float)pos * f);
            sinT[pos * RD / 2 + i] = sinf((float)pos * f);
        }
    TRng r = {35};
    float x[LEN], R[LEN], y[LEN], dx[LEN];
    trng_fill(&r, x, LEN, 1.0f);
    trng_fill(&r, R, LEN, 1.0f);
    memcpy(y, x, sizeof y);
    rope_forward_partial(y, RN_, RN, 3, NULL, NH, HD, RD, ROPE_INTERLEAVED, cosT, sinT);
    PrCtx c = {dup_f64(x, LEN), dup_f64(R, LEN), cosT, sinT};
    double yd[LEN];
    memcpy(yd, c.x, sizeof yd);
    d_rope_partial(yd, cosT, sinT, 3);
    assert_true(rel_err_fd(y, yd, LEN) < 1e-6);
    for (int i = 0; i < LEN; i++) /* the dims past RD pass through */
        if (i % HD >= RD) assert_true(y[i] == x[i]);
    memcpy(dx, R, sizeof dx);
    rope_backward_partial(dx, RN_, RN, 3, NULL, NH, HD, RD, ROPE_INTERLEAVED, cosT, sinT);
    double num[LEN];
    fd_grad(c.x, LEN, FD_STEP, pr_obj, &c, num);
    check("partial rope dx", dx, num, LEN);
    float wrong[LEN];
    memcpy(wrong, R, sizeof wrong);
    rope_forward_partial(wrong, RN_, RN, 3, NULL, NH, HD, RD, ROPE_INTERLEAVED, cosT, sinT);
    caught("partial rope turned the wrong way", wrong, num, LEN);
    free(c.x); free(c.R);
}

static void test_summary(void **state) {
    (void)state;
    printf("# new operations: worst relative error vs float64 differences %.2e\n", worst);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm_backward),  cmocka_unit_test(test_rmsnorm_offset_backward),
        cmocka_unit_test(test_gelu_geglu_backward), cmocka_unit_test(test_embed_scale_backward),
        cmocka_unit_test(test_rope_partial_backward), cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
