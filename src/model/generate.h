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

typedef struct {
    char *text;          /* malloc'd generated text (without the prompt), stops removed */
    size_t text_len;
    int *ids;            /* malloc'd generated ids */
    int n_ids;
    int stopped_by;      /* 0 = max tokens, 1 = eos/bos, 2 = stop string, 3 = context full, 4 = emit */
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
