/* model/generate.h - text generation with a KV cache. */
#ifndef MUSCLE_MODEL_GENERATE_H
#define MUSCLE_MODEL_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "lora.h"
#include "core/strbuf.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int max_tokens;          /* new tokens at most */
    float temperature;       /* 0 = greedy */
    float top_p;             /* 1 = off */
    uint64_t seed;
    int no_repeat_ngram;     /* 0 = off */
    const char *const *stops;/* stop strings: the text ends before the first one */
    int n_stops;
    int ignore_eos;          /* by default BOS or EOS ends the text (as llama2.c's run.c) */
    const LoraAdapter *lora; /* optional adapter applied to the base */
    int kv_bf16;             /* keys and values cached in bf16 (half the memory;
                                model/forward.h RS_KV_BF16): ids may differ from an fp32
                                cache at near-ties */
} GenOptions;

void gen_options_default(GenOptions *o);

/* Receives text as it becomes final (may be called with len 0). Return non-zero to stop. */
typedef int (*GenEmit)(void *ctx, const char *text, size_t len);

/* Why generation stopped (GenResult.stopped_by). */
typedef enum {
    GEN_STOP_MAX_TOKENS = 0, /* max_tokens reached */
    GEN_STOP_EOS = 1,        /* the model emitted EOS (or BOS) */
    GEN_STOP_STRING = 2,     /* a stop string appeared */
    GEN_STOP_CONTEXT = 3,    /* the context is full */
    GEN_STOP_EMIT = 4        /* the emit callback asked to stop */
} GenStop;

typedef struct {
    char *text;          /* malloc'd generated text (without the prompt), stops removed */
    size_t text_len;
    int *ids;            /* malloc'd generated ids */
    int n_ids;
    GenStop stopped_by;
    double seconds;      /* time spent after the prompt was read */
} GenResult;

/* Prompt tokens per forward call when prefilling, in both generators: the rows of every
 * weight product then stay on the small-m kernels (kernel/matmul.c, up to 64 rows), which
 * give a row the same bits whatever the number of rows - so a prompt's keys and values,
 * and so the greedy ids, do not depend on how prompts are grouped. */
#define GEN_PREFILL_TOKENS 64

/* prompt: token ids, normally starting with BOS (n_prompt >= 1). One sequence, decoded
 * one token at a time (matrix-vector products); many prompts: model_generate_batch
 * (model/generate_batch.h), which gives the same ids. */
int model_generate(const Model *m, const Tokenizer *t, const int *prompt, int n_prompt,
                   const GenOptions *o, GenEmit emit, void *ctx, GenResult *res);
void gen_result_free(GenResult *r);

/* ---- one sequence's bookkeeping, shared by model_generate and model_generate_batch ---- */
typedef struct {
    const GenOptions *o;
    const Tokenizer *t;
    int eos, bos;
    int *hist;           /* [n_prompt + max_tokens + 1] prompt then generated ids */
    int nh, n_prompt;
    StrBuf text;         /* generated text so far (stops cut) */
    size_t maxstop, emitted;
    GenStop stopped_by;  /* as GenResult */
} GenSeq;

/* Copies the prompt into the history. */
int gen_seq_init(GenSeq *q, const Model *m, const Tokenizer *t, const GenOptions *o, const int *prompt, int n_prompt);
/* Takes the next token picked by the sampler (from q->hist, q->nh): 1 when the sequence
 * ended (EOS/BOS, a stop string, max tokens, emit's request; q->stopped_by), 0 when the
 * token must be fed to the model, -1 on error. */
int gen_seq_push(GenSeq *q, int next, GenEmit emit, void *ctx);
/* The result (text and ids move out of q, which is freed); emits what is left. */
int gen_seq_finish(GenSeq *q, GenEmit emit, void *ctx, double seconds, GenResult *res);
void gen_seq_free(GenSeq *q);
/* The checks of a prompt and options before generating. */
int gen_check(const Model *m, int n_prompt, const GenOptions *o);

/* Loads the tokenizer for a model: `path` when given, else the one embedded in the
 * model file (GGUF) or found beside it (tokenizer.json, tokenizer.model,
 * tokenizer.bin, tok*.model, tok*.bin). Checks that it fits the model's vocabulary. */
Tokenizer *model_tokenizer_load(const Model *m, const char *path);
/* The same; *found receives the file's path (malloc'd; NULL when embedded in the model). */
Tokenizer *model_tokenizer_load_ex(const Model *m, const char *path, char **found);
/* Frees a tokenizer from model_tokenizer_load (unless it is the model's own). */
void model_tokenizer_free(const Model *m, Tokenizer *t);

#endif
