/* tests/model/test_backward.c - gradients against central differences.
 *
 * Every layer's backward half separately, then the whole model (a tiny random model
 * built in memory: dim 16, 2 layers, 4 heads, 2 kv heads, hidden 40, vocab 32; both
 * rotary styles, tied and untied classifier), for the full gradients and for LoRA.
 * The engine computes in float32; the differences are taken of float64
 * re-implementations (gradcheck.h), which are first checked against the engine's own
 * forward pass, so the differences are free of float32 noise (step 1e-5, truncation
 * error ~1e-10). Error measure per tensor: max|analytic - numeric| / max|numeric|.
 * Each check also shows that a plausible wrong gradient is caught by its tolerance.
 */
#include "gradcheck.h"
#include "core/error.h"

#define TOL_LAYER 1e-4  /* float32 layer gradient vs float64 differences */
#define TOL_MODEL 1e-4  /* float32 model gradient vs float64 differences, per tensor */
#define FD_STEP 1e-5

static double worst_layer = 0, worst_model = 0;

/* asserts rel err < tol and prints it */
static double check(const char *what, const float *a, const double *num, size_t n, double tol) {
    double e = rel_err_fd(a, num, n);
    printf("# %-40s rel err %.2e (tol %.0e)\n", what, e, tol);
    if (!(e < tol)) fail_msg("%s: gradient relative error %.3e exceeds %.1e", what, e, tol);
    return e;
}
/* asserts that a deliberately wrong gradient is caught */
static void check_caught(const char *what, const float *wrong, const double *num, size_t n, double tol) {
    double e = rel_err_fd(wrong, num, n);
    printf("# %-40s rel err %.2e: caught\n", what, e);
    if (!(e >= tol)) fail_msg("%s: a wrong gradient (rel err %.3e) passes the tolerance %.1e", what, e, tol);
}
static void note_layer(double e) { if (e > worst_layer) worst_layer = e; }

static double sum_dot(const double *r, const double *o, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += r[i] * o[i];
    return s;
}

/* ------------------------------------------------------------------------- */
/* rmsnorm                                                                    */

typedef struct { double *x, *w, *R; int N, d; } RmsCtx;
static double rms_obj(void *p) {
    RmsCtx *c = p;
    double o[64];
    d_rmsnorm(o, c->x, c->w, c->N, c->d, 1e-5);
    return sum_dot(c->R, o, (size_t)c->N * c->d);
}

static void test_rmsnorm_backward(void **state) {
    (void)state;
    enum { N = 3, D = 8 };
    TRng r = {11};
    float x[N * D], w[D], R[N * D], out[N * D], rstd[N], dx[N * D] = {0}, dw[D] = {0};
    trng_fill(&r, x, N * D, 1.5f);
    for (int i = 0; i < D; i++) w[i] = 1.0f + trng_sym(&r, 0.5f);
    trng_fill(&r, R, N * D, 1.0f);
    rmsnorm_forward(out, rstd, x, w, N, D, 1e-5f);
    RmsCtx c = {dup_f64(x, N * D), dup_f64(w, D), dup_f64(R, N * D), N, D};
    double od[N * D];
    d_rmsnorm(od, c.x, c.w, N, D, 1e-5);
    assert_true(rel_err_fd(out, od, N * D) < 1e-6); /* the float64 layer is the engine's layer */
    rmsnorm_backward(dx, dw, R, x, w, rstd, N, D);
    double nx[N * D], nw[D];
    fd_grad(c.x, N * D, FD_STEP, rms_obj, &c, nx);
    fd_grad(c.w, D, FD_STEP, rms_obj, &c, nw);
    note_layer(check("rmsnorm dx", dx, nx, N * D, TOL_LAYER));
    note_layer(check("rmsnorm dw", dw, nw, D, TOL_LAYER));
    /* accumulates */
    rmsnorm_backward(dx, dw, R, x, w, rstd, N, D);
    for (int i = 0; i < D; i++) nw[i] *= 2;
    check("rmsnorm dw accumulated twice", dw, nw, D, TOL_LAYER);
    /* wrong: without the normalisation's own derivative (dx = rstd * w * dout) */
    float wrong[N * D];
    for (int t = 0; t < N; t++)
        for (int i = 0; i < D; i++) wrong[t * D + i] = rstd[t] * w[i] * R[t * D + i];
    check_caught("rmsnorm dx without the mean term", wrong, nx, N * D, TOL_LAYER);
    free(c.x); free(c.w); free(c.R);
}

/* ------------------------------------------------------------------------- */
/* rotary                                                                     */

static void rope_tables(float *cosT, float *sinT, int S, int hd, float theta) {
    int half = hd / 2;
    for (int pos = 0; pos < S; pos++)
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
            cosT[pos * half + i] = cosf((float)pos * freq);
            sinT[pos * half + i] = sinf((float)pos * freq);
        }
}

