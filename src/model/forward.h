/* model/forward.h - the forward pass: batched and causal, with a KV cache.
 *
 * One call processes a chunk of n new tokens for each of B sequences, all at the
 * same positions [pos, pos + n). Keys and values of every layer are kept in the
 * cache, so scoring is forward(B, T, pos = 0) and decoding is forward(1, 1, pos).
 * With `keep` set, every layer's activations are kept for the backward pass
 * (model/backward.h); otherwise the layers share one set of buffers.
 */
#ifndef MUSCLE_MODEL_FORWARD_H
#define MUSCLE_MODEL_FORWARD_H

#include "model.h"

/* Activations of one layer for N = B*n positions. Shapes in comments. */
typedef struct {
    float *x_in;    /* [N, d]   residual stream entering the layer */
    float *xn1;     /* [N, d]   rmsnorm(x_in) * rms_att */
    float *rstd1;   /* [N]      1/sqrt(mean(x_in^2) + eps) */
    float *q;       /* [N, qd]  queries after rotary (qd = n_heads*hd) */
    float *att;     /* [B, H, n, pos+n] attention probabilities */
    float *att_out; /* [N, qd]  attention output before wo */
    float *x_mid;   /* [N, d]   x_in + wo(att_out) */
    float *xn2;     /* [N, d]   rmsnorm(x_mid) * rms_ffn */
    float *rstd2;   /* [N] */
    float *h1;      /* [N, hidden]  w1 xn2 (gate, before silu) */
    float *h3;      /* [N, hidden]  w3 xn2 (up) */
    float *hg;      /* [N, hidden]  silu(h1) * h3 */
} LayerActs;

typedef struct {
    const Model *model;
    int max_batch;   /* B */
    int max_seq;     /* positions each sequence can hold (cache length) */
    int max_chunk;   /* n per call */
    int keep;
    int pos, n, batch; /* of the last call */
    float *kcache;   /* [L, B, max_seq, kvd] keys after rotary */
    float *vcache;   /* [L, B, max_seq, kvd] */
    LayerActs *acts; /* [L] (all alias acts[0]'s buffers unless keep) */
    float *x_final;  /* [N, d]  residual after the last layer */
    float *xnf;      /* [N, d]  final rmsnorm output */
    float *rstdf;    /* [N] */
    float *logits;   /* [N, V] */
    float *rope_cos, *rope_sin; /* [max_seq, hd/2] */
    float *scratch;  /* [N, max(d, hidden)] */
    void *mem;       /* one allocation for all of the above */
    size_t mem_bytes;
} RunState;

/* Plans and allocates all buffers up front. */
int runstate_init(RunState *s, const Model *m, int max_batch, int max_seq, int max_chunk, int keep);
void runstate_free(RunState *s);
/* Bytes runstate_init would allocate. */
size_t runstate_bytes(const Model *m, int max_batch, int max_seq, int max_chunk, int keep);

/* tokens: [B, n] row-major. Fills s->logits [B*n, V]. pos + n <= max_seq. */
int model_forward(RunState *s, const int *tokens, int batch, int n, int pos);

/* In place: each row of x [rows, cols] becomes log_softmax(row). */
void logsoftmax_rows(float *x, int rows, int cols);

/* ---- layer primitives (forward halves; backward halves in backward.h) ---- */
/* out[N,d] = x * rstd * w; rstd[N] saved. */
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int d, float eps);
/* Rotary on x [N, nh*hd] in place; row r has position pos0 + (r % n). */
void rope_forward(float *x, int N, int n, int pos0, int nh, int hd, RopeStyle style, const float *cosT, const float *sinT);
/* hg = silu(h1) * h3 */
void swiglu_forward(float *hg, const float *h1, const float *h3, size_t n);

#endif
