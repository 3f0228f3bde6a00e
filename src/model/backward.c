/* model/backward.c - loss and backward pass of the forward pass (forward.c).
 *
 * Per layer, in reverse (N = B*n positions, shapes as in forward.h; dx is the
 * gradient of the residual stream, first the layer's output, at the end its input):
 *   dhg = dx W2                  dW2 += dx^T hg                     [N, hidden]
 *   dh1, dh3 = swiglu'(dhg)      (geglu'(dhg), Gemma; dh3 = gelu'(h3) dhg, Phi: no gate)
 *   dxn2 = dh1 W1 + dh3 W3       dW1 += dh1^T xn2, dW3 += dh3^T xn2 [N, d]
 *   dx += norm'(dxn2)            drms_ffn [dnorm_ffn_b]              (dx = d x_mid)
 *   (parallel residual, Phi: xn2 is xn1, no norm here: dx is already d x_mid and dxn2
 *    stays in dxn, to which the attention's dxn1 below adds)
 *   datt_out = dx Wo             dWo += dx^T att_out                 [N, qd]
 *   dq, dk, dv = attention'(datt_out)   (dk, dv summed over each kv group)
 *   dq, dk = rotary^T(dq, dk)
 *   [dq, dk = rmsnorm_head'(dq, dk)     dq_norm, dk_norm]            (cfg.qk_norm)
 *   dxn1 = dq Wq + dk Wk + dv Wv        dWq, dWk, dWv                [N, d]
 * Every linear with a bias adds db += column sums of its output's gradient.
 *   dx += norm'(dxn1)            drms_att [dnorm_att_b]              (dx = d x_in)
 * "norm" is the family's (ops.h norm_backward: RMSNorm times (offset + w), LayerNorm).
 * Final: dbcls = column sums of dlogits (Phi); the embedding scale (Gemma) multiplies dx
 * by sqrt(d) before the scatter-add.
 * Packed rows (model_forward_train_packed): the forward's probabilities of hidden keys
 * are exactly 0, so the attention backward needs no mask; the rotary backward rotates back
 * at the explicit positions, read from the run state like the forward did.
 * Each adapted linear adds its low-rank path (lora.h). Before the layers: the loss,
 * the classifier and the final norm; after them: the embedding (scatter-add).
 * All reductions run in a fixed order: same inputs and thread count, same bits.
 * Precision: with a bf16 model the products above take bf16 operands (the incoming
 * gradient rounded too: dx = bf16(dy) W, LoRA's dA, dB from bf16 operands, and in full
 * training - the bf16 view of fp32 masters, train/mixed.h - dW = bf16(dy)^T bf16(x)) and
 * sum in fp32 into fp32 gradients (ops.h model_products); the softmax and norm backward,
 * the loss, the embedding's scatter-add and the gradients themselves stay fp32.
 */
#include "backward.h"
#include "ops.h"
#include "core/cpu.h"
#include "core/error.h"
#include "kernel/vmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* gradients of the weights                                                   */

static size_t grads_plan(ModelGrads *g, const ModelConfig *c, float *base) {
    size_t d = c->dim, hid = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, V = c->vocab_size, off = 0;
#define TAKE(ptr, n) do { if (base) (ptr) = base + off; off += (n); } while (0)
    TAKE(g->tok_emb, V * d);
    const ModelArch *a = c->arch ? c->arch : arch_llama();
    int ffn_norm = !a->parallel_residual, gate = (c->linears ? c->linears : LIN_ALL & ~a->no_linears) & LIN_BIT(LIN_GATE);
    int layer_norm = a->norm == ARCH_NORM_LAYER;
    for (int l = 0; l < c->n_layers; l++) {
        LayerGrads *lg = g->layers ? &g->layers[l] : &(LayerGrads){0};
        TAKE(lg->rms_att, d);
        TAKE(lg->wq, qd * d);
        TAKE(lg->wk, kvd * d);
        TAKE(lg->wv, kvd * d);
        TAKE(lg->wo, d * qd);
        if (ffn_norm) TAKE(lg->rms_ffn, d);
        if (gate) TAKE(lg->w1, hid * d);
        TAKE(lg->w2, d * hid);
        TAKE(lg->w3, hid * d);
    }
    const size_t out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d};
    for (int l = 0; l < c->n_layers; l++) {
        LayerGrads *lg = g->layers ? &g->layers[l] : &(LayerGrads){0};
        for (int s = 0; s < LIN_COUNT; s++)
            if (c->bias & LIN_BIT(s)) TAKE(lg->bias[s], out[s]);
        if (c->qk_norm) {
            TAKE(lg->q_norm, (size_t)c->head_dim);
            TAKE(lg->k_norm, (size_t)c->head_dim);
        }
        if (layer_norm) {
            TAKE(lg->norm_att_b, d);
            if (ffn_norm) TAKE(lg->norm_ffn_b, d);
        }
    }
    TAKE(g->rms_final, d);
    if (layer_norm) TAKE(g->norm_final_b, d);
    if (a->head_bias) TAKE(g->cls_b, V);
    if (c->tied) {
        if (base) g->wcls = g->tok_emb;
    } else {
        TAKE(g->wcls, V * d);
    }