typedef struct { double *x, *R; int N, n, pos0, nh, hd; RopeStyle st; const float *cosT, *sinT; } RopeCtx;
static double rope_obj(void *p) {
    RopeCtx *c = p;
    size_t len = (size_t)c->N * c->nh * c->hd;
    double *y = malloc(len * sizeof *y);
    memcpy(y, c->x, len * sizeof *y);
    d_rope(y, c->N, c->n, c->pos0, c->nh, c->hd, c->st, c->cosT, c->sinT);
    double s = sum_dot(c->R, y, len);
    free(y);
    return s;
}

static void rope_case(RopeStyle st) {
    enum { B = 2, n = 5, NH = 2, HD = 8, N = B * n, LEN = N * NH * HD, S = 16 };
    int pos0 = 3;
    float cosT[S * HD / 2], sinT[S * HD / 2];
    rope_tables(cosT, sinT, S, HD, 10000.0f);
    TRng r = {22 + st};
    float x[LEN], R[LEN], y[LEN], dx[LEN];
    trng_fill(&r, x, LEN, 1.0f);
    trng_fill(&r, R, LEN, 1.0f);
    memcpy(y, x, sizeof y);
    rope_forward(y, N, n, pos0, NH, HD, st, cosT, sinT);
    RopeCtx c = {dup_f64(x, LEN), dup_f64(R, LEN), N, n, pos0, NH, HD, st, cosT, sinT};
    double yd[LEN];
    memcpy(yd, c.x, sizeof yd);
    d_rope(yd, N, n, pos0, NH, HD, st, cosT, sinT);
    assert_true(rel_err_fd(y, yd, LEN) < 1e-6);
    memcpy(dx, R, sizeof dx);
    rope_backward(dx, N, n, pos0, NH, HD, st, cosT, sinT);
    double num[LEN];
    fd_grad(c.x, LEN, FD_STEP, rope_obj, &c, num);
    note_layer(check(st == ROPE_INTERLEAVED ? "rope (interleaved) dx" : "rope (half) dx", dx, num, LEN, TOL_LAYER));
    /* wrong: rotating the gradient forward instead of back */
    float wrong[LEN];
    memcpy(wrong, R, sizeof wrong);
    rope_forward(wrong, N, n, pos0, NH, HD, st, cosT, sinT);
    check_caught("rope: gradient rotated the wrong way", wrong, num, LEN, TOL_LAYER);
    /* wrong: the other pairing */
    memcpy(wrong, R, sizeof wrong);
    rope_backward(wrong, N, n, pos0, NH, HD, st == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF, cosT, sinT);
    check_caught("rope: the other style's pairs", wrong, num, LEN, TOL_LAYER);
    free(c.x); free(c.R);
}
static void test_rope_backward_interleaved(void **state) { (void)state; rope_case(ROPE_INTERLEAVED); }
static void test_rope_backward_half(void **state) { (void)state; rope_case(ROPE_HALF); }

/* ------------------------------------------------------------------------- */
/* attention                                                                  */

enum { AB = 2, AN = 5, AH = 4, AKV = 2, AHD = 4, AQD = AH * AHD, AKVD = AKV * AHD };
typedef struct { double *q, *k, *v, *R; } AttCtx;
static double att_obj(void *p) {
    AttCtx *c = p;
    double out[AB * AN * AQD];
    d_attention(out, NULL, c->q, c->k, c->v, AB, AN, AH, AKV, AHD);
    return sum_dot(c->R, out, AB * AN * AQD);
}

