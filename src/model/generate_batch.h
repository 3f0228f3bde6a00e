/* model/generate_batch.h - many prompts decoded together (batched, continuous).
 *
 * Up to `width` sequences are live at once, each in its own slot of one KV cache
 * [L, width, max_len, kvd]. A step feeds the last token of every live sequence as one
 * row (model_forward_rows: per-row slot and position), so each weight product is a
 * matrix product over the live rows instead of a matrix-vector product per sequence.
 * Prompts of any lengths are prefilled together: each prompt is cut into chunks of
 * `chunk` tokens, one row per chunk, rows of several prompts in one call. When a
 * sequence ends (EOS/BOS, a stop string, max tokens, the context) its result is
 * final, it leaves, and the next waiting prompt is prefilled into its slot
 * (continuous batching), so the batch stays full until the prompts run out.
 *
 * Every sequence keeps its own history (no-repeat n-grams), stop strings, token limit
 * and sampling stream: request i samples from rng seeded with req[i].seed (use
 * gen_seed(seed, instance index)), so what a prompt produces does not depend on the
 * width, on the other prompts or on the order they finish. Greedy ids are those of
 * model_generate on the same prompt: the weight products of every call (steps of up to
 * 64 rows, prefill calls of GEN_PREFILL_TOKENS tokens in both generators) run on the
 * small-m kernels, which give a row the same bits whatever the number of rows (fp32
 * weights while 64 rows of x fit 512 KiB, bf16 weights with avx512bf16; elsewhere a GEMM
 * may sum in another order), and both generators run attention one query row at a time
 * (RunState.attn_rows), so a prompt's keys and values do not depend on how it was cut into
 * calls. The LoRA products (fp32 GEMM) may still sum a row in an order that depends on the
 * call's rows; that changes an id only at an exact near-tie (tested not to happen on the
 * shipped models and adapters: tests/model/test_generate_batch.c). */
#ifndef MUSCLE_MODEL_GENERATE_BATCH_H
#define MUSCLE_MODEL_GENERATE_BATCH_H

#include "generate.h"
#include "core/progress.h"

typedef struct {
    const int *prompt;  /* token ids, normally starting with BOS (n_prompt >= 1) */
    int n_prompt;
    uint64_t seed;      /* this sequence's sampling stream (GenOptions.seed is not read) */
} GenRequest;

/* The sampling seed of instance `index` of a run seeded with `seed`. */
uint64_t gen_seed(uint64_t seed, long index);

/* Called as each request finishes (in the order they finish), e.g. for progress. */
typedef void (*GenDone)(void *ctx, int index, const GenResult *r);

/* A GenDone that advances a progress line by one finished sequence: ctx = GenProgress. */
typedef struct {
    Progress *pr;
    long done;
} GenProgress;
void gen_progress_done(void *ctx, int index, const GenResult *r);

/* Generates for req[0..n) with options o (the same for all; o->seed unused), at most
 * `width` at a time (0: gen_batch_width_default). res[0..n) receives the results in
 * request order (gen_result_free each). On error nothing is left allocated in res. */
int model_generate_batch(const Model *m, const Tokenizer *t, const GenRequest *req, int n, const GenOptions *o, int width,
                         GenDone done, void *ctx, GenResult *res);

/* The per-step hook: several models decoded together, one pick from all their logits.
 *
 * A GenModel is one model the batch runs: a base and its adapter. Every model of a run
 * keeps its own KV cache (RunState) with the same slots, joins, prefills and steps of the
 * same schedule (the one of model_generate_batch), so the ids of models[0] alone with no
 * pick are model_generate_batch's. At every pick (the first new token after the prefill,
 * then one per step) `pick` receives logits[j] [V] = model j's logits at the sequence's
 * last token (j = 0..n_models-1; the arrays may be modified), the sequence's request index
 * and its history hist[0..nh) (prompt + generated so far), and returns the next id in
 * [0, V) or -1 with err_set. pick NULL: the GenOptions sampler on logits[0]. The models
 * share a vocabulary (and a tokenizer t); EOS/BOS are models[0]'s; the context is the
 * smallest model's; width 0 is the smallest of the models' default widths. */
typedef struct {
    const Model *model;
    const LoraAdapter *lora; /* NULL: the base alone (GenOptions.lora is not read) */
    const char *who;         /* names the model in messages; NULL: none */
} GenModel;

typedef int (*GenPick)(void *ctx, int index, float *const *logits, int V, const int *hist, int nh);

typedef struct GenHook {
    const GenModel *models;
    int n_models; /* >= 1 */
    GenPick pick; /* NULL: the sampler on models[0]'s logits */
    void *ctx;
} GenHook;

/* model_generate_batch through the hook h (above); o->lora is not read (each GenModel has
 * its own). Same results, errors and cleanup as model_generate_batch. */
int model_generate_batch_hook(const GenHook *h, const Tokenizer *t, const GenRequest *req, int n, const GenOptions *o, int width,
                              GenDone done, void *ctx, GenResult *res);
/* The context the hook's models share: the smallest seq_len among them (INT_MAX with none). */
int model_generate_hook_ctx(const GenHook *h);

/* A default width for `n` prompts whose prompt + new tokens reach `max_len` positions:
 * 16, fewer when the KV cache of 16 slots would pass 1 GiB, never more than n. */
int gen_batch_width_default(const Model *m, int max_len, int n);

#endif
