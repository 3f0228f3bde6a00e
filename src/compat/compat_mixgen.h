/* compat/compat_mixgen.h - greedy decoding from a mixture of models (ensemble decoding):
 * the teacher of the sequence-level ensemble and mixture methods (docs/compat.md).
 *
 * Members k = 0..K-1, each a base model + adapter with weight w_k >= 0, share one
 * tokenizer (the same vocabulary). At every step of a sequence the next-token
 * distribution is
 *     p = sum_k w_k softmax(z_k)           (temperature 1; z_k member k's logits)
 * and the next token is argmax log p after the no-repeat n-gram block (the first on a
 * tie), as muscle eval's greedy decoding picks from one model's logits. The loop is
 * model_generate_batch's (model_generate_batch_hook, every member a GenModel with its own
 * KV cache; this file gives the pick): up to `width` sequences decoded together, one call
 * per member per step, a finished sequence's slot taking the next prompt. Stops, EOS, the
 * token limit and the context (the smallest member's) end a sequence as there.
 *
 * One member of weight 1 picks from its raw logits: the ids of model_generate_batch with
 * that model and adapter. Weights are used as given (the ensemble: 1/K each; the mixture:
 * (1 - a)/K each and a for M1); a member of weight 0 changes nothing (it is not run). */
#ifndef MUSCLE_COMPAT_COMPAT_MIXGEN_H
#define MUSCLE_COMPAT_COMPAT_MIXGEN_H

#include "model/generate_batch.h"
#include "model/lora.h"
#include "model/model.h"

/* One member of a teacher: a model + adapter, weighted in a mixed distribution. */
typedef struct {
    const Model *model;
    const LoraAdapter *adapter; /* may be NULL: the base alone */
    double w;
    const char *who;            /* for messages */
} CompatMember;

/* The mixture's pick as a hook of model_generate_batch_hook (model/generate_batch.h), for a
 * caller that runs the loop itself (muscle eval through EvalOptions.gen_hook: the inference-
 * time mixture of generators, update/update_mixgen.c). Members of weight 0 are left out
 * (they change no pick); one member left of weight 1 has no pick (the sampler of the
 * GenOptions, greedy at temperature 0: model_generate_batch's ids). no_repeat_ngram: the
 * GenOptions' value. -1 with err_set for the weights compat_mix_generate refuses. */
typedef struct {
    GenHook hook;
    GenModel *models;  /* [nm] the members kept */
    CompatMember *mem; /* [nm] */
    int nm, no_repeat_ngram;
    double *acc;       /* [V] the mixed distribution */
    float *ban;        /* [V] 0, or -inf where the n-gram rule forbids the token */
} CompatMixHook;
int compat_mix_hook_init(CompatMixHook *h, const CompatMember *mem, int nm, int no_repeat_ngram);
void compat_mix_hook_free(CompatMixHook *h);

/* Generates for req[0..n) with o (greedy: o->temperature must be 0; o->lora unused: each
 * member's adapter applies), at most width at a time (0: default). res[0..n) in request
 * order; on error nothing is left allocated in res. -1 with err_set for members that do
 * not share the vocabulary, a negative or non-finite weight, weights summing to 0, or a
 * prompt that does not fit a member. */
int compat_mix_generate(const CompatMember *mem, int nm, const Tokenizer *tok, const GenRequest *req, int n, const GenOptions *o,
                        int width, GenDone done, void *ctx, GenResult *res);

#endif