static void test_attention_backward_gqa(void **state) {
    (void)state;
    enum { NQ = AB * AN * AQD, NKV = AB * AN * AKVD, NP = AB * AH * AN * AN };
    TRng r = {33};
    float q[NQ], k[NKV], v[NKV], R[NQ], att[NP], datt[NP], dq[NQ], dk[NKV], dv[NKV];
    trng_fill(&r, q, NQ, 1.5f);
    trng_fill(&r, k, NKV, 1.5f);
    trng_fill(&r, v, NKV, 1.0f);
    trng_fill(&r, R, NQ, 1.0f);
    AttCtx c = {dup_f64(q, NQ), dup_f64(k, NKV), dup_f64(v, NKV), dup_f64(R, NQ)};
    double out[NQ], P[NP];
    d_attention(out, P, c.q, c.k, c.v, AB, AN, AH, AKV, AHD);
    for (int i = 0; i < NP; i++) att[i] = (float)P[i];
    attention_backward(dq, dk, dv, datt, R, q, k, v, (size_t)AN * AKVD, att, AB, AN, AH, AKV, AHD);
    double nq[NQ], nk[NKV], nv[NKV];
    fd_grad(c.q, NQ, FD_STEP, att_obj, &c, nq);
    fd_grad(c.k, NKV, FD_STEP, att_obj, &c, nk);
    fd_grad(c.v, NKV, FD_STEP, att_obj, &c, nv);
    note_layer(check("attention (GQA 4/2) dq", dq, nq, NQ, TOL_LAYER));
    note_layer(check("attention (GQA 4/2) dk", dk, nk, NKV, TOL_LAYER));
    note_layer(check("attention (GQA 4/2) dv", dv, nv, NKV, TOL_LAYER));
    /* wrong: dk, dv from the first head of each group only (not summed over the group):
     * run the same attention with every head given its own copy of its kv head */
    float k2[AB * AN * AQD], v2[AB * AN * AQD], dq2[NQ], dk2[NQ], dv2[NQ], wk[NKV], wv[NKV];
    for (int t = 0; t < AB * AN; t++)
        for (int h = 0; h < AH; h++)
            for (int e = 0; e < AHD; e++) {
                k2[t * AQD + h * AHD + e] = k[t * AKVD + (h / (AH / AKV)) * AHD + e];
                v2[t * AQD + h * AHD + e] = v[t * AKVD + (h / (AH / AKV)) * AHD + e];
            }
    attention_backward(dq2, dk2, dv2, datt, R, q, k2, v2, (size_t)AN * AQD, att, AB, AN, AH, AH, AHD);
    note_layer(check("attention, kv heads copied: dq", dq2, nq, NQ, TOL_LAYER));
    for (int t = 0; t < AB * AN; t++)
        for (int g = 0; g < AKV; g++)
            for (int e = 0; e < AHD; e++) {
                wk[t * AKVD + g * AHD + e] = dk2[t * AQD + g * (AH / AKV) * AHD + e];
                wv[t * AKVD + g * AHD + e] = dv2[t * AQD + g * (AH / AKV) * AHD + e];
            }
    check_caught("attention dk not summed over the group", wk, nk, NKV, TOL_LAYER);
    check_caught("attention dv not summed over the group", wv, nv, NKV, TOL_LAYER);
    /* and summing them is exactly the grouped gradient */
    for (int t = 0; t < AB * AN; t++)
        for (int g = 0; g < AKV; g++)
            for (int e = 0; e < AHD; e++) {
                float s = 0;
                for (int hh = 0; hh < AH / AKV; hh++) s += dk2[t * AQD + (g * (AH / AKV) + hh) * AHD + e];
                wk[t * AKVD + g * AHD + e] = s;
            }
    assert_true(rel_err_ff(wk, dk, NKV) < 1e-6);
    free(c.q); free(c.k); free(c.v); free(c.R);
}

/* ------------------------------------------------------------------------- */
/* SwiGLU                                                                     */

typedef struct { double *h1, *h3, *R; int n; } SwiCtx;
static double swi_obj(void *p) {
    SwiCtx *c = p;
    double s = 0;
    for (int i = 0; i < c->n; i++) s += c->R[i] * d_silu(c->h1[i]) * c->h3[i];
    return s;
}

static void test_swiglu_backward(void **state) {
    (void)state;
    enum { n = 40 };
    TRng r = {44};
    float h1[n], h3[n], R[n], hg[n], dh1[n], dh3[n];
    trng_fill(&r, h1, n, 4.0f);
    trng_fill(&r, h3, n, 2.0f);
    trng_fill(&r, R, n, 1.0f);
    swiglu_forward(hg, h1, h3, n);
    SwiCtx c = {dup_f64(h1, n), dup_f64(h3, n), dup_f64(R, n), n};
    double hgd[n];
    for (int i = 0; i < n; i++) hgd[i] = d_silu(c.h1[i]) * c.h3[i];
    assert_true(rel_err_fd(hg, hgd, n) < 1e-6);
    swiglu_backward(dh1, dh3, R, h1, h3, n);
    double n1[n], n3[n];
    fd_grad(c.h1, n, FD_STEP, swi_obj, &c, n1);
    fd_grad(c.h3, n, FD_STEP, swi_obj, &c, n3);
    note_layer(check("swiglu dgate", dh1, n1, n, TOL_LAYER));
    note_layer(check("swiglu dup", dh3, n3, n, TOL_LAYER));
    /* in place (dh1 aliasing dhg) gives the same */
    float io[n], d3[n];
    memcpy(io, R, sizeof io);
    swiglu_backward(io, d3, io, h1, h3, n);
    assert_memory_equal(io, dh1, sizeof io);
    /* wrong: silu'(g) taken as sigmoid(g) */
    float wrong[n];
    for (int i = 0; i < n; i++) wrong[i] = R[i] * h3[i] / (1.0f + expf(-h1[i]));
    check_caught("swiglu: silu' taken as sigmoid", wrong, n1, n, TOL_LAYER);
    free(c.h1); free(c.h3); free(c.R);
}

/* ------------------------------------------------------------------------- */
/* cross-entropy                                                              */

enum { CN = 5, CV = 11 };
typedef struct { double *z; const int *t; const float *w; } CeCtx;
static double ce_obj(void *p) {
    CeCtx *c = p;
    return d_crossentropy(c->z, c->t, c->w, CN, CV, 0);
}

