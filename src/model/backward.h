/* model/backward.h - the loss and the backward pass of model/forward.h.
 *
 * Training step (run state made with keep = RS_KEEP_ALL, or RS_KEEP_INPUTS to
 * recompute each layer from its input instead of keeping its activations):
 *     model_loss(s, tokens, targets, weights, B, T, 0, &loss, NULL);   forward + loss
 *     model_backward(s, grads, lora_grads);                           accumulates
 * Full training: grads (ModelGrads) receives the gradient of every base tensor; the
 * model should be loaded with ModelLoadOptions.writable = 1 (owned fp32 weights).
 * LoRA training: grads = NULL (no base-weight gradient is computed at all) and
 * lora_grads (lora_init_like of the attached adapter) receives dA and dB.
 * Gradients are ADDED to what the buffers hold, so several micro-batches accumulate:
 * zero them first, and give every micro-batch the same `norm` (the total weight of
 * all of them, train/adamw.h) so that the sum is the gradient of the whole batch.
 *
 * Loss: weighted cross-entropy of the next-token distribution,
 *     loss = sum_r w[r] * (-log softmax(logits[r])[target[r]]) / norm,
 * norm = sum_r w[r] unless given; weight 0 = ignored (padding, prompt tokens).
 * The backward pass needs the forward at position 0 (whole sequences).
 */
#ifndef MUSCLE_MODEL_BACKWARD_H
#define MUSCLE_MODEL_BACKWARD_H

#include "forward.h"
#include "lora.h"

/* Gradients, same layout and shapes as the weights (model.h); per layer the matrices and
 * norms the family has (no rms_ffn with a parallel residual, no w1 without a gate: NULL),
 * then the biases, q/k norms and LayerNorm biases the configuration has. */
typedef struct {
    float *rms_att;        /* [d] */
    float *wq;             /* [n_heads*hd, d] */
    float *wk, *wv;        /* [n_kv_heads*hd, d] */
    float *wo;             /* [d, n_heads*hd] */
    float *rms_ffn;        /* [d] */
    float *w1, *w3;        /* [hidden, d] */
    float *w2;             /* [d, hidden] */
    float *bias[LIN_COUNT];/* [out] (cfg.bias), else NULL */
    float *q_norm, *k_norm;/* [hd] (cfg.qk_norm), else NULL */
    float *norm_att_b, *norm_ffn_b; /* [d] LayerNorm biases (model.h), else NULL */
} LayerGrads;

typedef struct {
    ModelConfig cfg;
    float *tok_emb;        /* [vocab, d]  (lookup and, when tied, classifier) */
    LayerGrads *layers;    /* [n_layers] */
    float *rms_final;      /* [d] */
    float *norm_final_b;   /* [d] (LayerNorm), else NULL */
    float *cls_b;          /* [vocab] (classifier bias), else NULL */
    float *wcls;           /* [vocab, d]  (== tok_emb when tied) */
    float *data;           /* all of them, contiguous in this order (wcls last when untied) */
    size_t n_floats;
} ModelGrads;

int model_grads_init(ModelGrads *g, const Model *m);

/* One trainable tensor of a model (full training, checkpoints, hashes): the weight (fp32,
 * or NULL for a read-only/bf16 model's matrices: see kw), its gradient (NULL without g),
 * its element count and name, and whether it is a norm weight or a bias (no decay). */
typedef struct {
    float *param;
    const KWeight *kw;  /* the matrix handle (NULL for vectors) */
    float *grad;
    size_t n;
    int is_norm;        /* norm weight or bias */
    char name[40];      /* "layers.3.wq", "layers.0.bq", "norm_final_b" */
} ModelParam;
/* The parameters in a fixed order: embedding, per layer rms_att wq wk wv wo rms_ffn w1 w2
 * w3 (those the family has), final norm, classifier when untied (the Llama order of old
 * checkpoints), then per layer the biases, q/k norms and LayerNorm biases the configuration
 * has, the final LayerNorm bias and the classifier bias. g may be NULL (grad NULL). out NULL:
 * the count only. Returns the count. */
int model_params(const Model *m, ModelGrads *g, ModelParam *out);
void model_grads_free(ModelGrads *g);
void model_grads_zero(ModelGrads *g);

/* Forward pass of B sequences of n tokens from position 0, then the loss.
 * targets [B*n]: the id each position must predict (anything where the weight is 0);
 * weights [B*n] >= 0, NULL = all 1; norm > 0: the divisor, else the sum of weights.
 * nll [B*n] (optional) receives each position's -log p(target) (0 where ignored).
 * Needs keep != RS_KEEP_NONE (it remembers targets and weights for model_backward). */
int model_loss(RunState *s, const int *tokens, const int *targets, const float *weights, int B, int n, double norm,
               double *loss, float *nll);
/* Backward pass of the last model_loss: adds d loss / d weight to g (NULL: base
 * frozen, none computed) and d loss / d adapter to lg (NULL: adapter frozen; it
 * needs an attached adapter). Overwrites s->logits with their gradient. */
int model_backward(RunState *s, ModelGrads *g, LoraAdapter *lg);

