/* model/lora_combine.h - weighted sums of LoRA adapters, exact, as one LoRA adapter.
 *
 * Adapter i adds delta_i = s_i * B_i A_i to a base weight (s_i its scaling, lora.h).
 * sum_i w_i * delta_i is itself low rank: stacking the A's and scaling the B's,
 *     A' = [A_1; A_2; ...; A_n]                      [r_1 + ... + r_n, in]
 *     B' = [ (w_1 s_1 / s') B_1, ..., (w_n s_n / s') B_n ]   [out, r_1 + ... + r_n]
 * gives s' B' A' = sum_i w_i s_i B_i A_i for every adapted weight, with no merge into the
 * base. The result has rank r' = sum r_i, lora_alpha = r' and no rsLoRA, so s' = 1 (PEFT
 * reads it back as is). Targets: the union of the inputs'; where an input does not adapt a
 * target its block is zero. Uses: adapter interpolation (1 - a) A2 + a X and seed soups
 * (1/K) sum A2_k (update/update_weight.c).
 */
#ifndef MUSCLE_MODEL_LORA_COMBINE_H
#define MUSCLE_MODEL_LORA_COMBINE_H

#include "lora.h"

/* out (initialised here) = sum_i w[i] * in[i] for a model of config c. Every input must fit
 * c (layer count, every shape), unless skip_mismatch: then a matrix of another shape (an
 * adapter of another base, e.g. v1's on v2) or a layer v2 lacks is left out, and
 * *n_skipped (when not NULL) counts the left-out matrices. Merged inputs are refused. */
int lora_combine(LoraAdapter *out, const ModelConfig *c, const LoraAdapter *const *in, const double *w, int n,
                 int skip_mismatch, int *n_skipped);

#endif
