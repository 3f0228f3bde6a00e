/* tests/tokenizer/tiny_bytelevel.h - tests/tokenizer/regress/json/tiny-bytelevel.json as the
 * arrays a GGUF file holds (tokens, their lengths, token types, merges "left right"). */
#ifndef TINY_BYTELEVEL_H
#define TINY_BYTELEVEL_H

#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>

#define TINY "tests/tokenizer/regress/json/tiny-bytelevel.json"

/* the merges of tiny-bytelevel.json in rank order ("\xc4\xa0" is GPT-2's stand-in for a space) */
static const char *TINY_MERGES[] = {"h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "\xc4\xa0w o", "r l",
                                    "\xc4\xa0wo rl", "\xc4\xa0worl d", "\xc4\xa0 \xc4\xa0", "\xc4\xa0 h", "\xc4\xa0h ello"};
#define TINY_N_MERGES ((int)(sizeof TINY_MERGES / sizeof TINY_MERGES[0]))

typedef struct {
    int n;
    const char **pieces; /* into the tokenizer */
    uint32_t *lens32;
    uint64_t *lens64;
    int32_t *types;
} TinyArrays;

static inline void tiny_arrays(const Tokenizer *t, TinyArrays *a) {
    a->n = tok_vocab_size(t);
    a->pieces = calloc((size_t)a->n, sizeof *a->pieces);
    a->lens32 = calloc((size_t)a->n, sizeof *a->lens32);
    a->lens64 = calloc((size_t)a->n, sizeof *a->lens64);
    a->types = calloc((size_t)a->n, sizeof *a->types);
    for (int i = 0; i < a->n; i++) {
        size_t l;
        a->pieces[i] = tok_piece(t, i, &l);
        a->lens32[i] = (uint32_t)l;
        a->lens64[i] = l;
        a->types[i] = tok_type(t, i);
    }
}

static inline void tiny_arrays_free(TinyArrays *a) {
    free(a->pieces);
    free(a->lens32);
    free(a->lens64);
    free(a->types);
}

#endif
