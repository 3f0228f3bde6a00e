/* tests/model/gradcheck.h - helpers of the gradient tests: a float64 re-implementation
 * of the model (the reference that central differences are taken of), a tiny random
 * model built in memory, relative errors. Header-only, included by the test files. */
#ifndef MUSCLE_TEST_GRADCHECK_H
#define MUSCLE_TEST_GRADCHECK_H

#include "testutil.h"
#include "model/backward.h"
#include "model/load_internal.h"
#include "model/forward.h"
#include "model/lora.h"
#include "model/model.h"

#include <math.h>

/* ------------------------------------------------------------------------- */
/* random numbers (test-local, reproducible)                                  */

typedef struct { uint64_t s; } TRng;
static inline double trng_uniform(TRng *r) { /* [0, 1) */
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (double)(r->s >> 11) / 9007199254740992.0;
}
static inline float trng_sym(TRng *r, float scale) { return (float)((2.0 * trng_uniform(r) - 1.0) * scale); }
static inline void trng_fill(TRng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = trng_sym(r, scale);
}

/* ------------------------------------------------------------------------- */
/* errors                                                                     */

/* max |a - b| / max |b|  (max |a - b| when b is all zero) */
static inline double rel_err_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > num || isnan(e)) num = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}
static inline double rel_err_ff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > num || isnan(e)) num = isnan(e) ? INFINITY : e;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Central differences of f with respect to each of p[0..n-1] (restored afterwards). */
typedef double (*GcObjective)(void *ctx);
static inline void fd_grad(double *p, size_t n, double h, GcObjective f, void *ctx, double *out) {
    for (size_t i = 0; i < n; i++) {
        double save = p[i];
        p[i] = save + h;
        double fp = f(ctx);
        p[i] = save - h;
        double fm = f(ctx);
        p[i] = save;
        out[i] = (fp - fm) / (2 * h);
    }
}

static inline double *dup_f64(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ------------------------------------------------------------------------- */
/* float64 layers                                                             */

static inline void d_rmsnorm(double *o, const double *x, const double *w, int N, int d, double eps) {
    for (int r = 0; r < N; r++) {
        double ss = 0;
        for (int i = 0; i < d; i++) ss += x[r * d + i] * x[r * d + i];
        double s = 1.0 / sqrt(ss / d + eps);
        for (int i = 0; i < d; i++) o[r * d + i] = w[i] * x[r * d + i] * s;
    }
}

/* rotary in place, row r at position pos0 + r % n, angles from the float tables of a run state
 * (cosT/sinT [pos, hd/2]) so that the reference rotates exactly like the engine */
static inline void d_rope_at(double *x, int N, int n, int pos0, const int *positions, int nh, int hd, RopeStyle st,
                             const float *cosT, const float *sinT) {
    int half = hd / 2;
    for (int r = 0; r < N; r++) {
        int pos = positions ? positions[r] : pos0 + r % n;
        for (int h = 0; h < nh; h++) {
            double *v = x + (size_t)r * nh * hd + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                double c = cosT[pos * half + i], s = sinT[pos * half + i];
                int i0 = st == ROPE_INTERLEAVED ? 2 * i : i, i1 = st == ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
                double a = v[i0], b = v[i1];
                v[i0] = a * c - b * s;
                v[i1] = a * s + b * c;
            }
        }
    }
}

static inline void d_rope(double *x, int N, int n, int pos0, int nh, int hd, RopeStyle st, const float *cosT, const float *sinT) {
    d_rope_at(x, N, n, pos0, NULL, nh, hd, st, cosT, sinT);
}

/* causal grouped-query attention from position 0: q [B*n, H*hd], k, v [B*n, KVH*hd];
 * out [B*n, H*hd]; P [B, H, n, n] (optional). seg [B*n] (optional): packed rows, key j
 * visible to query i >= j when seg[j] == 0 or seg[j] == seg[i] */
