/* bench/bench_family.h - the model family of a benchmark (--family), applied to the random
 * Llama-shaped configuration: the same shapes, plus each family's own parts (model/arch.h).
 *   llama   plain Llama blocks (the peer every family is compared with)
 *   mistral sliding window of 128 positions (shorter than the 256 scored)
 *   qwen2   biases on q, k, v
 *   qwen3   per-head q/k RMSNorm
 *   llama3  llama3 rotary scaling (factor 8, 1/4, original context 8192)
 * Header-only: included by bench_engine.c and bench_train.c. */
#ifndef MUSCLE_BENCH_FAMILY_H
#define MUSCLE_BENCH_FAMILY_H

#include "model/model.h"

#include <string.h>

static inline int bench_family_apply(ModelConfig *c, const char *family) {
    if (!family || !strcmp(family, "llama")) return 0;
    if (!strcmp(family, "llama3")) {
        c->rope_scaling = ROPE_SCALING_LLAMA3;
        c->rope_factor = 8.0f;
        c->rope_low_freq = 1.0f;
        c->rope_high_freq = 4.0f;
        c->rope_orig_ctx = 8192;
        return 0;
    }
    if (!(c->arch = arch_from_model_type(family))) return -1;
    if (!strcmp(family, "mistral")) c->sliding_window = 128;
    c->bias = c->arch->bias;
    c->qk_norm = c->arch->qk_norm;
    return 0;
}

#endif
