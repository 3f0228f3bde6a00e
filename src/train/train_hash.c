/* train/train_hash.c - fingerprints of weights and adapters (trainer.h): what a checkpoint
 * records so a resume can check it continues the same run. */
#include "trainer.h"

#include <stdlib.h>
#include <string.h>

uint64_t train_hash_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 31;
    }
    for (; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
        h ^= h >> 31;
    }
    return h;
}

static uint64_t hash_weight(uint64_t h, const KWeight *w) {
    size_t n = (size_t)w->n * w->k;
    if (w->type == KW_F32) return train_hash_bytes(h, w->f32, n * sizeof(float));
    return train_hash_bytes(h ^ 0xbf16, w->bf16, n * sizeof(uint16_t));
}

uint64_t train_hash_model(const Model *m) {
    uint64_t h = 0xcbf29ce484222325ull;
    int n = model_params(m, NULL, NULL);
    ModelParam *ps = malloc((size_t)n * sizeof *ps);
    if (!ps) return 0;
    model_params(m, NULL, ps);
    for (int k = 0; k < n; k++)
        h = ps[k].kw ? hash_weight(h, ps[k].kw) : train_hash_bytes(h, ps[k].param, ps[k].n * sizeof(float));
    free(ps);
    return h;
}

uint64_t train_hash_lora(const LoraAdapter *a) {
    return train_hash_bytes(0xcbf29ce484222325ull ^ (uint64_t)a->n_floats, a->data, a->n_floats * sizeof(float));
}
