/* train/adamw.h - the optimizer: AdamW, gradient clipping, learning-rate schedule,
 * gradient accumulation.
 *
 * Parameters and their gradients are given as spans (pointer pairs of n floats), so
 * the same optimizer trains a whole model (train_spans_model: one span per tensor) or
 * a LoRA adapter (train_spans_lora: one span). The optimizer state (m, v) follows the
 * spans in order: give the same spans, in the same order, at every step.
 *
 * A step with gradient accumulation over micro-batches (model/backward.h):
 *     norm = train_weight_sum(all weights of the batch)        same divisor for all
 *     train_spans_zero_grads(spans)
 *     for each micro-batch: model_loss(..., norm, ...); model_backward(...)
 *     grad_clip_global_norm(spans, max_norm)                    optional
 *     adamw_step(&opt, spans, n, lr_schedule_at(&sched, opt.step))
 */
#ifndef MUSCLE_TRAIN_ADAMW_H
#define MUSCLE_TRAIN_ADAMW_H

#include <stddef.h>

#include "model/backward.h"
#include "model/lora.h"

typedef struct {
    float *param;   /* [n] */
    float *grad;    /* [n] */
    size_t n;
    int no_decay;   /* 1: no weight decay on this span */
} ParamSpan;

/* Hyper-parameters, as PyTorch takes them (Python floats = double). */
typedef struct {
    double beta1, beta2, eps, weight_decay;
} AdamWConfig;

/* torch.optim.AdamW's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
AdamWConfig adamw_config_default(void);

typedef struct {
    AdamWConfig cfg;
    long step;      /* updates done */
    size_t n;       /* parameters covered */
    float *m, *v;   /* [n] first and second moments, in span order */
} AdamW;

/* State for n parameters (the total of the spans), zeroed. */
int adamw_init(AdamW *o, const AdamWConfig *c, size_t n);
void adamw_free(AdamW *o);
/* One update with learning rate lr, in PyTorch's order and float32 arithmetic
 * (torch.optim.AdamW, single-tensor path):
 *     t += 1;  p *= 1 - lr*wd
 *     m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *     p += -(lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The spans must cover exactly o->n parameters. Deterministic. */
int adamw_step(AdamW *o, const ParamSpan *spans, int n_spans, double lr);

/* ---- gradients ---- */
/* sqrt of the sum of squares of every gradient (in double, fixed order). */
double grad_global_norm(const ParamSpan *spans, int n_spans);
/* torch.nn.utils.clip_grad_norm_: multiplies every gradient by
 * min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping. */
double grad_clip_global_norm(const ParamSpan *spans, int n_spans, double max_norm);
void grad_scale(const ParamSpan *spans, int n_spans, float s);
void train_spans_zero_grads(const ParamSpan *spans, int n_spans);
/* Sum of loss weights (NULL: n): the divisor to give model_loss for every micro-batch
 * of a batch, so that the accumulated gradient is the batch's. */
double train_weight_sum(const float *weights, size_t n);

/* Spans of every base tensor of a writable model with its gradient (same order as
 * ModelGrads: embedding, per layer rms_att wq wk wv wo rms_ffn w1 w2 w3, final norm,
 * classifier when untied). no_decay_norms: exclude the norm weights from weight
 * decay. Writes at most cap spans; returns the count, or -1 (err_set). */
int train_spans_model(Model *m, ModelGrads *g, int no_decay_norms, ParamSpan *spans, int cap);
/* Number of spans train_spans_model gives for a model. */
int train_spans_model_count(const Model *m);
/* One span: the whole adapter with its gradient (lora_init_like of it). */
int train_spans_lora(LoraAdapter *a, LoraAdapter *g, ParamSpan *span);
size_t train_spans_total(const ParamSpan *spans, int n_spans);

/* ---- learning-rate schedule ---- */
typedef enum { LR_CONSTANT = 0, LR_LINEAR, LR_COSINE } LrDecay;
typedef struct {
    double peak;     /* after warm-up */
    double floor;    /* reached at `total` steps (LR_LINEAR, LR_COSINE) */
    long warmup;     /* updates of linear warm-up: peak * (step + 1) / warmup */
    long total;      /* updates in all */
    LrDecay decay;
} LrSchedule;
/* The learning rate of the update that follows `step` updates (0 for the first):
 * warm-up peak*(step+1)/warmup (the first update already learns, unlike Hugging
 * Face's schedulers which start at 0), then from the peak to the floor by
 * p = (step - warmup) / (total - warmup) in [0, 1]:
 *   linear: floor + (peak - floor) * (1 - p);  cosine: floor + (peak - floor) * (1 + cos(pi p)) / 2.
 * After `total` steps: the floor (constant: always the peak). */
double lr_schedule_at(const LrSchedule *s, long step);

#endif
