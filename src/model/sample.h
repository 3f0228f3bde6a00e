/* model/sample.h - choosing the next token: greedy, temperature, top-p, no-repeat n-grams. */
#ifndef MUSCLE_MODEL_SAMPLE_H
#define MUSCLE_MODEL_SAMPLE_H

#include "core/rng.h"

typedef struct {
    float temperature;   /* 0 = greedy (argmax, lowest id on ties) */
    float top_p;         /* nucleus sampling; >= 1 disables it */
    int no_repeat_ngram; /* n > 0: never repeat an n-gram of the history (as Hugging Face does) */
    Rng rng;
    int vocab;
    int *idx;            /* [vocab] scratch */
    float *prob;         /* [vocab] scratch */
} Sampler;

int sampler_init(Sampler *s, int vocab, float temperature, float top_p, int no_repeat_ngram, uint64_t seed);
void sampler_free(Sampler *s);
/* Picks a token from logits [vocab] (modified in place) given the token history. */
int sampler_pick(Sampler *s, float *logits, const int *history, int n_history);
/* Sets logits of tokens that would repeat an n-gram of the history to -inf. */
void ngram_block(float *logits, int vocab, const int *history, int n_history, int n);

#endif