static void test_crossentropy_backward(void **state) {
    (void)state;
    TRng r = {55};
    float z[CN * CV], dz[CN * CV];
    int t[CN] = {3, -1, 10, 0, 7};          /* position 1 is ignored (weight 0) */
    float w[CN] = {1.0f, 0.0f, 2.5f, 0.5f, 1.0f};
    trng_fill(&r, z, CN * CV, 3.0f);
    CeCtx c = {dup_f64(z, CN * CV), t, w};
    double loss, ld = ce_obj(&c);
    float nll[CN];
    assert_int_equal(crossentropy_forward(&loss, nll, z, t, w, CN, CV, 0), 0);
    printf("# cross-entropy loss %.9f, float64 %.9f\n", loss, ld);
    assert_true(fabs(loss - ld) < 1e-6 * fabs(ld));
    assert_true(nll[1] == 0.0f);
    crossentropy_backward(dz, z, t, w, CN, CV, 5.0, 1.0f); /* sum of weights = 5 */
    double num[CN * CV];
    fd_grad(c.z, CN * CV, FD_STEP, ce_obj, &c, num);
    note_layer(check("cross-entropy dlogits (weighted)", dz, num, CN * CV, TOL_LAYER));
    /* in place is the same */
    float io[CN * CV];
    memcpy(io, z, sizeof io);
    crossentropy_backward(io, io, t, w, CN, CV, 5.0, 1.0f);
    assert_memory_equal(io, dz, sizeof io);
    /* an explicit divisor scales loss and gradient */
    double loss2;
    assert_int_equal(crossentropy_forward(&loss2, NULL, z, t, w, CN, CV, 10.0), 0);
    assert_true(fabs(loss2 - loss / 2) < 1e-12);
    /* wrong: the weights ignored (every position weight 1, divided by 5) */
    float wrong[CN * CV];
    int t2[CN] = {3, 0, 10, 0, 7};
    crossentropy_backward(wrong, z, t2, NULL, CN, CV, 5.0, 1.0f);
    check_caught("cross-entropy: weights ignored", wrong, num, CN * CV, TOL_LAYER);
    /* bad inputs */
    float wneg[CN] = {1, -1, 1, 1, 1};
    assert_int_equal(crossentropy_forward(&loss, NULL, z, t, wneg, CN, CV, 0), -1);
    assert_non_null(strstr(err_msg(), "weight"));
    float wall[CN] = {1, 1, 1, 1, 1};
    assert_int_equal(crossentropy_forward(&loss, NULL, z, t, wall, CN, CV, 0), -1); /* target -1 with weight 1 */
    assert_non_null(strstr(err_msg(), "target id -1"));
    float wzero[CN] = {0};
    assert_int_equal(crossentropy_forward(&loss, NULL, z, t, wzero, CN, CV, 0), -1);
    assert_non_null(strstr(err_msg(), "weight 0"));
    free(c.z);
}

/* ------------------------------------------------------------------------- */
/* embedding                                                                  */

static void test_embedding_backward(void **state) {
    (void)state;
    enum { V = 6, D = 5, N = 6 };
    int tok[N] = {1, 3, 1, 5, 1, 0};
    TRng r = {66};
    float R[N * D], demb[V * D] = {0};
    trng_fill(&r, R, N * D, 1.0f);
    embedding_backward(demb, R, tok, N, D);
    /* d/d emb of sum R . emb[tok]: exact (the objective is linear) */
    double num[V * D] = {0};
    for (int t = 0; t < N; t++)
        for (int i = 0; i < D; i++) num[tok[t] * D + i] += R[t * D + i];
    note_layer(check("embedding scatter-add", demb, num, V * D, TOL_LAYER));
    float wrong[V * D] = {0};
    for (int t = 0; t < N; t++)
        for (int i = 0; i < D; i++) wrong[tok[t] * D + i] = R[t * D + i]; /* overwrite instead of add */
    check_caught("embedding: repeated ids overwritten", wrong, num, V * D, TOL_LAYER);
}

/* ------------------------------------------------------------------------- */
/* LoRA linear                                                                */

enum { LN = 4, LIN = 6, LOUT = 5, LR = 3 };
typedef struct { double *x, *A, *B, *R; double s; } LoraCtx;
static double lora_obj(void *p) {
    LoraCtx *c = p;
    double W[LOUT * LIN] = {0}, y[LN * LOUT];
    d_linear(y, c->x, W, LN, LIN, LOUT, c->A, c->B, LR, c->s);
    return sum_dot(c->R, y, LN * LOUT);
}

