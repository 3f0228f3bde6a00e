/* eval/eval.h - evaluating a model (base + optional adapter) on a task file.
 *
 * Multiple choice: each choice's summed log-likelihood as a continuation of the context
 * (lm-evaluation-harness convention; eval/mc.h), prediction = argmax; also the
 * length-normalised prediction, argmax of loglik / (bytes of the continuation), as the
 * harness's acc_norm. Generation (batched: model/generate_batch.h; instance i samples
 * from its own stream, gen_seed(seed, i)): greedy by default (stop strings, no-repeat n-gram,
 * a token limit), exact match after answer extraction (GSM8K: the number after "####",
 * else the last number; other formats: whitespace-normalised text) and ROUGE-1/2/L F1.
 * One JSON line per instance goes to the predictions file (metrics/preds.h describes it),
 * written atomically; the summary is returned (and printed as JSON by `muscle eval`). */
#ifndef MUSCLE_EVAL_EVAL_H
#define MUSCLE_EVAL_EVAL_H

#include <stdint.h>

#include "model/lora.h"
#include "task/task.h"

typedef struct {
    const char *task_path;
    TaskFormat format;         /* TASK_FMT_AUTO: detect */
    int skip_bad;
    const char *prompt_file;   /* JSON templates (task_prompt_load), or NULL */
    const char *prompt_tmpl;   /* overrides, or NULL */
    const char *answer_tmpl;
    int limit;                 /* first N instances only (0 = all) */
    /* generation */
    int max_tokens;            /* default 128 */
    float temperature, top_p;  /* 0 / 1 = greedy */
    uint64_t seed;
    int no_repeat_ngram;
    const char *const *stops;  /* added to the template's stop strings */
    int n_stops;
    int rouge_stem;            /* Porter stemming for ROUGE (default 1, as rouge_score use_stemmer=True) */
    /* engine */
    int max_batch;             /* multiple-choice rows per forward call */
    int gen_batch;             /* generation: sequences decoded together (0: from the model's size,
                                  gen_batch_width_default) */
    int kv_bf16;               /* generation: KV cache in bf16 (GenOptions.kv_bf16) */
    const LoraAdapter *lora;
    /* generation: decode through this hook (model/generate_batch.h: several models, one pick
     * from all their logits, e.g. the inference-time mixture of compat/compat_mixgen.h)
     * instead of the model + lora; the context is the smallest of its models'. NULL: none */
    const struct GenHook *gen_hook;
    /* generation across tokenizers: another model's tokenizer and context (0: none). A
     * prompt too long for either model (its context less max_tokens) is cut in TEXT to fit
     * both (task_prompt_cut_text: at a word start), so both models read the same text;
     * without it a prompt is cut in this model's tokens (eval_prompt_fit). */
    const Tokenizer *fit_tok;
    int fit_context;
    int quiet;
} EvalOptions;

void eval_options_default(EvalOptions *o);

typedef struct {
    TaskKind kind;
    TaskFormat format;
    int n, n_skipped, n_labeled;
    double acc, acc_norm;          /* multiple choice (over labelled instances) */
    double exact_match, rouge1, rouge2, rougeL; /* generation (means) */
    double seconds;
    long tokens;                   /* tokens run through the model (MC: packed rows; gen: prompt + generated) */
    double tokens_per_s;
} EvalSummary;

/* out_path: predictions JSONL (NULL = none). */
int eval_run(const Model *m, const Tokenizer *t, const EvalOptions *o, const char *out_path, EvalSummary *sum);

/* A generation prompt fitted to a context of `limit` tokens (the model's minus the new
 * tokens) as eval_run fits it: when longer, BOS and the most recent limit - 1 tokens,
 * copied into buf (limit ints; buf may be prompt itself); *np becomes the fitted length. */
const int *eval_prompt_fit(const int *prompt, int *np, int limit, int *buf);

#endif