#undef TAKE
    return off;
}

int model_params(const Model *m, ModelGrads *g, ModelParam *out) {
    const ModelConfig *c = &m->cfg;
    int k = 0;
    size_t d = c->dim, hd = c->head_dim, V = c->vocab_size;
#define PUT(nm_fmt, l_, w_, kw_, g_, cnt, norm)                                         \
    do {                                                                               \
        if (out) {                                                                     \
            ModelParam *p_ = &out[k];                                                  \
            p_->param = (w_);                                                          \
            p_->kw = (kw_);                                                            \
            p_->grad = g ? (g_) : NULL;                                                \
            p_->n = (cnt);                                                             \
            p_->is_norm = (norm);                                                      \
            snprintf(p_->name, sizeof p_->name, nm_fmt, l_);                           \
        }                                                                              \
        k++;                                                                           \
    } while (0)
#define MATP(nm, l_, kwp, gp) PUT(nm, l_, (kwp)->type == KW_F32 ? (float *)(kwp)->f32 : NULL, kwp, gp, (size_t)(kwp)->n * (kwp)->k, 0)
    static const char *const bias_names[LIN_COUNT] = {"bq", "bk", "bv", "bo", "b1", "b3", "b2"}; /* as w1 w3 w2 */
    MATP("tok_emb%.0d", 0, &m->tok_emb, g ? g->tok_emb : NULL);
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        LayerGrads *lg = g ? &g->layers[l] : NULL;
        PUT("layers.%d.rms_att", l, w->rms_att, NULL, lg ? lg->rms_att : NULL, d, 1);
        MATP("layers.%d.wq", l, &w->wq, lg ? lg->wq : NULL);
        MATP("layers.%d.wk", l, &w->wk, lg ? lg->wk : NULL);
        MATP("layers.%d.wv", l, &w->wv, lg ? lg->wv : NULL);
        MATP("layers.%d.wo", l, &w->wo, lg ? lg->wo : NULL);
        if (model_has_ffn_norm(c)) PUT("layers.%d.rms_ffn", l, w->rms_ffn, NULL, lg ? lg->rms_ffn : NULL, d, 1);
        if (model_has_linear(c, LIN_GATE)) MATP("layers.%d.w1", l, &w->w1, lg ? lg->w1 : NULL);
        MATP("layers.%d.w2", l, &w->w2, lg ? lg->w2 : NULL);
        MATP("layers.%d.w3", l, &w->w3, lg ? lg->w3 : NULL);
    }
    PUT("rms_final%.0d", 0, m->rms_final, NULL, g ? g->rms_final : NULL, d, 1);
    if (!c->tied) MATP("wcls%.0d", 0, &m->wcls, g ? g->wcls : NULL);
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        LayerGrads *lg = g ? &g->layers[l] : NULL;
        for (int s = 0; s < LIN_COUNT; s++) {
            if (!w->bias[s]) continue;
            char fmt[40];
            snprintf(fmt, sizeof fmt, "layers.%%d.%s", bias_names[s]);
            PUT(fmt, l, w->bias[s], NULL, lg ? lg->bias[s] : NULL, (size_t)model_linear(m, l, (LinearSlot)s)->n, 1);
        }
        if (w->q_norm) PUT("layers.%d.q_norm", l, w->q_norm, NULL, lg ? lg->q_norm : NULL, hd, 1);
        if (w->k_norm) PUT("layers.%d.k_norm", l, w->k_norm, NULL, lg ? lg->k_norm : NULL, hd, 1);
        if (w->norm_att_b) PUT("layers.%d.norm_att_b", l, w->norm_att_b, NULL, lg ? lg->norm_att_b : NULL, d, 1);
        if (w->norm_ffn_b) PUT("layers.%d.norm_ffn_b", l, w->norm_ffn_b, NULL, lg ? lg->norm_ffn_b : NULL, d, 1);
    }
    if (m->norm_final_b) PUT("norm_final_b%.0d", 0, m->norm_final_b, NULL, g ? g->norm_final_b : NULL, d, 1);
    if (m->cls_b) PUT("cls_b%.0d", 0, m->cls_b, NULL, g ? g->cls_b : NULL, V, 1);