/* A loss computed by the caller (distillation, compat/): the forward pass of B
 * sequences of n tokens from position 0 with the activations kept; the caller then
 * overwrites s->logits [B*n, V] with d loss / d logits and calls model_backward_logits,
 * which back-propagates them as model_backward does its cross-entropy's. */
int model_forward_train(RunState *s, const int *tokens, int B, int n);
int model_backward_logits(RunState *s, ModelGrads *g, LoraAdapter *lg);
/* The same on packed rows (forward.h, model_forward_packed): tokens, pos_ids, seg_ids
 * [B, n]; segment 0 is shared, a token attends to earlier tokens of segment 0 and of its
 * own segment; explicit rotary positions. Logits [B*n, V] equal model_forward_packed's.
 * The positions and segments are copied into the run state (train_pos, train_seg) and
 * model_backward_logits runs the matching backward pass (masked attention, rotary at
 * those positions), with RS_KEEP_INPUTS too. Its gradients equal the sum of those of
 * the equivalent plain rows (the shared prefix + each segment as its own sequence) when
 * the caller's dlogits at the shared positions are the sum of the rows' dlogits there.
 * -1 (err_set) as model_forward_packed, or for an inference run state. */
int model_forward_train_packed(RunState *s, const int *tokens, const int *pos_ids, const int *seg_ids, int B, int n);

/* ---- layers: backward halves of the forward primitives (forward.h) ----
 * "+=" marks accumulation into the output; optional outputs may be NULL. */

/* Weighted cross-entropy over rows of logits [N, V]. Returns the loss
 * sum(w*nll)/norm (norm <= 0: sum of w; w NULL: all 1) and fills nll [N] when given.
 * -1 (err_set) for a negative or non-finite weight, a target outside 0..V-1 with a
 * non-zero weight, or a zero total weight. */
int crossentropy_forward(double *loss, float *nll, const float *logits, const int *targets, const float *weights,
                         int N, int V, double norm);
/* dlogits[r] = dloss * w[r]/norm * (softmax(logits[r]) - onehot(target[r])), fused
 * log-softmax backward; dlogits may be logits itself (in place). */
void crossentropy_backward(float *dlogits, const float *logits, const int *targets, const float *weights, int N, int V,
                           double norm, float dloss);
/* out = x * rstd * w:  dx += dout * d out / dx;  dw += sum over rows of dout * x * rstd. */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      int N, int d);
/* Transpose of rope_forward, in place on the gradient dx [N, nh*hd] (rotation by -angle). */
void rope_backward(float *dx, int N, int n, int pos0, int nh, int hd, RopeStyle style, const float *cosT, const float *sinT);
/* Transpose of rope_forward_at: row r at positions[r] when positions [N] is not NULL. */
void rope_backward_at(float *dx, int N, int n, int pos0, const int *positions, int nh, int hd, RopeStyle style,
                      const float *cosT, const float *sinT);
/* Transpose of rope_forward_partial: the first rd dimensions of each head turn back, the
 * rest pass their gradient through unchanged. */
void rope_backward_partial(float *dx, int N, int n, int pos0, const int *positions, int nh, int hd, int rd, RopeStyle style,
                           const float *cosT, const float *sinT);
/* y += b on every row of [N, out]:  db[i] += sum over rows of dy[r, i]. */
void bias_backward(float *db, const float *dy, int N, int out);
/* hg = silu(h1) * h3:  dh1 = dhg * h3 * silu'(h1), dh3 = dhg * silu(h1); dh1 may be dhg. */
void swiglu_backward(float *dh1, float *dh3, const float *dhg, const float *h1, const float *h3, size_t n);
/* Causal attention of B sequences of n positions from position 0, grouped-query
 * (query head h reads kv head h / (H/KVH)), scale 1/sqrt(hd):
 *   q [B*n, H*hd] (after rotary), k, v [B, ldkv-strided rows, KVH*hd]: sequence b's
 *   rows start at k + b*kv_bstride; att [B, H, n, n] the probabilities (row stride n);
 *   datt_out [B*n, H*hd].
 * Writes dq [B*n, H*hd], dk, dv [B*n, KVH*hd] (summed over each group's heads);
 * datt [B, H, n, n] is scratch. Packed rows (segments) need nothing more: the forward
 * gives a key hidden from a query probability exactly 0, so its score gets no gradient. */
void attention_backward(float *dq, float *dk, float *dv, float *datt, const float *datt_out, const float *q,
                        const float *k, const float *v, size_t kv_bstride, const float *att, int B, int n, int H,
                        int KVH, int hd);
/* The same with the products of pp (kmm_products_bf16: --bf16, operands in bf16, fp32
 * sums; the softmax backward stays fp32). */
void attention_backward_with(const KmmProducts *pp, float *dq, float *dk, float *dv, float *datt, const float *datt_out,
                             const float *q, const float *k, const float *v, size_t kv_bstride, const float *att, int B,
                             int n, int H, int KVH, int hd);
/* Embedding lookup x[r] = emb[tokens[r]]:  demb[tokens[r]] += dx[r] (rows in order). */
void embedding_backward(float *demb, const float *dx, const int *tokens, int N, int d);

#endif
