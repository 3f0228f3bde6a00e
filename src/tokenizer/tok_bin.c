/* tokenizer/tok_bin.c - llama2.c tokenizer.bin loader.
 *
 * Layout (little-endian, written by llama2.c's tokenizer.py):
 *   int32 max_token_length
 *   repeated until EOF (or vocab_size times): float32 score, int32 len, len bytes of piece
 * The export replaced SentencePiece's "▁" by a plain space and wrote BOS/EOS as "\n<s>\n" and
 * "\n</s>\n"; we undo both so every loader shares the SentencePiece piece form. Types are not
 * stored: id 0 is <unk>, 1 and 2 are control (<s>, </s>), "<0xXX>" pieces are bytes, as Llama.
 * The normalizer is not stored either: add_dummy_prefix is always on; when the 256 byte
 * pieces exist the file was trained the llama2.c/Llama way (byte_fallback, extra whitespace
 * kept), otherwise with sentencepiece's defaults (remove_extra_whitespaces) - see docs.
 */
#include "tokenizer/tok_internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

Tokenizer *tok_load_bin_mem(const uint8_t *d, size_t size, const char *name, int vocab_size) {
    if (size < 4) {
        err_set("%s: truncated llama2.c tokenizer: field 'max_token_length' needs 4 bytes, the file has %zu",
                name, size);
        return NULL;
    }
    int32_t max_len = (int32_t)rd32(d);
    if (max_len <= 0) {
        err_set("%s: field 'max_token_length': expected a positive int32, got %d", name, (int)max_len);
        return NULL;
    }
    /* pass 1: count and validate the records */
    size_t pos = 4;
    int n = 0;
    while (vocab_size ? n < vocab_size : pos < size) {
        if (size - pos < 8) {
            err_set("%s: truncated llama2.c tokenizer: token %d at offset %zu needs 8 bytes (score, len), %zu left",
                    name, n, pos, size - pos);
            return NULL;
        }
        int32_t len = (int32_t)rd32(d + pos + 4);
        if (len < 0 || (size_t)len > size - pos - 8) {
            err_set("%s: token %d at offset %zu: field 'len': expected 0..%zu (bytes left in the file), got %d",
                    name, n, pos, size - pos - 8, (int)len);
            return NULL;
        }
        pos += 8 + (size_t)len;
        if (++n > TOK_MAX_VOCAB) {
            err_set("%s: more than %d tokens", name, TOK_MAX_VOCAB);
            return NULL;
        }
    }
    if (n == 0) {
        err_set("%s: llama2.c tokenizer with no token", name);
        return NULL;
    }
    Tokenizer *t = tok_build_new(TOK_KIND_LLAMA2C, n);
    if (!t) return NULL;
    char *tmp = NULL;
    size_t tmp_cap = 0;
    pos = 4;
    for (int i = 0; i < n; i++) {
        float score;
        memcpy(&score, d + pos, 4);
        size_t len = rd32(d + pos + 4);
        const char *p = (const char *)d + pos + 8;
        pos += 8 + len;
        int type = TOK_NORMAL;
        if (i == 0) type = TOK_UNKNOWN;
        else if (i == 1 || i == 2) type = TOK_CONTROL;
        else if (tok_byte_of_piece(p, len) >= 0) type = TOK_BYTE;
        if (i == 1 && len == 5 && memcmp(p, "\n<s>\n", 5) == 0) {
            p = "<s>";
            len = 3;
        } else if (i == 2 && len == 6 && memcmp(p, "\n</s>\n", 6) == 0) {
            p = "</s>";
            len = 4;
        }
        /* ' ' -> "▁" */
        size_t spaces = 0;
        for (size_t k = 0; k < len; k++) spaces += p[k] == ' ';
        if (spaces) {
            size_t need = len + 2 * spaces;
            if (need > tmp_cap) {
                char *q = realloc(tmp, need);
                if (!q) {
                    err_set("%s: out of memory", name);
                    goto fail;
                }
                tmp = q;
                tmp_cap = need;
            }
            size_t o = 0;
            for (size_t k = 0; k < len; k++) {
                if (p[k] == ' ') {
                    memcpy(tmp + o, TOK_WS, TOK_WS_LEN);
                    o += TOK_WS_LEN;
                } else {
                    tmp[o++] = p[k];
                }
            }
            p = tmp;
            len = o;
        }
        if (tok_build_set(t, i, p, len, score, type) < 0) {
            err_prefix("%s", name);
            goto fail;
        }
    }
    free(tmp);
    tmp = NULL;
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    if (tok_build_finish(t, name, 0) < 0) goto fail;
    t->add_dummy_prefix = 1;
    t->remove_extra_ws = !t->byte_fallback;
    return t;
fail:
    free(tmp);
    tok_free(t);
    return NULL;
}