#undef MATP
#undef PUT
    return k;
}

int model_grads_init(ModelGrads *g, const Model *m) {
    memset(g, 0, sizeof *g);
    g->cfg = m->cfg;
    g->layers = calloc((size_t)m->cfg.n_layers, sizeof *g->layers);
    if (!g->layers) return err_set("out of memory");
    size_t n = grads_plan(g, &m->cfg, NULL);
    g->data = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
    if (!g->data) {
        free(g->layers);
        memset(g, 0, sizeof *g);
        return err_set("out of memory: the gradients need %zu MB", (n * sizeof(float)) >> 20);
    }
    g->n_floats = n;
    memset(g->data, 0, n * sizeof(float));
    grads_plan(g, &m->cfg, g->data);
    return 0;
}

void model_grads_free(ModelGrads *g) {
    free(g->data);
    free(g->layers);
    memset(g, 0, sizeof *g);
}

void model_grads_zero(ModelGrads *g) {
    if (g->data) memset(g->data, 0, g->n_floats * sizeof(float));
}

/* ------------------------------------------------------------------------- */
/* layer primitives                                                           */

int crossentropy_forward(double *loss, float *nll, const float *logits, const int *targets, const float *weights,
                         int N, int V, double norm) {
    double wsum = 0.0;
    for (int r = 0; r < N; r++) {
        float w = weights ? weights[r] : 1.0f;
        if (!(w >= 0.0f) || !isfinite(w)) return err_set("loss: weight %g at position %d: expected a finite value >= 0", (double)w, r);
        if (w != 0.0f && (targets[r] < 0 || targets[r] >= V))
            return err_set("loss: target id %d at position %d is outside the vocabulary (0..%d)", targets[r], r, V - 1);
        wsum += w;
    }
    if (norm <= 0.0) {
        if (wsum <= 0.0) return err_set("loss: every one of the %d positions has weight 0: nothing to learn from", N);
        norm = wsum;
    }
    float *buf = nll;
    if (!buf && !(buf = malloc((size_t)N * sizeof *buf))) return err_set("out of memory");
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * V * 4))
    for (int r = 0; r < N; r++) {
        float w = weights ? weights[r] : 1.0f;
        if (w == 0.0f) {
            buf[r] = 0.0f;
            continue;
        }
        const float *z = logits + (size_t)r * V;
        buf[r] = (float)(kvec_logsumexp(z, V) - (double)z[targets[r]]);
    }
    double acc = 0.0;
    for (int r = 0; r < N; r++) acc += (double)(weights ? weights[r] : 1.0f) * buf[r];
    if (buf != nll) free(buf);
    *loss = acc / norm;
    return 0;
}

