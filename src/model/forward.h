/* model/forward.h - the forward pass: batched and causal, with a KV cache.
 *
 * One call processes a chunk of n new tokens for each of B sequences, all at the
 * same positions [pos, pos + n). Keys and values of every layer are kept in the
 * cache, so scoring is forward(B, T, pos = 0) and decoding is forward(1, 1, pos).
 * `keep` plans the memory for training (model/backward.h):
 *   RS_KEEP_NONE    inference: the layers share one set of activation buffers;
 *   RS_KEEP_ALL     every layer's activations are kept for the backward pass;
 *   RS_KEEP_INPUTS  checkpointing: only each layer's input is kept and the backward
 *                   pass recomputes the layer from it (one more forward pass of work;
 *                   the activations of one layer in memory instead of all of them).
 * Both training modes also allocate the gradient buffers of model_backward.
 * A LoRA adapter (model/lora.h) attached with runstate_set_lora() is applied by the
 * same forward pass (scoring, generation, training): every adapted linear layer
 * computes y = W x + scaling * B (A x).
 */
#ifndef MUSCLE_MODEL_FORWARD_H
#define MUSCLE_MODEL_FORWARD_H

#include "model.h"
#include "lora.h"

enum { RS_KEEP_NONE = 0, RS_KEEP_ALL = 1, RS_KEEP_INPUTS = 2 };
/* Inference only, OR'ed into keep (RS_KEEP_NONE | RS_KV_BF16): keys and values cached in
 * bf16 (rounded to nearest even), half the cache's memory; attention reads them widened
 * back to fp32, so it sees the rounded keys and values (logits move by about bf16's
 * relative precision, 2^-8, of the attention output; ids may differ at near-ties). */
enum { RS_KV_BF16 = 8 };

/* What the last forward pass left for a backward pass (RunState.have_loss). */
typedef enum {
    RUN_LOSS_NONE = 0,   /* nothing: model_backward refuses */
    RUN_LOSS_CE = 1,     /* model_loss: cross-entropy, model_backward */
    RUN_LOSS_CALLER = 2  /* model_forward_train(_packed): the caller's dlogits, model_backward_logits */
} RunLoss;

/* Activations of one layer for N = B*n positions. Shapes in comments. */
typedef struct {
    float *x_in;    /* [N, d]   residual stream entering the layer */
    float *xn1;     /* [N, d]   norm(x_in): rmsnorm(x_in) * rms_att (ops.h norm_forward) */
    float *rstd1;   /* [2N]     its 1/rms (1/std), then (LayerNorm) its mean */
    float *q;       /* [N, qd]  queries after rotary (qd = n_heads*hd) */
    float *q_pre;   /* [N, qd]  queries before the per-head norm (cfg.qk_norm, else NULL) */
    float *q_rstd;  /* [N*H]    its 1/rms per (row, head) */
    float *k_pre;   /* [N, kvd] keys before the per-head norm (cfg.qk_norm, else NULL) */
    float *k_rstd;  /* [N*KVH] */
    float *att;     /* [B, H, n, pos+n] attention probabilities */
    float *att_out; /* [N, qd]  attention output before wo */
    float *x_mid;   /* [N, d]   x_in + wo(att_out) */
    float *xn2;     /* [N, d]   norm(x_mid) with rms_ffn (unused with a parallel residual:
                                the MLP reads xn1) */
    float *rstd2;   /* [2N] */
    float *h1;      /* [N, hidden]  w1 xn2 (gate, before silu / gelu) */
    float *h3;      /* [N, hidden]  w3 xn2 (up; Phi's fc1) */
    float *hg;      /* [N, hidden]  silu(h1) * h3, gelu(h1) * h3 (GeGLU) or gelu(h3) (Phi) */
    float *lora_u[LORA_N_TARGETS]; /* [N, r]  A x of each adapted linear (NULL if none) */
} LayerActs;

/* Gradient buffers of the backward pass (keep != RS_KEEP_NONE); N = B*n. */
typedef struct {
    float *dx;       /* [N, d]   gradient of the residual stream */
    float *dxn;      /* [N, d]   gradient of a norm's output */
    float *datt_out; /* [N, qd] */
    float *dq;       /* [N, qd] */
    float *dk, *dv;  /* [N, kvd] */
    float *datt;     /* [B, H, n, n]  gradient of the attention scores */
    float *dh1, *dh3;/* [N, hidden] */
    float *dqk_pre;  /* [N, qd]  gradient before a per-head norm (cfg.qk_norm, else NULL) */
    float *lora_du;  /* [N, r]  (with an adapter) */
} RunGrads;