static void test_lora_linear_backward(void **state) {
    (void)state;
    TRng r = {77};
    float x[LN * LIN], A[LR * LIN], Bm[LOUT * LR], R[LN * LOUT], u[LN * LR], y[LN * LOUT] = {0};
    float gA[LR * LIN] = {0}, gB[LOUT * LR] = {0}, du[LN * LR], dx[LN * LIN] = {0};
    trng_fill(&r, x, LN * LIN, 1.0f);
    trng_fill(&r, A, LR * LIN, 0.5f);
    trng_fill(&r, Bm, LOUT * LR, 0.5f);
    trng_fill(&r, R, LN * LOUT, 1.0f);
    float s = 1.5f;
    LoraMat p = {LIN, LOUT, LR, A, Bm}, g = {LIN, LOUT, LR, gA, gB};
    lora_linear_forward(&p, s, x, LN, u, y);
    LoraCtx c = {dup_f64(x, LN * LIN), dup_f64(A, LR * LIN), dup_f64(Bm, LOUT * LR), dup_f64(R, LN * LOUT), s};
    double W[LOUT * LIN] = {0}, yd[LN * LOUT];
    d_linear(yd, c.x, W, LN, LIN, LOUT, c.A, c.B, LR, s);
    assert_true(rel_err_fd(y, yd, LN * LOUT) < 1e-6);
    lora_linear_backward(&p, s, x, u, R, LN, &g, du, dx);
    double nx[LN * LIN], nA[LR * LIN], nB[LOUT * LR];
    fd_grad(c.x, LN * LIN, FD_STEP, lora_obj, &c, nx);
    fd_grad(c.A, LR * LIN, FD_STEP, lora_obj, &c, nA);
    fd_grad(c.B, LOUT * LR, FD_STEP, lora_obj, &c, nB);
    note_layer(check("lora linear dx", dx, nx, LN * LIN, TOL_LAYER));
    note_layer(check("lora linear dA", gA, nA, LR * LIN, TOL_LAYER));
    note_layer(check("lora linear dB", gB, nB, LOUT * LR, TOL_LAYER));
    /* wrong: the scaling left out of the backward pass */
    float wA[LR * LIN] = {0}, wB[LOUT * LR] = {0};
    LoraMat gw = {LIN, LOUT, LR, wA, wB};
    lora_linear_backward(&p, 1.0f, x, u, R, LN, &gw, du, NULL);
    check_caught("lora: dA without the scaling", wA, nA, LR * LIN, TOL_LAYER);
    check_caught("lora: dB without the scaling", wB, nB, LOUT * LR, TOL_LAYER);
    free(c.x); free(c.A); free(c.B); free(c.R);
}

/* ------------------------------------------------------------------------- */
/* the whole model                                                            */

enum { MB = 2, MT = 6, MN = MB * MT };

typedef struct {
    Model m;
    RunState s;
    ModelGrads g;      /* layout reference (and the full gradients) */
    LoraAdapter ad, lg;
    int use_lora;
    int tok[MN], tgt[MN];
    float w[MN];
    double *P, *Q;     /* float64 copies of weights / adapter */
    DModel dm;
} Bench;

static double bench_obj(void *p) {
    Bench *b = p;
    return dmodel_loss(&b->dm, b->tok, b->tgt, b->w, MB, MT, NULL);
}

/* the family features of the next model (biases, q/k norm, window): 0 = plain Llama */
static unsigned bench_bias;
static int bench_qk_norm, bench_window;

static void bench_init(Bench *b, RopeStyle rope, int tied, int use_lora, int keep, uint64_t seed) {
    memset(b, 0, sizeof *b);
    ModelConfig cfg = tiny_config(rope, tied);
    cfg.bias = bench_bias;
    cfg.qk_norm = bench_qk_norm;
    cfg.sliding_window = bench_window;
    if (bench_qk_norm) cfg.head_dim = 6; /* q is [heads * 6, 16]: not dim / heads */
    tiny_model(&b->m, &cfg, seed, 0.4f);
    TRng r = {seed + 1000};
    for (int i = 0; i < MN; i++) {
        b->tok[i] = (int)(trng_uniform(&r) * cfg.vocab_size);
        b->tgt[i] = (int)(trng_uniform(&r) * cfg.vocab_size);
        b->w[i] = (float)(0.5 + trng_uniform(&r));
    }
    b->w[0] = 0.0f;      /* an ignored position (a prompt token) */
    b->tgt[0] = -1;
    b->w[MT + 2] = 0.0f;
    b->w[MT + 3] = 2.0f;
    assert_int_equal(runstate_init(&b->s, &b->m, MB, MT, MT, keep), 0);
    assert_int_equal(model_grads_init(&b->g, &b->m), 0);
    b->use_lora = use_lora;
    if (use_lora) {
        assert_int_equal(lora_init(&b->ad, &b->m.cfg, 2, 3.0f, 0, LORA_TARGETS_ALL), 0);
        trng_fill(&r, b->ad.data, b->ad.n_floats, 0.4f); /* B non-zero, or dA would be 0 */
        assert_int_equal(lora_init_like(&b->lg, &b->ad), 0);
        assert_int_equal(runstate_set_lora(&b->s, &b->ad), 0);
    }
    b->P = malloc(b->g.n_floats * sizeof(double));
    dmodel_copy_weights(&b->m, &b->g, b->P);
    if (use_lora) b->Q = dup_f64(b->ad.data, b->ad.n_floats);
    dmodel_bind(&b->dm, &b->g, b->P, use_lora ? &b->ad : NULL, b->Q, &b->s);
}