void crossentropy_backward(float *dlogits, const float *logits, const int *targets, const float *weights, int N, int V,
                           double norm, float dloss) {
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * V * 4))
    for (int r = 0; r < N; r++) {
        float w = weights ? weights[r] : 1.0f;
        const float *z = logits + (size_t)r * V;
        float *dz = dlogits + (size_t)r * V;
        if (w == 0.0f) {
            memset(dz, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = kvec_max(z, V);
        double sum = kvec_sum_exp(z, mx, V);
        float coef = (float)((double)dloss * w / norm);
        float scale = (float)(1.0 / sum) * coef;
        kvec_exp_scale(dz, z, mx, scale, V);
        dz[targets[r]] -= coef;
    }
}

void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      int N, int d) {
    rmsnorm_off_backward(dx, dw, dout, x, w, 0.0f, rstd, N, d);
}

void rope_backward(float *dx, int N, int n, int pos0, int nh, int hd, RopeStyle style, const float *cosT, const float *sinT) {
    rope_backward_partial(dx, N, n, pos0, NULL, nh, hd, hd, style, cosT, sinT);
}

void rope_backward_at(float *dx, int N, int n, int pos0, const int *positions, int nh, int hd, RopeStyle style,
                      const float *cosT, const float *sinT) {
    rope_backward_partial(dx, N, n, pos0, positions, nh, hd, hd, style, cosT, sinT);
}

void rope_backward_partial(float *dx, int N, int n, int pos0, const int *positions, int nh, int hd, int rd, RopeStyle style,
                           const float *cosT, const float *sinT) {
    /* forward: (a, b) -> (a c - b s, a s + b c); its transpose (ga, gb) -> (ga c + gb s, gb c - ga s)
     * is the same turn by the opposite angle */
    rope_rotate_partial(dx, N, n, pos0, positions, nh, hd, rd, style, cosT, sinT, 1);
}

void bias_backward(float *db, const float *dy, int N, int out) {
    /* threads own blocks of 64 columns and walk the rows in order (contiguous reads); each
     * element is still summed over rows 0..N-1 in order, then added to db */
    int nblk = (out + 63) / 64;
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * out))
    for (int blk = 0; blk < nblk; blk++) {
        int i0 = blk * 64, i1 = i0 + 64 < out ? i0 + 64 : out;
        float acc[64] = {0};
        for (int r = 0; r < N; r++) {
            const float *y = dy + (size_t)r * out;
            for (int i = i0; i < i1; i++) acc[i - i0] += y[i];
        }
        for (int i = i0; i < i1; i++) db[i] += acc[i - i0];
    }
}