typedef struct {
    const Model *model;
    int max_batch;   /* B */
    int max_seq;     /* positions each sequence can hold (cache length) */
    int max_chunk;   /* n per call */
    int keep;        /* RS_KEEP_* */
    const int *logit_rows; /* inference: when not NULL, the next forward call computes the
                        logits of these n_logit_rows rows only (ascending indices into the
                        call's B*n rows; 0 rows: none), into s->logits rows 0..n_logit_rows-1
                        (a prefill needs only its prompts' last tokens); the caller owns the
                        array and clears the field */
    int n_logit_rows;
    int attn_rows;   /* inference: attention one query row at a time in fp32 (kmm_row_nt/nn)
                        and LoRA paths in fp32 products, whatever the call's rows - so a row
                        gets the same bits however its sequence's tokens are grouped into
                        calls (the generators set it: greedy ids batched = single-stream);
                        with keep RS_KEEP_NONE it also runs the fp32 weights' products on
                        panel copies (below) */
    KPanel *panels;  /* attn_rows inference: [L * LORA_N_TARGETS + 1] panel copies of the fp32
                        weights (matmul.h; by layer and target, the classifier last), each
                        built on its first product and freed by runstate_free - so a copy
                        lives no longer than the generation call that owns the run state,
                        and the weights must not change meanwhile. Off (the dot-product
                        kernels) with MUSCLE_F32_PANELS=0 or below level avx512. */
    int panels_off;  /* no panel copies for this run state: 1 declined, 2 out of memory */
    int pos, n, batch; /* of the last call */
    float *kcache;   /* [L, B, max_seq, kvd] keys after rotary */
    float *vcache;   /* [L, B, max_seq, kvd] */
    uint16_t *kcache16, *vcache16; /* RS_KV_BF16: the caches in bf16 (kcache, vcache NULL) */
    float *kvtmp;    /* RS_KV_BF16: [kv_threads, 2, max_seq, head_dim] one head's keys and
                        values widened, per thread (products over many rows; one-row
                        attention reads the bf16 rows in place) */
    int kv_threads;
    LayerActs *acts; /* [L] (all alias acts[0]'s buffers unless keep; with RS_KEEP_INPUTS
                        only x_in is per layer) */
    float *x_final;  /* [N, d]  residual after the last layer */
    float *xnf;      /* [N, d]  final norm output */
    float *rstdf;    /* [2N] */
    float *logits;   /* [N, V]  (model_backward overwrites them with their gradient) */
    float *rope_cos, *rope_sin; /* [max_seq, rope_dims/2] (model_rope_inv_freq) */
    float *scratch;  /* [N, max(d, hidden)] */
    /* training (keep != RS_KEEP_NONE) */
    RunGrads g;
    int *tokens;     /* [N]  input ids of the last call */
    int *targets;    /* [N]  of the last model_loss */
    float *weights;  /* [N]  of the last model_loss */
    double loss_norm;/* divisor of the last model_loss */
    const int *pos_ids; /* packed call: [B*n] rotary positions ... (NULL: plain rows) */
    const int *seg_ids; /* ... and segments; model_forward_packed: for the duration of the
                           call; model_forward_train_packed (backward.h): train_pos and
                           train_seg, until the next forward pass (the backward pass and its
                           recomputation of checkpointed layers read them) */
    const int *row_slot; /* rows call (model_forward_rows): [B] the cache slot of each row
                            (NULL: row b is slot b), for the duration of the call */
    int *train_pos;  /* [N]  (keep != RS_KEEP_NONE) copies of a packed training call's ... */
    int *train_seg;  /* [N]  ... positions and segments */
    RunLoss have_loss; /* what the last forward pass leaves for the backward pass */
    void *mem;       /* one allocation for all of the above */
    size_t mem_bytes;
    /* adapter (runstate_set_lora) */
    const LoraAdapter *lora;
    void *lora_mem;  /* its activation buffers */
} RunState;

/* Plans and allocates all buffers up front. keep: RS_KEEP_*. */
int runstate_init(RunState *s, const Model *m, int max_batch, int max_seq, int max_chunk, int keep);
void runstate_free(RunState *s);
/* Builds the panel copies of all fp32 weights now (else each is built by its first
 * product) for a generation run state (attn_rows set, RS_KEEP_NONE); 0 also when there
 * are none to build (forward.h, panels), -1 with err_set when out of memory. */