static void bench_free(Bench *b) {
    free(b->P);
    free(b->Q);
    lora_free(&b->ad);
    lora_free(&b->lg);
    model_grads_free(&b->g);
    runstate_free(&b->s);
    model_free(&b->m);
}

/* loss and gradients of the engine (full: into b->g; LoRA: into b->lg, base frozen) */
static double bench_engine(Bench *b) {
    double loss;
    model_grads_zero(&b->g);
    if (b->use_lora) lora_zero(&b->lg);
    assert_int_equal(model_loss(&b->s, b->tok, b->tgt, b->w, MB, MT, 0, &loss, NULL), 0);
    assert_int_equal(model_backward(&b->s, b->use_lora ? NULL : &b->g, b->use_lora ? &b->lg : NULL), 0);
    return loss;
}

static void model_gradcheck(RopeStyle rope, int tied, int use_lora) {
    Bench b;
    bench_init(&b, rope, tied, use_lora, RS_KEEP_ALL, 100 + rope * 2 + tied);
    printf("# model: rope %s, %s, %s\n", rope == ROPE_HALF ? "half" : "interleaved", tied ? "tied" : "untied",
           use_lora ? "LoRA r=2 alpha=3 on q,k,v,o,gate,up,down (base frozen)" : "full gradients");
    double loss = bench_engine(&b);
    double ld = bench_obj(&b);
    printf("# loss %.9f, float64 model %.9f\n", loss, ld);
    assert_true(fabs(loss - ld) < 1e-5 * fabs(ld)); /* the float64 model is the engine's model */
    double *params = use_lora ? b.Q : b.P;
    size_t np = use_lora ? b.ad.n_floats : b.g.n_floats;
    double *num = malloc(np * sizeof *num);
    fd_grad(params, np, FD_STEP, bench_obj, &b, num);
    TensorRef t[64];
    int nt = use_lora ? lora_tensors(&b.lg, t) : model_tensors(&b.g, t);
    double worst = 0;
    for (int i = 0; i < nt; i++) {
        double e = rel_err_fd(t[i].a, num + t[i].off, t[i].n);
        printf("#   %-28s rel err %.2e\n", t[i].name, e);
        if (!(e < TOL_MODEL)) fail_msg("%s: gradient relative error %.3e exceeds %.1e", t[i].name, e, TOL_MODEL);
        if (e > worst) worst = e;
        /* a 1%% error in the largest element of this tensor would be caught */
        size_t im = 0;
        for (size_t j = 1; j < t[i].n; j++) if (fabs(num[t[i].off + j]) > fabs(num[t[i].off + im])) im = j;
        float save = t[i].a[im];
        t[i].a[im] = (float)(num[t[i].off + im] * 1.01);
        double e2 = rel_err_fd(t[i].a, num + t[i].off, t[i].n);
        t[i].a[im] = save;
        if (!(e2 >= TOL_MODEL)) fail_msg("%s: a 1%% error passes the tolerance", t[i].name);
    }
    printf("# worst tensor: rel err %.2e over %d tensors (%zu parameters)\n", worst, nt, np);
    if (tied && !use_lora) {
        /* wrong: a tied embedding given only its lookup gradient. After the backward pass
         * s.logits holds dlogits, so the classifier's part is dlogits^T xnf. */
        size_t ne = (size_t)b.m.cfg.vocab_size * b.m.cfg.dim;
        float *cls = calloc(ne, sizeof *cls), *wrong = malloc(ne * sizeof *wrong);
        kmm_dw(b.s.logits, b.s.xnf, MN, b.m.cfg.vocab_size, b.m.cfg.dim, cls, 0.0f);
        for (size_t i = 0; i < ne; i++) wrong[i] = b.g.tok_emb[i] - cls[i];
        check_caught("tied embedding without the classifier part", wrong, num, ne, TOL_MODEL);
        free(cls);
        free(wrong);
    }
    if (worst > worst_model) worst_model = worst;
    if (use_lora) {
        /* base frozen: no base gradient was written */
        for (size_t i = 0; i < b.g.n_floats; i++) assert_true(b.g.data[i] == 0.0f);
    }
    free(num);
    bench_free(&b);
}

/* every linear with a bias, per-head q/k norms (head_dim 6 != dim / heads) and a sliding
 * window of 3 positions: the backward passes of the families' features by finite differences */
