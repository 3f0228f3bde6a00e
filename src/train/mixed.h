/* train/mixed.h - mixed-precision full training (--bf16), the way PyTorch autocast runs
 * it: the model's fp32 weights stay the masters (AdamW updates them, its moments fp32),
 * and a bf16 copy of every matrix, made once and refreshed after every optimizer step, is
 * what the forward and backward passes multiply with.
 *
 * The copy is a Model, `view`, that shares everything but the matrices with the master:
 * the norms, biases and the embedding lookup read the master's fp32 values (the lookup is
 * not a product: autocast keeps it fp32); every matrix - the classifier too, a copy of the
 * tied embedding - is the master rounded to bf16 (nearest even). A run state made on the
 * view runs every product of more than 4 rows in mixed precision (model/ops.h
 * model_products: the activations entering a product rounded to bf16, fp32 sums), the
 * backward pass included: dX = bf16(dY) bf16(W), dW = bf16(dY)^T bf16(X) added into the
 * fp32 gradients (model/backward.h ModelGrads of the master: same shapes). Norms,
 * softmax, rotary, the loss and the residual stream stay fp32.
 *
 * Memory: the bf16 copies (2 bytes a matrix weight, one allocation) and the engine's
 * packed copies (kweight_init_bf16), planned at init; a refresh allocates nothing.
 */
#ifndef MUSCLE_TRAIN_MIXED_H
#define MUSCLE_TRAIN_MIXED_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
    Model view;            /* the master's shallow copy with bf16 matrices; owns none of the master's memory */
    const Model *master;
    uint16_t *data;        /* every bf16 copy, in the order of mats */
    const KWeight **src;   /* [n_mats] the master's fp32 matrices ... */
    KWeight **dst;         /* [n_mats] ... and their bf16 handles in view */
    int n_mats;
    size_t n;              /* bf16 values in data */
} MixedModel;

/* Plans the view of a writable fp32 model (full training) and fills it. -1 (err_set)
 * for a model that is not fp32, or out of memory. */
int mixed_init(MixedModel *mx, const Model *master);
/* The master's values changed (an optimizer step, a resume): rounds them into the bf16
 * copies again and repacks them. Same master bits, same copy bits. */
void mixed_refresh(MixedModel *mx);
void mixed_free(MixedModel *mx);

#endif