int runstate_panels_build(RunState *s);
/* Bytes runstate_init would allocate. */
size_t runstate_bytes(const Model *m, int max_batch, int max_seq, int max_chunk, int keep);
/* Applies adapter `a` in every later forward pass (NULL detaches it). Allocates the
 * adapter's activation buffers (per layer with RS_KEEP_ALL). The adapter must fit
 * the model (lora_check) and outlive its use; its values may change between calls
 * (training), its shapes may not. A merged adapter (lora_merge) is skipped. */
int runstate_set_lora(RunState *s, const LoraAdapter *a);

/* tokens: [B, n] row-major. Fills s->logits [B*n, V]. pos + n <= max_seq. Plain rows
 * (forgets the positions and segments of an earlier packed training call). */
int model_forward(RunState *s, const int *tokens, int batch, int n, int pos);
/* Layer l for the last call's B x n tokens at its position: reads s->acts[l].x_in,
 * writes x_out [N, d] and this layer's keys and values into the cache. Used by
 * model_forward and to recompute checkpointed layers (x_out may be scratch). */
void model_layer_forward(RunState *s, int l, float *x_out);

/* Packed sequences (several continuations sharing one prefix, e.g. the choices of a
 * multiple-choice question after its context): tokens [B, n] with explicit rotary
 * positions pos_ids [B, n] and segments seg_ids [B, n]: segment 0 is shared, and a
 * token attends to earlier tokens of segment 0 and of its own segment only. Starts at
 * cache position 0. Equivalent, token for token, to running each segment after the
 * shared prefix as its own sequence. For training: model_forward_train_packed (backward.h).
 * -1 (err_set) for sizes that do not fit, a position outside 0..max_seq-1 or a negative
 * segment. */
int model_forward_packed(RunState *s, const int *tokens, const int *pos_ids, const int *seg_ids, int B, int n);
/* Independent rows (batched decoding, model/generate_batch.h): row r's n tokens
 * tokens[r*n ..] are positions pos_ids[r*n] + 0..n-1 (consecutive) of the sequence held
 * in cache slot row_slot[r] (0..max_batch-1; rows of one slot cover different
 * positions): their keys and values go to that slot at those positions and token i
 * attends to the slot's positions 0..pos_ids[r*n] + i. Each row thus continues its own
 * sequence at its own position: a decoding step is n = 1 with one row per live
 * sequence, a prompt is prefilled as rows of consecutive chunks of one slot. Inference
 * only (RS_KEEP_NONE). -1 (err_set) for sizes, slots or positions that do not fit. */
int model_forward_rows(RunState *s, const int *tokens, const int *pos_ids, const int *row_slot, int B, int n);
/* The checks of model_forward_packed (sizes, positions, segments) without running. */
int packed_check(const RunState *s, const int *pos_ids, const int *seg_ids, int B, int n);
/* The forward pass of the positions and segments s->pos_ids / s->seg_ids as they are set
 * (NULL: plain rows), at position pos; model_forward and the packed calls run it. */
int model_forward_run(RunState *s, const int *tokens, int B, int n, int pos);

/* In place: each row of x [rows, cols] becomes log_softmax(row). */
void logsoftmax_rows(float *x, int rows, int cols);

/* ---- layer primitives (forward halves; backward halves in backward.h) ---- */
/* out[N,d] = x * rstd * w; rstd[N] saved. */
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int d, float eps);
/* Rotary on x [N, nh*hd] in place; row r has position pos0 + (r % n). */
void rope_forward(float *x, int N, int n, int pos0, int nh, int hd, RopeStyle style, const float *cosT, const float *sinT);
/* The same with an explicit position per row when `positions` [N] is not NULL. */
void rope_forward_at(float *x, int N, int n, int pos0, const int *positions, int nh, int hd, RopeStyle style,
                     const float *cosT, const float *sinT);
/* Partial rotary (Phi: cfg.rope_dims < head_dim): only the first rd (even) dimensions of
 * each head of hd turn, the rest pass through; tables [positions, rd/2]. rd = hd is
 * rope_forward_at. */
void rope_forward_partial(float *x, int N, int n, int pos0, const int *positions, int nh, int hd, int rd, RopeStyle style,
                          const float *cosT, const float *sinT);
/* The turn of rope_forward_partial (inverse 0) or its inverse, the turn by the opposite angle
 * (inverse 1: the transpose, which rope_backward_partial applies to gradients). */
void rope_rotate_partial(float *x, int N, int n, int pos0, const int *positions, int nh, int hd, int rd, RopeStyle style,
                         const float *cosT, const float *sinT, int inverse);
/* hg = silu(h1) * h3 */
void swiglu_forward(float *hg, const float *h1, const float *h3, size_t n);
/* y[N, out] += b[out] on every row. */
void bias_forward(float *y, const float *b, int N, int out);

#endif