static void family_gradcheck(int use_lora) {
    bench_bias = (1u << LIN_COUNT) - 1;
    bench_qk_norm = 1;
    bench_window = 3;
    model_gradcheck(ROPE_INTERLEAVED, 0, use_lora);
    bench_bias = 0;
    bench_qk_norm = 0;
    bench_window = 0;
}
static void test_model_full_family_features(void **state) { (void)state; family_gradcheck(0); }
static void test_model_lora_family_features(void **state) { (void)state; family_gradcheck(1); }

/* y = x + b:  db = column sums of dy, by finite differences of sum(dy * y) */
static double bias_obj(void *p) {
    double *v = p; /* [3*5 x, 5 b, 3*5 dy] */
    double acc = 0;
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 5; i++) acc += v[20 + r * 5 + i] * (v[r * 5 + i] + v[15 + i]);
    return acc;
}
static void test_bias_backward(void **state) {
    (void)state;
    TRng r = {77};
    double v[35];
    for (int i = 0; i < 35; i++) v[i] = trng_sym(&r, 1.0f);
    float y[15], b[5], dy[15], db[5] = {0};
    for (int i = 0; i < 15; i++) { y[i] = (float)v[i]; dy[i] = (float)v[20 + i]; }
    for (int i = 0; i < 5; i++) b[i] = (float)v[15 + i];
    bias_forward(y, b, 3, 5);
    for (int i = 0; i < 15; i++) assert_true(fabs(y[i] - (float)(v[i] + v[15 + i % 5])) < 1e-6);
    bias_backward(db, dy, 3, 5);
    double num[35];
    fd_grad(v, 35, 1e-3, bias_obj, v, num);
    double e = rel_err_fd(db, num + 15, 5);
    printf("# bias backward vs finite differences: rel err %.2e\n", e);
    assert_true(e < 1e-5);
}

static void test_model_full_interleaved_untied(void **state) { (void)state; model_gradcheck(ROPE_INTERLEAVED, 0, 0); }
static void test_model_full_interleaved_tied(void **state) { (void)state; model_gradcheck(ROPE_INTERLEAVED, 1, 0); }
static void test_model_full_half_untied(void **state) { (void)state; model_gradcheck(ROPE_HALF, 0, 0); }
static void test_model_full_half_tied(void **state) { (void)state; model_gradcheck(ROPE_HALF, 1, 0); }
static void test_model_lora_interleaved_untied(void **state) { (void)state; model_gradcheck(ROPE_INTERLEAVED, 0, 1); }
static void test_model_lora_half_tied(void **state) { (void)state; model_gradcheck(ROPE_HALF, 1, 1); }

/* Checkpointing recomputes exactly what was kept: the same bits. Also: a second run
 * gives the same bits, and inference mode gives the same logits. */
static void keep_modes_case(int use_lora) {
    Bench a, c;
    bench_init(&a, ROPE_HALF, 0, use_lora, RS_KEEP_ALL, 7);
    bench_init(&c, ROPE_HALF, 0, use_lora, RS_KEEP_INPUTS, 7);
    double la = bench_engine(&a), lc = bench_engine(&c);
    assert_true(la == lc);
    if (use_lora) assert_memory_equal(a.lg.data, c.lg.data, a.lg.n_floats * sizeof(float));
    else assert_memory_equal(a.g.data, c.g.data, a.g.n_floats * sizeof(float));
    assert_true(runstate_bytes(&a.m, MB, 512, 512, RS_KEEP_INPUTS) < runstate_bytes(&a.m, MB, 512, 512, RS_KEEP_ALL));
    /* repeat */
    float *first = malloc(a.g.n_floats * sizeof(float) + a.lg.n_floats * sizeof(float));
    memcpy(first, a.g.data, a.g.n_floats * sizeof(float));
    if (use_lora) memcpy(first + a.g.n_floats, a.lg.data, a.lg.n_floats * sizeof(float));
    assert_true(bench_engine(&a) == la);
    assert_memory_equal(first, a.g.data, a.g.n_floats * sizeof(float));
    if (use_lora) assert_memory_equal(first + a.g.n_floats, a.lg.data, a.lg.n_floats * sizeof(float));
    free(first);
    /* the logits of all three modes */
    RunState s0;
    assert_int_equal(runstate_init(&s0, &a.m, MB, MT, MT, RS_KEEP_NONE), 0);
    if (use_lora) assert_int_equal(runstate_set_lora(&s0, &a.ad), 0);
    assert_int_equal(model_forward(&s0, a.tok, MB, MT, 0), 0);
    assert_int_equal(model_forward(&a.s, a.tok, MB, MT, 0), 0);
    assert_int_equal(model_forward(&c.s, c.tok, MB, MT, 0), 0);
    size_t nl = (size_t)MN * a.m.cfg.vocab_size * sizeof(float);
    assert_memory_equal(s0.logits, a.s.logits, nl);
    assert_memory_equal(s0.logits, c.s.logits, nl);
    runstate_free(&s0);
    bench_free(&a);
    bench_free(&c);
}
static void test_checkpointing_same_bits_full(void **state) { (void)state; keep_modes_case(0); }
static void test_checkpointing_same_bits_lora(void **state) { (void)state; keep_modes_case(1); }