static inline int d_visible(const int *seg, int i, int j) { return !seg || seg[j] == 0 || seg[j] == seg[i]; }
/* sliding window (d_window > 0): key j hidden from query i when pos_i - pos_j >= d_window */
static int d_window;
static const int *d_window_pos; /* [B*n] positions of packed rows, else NULL (index = position) */
static inline int d_in_window(int b, int n, int i, int j) {
    if (d_window <= 0) return 1;
    int pi = d_window_pos ? d_window_pos[b * n + i] : i, pj = d_window_pos ? d_window_pos[b * n + j] : j;
    return pi - pj < d_window;
}
static inline void d_attention_seg(double *out, double *P, const double *q, const double *k, const double *v,
                                   const int *seg_ids, int B, int n, int H, int KVH, int hd) {
    int qd = H * hd, kvd = KVH * hd, grp = H / KVH;
    double *row = malloc((size_t)n * sizeof *row);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < n; i++) {
                const int *seg = seg_ids ? seg_ids + (size_t)b * n : NULL;
                const double *qi = q + ((size_t)b * n + i) * qd + h * hd;
                double mx = -INFINITY;
                for (int j = 0; j <= i; j++) {
                    const double *kj = k + ((size_t)b * n + j) * kvd + (h / grp) * hd;
                    double s = 0;
                    for (int e = 0; e < hd; e++) s += qi[e] * kj[e];
                    row[j] = s / sqrt((double)hd);
                    if (d_visible(seg, i, j) && d_in_window(b, n, i, j) && row[j] > mx) mx = row[j];
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) sum += (row[j] = d_visible(seg, i, j) && d_in_window(b, n, i, j) ? exp(row[j] - mx) : 0.0);
                for (int j = 0; j <= i; j++) row[j] /= sum;
                double *o = out + ((size_t)b * n + i) * qd + h * hd;
                for (int e = 0; e < hd; e++) o[e] = 0;
                for (int j = 0; j <= i; j++) {
                    const double *vj = v + ((size_t)b * n + j) * kvd + (h / grp) * hd;
                    for (int e = 0; e < hd; e++) o[e] += row[j] * vj[e];
                }
                if (P)
                    for (int j = 0; j < n; j++) P[(((size_t)b * H + h) * n + i) * n + j] = j <= i ? row[j] : 0.0;
            }
    free(row);
}
static inline void d_attention(double *out, double *P, const double *q, const double *k, const double *v, int B, int n,
                               int H, int KVH, int hd) {
    d_attention_seg(out, P, q, k, v, NULL, B, n, H, KVH, hd);
}

static inline double d_silu(double g) { return g / (1.0 + exp(-g)); }

/* weighted cross-entropy; norm <= 0: sum of weights */
static inline double d_crossentropy(const double *logits, const int *tgt, const float *w, int N, int V, double norm) {
    double acc = 0, ws = 0;
    for (int r = 0; r < N; r++) {
        double wr = w ? w[r] : 1.0;
        ws += wr;
        if (wr == 0) continue;
        const double *z = logits + (size_t)r * V;
        double mx = z[0];
        for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        double s = 0;
        for (int j = 0; j < V; j++) s += exp(z[j] - mx);
        acc += wr * (mx + log(s) - z[tgt[r]]);
    }
    return acc / (norm > 0 ? norm : ws);
}

