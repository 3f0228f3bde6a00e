/* metrics/mixture.h - the inference-time mixture of multiple-choice models: what a
 * deployment running the old and the new models side by side would get, the reference
 * a compatibility adapter is distilled towards (issue 18).
 *
 * Per instance, each model's distribution over the choices is the softmax of its
 * "choice_logprobs" (prediction files, metrics/preds.h); the mixture is
 *     p_mix = (1 - a) * mean_k softmax(new_k) + a * softmax(old),
 * its prediction the argmax (the first on a tie), right when it is the gold choice
 * ("target" as an index; when a file has none, M1's prediction when M1 is right). The
 * instances come out as CompatInstances old -> mixture, for metrics/compat.h. */
#ifndef MUSCLE_METRICS_MIXTURE_H
#define MUSCLE_METRICS_MIXTURE_H

#include "metrics/compat.h"
#include "metrics/preds.h"

/* The index of the right choice: "target" as an integer (or a string of digits) below n; -1 otherwise. */
int mixture_gold_index(const cJSON *target, int n);

/* x[i] (old->n of them, in old's order) for the mixture at weight a of old and the k new
 * files news[0..k), whose record of old's instance i is news[s].rec[idx[s][i]]. -1 with
 * err_set() when an instance lacks choice_logprobs, the files disagree on the number of
 * choices, or the gold choice is unknown. */
int mixture_instances(const PredFile *old, const PredFile *news, size_t *const *idx, int k, double a, CompatInstance *x);

#endif