/* Two micro-batches with the batch's total weight as divisor sum to the batch's gradient. */
static void test_micro_batches_accumulate(void **state) {
    (void)state;
    Bench b;
    bench_init(&b, ROPE_INTERLEAVED, 1, 0, RS_KEEP_ALL, 9);
    double loss = bench_engine(&b);
    float *whole = malloc(b.g.n_floats * sizeof(float));
    memcpy(whole, b.g.data, b.g.n_floats * sizeof(float));
    double total = 0;
    for (int i = 0; i < MN; i++) total += b.w[i];
    model_grads_zero(&b.g);
    double l0, l1;
    assert_int_equal(model_loss(&b.s, b.tok, b.tgt, b.w, 1, MT, total, &l0, NULL), 0);
    assert_int_equal(model_backward(&b.s, &b.g, NULL), 0);
    assert_int_equal(model_loss(&b.s, b.tok + MT, b.tgt + MT, b.w + MT, 1, MT, total, &l1, NULL), 0);
    assert_int_equal(model_backward(&b.s, &b.g, NULL), 0);
    printf("# whole batch loss %.9f, sum of micro-batch losses %.9f\n", loss, l0 + l1);
    assert_true(fabs(loss - (l0 + l1)) < 1e-6);
    double e = rel_err_ff(b.g.data, whole, b.g.n_floats);
    printf("# accumulated gradient vs whole batch: rel err %.2e\n", e);
    assert_true(e < 1e-5);
    free(whole);
    bench_free(&b);
}

static void test_backward_errors(void **state) {
    (void)state;
    Bench b;
    bench_init(&b, ROPE_INTERLEAVED, 0, 0, RS_KEEP_ALL, 3);
    /* no loss yet */
    assert_int_equal(model_backward(&b.s, &b.g, NULL), -1);
    assert_non_null(strstr(err_msg(), "model_loss"));
    /* adapter gradient without an adapter */
    double loss;
    LoraAdapter lg;
    assert_int_equal(lora_init(&lg, &b.m.cfg, 2, 2.0f, 0, LORA_TARGETS_ALL), 0);
    assert_int_equal(model_loss(&b.s, b.tok, b.tgt, b.w, MB, MT, 0, &loss, NULL), 0);
    assert_int_equal(model_backward(&b.s, NULL, &lg), -1);
    assert_non_null(strstr(err_msg(), "no adapter"));
    lora_free(&lg);
    /* one backward per loss */
    assert_int_equal(model_backward(&b.s, &b.g, NULL), 0);
    assert_int_equal(model_backward(&b.s, &b.g, NULL), -1);
    /* a forward after the loss invalidates it */
    assert_int_equal(model_loss(&b.s, b.tok, b.tgt, b.w, MB, MT, 0, &loss, NULL), 0);
    assert_int_equal(model_forward(&b.s, b.tok, 1, 2, 1), 0);
    assert_int_equal(model_backward(&b.s, &b.g, NULL), -1);
    /* inference run states cannot train */
    RunState s0;
    assert_int_equal(runstate_init(&s0, &b.m, 1, 4, 4, RS_KEEP_NONE), 0);
    assert_int_equal(model_loss(&s0, b.tok, b.tgt, b.w, 1, 4, 0, &loss, NULL), -1);
    assert_non_null(strstr(err_msg(), "RS_KEEP_ALL"));
    runstate_free(&s0);
    bench_free(&b);
}

static int summary(void **state) {
    (void)state;
    printf("# worst layer gradient rel err %.2e; worst model tensor rel err %.2e\n", worst_layer, worst_model);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_backward),
        cmocka_unit_test(test_bias_backward),
        cmocka_unit_test(test_model_full_family_features),
        cmocka_unit_test(test_model_lora_family_features),
        cmocka_unit_test(test_rope_backward_interleaved),
        cmocka_unit_test(test_rope_backward_half),
        cmocka_unit_test(test_attention_backward_gqa),
        cmocka_unit_test(test_swiglu_backward),
        cmocka_unit_test(test_crossentropy_backward),
        cmocka_unit_test(test_embedding_backward),
        cmocka_unit_test(test_lora_linear_backward),
        cmocka_unit_test(test_model_full_interleaved_untied),
        cmocka_unit_test(test_model_full_interleaved_tied),
        cmocka_unit_test(test_model_full_half_untied),
        cmocka_unit_test(test_model_full_half_tied),
        cmocka_unit_test(test_model_lora_interleaved_untied),
        cmocka_unit_test(test_model_lora_half_tied),
        cmocka_unit_test(test_checkpointing_same_bits_full),
        cmocka_unit_test(test_checkpointing_same_bits_lora),
        cmocka_unit_test(test_micro_batches_accumulate),
        cmocka_unit_test(test_backward_errors),
    };
    return cmocka_run_group_tests(tests, NULL, summary);
}