/* y[N, out] = x W^T, plus scaling * (x A^T) B^T when A */
static inline void d_linear(double *y, const double *x, const double *W, int N, int in, int out, const double *A,
                            const double *Bm, int r, double scaling) {
    for (int t = 0; t < N; t++) {
        const double *xt = x + (size_t)t * in;
        double u[64];
        if (A)
            for (int a = 0; a < r; a++) {
                double s = 0;
                for (int i = 0; i < in; i++) s += A[(size_t)a * in + i] * xt[i];
                u[a] = s;
            }
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += W[(size_t)o * in + i] * xt[i];
            if (A) {
                double l = 0;
                for (int a = 0; a < r; a++) l += Bm[(size_t)o * r + a] * u[a];
                s += scaling * l;
            }
            y[(size_t)t * out + o] = s;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* float64 model                                                              */

#define GC_MAX_LAYERS 8

/* Pointers into float64 copies laid out like ModelGrads.data and LoraAdapter.data. */
typedef struct {
    ModelConfig c;
    const float *cosT, *sinT; /* rotary tables of a run state */
    double *emb, *rms_final, *wcls;
    struct { double *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *bias[LIN_COUNT], *q_norm, *k_norm; } L[GC_MAX_LAYERS];
    int rank;
    double scaling;
    double *A[GC_MAX_LAYERS][LORA_N_TARGETS], *Bm[GC_MAX_LAYERS][LORA_N_TARGETS];
} DModel;

/* Points dm at P (layout of g) and Q (layout of adapter a, may be NULL). */
static inline void dmodel_bind(DModel *dm, const ModelGrads *g, double *P, const LoraAdapter *a, double *Q,
                               const RunState *s) {
    memset(dm, 0, sizeof *dm);
    dm->c = g->cfg;
    dm->cosT = s->rope_cos;
    dm->sinT = s->rope_sin;
#define OFF(ptr) (P + ((ptr) - g->data))
    dm->emb = OFF(g->tok_emb);
    dm->rms_final = OFF(g->rms_final);
    dm->wcls = OFF(g->wcls);
    for (int l = 0; l < g->cfg.n_layers; l++) {
        const LayerGrads *lg = &g->layers[l];
        dm->L[l].rms_att = OFF(lg->rms_att);
        dm->L[l].wq = OFF(lg->wq);
        dm->L[l].wk = OFF(lg->wk);
        dm->L[l].wv = OFF(lg->wv);
        dm->L[l].wo = OFF(lg->wo);
        dm->L[l].rms_ffn = OFF(lg->rms_ffn);
        dm->L[l].w1 = OFF(lg->w1);
        dm->L[l].w2 = OFF(lg->w2);
        dm->L[l].w3 = OFF(lg->w3);
        for (int t = 0; t < LIN_COUNT; t++) dm->L[l].bias[t] = lg->bias[t] ? OFF(lg->bias[t]) : NULL;
        dm->L[l].q_norm = lg->q_norm ? OFF(lg->q_norm) : NULL;
        dm->L[l].k_norm = lg->k_norm ? OFF(lg->k_norm) : NULL;
    }
#undef OFF
    if (a) {
        dm->rank = a->rank;
        dm->scaling = a->scaling;
        for (int l = 0; l < a->n_layers; l++)
            for (int t = 0; t < LORA_N_TARGETS; t++) {
                const LoraMat *p = lora_mat(a, l, (LoraTarget)t);
                if (!p) continue;
                dm->A[l][t] = Q + (p->A - a->data);
                dm->Bm[l][t] = Q + (p->B - a->data);
            }
    }
}

/* Copies the model's weights into P (layout of g). */
static inline void dmodel_copy_weights(const Model *m, const ModelGrads *g, double *P) {
    const ModelConfig *c = &m->cfg;
#define CP(dst, src, n) do { for (size_t i_ = 0; i_ < (size_t)(n); i_++) P[(dst) - g->data + i_] = (src)[i_]; } while (0)
    size_t d = c->dim, hid = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    CP(g->tok_emb, m->tok_emb.f32, (size_t)c->vocab_size * d);
    for (int l = 0; l < c->n_layers; l++) {
        const LayerGrads *lg = &g->layers[l];
        const LayerWeights *w = &m->layers[l];
        CP(lg->rms_att, w->rms_att, d);
        CP(lg->wq, w->wq.f32, qd * d);
        CP(lg->wk, w->wk.f32, kvd * d);
        CP(lg->wv, w->wv.f32, kvd * d);
        CP(lg->wo, w->wo.f32, d * qd);
        CP(lg->rms_ffn, w->rms_ffn, d);
        CP(lg->w1, w->w1.f32, hid * d);
        CP(lg->w2, w->w2.f32, d * hid);
        CP(lg->w3, w->w3.f32, hid * d);
        const size_t out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d};
        for (int t = 0; t < LIN_COUNT; t++)
            if (lg->bias[t]) CP(lg->bias[t], w->bias[t], out[t]);
        if (lg->q_norm) CP(lg->q_norm, w->q_norm, (size_t)c->head_dim);
        if (lg->k_norm) CP(lg->k_norm, w->k_norm, (size_t)c->head_dim);
    }
    CP(g->rms_final, m->rms_final, d);
    if (!c->tied) CP(g->wcls, m->wcls.f32, (size_t)c->vocab_size * d);
#undef CP
}

/* The logits [B*n, V] of the float64 model on B x n tokens from position 0; packed rows
 * when pos and seg [B*n] are given (else NULL). */
static inline void dmodel_logits(const DModel *dm, const int *tok, const int *pos, const int *seg, int B, int n,
                                 double *logits) {
    const ModelConfig *c = &dm->c;
    int N = B * n, d = c->dim, hd = c->head_dim, H = c->n_heads, KVH = c->n_kv_heads, qd = H * hd, kvd = KVH * hd;
    int hid = c->hidden_dim, V = c->vocab_size, r = dm->rank;
    double *x = malloc(sizeof(double) * N * d), *xn = malloc(sizeof(double) * N * d);
    double *q = malloc(sizeof(double) * N * qd), *k = malloc(sizeof(double) * N * kvd), *v = malloc(sizeof(double) * N * kvd);
    size_t wide = (size_t)(d > hid ? d : hid);
    if ((size_t)qd > wide) wide = (size_t)qd;
    double *ao = malloc(sizeof(double) * N * qd), *tmp = malloc(sizeof(double) * N * wide);
    double *h1 = malloc(sizeof(double) * N * hid), *h3 = malloc(sizeof(double) * N * hid);
    for (int t = 0; t < N; t++)
        for (int i = 0; i < d; i++) x[t * d + i] = dm->emb[(size_t)tok[t] * d + i];
    for (int l = 0; l < c->n_layers; l++) {
#define LIN(y, xx, W, in, out, T)                                                                 \
    do {                                                                                          \
        d_linear(y, xx, dm->L[l].W, N, in, out, dm->A[l][T], dm->Bm[l][T], r, dm->scaling);       \
        if (dm->L[l].bias[T])                                                                     \
            for (int t_ = 0; t_ < N; t_++)                                                        \
                for (int o_ = 0; o_ < (out); o_++) (y)[(size_t)t_ * (out) + o_] += dm->L[l].bias[T][o_]; \
    } while (0)
        d_rmsnorm(xn, x, dm->L[l].rms_att, N, d, c->norm_eps);
        LIN(q, xn, wq, d, qd, LORA_Q);
        LIN(k, xn, wk, d, kvd, LORA_K);
        LIN(v, xn, wv, d, kvd, LORA_V);
        if (dm->L[l].q_norm) { /* per-head RMSNorm (Qwen3), in place through tmp */
            d_rmsnorm(tmp, q, dm->L[l].q_norm, N * H, hd, c->norm_eps);
            memcpy(q, tmp, sizeof(double) * N * qd);
            d_rmsnorm(tmp, k, dm->L[l].k_norm, N * KVH, hd, c->norm_eps);
            memcpy(k, tmp, sizeof(double) * N * kvd);
        }
        d_window = c->sliding_window;
        d_window_pos = pos;
        d_rope_at(q, N, n, 0, pos, H, hd, c->rope, dm->cosT, dm->sinT);
        d_rope_at(k, N, n, 0, pos, KVH, hd, c->rope, dm->cosT, dm->sinT);
        d_attention_seg(ao, NULL, q, k, v, seg, B, n, H, KVH, hd);
        LIN(tmp, ao, wo, qd, d, LORA_O);
        for (int i = 0; i < N * d; i++) x[i] += tmp[i];
        d_rmsnorm(xn, x, dm->L[l].rms_ffn, N, d, c->norm_eps);
        LIN(h1, xn, w1, d, hid, LORA_GATE);
        LIN(h3, xn, w3, d, hid, LORA_UP);
        for (int i = 0; i < N * hid; i++) h1[i] = d_silu(h1[i]) * h3[i];
        LIN(tmp, h1, w2, hid, d, LORA_DOWN);
        for (int i = 0; i < N * d; i++) x[i] += tmp[i];
#undef LIN
    }
    d_rmsnorm(xn, x, dm->rms_final, N, d, c->norm_eps);
    d_linear(logits, xn, dm->wcls, N, d, V, NULL, NULL, 0, 0);
    free(x); free(xn); free(q); free(k); free(v); free(ao); free(tmp); free(h1); free(h3);
}

/* The weighted cross-entropy of the float64 model on B x n tokens from position 0. */
static inline double dmodel_loss(const DModel *dm, const int *tok, const int *tgt, const float *w, int B, int n,
                                 double *logits_out) {
    int V = dm->c.vocab_size;
    double *logits = logits_out ? logits_out : malloc(sizeof(double) * B * n * V);
    dmodel_logits(dm, tok, NULL, NULL, B, n, logits);
    double loss = d_crossentropy(logits, tgt, w, B * n, V, 0);
    if (!logits_out) free(logits);
    return loss;
}

/* ------------------------------------------------------------------------- */
/* a tiny random model in memory                                              */

static inline float *tiny_vec(Model *m, TRng *r, size_t n, float scale, float offset) {
    float *p = model_alloc(m, n * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = offset + trng_sym(r, scale);
    return p;
}

/* dim 16, 2 layers, 4 heads, 2 kv heads, hidden 40, vocab 32 (defaults), owned fp32
 * weights (writable), uniform(-scale, scale) matrices, norms 1 +- 0.2 */
static inline void tiny_model(Model *m, const ModelConfig *cfg, uint64_t seed, float scale) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    ModelConfig *c = &m->cfg;
    if (!c->head_dim) c->head_dim = c->dim / c->n_heads;
    m->format = MODEL_FMT_LLAMA2C;
    m->stored_type = DT_F32;
    m->wtype = KW_F32;
    m->writable = 1;
    assert_int_equal(model_config_check(c, "tiny model"), 0);
    TRng r = {seed * 0x9e3779b97f4a7c15ull + 12345};
    int d = c->dim, hid = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, V = c->vocab_size;
    m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers);
    kweight_init_f32(&m->tok_emb, tiny_vec(m, &r, (size_t)V * d, 1.0f, 0), V, d);
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *w = &m->layers[l];
        w->rms_att = tiny_vec(m, &r, d, 0.2f, 1.0f);
        kweight_init_f32(&w->wq, tiny_vec(m, &r, (size_t)qd * d, scale, 0), qd, d);
        kweight_init_f32(&w->wk, tiny_vec(m, &r, (size_t)kvd * d, scale, 0), kvd, d);
        kweight_init_f32(&w->wv, tiny_vec(m, &r, (size_t)kvd * d, scale, 0), kvd, d);
        kweight_init_f32(&w->wo, tiny_vec(m, &r, (size_t)d * qd, scale, 0), d, qd);
        w->rms_ffn = tiny_vec(m, &r, d, 0.2f, 1.0f);
        kweight_init_f32(&w->w1, tiny_vec(m, &r, (size_t)hid * d, scale, 0), hid, d);
        kweight_init_f32(&w->w2, tiny_vec(m, &r, (size_t)d * hid, scale, 0), d, hid);
        kweight_init_f32(&w->w3, tiny_vec(m, &r, (size_t)hid * d, scale, 0), hid, d);
        const int out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d};
        for (int t = 0; t < LIN_COUNT; t++)
            if (c->bias & LIN_BIT(t)) w->bias[t] = tiny_vec(m, &r, (size_t)out[t], 0.3f, 0);
        if (c->qk_norm) {
            w->q_norm = tiny_vec(m, &r, (size_t)c->head_dim, 0.2f, 1.0f);
            w->k_norm = tiny_vec(m, &r, (size_t)c->head_dim, 0.2f, 1.0f);
        }
    }
    m->rms_final = tiny_vec(m, &r, d, 0.2f, 1.0f);
    if (!c->tied) kweight_init_f32(&m->wcls, tiny_vec(m, &r, (size_t)V * d, scale, 0), V, d);
    assert_int_equal(model_finish(m), 0);
}