void swiglu_backward(float *dh1, float *dh3, const float *dhg, const float *h1, const float *h3, size_t n) {
#pragma omp parallel for schedule(static) if (CPU_PAR(n * 8))
    for (size_t i = 0; i < n; i++) {
        float g = h1[i], dy = dhg[i];
        float sig = 1.0f / (1.0f + expf(-g));
        float silu = g * sig;
        dh3[i] = dy * silu;
        dh1[i] = dy * h3[i] * (sig * (1.0f + g * (1.0f - sig)));
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *datt, const float *datt_out, const float *q,
                        const float *k, const float *v, size_t kv_bstride, const float *att, int B, int n, int H,
                        int KVH, int hd) {
    attention_backward_with(&kmm_products_f32, dq, dk, dv, datt, datt_out, q, k, v, kv_bstride, att, B, n, H, KVH, hd);
}

void attention_backward_with(const KmmProducts *pp, float *dq, float *dk, float *dv, float *datt, const float *datt_out,
                             const float *q, const float *k, const float *v, size_t kv_bstride, const float *att, int B,
                             int n, int H, int KVH, int hd) {
    int grp = H / KVH, qd = H * hd, kvd = KVH * hd;
    float scale = 1.0f / sqrtf((float)hd);
    /* one task per (sequence, kv head): the heads of a group add into the same dk, dv */
#pragma omp parallel for collapse(2) schedule(static) if (CPU_PAR((size_t)B * H * n * n * hd * 4))
    for (int b = 0; b < B; b++)
        for (int g = 0; g < KVH; g++) {
            const float *K = k + (size_t)b * kv_bstride + (size_t)g * hd;
            const float *Vv = v + (size_t)b * kv_bstride + (size_t)g * hd;
            float *dK = dk + (size_t)b * n * kvd + (size_t)g * hd;
            float *dV = dv + (size_t)b * n * kvd + (size_t)g * hd;
            for (int hh = 0; hh < grp; hh++) {
                int h = g * grp + hh;
                const float *P = att + ((size_t)b * H + h) * n * n;
                float *dS = datt + ((size_t)b * H + h) * n * n;
                const float *dO = datt_out + (size_t)b * n * qd + (size_t)h * hd;
                const float *Q = q + (size_t)b * n * qd + (size_t)h * hd;
                float *dQ = dq + (size_t)b * n * qd + (size_t)h * hd;
                float beta = hh ? 1.0f : 0.0f;
                /* dP[n, n] = dO V^T;  dV[n, hd] (+)= P^T dO */
                pp->nt(n, n, hd, dO, qd, Vv, kvd, dS, n, 1.0f, 0.0f);
                pp->tn(n, hd, n, P, n, dO, qd, dV, kvd, 1.0f, beta);
                /* softmax backward along each causal row: dS = P * (dP - sum_j P dP) */
                for (int i = 0; i < n; i++) {
                    const float *p = P + (size_t)i * n;
                    float *ds = dS + (size_t)i * n;
                    float dot = 0.0f;
                    for (int j = 0; j <= i; j++) dot += p[j] * ds[j];
                    for (int j = 0; j <= i; j++) ds[j] = p[j] * (ds[j] - dot);
                    for (int j = i + 1; j < n; j++) ds[j] = 0.0f;
                }
                /* scores = scale * Q K^T:  dQ = scale * dS K;  dK (+)= scale * dS^T Q */
                pp->nn(n, hd, n, dS, n, K, kvd, dQ, qd, scale, 0.0f);
                pp->tn(n, hd, n, dS, n, Q, qd, dK, kvd, scale, beta);
            }
        }
}

void embedding_backward(float *demb, const float *dx, const int *tokens, int N, int d) {
    /* threads own column slices: each element is summed over rows in order */
    int nblk = (d + 63) / 64;
#pragma omp parallel for schedule(static) if (CPU_PAR((size_t)N * d))
    for (int blk = 0; blk < nblk; blk++) {
        int i0 = blk * 64, i1 = i0 + 64 < d ? i0 + 64 : d;
        for (int r = 0; r < N; r++) {
            float *e = demb + (size_t)tokens[r] * d;
            const float *g = dx + (size_t)r * d;
            for (int i = i0; i < i1; i++) e[i] += g[i];
        }
    }
}

/* ------------------------------------------------------------------------- */
/* the whole model                                                            */

int model_loss(RunState *s, const int *tokens, const int *targets, const float *weights, int B, int n, double norm,
               double *loss, float *nll) {
    const ModelConfig *c = &s->model->cfg;
    if (s->keep == RS_KEEP_NONE)
        return err_set("loss: the run state was made for inference (keep = RS_KEEP_NONE); training needs RS_KEEP_ALL or RS_KEEP_INPUTS");
    if (model_forward(s, tokens, B, n, 0) != 0) return -1;
    int N = B * n;
    double wsum = 0.0;
    for (int r = 0; r < N; r++) wsum += weights ? weights[r] : 1.0f;
    if (crossentropy_forward(loss, nll, s->logits, targets, weights, N, c->vocab_size, norm) != 0) return -1;
    for (int r = 0; r < N; r++) {
        float w = weights ? weights[r] : 1.0f;
        s->weights[r] = w;
        s->targets[r] = w != 0.0f ? targets[r] : 0;
    }
    s->loss_norm = norm > 0.0 ? norm : wsum;
    s->have_loss = RUN_LOSS_CE;
    return 0;
}

/* dw[out, in] += dy[N, out]^T x[N, in] with the products of pp: exact fp32 (kmm_dw), or
 * mixed (both operands rounded to bf16, fp32 sums: kmm_bf16_tn). */
static void weight_grad(const KmmProducts *pp, const float *dy, const float *x, int N, int out, int in, float *dw) {
    if (pp == &kmm_products_bf16) kmm_bf16_tn(out, in, N, dy, out, x, in, dw, in, 1.0f, 1.0f);
    else kmm_dw(dy, x, N, out, in, dw, 1.0f);
}

static float *grad_of(LayerGrads *gw, LoraTarget t) {
    if (!gw) return NULL;
    float *const g[LIN_COUNT] = {gw->wq, gw->wk, gw->wv, gw->wo, gw->w1, gw->w3, gw->w2};
    return g[t];
}

/* dx (+)= dy W (beta 0: =) and, with gw, the gradients of the weight and its bias, plus
 * the adapter's low-rank path of (l, t) when one is attached: its contribution to dx and
 * (when lg) to dA, dB. x is the layer's input [N, in], dy the gradient of its output [N, out]. */
static void linear_backward(RunState *s, LayerActs *a, int l, LoraTarget t, LayerGrads *gw, LoraAdapter *lg,
                            const float *x, const float *dy, int N, float *dx, float beta) {
    const KWeight *w = model_linear(s->model, l, (LinearSlot)t);
    float *wgrad = grad_of(gw, t);
    const KmmProducts *pp = model_products(s->model, N);
    pp->xw(w, dy, N, dx, beta);
    if (wgrad) weight_grad(pp, dy, x, N, w->n, w->k, wgrad);
    if (gw && gw->bias[t]) bias_backward(gw->bias[t], dy, N, w->n);
    const LoraAdapter *ad = s->lora;
    if (ad && !ad->merged) {
        const LoraMat *p = lora_mat(ad, l, t);
        if (p) lora_linear_backward_with(pp, p, ad->scaling, x, a->lora_u[t], dy, N, lg ? lora_mat(lg, l, t) : NULL, s->g.lora_du, dx);
    }
}

/* q or k: dy [N, heads*hd] is the gradient after the per-head norm (cfg.qk_norm: back
 * through it into G->dqk_pre, with dq_norm / dk_norm), then the linear into G->dxn. */
static void qk_backward(RunState *s, LayerActs *a, int l, LoraTarget t, LayerGrads *gw, LoraAdapter *lg, const float *dy,
                        float beta) {
    const ModelConfig *c = &s->model->cfg;
    const LayerWeights *w = &s->model->layers[l];
    int N = s->batch * s->n, isq = t == LORA_Q, heads = isq ? c->n_heads : c->n_kv_heads, hd = c->head_dim;
    if (c->qk_norm) {
        float *dpre = s->g.dqk_pre;
        memset(dpre, 0, (size_t)N * heads * hd * sizeof(float));
        rmsnorm_backward(dpre, gw ? (isq ? gw->q_norm : gw->k_norm) : NULL, dy, isq ? a->q_pre : a->k_pre,
                         isq ? w->q_norm : w->k_norm, isq ? a->q_rstd : a->k_rstd, N * heads, hd);
        dy = dpre;
    }
    linear_backward(s, a, l, t, gw, lg, a->xn1, dy, N, s->g.dxn, beta);
}

static void layer_backward(RunState *s, int l, ModelGrads *g, LoraAdapter *lg) {
    const Model *m = s->model;
    const ModelConfig *c = &m->cfg;
    int B = s->batch, n = s->n, N = B * n;
    int d = c->dim, hd = c->head_dim, kvd = c->n_kv_heads * hd, hid = c->hidden_dim;
    LayerActs *a = &s->acts[l];
    const LayerWeights *w = &m->layers[l];
    LayerGrads *gw = g ? &g->layers[l] : NULL;
    RunGrads *G = &s->g;
    size_t lstride = (size_t)s->max_batch * s->max_seq * kvd;

    /* feed-forward: x_out = x_mid + W2 (silu(W1 xm) * W3 xm), xm = xn2 (or xn1, parallel) */
    int ffn_norm = model_has_ffn_norm(c);
    const float *xm = ffn_norm ? a->xn2 : a->xn1;
    size_t nh = (size_t)N * hid;
    linear_backward(s, a, l, LORA_DOWN, gw, lg, a->hg, G->dx, N, G->dh1, 0.0f);
    if (c->arch->mlp == ARCH_MLP_GELU) { /* hg = gelu(W3 xm) */
        gelu_tanh_backward(G->dh3, G->dh1, a->h3, nh);
        linear_backward(s, a, l, LORA_UP, gw, lg, xm, G->dh3, N, G->dxn, 0.0f);
    } else {
        if (c->arch->mlp == ARCH_MLP_GEGLU) geglu_backward(G->dh1, G->dh3, G->dh1, a->h1, a->h3, nh);
        else swiglu_backward(G->dh1, G->dh3, G->dh1, a->h1, a->h3, nh);
        linear_backward(s, a, l, LORA_GATE, gw, lg, xm, G->dh1, N, G->dxn, 0.0f);
        linear_backward(s, a, l, LORA_UP, gw, lg, xm, G->dh3, N, G->dxn, 1.0f);
    }
    /* dx becomes d x_mid; a parallel residual keeps the MLP's dxn1 in dxn for the attention's */
    if (ffn_norm)
        norm_backward(c, G->dx, gw ? gw->rms_ffn : NULL, gw ? gw->norm_ffn_b : NULL, G->dxn, a->x_mid, w->rms_ffn, a->rstd2, N, d);

    /* attention: x_mid = x_in + Wo attention(rotary(Wq xn1), rotary(Wk xn1), Wv xn1) */
    linear_backward(s, a, l, LORA_O, gw, lg, a->att_out, G->dx, N, G->datt_out, 0.0f);
    attention_backward_with(model_products(m, N), G->dq, G->dk, G->dv, G->datt, G->datt_out, a->q, s->kcache + l * lstride,
                       s->vcache + l * lstride, (size_t)s->max_seq * kvd, a->att, B, n, c->n_heads, c->n_kv_heads, hd);
    rope_backward_partial(G->dq, N, n, 0, s->pos_ids, c->n_heads, hd, c->rope_dims, c->rope, s->rope_cos, s->rope_sin);
    rope_backward_partial(G->dk, N, n, 0, s->pos_ids, c->n_kv_heads, hd, c->rope_dims, c->rope, s->rope_cos, s->rope_sin);
    qk_backward(s, a, l, LORA_Q, gw, lg, G->dq, ffn_norm ? 0.0f : 1.0f);
    qk_backward(s, a, l, LORA_K, gw, lg, G->dk, 1.0f);
    linear_backward(s, a, l, LORA_V, gw, lg, a->xn1, G->dv, N, G->dxn, 1.0f);
    norm_backward(c, G->dx, gw ? gw->rms_att : NULL, gw ? gw->norm_att_b : NULL, G->dxn, a->x_in, w->rms_att, a->rstd1, N, d);
}

static int backward_run(RunState *s, ModelGrads *g, LoraAdapter *lg, int with_ce);

static int lora_same_shape(const LoraAdapter *a, const LoraAdapter *b) {
    if (a->n_layers != b->n_layers || a->rank != b->rank || a->targets != b->targets || a->n_floats != b->n_floats) return 0;
    for (size_t i = 0; i < (size_t)a->n_layers * LORA_N_TARGETS; i++)
        if (a->mats[i].in != b->mats[i].in || a->mats[i].out != b->mats[i].out) return 0;
    return 1;
}

int model_forward_train(RunState *s, const int *tokens, int B, int n) {
    if (s->keep == RS_KEEP_NONE)
        return err_set("forward: the run state was made for inference (keep = RS_KEEP_NONE); training needs RS_KEEP_ALL or RS_KEEP_INPUTS");
    if (model_forward(s, tokens, B, n, 0) != 0) return -1;
    s->have_loss = RUN_LOSS_CALLER; /* the caller's loss: s->logits will hold its gradient */
    return 0;
}

int model_forward_train_packed(RunState *s, const int *tokens, const int *pos_ids, const int *seg_ids, int B, int n) {
    s->pos_ids = NULL;
    s->seg_ids = NULL;
    s->have_loss = RUN_LOSS_NONE;
    if (s->keep == RS_KEEP_NONE)
        return err_set("forward: the run state was made for inference (keep = RS_KEEP_NONE); training needs RS_KEEP_ALL or RS_KEEP_INPUTS");
    if (packed_check(s, pos_ids, seg_ids, B, n) != 0) return -1;
    size_t N = (size_t)B * n;
    memcpy(s->train_pos, pos_ids, N * sizeof(int));
    memcpy(s->train_seg, seg_ids, N * sizeof(int));
    s->pos_ids = s->train_pos; /* kept for the backward pass (and its recomputation) */
    s->seg_ids = s->train_seg;
    if (model_forward_run(s, tokens, B, n, 0) != 0) {
        s->pos_ids = NULL;
        s->seg_ids = NULL;
        return -1;
    }
    s->have_loss = RUN_LOSS_CALLER; /* the caller's loss: s->logits will hold its gradient */
    return 0;
}

int model_backward(RunState *s, ModelGrads *g, LoraAdapter *lg) {
    if (s->have_loss == RUN_LOSS_CALLER) return err_set("backward: the last forward pass was model_forward_train: call model_backward_logits");
    return backward_run(s, g, lg, 1);
}

int model_backward_logits(RunState *s, ModelGrads *g, LoraAdapter *lg) {
    if (s->have_loss == RUN_LOSS_CE) return err_set("backward: the last forward pass was model_loss: call model_backward");
    return backward_run(s, g, lg, 0);
}

static int backward_run(RunState *s, ModelGrads *g, LoraAdapter *lg, int with_ce) {
    const Model *m = s->model;
    const ModelConfig *c = &m->cfg;
    if (s->keep == RS_KEEP_NONE) return err_set("backward: the run state was made for inference (keep = RS_KEEP_NONE)");
    if (s->have_loss == RUN_LOSS_NONE) return err_set("backward: no loss to differentiate: call model_loss or model_forward_train first (once per backward pass)");
    if (s->pos != 0) return err_set("backward: the forward pass started at position %d; training needs whole sequences (position 0)", s->pos);
    if (g && (g->cfg.dim != c->dim || g->cfg.n_layers != c->n_layers || g->cfg.vocab_size != c->vocab_size ||
              g->cfg.hidden_dim != c->hidden_dim || g->cfg.n_kv_heads != c->n_kv_heads || g->cfg.tied != c->tied))
        return err_set("backward: the gradient buffers were made for another model");
    if (lg) {
        if (!s->lora) return err_set("backward: adapter gradients asked for, but no adapter is attached (runstate_set_lora)");
        if (s->lora->merged) return err_set("backward: the attached adapter is merged into the weights: unmerge it to train it");
        if (!lora_same_shape(lg, s->lora)) return err_set("backward: the adapter gradient does not have the attached adapter's shape (use lora_init_like)");
    }
    s->have_loss = RUN_LOSS_NONE;
    int B = s->batch, n = s->n, N = B * n, d = c->dim, V = c->vocab_size;
    RunGrads *G = &s->g;

    /* loss and classifier: logits = xnf Wcls^T; the logits' buffer becomes their gradient */
    float *dlogits = s->logits;
    if (with_ce) crossentropy_backward(dlogits, s->logits, s->targets, s->weights, N, V, s->loss_norm, 1.0f);
    const KmmProducts *pp = model_products(m, N);
    pp->xw(&m->wcls, dlogits, N, G->dxn, 0.0f);
    if (g) weight_grad(pp, dlogits, s->xnf, N, V, d, g->wcls);
    if (g && g->cls_b) bias_backward(g->cls_b, dlogits, N, V);
    memset(G->dx, 0, (size_t)N * d * sizeof(float));
    norm_backward(c, G->dx, g ? g->rms_final : NULL, g ? g->norm_final_b : NULL, G->dxn, s->x_final, m->rms_final, s->rstdf, N, d);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        if (s->keep == RS_KEEP_INPUTS) model_layer_forward(s, l, G->dxn); /* recompute; the output is not needed */
        layer_backward(s, l, g, lg);
    }
    if (g && c->arch->embed_scale_sqrt_d) embed_scale_backward(G->dx, (size_t)N * d, embed_scale_of(c));
    if (g) embedding_backward(g->tok_emb, G->dx, s->tokens, N, d);
    return 0;
}
