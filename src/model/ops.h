/* model/ops.h - the operations the non-Llama blocks add (model/arch.h: Phi, Gemma), each a
 * forward/backward pair in the engine's style (forward.h, backward.h): shapes in the
 * comments, "+=" marks accumulation, optional outputs may be NULL.
 *
 *   norm (ops_norm.c)   RMSNorm times (off + w) (Gemma: off = 1), LayerNorm with bias (Phi),
 *                       and norm_forward/norm_backward: the family's norm (cfg.arch->norm)
 *   gelu_tanh, geglu    (ops_act.c) Phi's fc2(gelu(fc1 x)), Gemma's gelu(gate x) * up x
 *   embed_scale         (ops_act.c) Gemma's embeddings times sqrt(d)
 * Partial rotary (Phi: the first rope_dims of each head) is rope_forward_partial in forward.h.
 */
#ifndef MUSCLE_MODEL_OPS_H
#define MUSCLE_MODEL_OPS_H

#include <stddef.h>

#include "model.h"
#include "kernel/matmul.h"

/* ---- precision of the products ---- */

/* Mixed precision (--bf16, a bf16 model): the activations entering the products of
 * attention, of the LoRA paths and of the backward pass through the frozen weights are
 * rounded to bf16 and accumulated in fp32 (PyTorch autocast); norms, softmax, losses,
 * LoRA master weights and optimizer state stay fp32. rows: the rows of the pass; steps of
 * at most 4 rows (decoding) keep fp32 products (the rounding copies would cost as much
 * as those memory-bound products). An fp32 model: always the exact fp32 products. */
#define MODEL_MIXED_MIN_ROWS 5
static inline const KmmProducts *model_products(const Model *m, int rows) {
    return m->wtype == KW_BF16 && rows >= MODEL_MIXED_MIN_ROWS ? &kmm_products_bf16 : &kmm_products_f32;
}

/* ---- norms ---- */

/* out[N, d] = x * rstd * (off + w), rstd[N] = 1/sqrt(mean(x^2) + eps) saved. */
void rmsnorm_off_forward(float *out, float *rstd, const float *x, const float *w, float off, int N, int d, float eps);
/* Chain rule, per row, with g = dout * (off + w) and xh = x * rstd:
 *   dx += rstd * g - rstd^3 * (g . x) / d * x;   dw += sum over rows of dout * xh. */
void rmsnorm_off_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, float off,
                          const float *rstd, int N, int d);
/* out[N, d] = (x - mean) * rstd * w + b (b may be NULL); mean[N] and rstd[N] =
 * 1/sqrt(var(x) + eps) saved (biased variance, as torch.nn.LayerNorm). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int d,
                       float eps);
/* Chain rule, per row, with xh = (x - mean) * rstd, g = dout * w:
 *   dx += rstd * (g - mean(g) - xh * mean(g * xh));
 *   dw += sum over rows of dout * xh;  db += sum over rows of dout. */
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        const float *mean, const float *rstd, int N, int d);
/* The family's norm of a block or of the final stream: RMSNorm times (cfg.norm_offset + w),
 * or LayerNorm with its bias b (ARCH_NORM_LAYER). stat [2N]: rstd [N], then (LayerNorm)
 * the mean [N]. */
void norm_forward(const ModelConfig *c, float *out, float *stat, const float *x, const float *w, const float *b, int N, int d);
void norm_backward(const ModelConfig *c, float *dx, float *dw, float *db, const float *dout, const float *x,
                   const float *w, const float *stat, int N, int d);

/* ---- activations ---- */

/* y[n] = gelu_tanh(x) = x/2 * (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi)
 * (transformers' gelu_new / gelu_pytorch_tanh). */
void gelu_tanh_forward(float *y, const float *x, size_t n);
/* dx = dy * gelu_tanh'(x) = dy * (1/2 (1 + t) + x/2 (1 - t^2) k (1 + 3 * 0.044715 x^2));
 * dx may be dy. */
void gelu_tanh_backward(float *dx, const float *dy, const float *x, size_t n);
/* hg[n] = gelu_tanh(h1) * h3 */
void geglu_forward(float *hg, const float *h1, const float *h3, size_t n);
/* dh1 = dhg * h3 * gelu_tanh'(h1), dh3 = dhg * gelu_tanh(h1); dh1 may be dhg. */
void geglu_backward(float *dh1, float *dh3, const float *dhg, const float *h1, const float *h3, size_t n);

/* ---- embedding scale ---- */

/* The scale of the embeddings: sqrt(d) rounded to float (Gemma, as transformers' normalizer
 * in the activations' dtype), else 1. */
float embed_scale_of(const ModelConfig *c);
/* x[n] *= scale, in place. */
void embed_scale_forward(float *x, size_t n, float scale);
/* y = scale * x:  dx = scale * dy, in place on the gradient. */
void embed_scale_backward(float *dx, size_t n, float scale);

#endif