/* out [B*T, vocab] = the logits of tok [B, T] through m with adapter a (NULL: none). */
static inline void tiny_lora_logits(Model *m, const LoraAdapter *a, const int *tok, int B, int T, float *out) {
    RunState s;
    assert_int_equal(runstate_init(&s, m, B, T, T, RS_KEEP_NONE), 0);
    if (a) assert_int_equal(runstate_set_lora(&s, a), 0);
    assert_int_equal(model_forward(&s, tok, B, T, 0), 0);
    memcpy(out, s.logits, (size_t)B * T * m->cfg.vocab_size * sizeof(float));
    runstate_free(&s);
}

static inline ModelConfig tiny_config(RopeStyle rope, int tied) {
    ModelConfig c = {0};
    c.dim = 16;
    c.hidden_dim = 40;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 4;
    c.vocab_size = 32;
    c.seq_len = 64;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    c.tied = tied;
    c.rope = rope;
    c.bos_id = 1;
    c.eos_id = 2;
    return c;
}

/* Every gradient tensor of a model (or adapter) by name, with its offset in the flat buffer. */
typedef struct { char name[48]; float *a; size_t off, n; } TensorRef;

static inline int model_tensors(const ModelGrads *g, TensorRef *t) {
    const ModelConfig *c = &g->cfg;
    size_t d = c->dim, hid = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    int k = 0;
#define ADD(nm, ptr, cnt) do { snprintf(t[k].name, sizeof t[k].name, "%s", nm); t[k].a = (ptr); t[k].off = (size_t)((ptr) - g->data); t[k].n = (cnt); k++; } while (0)
    ADD(c->tied ? "tok_emb (tied)" : "tok_emb", g->tok_emb, (size_t)c->vocab_size * d);
    for (int l = 0; l < c->n_layers; l++) {
        const LayerGrads *L = &g->layers[l];
        char nm[48];
#define ADDL(field, cnt) do { snprintf(nm, sizeof nm, "layer %d %s", l, #field); ADD(nm, L->field, cnt); } while (0)
        ADDL(rms_att, d); ADDL(wq, qd * d); ADDL(wk, kvd * d); ADDL(wv, kvd * d); ADDL(wo, d * qd);
        ADDL(rms_ffn, d); ADDL(w1, hid * d); ADDL(w2, d * hid); ADDL(w3, hid * d);
        const size_t out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d};
        static const char *const bn[LIN_COUNT] = {"bq", "bk", "bv", "bo", "b_gate", "b_up", "b_down"};
        for (int tt = 0; tt < LIN_COUNT; tt++)
            if (L->bias[tt]) { snprintf(nm, sizeof nm, "layer %d %s", l, bn[tt]); ADD(nm, L->bias[tt], out[tt]); }
        if (L->q_norm) { ADDL(q_norm, (size_t)c->head_dim); ADDL(k_norm, (size_t)c->head_dim); }
#undef ADDL
    }
    ADD("rms_final", g->rms_final, d);
    if (!c->tied) ADD("wcls", g->wcls, (size_t)c->vocab_size * d);
#undef ADD
    return k;
}

static inline int lora_tensors(const LoraAdapter *a, TensorRef *t) {
    int k = 0;
    for (int l = 0; l < a->n_layers; l++)
        for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
            LoraMat *p = lora_mat(a, l, (LoraTarget)tg);
            if (!p) continue;
            snprintf(t[k].name, sizeof t[k].name, "lora layer %d %s A", l, lora_target_name((LoraTarget)tg));
            t[k].a = p->A; t[k].off = (size_t)(p->A - a->data); t[k].n = (size_t)p->rank * p->in; k++;
            snprintf(t[k].name, sizeof t[k].name, "lora layer %d %s B", l, lora_target_name((LoraTarget)tg));
            t[k].a = p->B; t[k].off = (size_t)(p->B - a->data); t[k].n = (size_t)p->out * p->rank; k++;
        }
    return k;
}

#endif
