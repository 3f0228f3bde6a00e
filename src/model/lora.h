/* model/lora.h - LoRA adapters: low-rank updates of the linear layers.
 *
 * An adapted linear layer W [out, in] computes
 *     y = W x + scaling * B (A x),   A [r, in], B [out, r] (fp32),
 *     scaling = alpha / r, or alpha / sqrt(r) with rsLoRA.
 * Targets, per layer: q, k, v, o (attention), gate (w1), up (w3), down (w2).
 * Rows of the q and k adapters follow the engine's layout of the base weights:
 * Meta's interleaved order for every format (the Hugging Face loader un-permutes q/k,
 * model/load_hf.c); PEFT files hold them in Hugging Face order and model/lora_peft.c
 * permutes on the way in and out.
 *
 * An adapter is attached to a run state (runstate_set_lora in forward.h) and applied
 * by the ordinary forward pass; model_backward (backward.h) then gives dA and dB with
 * the base frozen. All values live in one contiguous array (`data`), so a gradient or
 * an optimizer state is another LoraAdapter of the same shape (lora_init_like).
 */
#ifndef MUSCLE_MODEL_LORA_H
#define MUSCLE_MODEL_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef enum { LORA_Q = 0, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_N_TARGETS } LoraTarget;
#define LORA_TARGETS_ALL 0x7fu
#define LORA_BIT(t) (1u << (t))

typedef struct {
    int in, out;   /* of the base weight W [out, in] */
    int rank;      /* r */
    float *A;      /* [r, in]   (into LoraAdapter.data) */
    float *B;      /* [out, r] */
} LoraMat;

typedef struct LoraAdapter {
    int rank;          /* r >= 1 */
    float alpha;
    int rslora;        /* scaling = alpha / sqrt(r) instead of alpha / r */
    float scaling;
    unsigned targets;  /* set of LORA_BIT(target) */
    int n_layers;
    LoraMat *mats;     /* [n_layers * LORA_N_TARGETS]; A = B = NULL where not adapted */
    float *data;       /* all values: layer by layer, targets in enum order, A then B */
    size_t n_floats;
    int merged;        /* added into the base weights (lora_merge): the forward skips it */
} LoraAdapter;

/* An adapter of rank r for model config c, all values zero. */
int lora_init(LoraAdapter *a, const ModelConfig *c, int rank, float alpha, int rslora, unsigned targets);
/* Same shapes and settings as `like`, all values zero (gradients, optimizer state). */
int lora_init_like(LoraAdapter *a, const LoraAdapter *like);
void lora_free(LoraAdapter *a);
void lora_zero(LoraAdapter *a);
/* PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with
 * a = sqrt(5)) drawn from core/rng.h seeded with `seed`, in data order; B = 0. */
void lora_reset_peft(LoraAdapter *a, uint64_t seed);
/* The matrices of (layer, target), NULL when that target is not adapted. */
LoraMat *lora_mat(const LoraAdapter *a, int layer, LoraTarget t);
/* "q", "k", "v", "o", "gate", "up", "down". */
const char *lora_target_name(LoraTarget t);
/* Parses a comma-separated list of target names, or "all". */
int lora_targets_parse(const char *s, unsigned *targets);
/* Checks that the adapter fits the model (layer count, every shape). */
int lora_check(const LoraAdapter *a, const Model *m);
/* The base weight a target adapts. */
const KWeight *lora_base_weight(const Model *m, int layer, LoraTarget t);

/* W += scaling * B A for every adapted weight; the model must be writable (owned
 * fp32 weights). Sets a->merged. Unmerging subtracts the same product: the weights
 * come back up to float rounding (not bit for bit). */
int lora_merge(LoraAdapter *a, Model *m);
int lora_unmerge(LoraAdapter *a, Model *m);

/* ---- one adapted linear, the low-rank part only (the caller does W x) ----
 * forward:  u[N,r] = x[N,in] A^T;  y[N,out] += scaling * u B^T                          */
void lora_linear_forward(const LoraMat *p, float scaling, const float *x, int N, float *u, float *y);
/* backward, given dy [N,out], the layer's x [N,in] and u [N,r]:
 *   du = scaling * dy B              [N, r]   (du: scratch)
 *   gB += scaling * dy^T u           [out, r] (when g)
 *   gA += du^T x                     [r, in]  (when g)
 *   dx += du A                       [N, in]  (when dx)                                   */
void lora_linear_backward(const LoraMat *p, float scaling, const float *x, const float *u, const float *dy, int N,
                          LoraMat *g, float *du, float *dx);
/* The same with the products of pp (kmm_products_f32 above, or kmm_products_bf16: the
 * operands rounded to bf16, fp32 sums; the adapter and its gradients stay fp32). */
void lora_linear_forward_with(const KmmProducts *pp, const LoraMat *p, float scaling, const float *x, int N, float *u,
                              float *y);
void lora_linear_backward_with(const KmmProducts *pp, const LoraMat *p, float scaling, const float *x, const float *u,
                               const float *dy, int N, LoraMat *g, float *du, float *dx);

#endif
