/* export/export_gguf_vocab.c - a tokenizer as GGUF metadata (export_internal.h).
 *
 * SentencePiece kind (llama2.c, .model, Llama-kind tokenizer.json): tokenizer.ggml.model
 * "llama", tokens in SentencePiece form (U+2581 for spaces), scores, token_type.
 * Byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM tokenizer.json): "gpt2", tokens as the
 * vocabulary spells them (GPT-2's byte stand-ins: "Ġ" for a space), token_type (added
 * special tokens CONTROL, other added tokens USER_DEFINED: llama.cpp matches both in the
 * text before splitting it, as the tokenizer.json's added tokens are), the merges in rank
 * order and tokenizer.ggml.pre, the name under which llama.cpp's llama-vocab.cpp applies the
 * same regexes (tok_gguf_pre: llama-bpe, qwen2, gpt-2, smollm). */
#include "export_internal.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char **s;
    uint64_t *len;
    char *pad; /* "[PADi]" strings, 16 bytes each */
} Strs;

static void strs_free(Strs *a) {
    free(a->s);
    free(a->len);
    free(a->pad);
}

/* tokens (padded to n_vocab) and their types */
static int tokens(const Tokenizer *t, int n_vocab, Strs *a, int32_t *types) {
    int n = tok_vocab_size(t);
    a->s = calloc((size_t)n_vocab, sizeof *a->s);
    a->len = calloc((size_t)n_vocab, sizeof *a->len);
    a->pad = calloc((size_t)n_vocab, 16);
    if (!a->s || !a->len || !a->pad) return -1;
    for (int i = 0; i < n_vocab; i++) {
        size_t len = 0;
        const char *p = i < n ? tok_piece(t, i, &len) : NULL;
        int ty = i < n ? tok_type(t, i) : TOK_UNUSED;
        if (!p || !len) { /* an id without a piece: the converter's padding */
            char *pad = a->pad + (size_t)i * 16;
            len = (size_t)snprintf(pad, 16, "[PAD%d]", i);
            p = pad;
            ty = TOK_UNUSED;
        }
        a->s[i] = p;
        a->len[i] = len;
        types[i] = ty ? ty : TOK_NORMAL;
    }
    return 0;
}

/* merges "left right" in rank order */
static int merges(GgufWriter *w, const Tokenizer *t, const char *path) {
    int32_t *pairs = NULL;
    int n = tok_merges(t, &pairs);
    if (n < 0) return err_prefix("%s: tokenizer merges", path);
    Strs m = {0};
    char *buf = NULL;
    size_t total = 0;
    for (int r = 0; r < 2 * n; r++) {
        size_t l;
        tok_piece(t, pairs[r], &l);
        total += l + 1;
    }
    int rc = 0;
    if (!(m.s = calloc((size_t)n + 1, sizeof *m.s)) || !(m.len = calloc((size_t)n + 1, sizeof *m.len)) ||
        !(buf = malloc(total + 1)))
        rc = err_set("%s: out of memory", path);
    size_t at = 0;
    for (int r = 0; rc == 0 && r < n; r++) {
        size_t la, lb;
        const char *a = tok_piece(t, pairs[2 * r], &la), *b = tok_piece(t, pairs[2 * r + 1], &lb);
        m.s[r] = buf + at;
        memcpy(buf + at, a, la);
        buf[at + la] = ' ';
        memcpy(buf + at + la + 1, b, lb);
        m.len[r] = la + 1 + lb;
        at += la + 1 + lb;
    }
    if (rc == 0) rc = gguf_writer_set_str_array(w, "tokenizer.ggml.merges", m.s, m.len, (uint64_t)n);
    strs_free(&m);
    free(buf);
    free(pairs);
    return rc;
}

int export_gguf_vocab(GgufWriter *w, const Tokenizer *t, int n_vocab, const char *path) {
    int n = tok_vocab_size(t), bpe = tok_is_byte_level(t);
    if (n > n_vocab) return err_set("%s: the tokenizer has %d pieces, the model only %d", path, n, n_vocab);
    char pre[64];
    if (bpe && tok_gguf_pre(t, pre, sizeof pre) != 0) return err_prefix("%s: the byte-level BPE tokenizer", path);
    Strs a = {0};
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    float *scores = bpe ? NULL : calloc((size_t)n_vocab, sizeof *scores);
    int rc = 0;
    if (!types || (!bpe && !scores) || tokens(t, n_vocab, &a, types) != 0) rc = err_set("%s: out of memory", path);
    for (int i = 0; rc == 0 && scores && i < n; i++) scores[i] = tok_score(t, i);
    if (rc == 0) {
        gguf_writer_set_string(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
        if (bpe) gguf_writer_set_string(w, "tokenizer.ggml.pre", pre);
        gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", a.s, a.len, (uint64_t)n_vocab);
        if (scores) gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n_vocab);
        gguf_writer_set_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n_vocab);
        if (bpe) rc = merges(w, t, path);
    }
    if (rc == 0) {
        if (tok_bos_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)tok_bos_id(t));
        if (tok_eos_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)tok_eos_id(t));
        if (tok_pad_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)tok_pad_id(t));
        if (tok_unk_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)tok_unk_id(t));
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", tok_bos_id(t) >= 0);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    }
    strs_free(&a);
    free(types);
    free(scores);
    return rc;
}
