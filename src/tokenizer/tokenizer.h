/* tokenizer/tokenizer.h - SentencePiece-style BPE tokenizer with byte fallback.
 *
 * Encodes and decodes exactly like Debian's python3-sentencepiece 0.1.97
 * (EncodeAsIds / DecodeIds) for BPE models, whatever file the vocabulary came from.
 * The loader is chosen from the file's CONTENT, never its name:
 *   - llama2.c tokenizer.bin   (int32 max_token_length, then {f32 score, i32 len, bytes}...)
 *   - SentencePiece .model     (ModelProto protobuf, model_type BPE)
 *   - Hugging Face tokenizer.json of the Llama kind (model.type "BPE", merges applied by rank)
 *   - Hugging Face tokenizer.json of the byte-level kind (GPT-2, Llama 3, Qwen2/3, SmolLM:
 *     ByteLevel pre-tokenizer, Split regexes), encoding and decoding as transformers.js does
 *   - arrays (GGUF metadata tokenizer.ggml.*): tok_init_from_vocab().
 * A loaded Tokenizer is immutable: any number of threads may encode/decode with it at once.
 * Errors: NULL / -1 and err_set() (core/error.h). See docs/tokenizer.md.
 */
#ifndef MUSCLE_TOKENIZER_H
#define MUSCLE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct Tokenizer Tokenizer;

/* Piece types: the values of SentencePiece's ModelProto and of GGUF's tokenizer.ggml.token_type. */
typedef enum {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6
} TokType;

/* ---- loading ---------------------------------------------------------------------------- */

/* Loads any supported file (format detected from its content). */
Tokenizer *tok_load(const char *path);
/* Same from a buffer; `name` is only used in error messages. */
Tokenizer *tok_load_mem(const void *data, size_t size, const char *name);
/* llama2.c tokenizer.bin with a known vocabulary size (as run.c reads it: exactly
 * `vocab_size` records, trailing bytes ignored); vocab_size 0 = every record until EOF. */
Tokenizer *tok_load_llama2c(const char *path, int vocab_size);
/* From arrays (GGUF). piece_lens may be NULL (NUL-terminated pieces), scores may be NULL (0),
 * types may be NULL (inferred as for llama2.c: 0 unknown, 1-2 control, "<0xXX>" byte).
 * bos/eos may be -1 (none); unk_id -1 = the piece of type TOK_UNKNOWN, else 0. Pieces use
 * SentencePiece's U+2581 for spaces. Whitespace defaults: add dummy prefix, keep extra spaces. */
Tokenizer *tok_init_from_vocab(int n, const char *const *pieces, const uint32_t *piece_lens,
                               const float *scores, const int32_t *types, int bos_id, int eos_id,
                               int unk_id);
/* Byte-level BPE from GGUF arrays (tokenizer.ggml.model "gpt2"): tokens (piece_lens may be
 * NULL), token_type (may be NULL: all normal; CONTROL and USER_DEFINED tokens are matched in
 * the text before pre-tokenization), merges "left right" in rank order (merge_lens may be
 * NULL), pre = tokenizer.ggml.pre (NULL or "" = "default"; llama.cpp's names, see
 * docs/tokenizer.md). bos/eos may be -1. */
Tokenizer *tok_init_bpe_from_vocab(int n, const char *const *pieces, const uint32_t *piece_lens, const int32_t *types,
                                   int n_merges, const char *const *merges, const uint32_t *merge_lens, const char *pre,
                                   int bos_id, int eos_id);
/* Overrides the normalizer's whitespace rules (e.g. GGUF tokenizer.ggml.add_space_prefix).
 * Call before sharing the tokenizer between threads. */
void tok_set_whitespace(Tokenizer *t, int add_dummy_prefix, int remove_extra_whitespaces);
void tok_free(Tokenizer *t);

/* ---- queries ---------------------------------------------------------------------------- */

int tok_vocab_size(const Tokenizer *t);
int tok_bos_id(const Tokenizer *t); /* -1 when none */
int tok_eos_id(const Tokenizer *t);
int tok_unk_id(const Tokenizer *t);
/* tokenizer_config.json's pad_token beside a tokenizer.json; -1 when none (or another kind) */
int tok_pad_id(const Tokenizer *t);
/* 1 for a byte-level BPE tokenizer (GPT-2 kind: tokenizer.json ByteLevel or GGUF "gpt2"). */
int tok_is_byte_level(const Tokenizer *t);
/* Byte-level BPE as GGUF metadata (tokenizer.ggml.model "gpt2"): the tokenizer.ggml.pre name
 * whose regexes llama.cpp applies are this tokenizer's pre-tokenizer ("llama-bpe", "qwen2",
 * "gpt-2", "smollm", ...), into name[cap]; -1 + err_set when llama.cpp has none for it. */
int tok_gguf_pre(const Tokenizer *t, char *name, size_t cap);
/* The BPE merges in rank order as pairs of piece ids (left, right): malloc'd *pairs (free() it)
 * of 2 * n ids, n returned (0: none); -1 + err_set. */
int tok_merges(const Tokenizer *t, int32_t **pairs);
/* "llama2.c", "sentencepiece", "tokenizer.json" or "gguf" (tok_init_from_vocab). */
const char *tok_kind(const Tokenizer *t);
/* The piece (SentencePiece form, "▁" for spaces; not NUL-terminated when it holds a NUL byte).
 * NULL + err_set for an id out of range. */
const char *tok_piece(const Tokenizer *t, int id, size_t *len);
float tok_score(const Tokenizer *t, int id); /* 0 when out of range */
int tok_type(const Tokenizer *t, int id);    /* TokType, 0 when out of range */
/* Id of a piece or -1 (no unk substitution). */
int tok_find(const Tokenizer *t, const char *piece, size_t len);

/* ---- encoding / decoding ------------------------------------------------------------------ */

/* text[0..len) -> malloc'd *ids (free() it), *n_ids of them. 0 / -1. */
int tok_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int add_eos,
               int **ids, int *n_ids);
/* SentencePiece DecodeIds (byte-level BPE: transformers' decode with special tokens kept and no
 * clean-up of spaces): malloc'd NUL-terminated text (*len, may be NULL, gets its length).
 * NULL + err_set when an id is out of range. */
char *tok_decode(const Tokenizer *t, const int *ids, int n, size_t *len);
/* Streaming decode as llama2.c's run.c prints a generated token: the piece with "▁" shown as a
 * space, its leading space dropped right after BOS, "<0xXX>" as that raw byte (written to buf);
 * control tokens give "". NULL + err_set for an id out of range. */
const char *tok_decode_piece(const Tokenizer *t, int prev_id, int id, char buf[8], size_t *len);

#endif
