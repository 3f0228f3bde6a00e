/* fuzz/fuzz_tokenizer_common.h - what every tokenizer loader harness does with a tokenizer
 * that loaded: encode a fixed text (spaces, newlines, multi-byte and malformed UTF-8, special
 * pieces), decode the ids, decode ids taken from the input, stream pieces. Any crash,
 * sanitizer report or broken invariant aborts. */
#ifndef FUZZ_TOKENIZER_COMMON_H
#define FUZZ_TOKENIZER_COMMON_H

#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char FUZZ_TEXT[] = "  Hello  world\n\tthe <s>x</s> <unk> \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"
                                " \xff\xc3( caf\xc3\xa9 e\xcc\x81 \xef\xac\x81 ab<x>cd  ";

static void fuzz_exercise(Tokenizer *t, const uint8_t *data, size_t size) {
    int n = tok_vocab_size(t);
    if (n <= 0) abort();
    int *ids = NULL, m = 0;
    if (tok_encode(t, FUZZ_TEXT, sizeof FUZZ_TEXT - 1, tok_bos_id(t) >= 0, tok_eos_id(t) >= 0, &ids, &m) == 0) {
        for (int i = 0; i < m; i++)
            if (ids[i] < 0 || ids[i] >= n) abort();
        char *s = tok_decode(t, ids, m, NULL);
        if (!s) abort(); /* valid ids always decode */
        free(s);
        char buf[8];
        size_t len;
        for (int i = 0; i < m; i++)
            if (!tok_decode_piece(t, i ? ids[i - 1] : -1, ids[i], buf, &len)) abort();
    }
    free(ids);
    /* ids from the input, possibly out of range */
    int arb[16], k = 0;
    for (size_t i = 0; i + 2 <= size && k < 16; i += 2) arb[k++] = (int)(((unsigned)data[i] << 8 | data[i + 1]) % (unsigned)(n + 2)) - 1;
    char *s = tok_decode(t, arb, k, NULL);
    free(s);
    for (int i = 0; i < k; i++) {
        size_t len;
        const char *p = tok_piece(t, arb[i], &len);
        if (p && tok_find(t, p, len) < 0 && tok_type(t, arb[i]) != TOK_UNUSED && len) {
            /* every non-empty piece can be found (maybe under an earlier duplicate id) */
            abort();
        }
        tok_score(t, arb[i]);
    }
}

#endif
