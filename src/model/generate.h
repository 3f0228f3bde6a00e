/* model/generate.h - text generation with a KV cache. */
#ifndef MUSCLE_MODEL_GENERATE_H
#define MUSCLE_MODEL_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "lora.h"
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

/* prompt: token ids, normally starting with BOS (n_prompt >= 1). */
int model_generate(const Model *m, const Tokenizer *t, const int *prompt, int n_prompt,
                   const GenOptions *o, GenEmit emit, void *ctx, GenResult *res);
void gen_result_free(GenResult *r);

/* Loads the tokenizer for a model: `path` when given, else the one embedded in the
 * model file (GGUF) or found beside it (tokenizer.json, tokenizer.model,
 * tokenizer.bin, tok*.model, tok*.bin). Checks that it fits the model's vocabulary. */
Tokenizer *model_tokenizer_load(const Model *m, const char *path);
/* The same; *found receives the file's path (malloc'd; NULL when embedded in the model). */
Tokenizer *model_tokenizer_load_ex(const Model *m, const char *path, char **found);
/* Frees a tokenizer from model_tokenizer_load (unless it is the model's own). */
void model_tokenizer_free(const Model *m, Tokenizer *t);

#endif
