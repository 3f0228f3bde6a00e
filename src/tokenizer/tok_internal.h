/* tokenizer/tok_internal.h - the Tokenizer struct and helpers shared by the loaders.
 * Not a public header: only the files of src/tokenizer include it. */
#ifndef MUSCLE_TOK_INTERNAL_H
#define MUSCLE_TOK_INTERNAL_H

#include "tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#define TOK_MAX_VOCAB (1 << 24)      /* refuse absurd vocabularies from untrusted files */
#define TOK_MAX_PIECE 8000           /* sentencepiece's kMaxPieceSize */
#define TOK_MAX_TEXT ((size_t)1 << 28) /* 256 MiB per tok_encode call (int indices inside) */

/* "▁" U+2581, SentencePiece's escaped space. */
#define TOK_WS "\xe2\x96\x81"
#define TOK_WS_LEN 3

typedef enum { TOK_KIND_LLAMA2C, TOK_KIND_SPM, TOK_KIND_JSON, TOK_KIND_GGUF } TokKind;

/* ---- hash map: byte string (a piece, looked up through the tokenizer) -> id --------------- */
typedef struct {
    int32_t *slot; /* -1 = empty, else a piece id */
    uint32_t mask; /* capacity - 1 (power of two) */
    int count;
} TokIdMap;

/* ---- hash map: pair of ids -> (rank, merged id), for tokenizer.json merges ---------------- */
typedef struct {
    uint64_t key;   /* (left << 32) | right; UINT64_MAX = empty */
    int32_t rank;
    int32_t id;
} TokPairSlot;
typedef struct {
    TokPairSlot *slot;
    uint64_t mask;
    int64_t count;
} TokPairMap;

/* ---- byte trie for longest-prefix matching (USER_DEFINED pieces, added tokens) ------------ */
typedef struct {
    int32_t child;   /* first child node, -1 none */
    int32_t sibling; /* next sibling, -1 none */
    int32_t value;   /* id ending here, -1 none */
    uint8_t byte;
} TokTrieNode;
typedef struct {
    TokTrieNode *node;
    int n, cap;
} TokTrie;

/* ---- SentencePiece precompiled charsmap (darts-clone double array + NUL-separated strings) */
typedef struct {
    const uint32_t *unit; /* points into owned copy `buf` */
    size_t n_units;
    const char *norm;     /* normalized strings */
    size_t norm_size;
    uint8_t *buf;
} TokCharsMap;

/* ---- Hugging Face normalizer / pre-tokenizer steps ---------------------------------------- */
typedef enum { HF_PREPEND = 1, HF_REPLACE, HF_NFKC, HF_NFC } HfNormKind;
typedef struct {
    HfNormKind kind;
    char *a; size_t a_len; /* prepend text / replace pattern */
    char *b; size_t b_len; /* replace content */
} HfNorm;
typedef enum { HF_PREPEND_ALWAYS = 0, HF_PREPEND_FIRST, HF_PREPEND_NEVER } HfPrepend;

/* ---- growable byte buffer ------------------------------------------------------------------ */
#include "core/hash.h"
#include "core/strbuf.h"
typedef StrBuf TokBuf;
static inline int tok_buf_put(TokBuf *b, const void *s, size_t n) { return strbuf_put(b, s, n); }

/* ---- byte-level BPE pipeline (tok_bpe.c): pre-tokenizer steps, added tokens, byte map ----- */
typedef struct TokBpe TokBpe;

struct Tokenizer {
    TokKind kind;
    int n;               /* vocabulary size */
    char *blob;          /* all pieces, each followed by a NUL */
    uint32_t *off, *len; /* piece i = blob[off[i] .. off[i]+len[i]) */
    char *disp;          /* display text for tok_decode_piece: "▁" -> " " (NUL-separated) */
    uint32_t *disp_off, *disp_len;
    float *score;
    uint8_t *type;       /* TokType */
    int32_t *canon;      /* PieceToId(piece(i)): the reserved map wins, then the first duplicate */

    int bos, eos, unk;
    int pad;             /* tokenizer_config.json pad_token (tok_json.c), else -1 */
    int byte_id[256];    /* id of "<0xXX>" or -1 */
    int byte_fallback;

    /* normalizer (SentencePiece NormalizerSpec) */
    int add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix;
    int nfkc;            /* apply NFKC (utf8proc) when no charsmap is given */
    TokCharsMap cmap;    /* n_units == 0: identity */
    char *unk_surface;
    size_t unk_surface_len;

    /* lookups */
    TokIdMap pieces;     /* NORMAL, USER_DEFINED, UNUSED (sentencepiece's pieces_) */
    TokIdMap reserved;   /* CONTROL, UNKNOWN, BYTE (reserved_id_map_) */
    TokTrie user;        /* USER_DEFINED pieces (spm) or added tokens (json) */
    int has_unused;
    uint8_t isolated[128]; /* ASCII byte in no piece of 2+ bytes: it never merges */

    /* tokenizer.json */
    TokPairMap merges;
    HfNorm *hf_norm;
    int n_hf_norm;
    int hf_metaspace;     /* Metaspace pre-tokenizer present */
    HfPrepend hf_prepend;
    int hf_split;         /* Metaspace split on ▁ */
    char *hf_repl; size_t hf_repl_len;
    int hf_fuse_unk, hf_ignore_merges, hf_byte_fallback;
    int hf_unk;           /* unk id for the BPE model, -1 none */
    uint8_t *hf_mergeable; /* [n] id appears in some merge pair */
    TokBpe *bpe;          /* non-NULL: byte-level BPE (encode/decode go through tok_bpe.c) */

    TokBuf build;         /* piece bytes while a loader fills the vocabulary */
};

/* ---- construction (tokenizer.c) ----------------------------------------------------------- */
/* A tokenizer with n empty slots: the loader fills pieces via tok_build_set(), then calls
 * tok_build_finish() which builds the maps and validates. `strict` = sentencepiece's checks
 * (duplicate pieces, empty pieces, NUL bytes and missing byte pieces are errors). */
Tokenizer *tok_build_new(TokKind kind, int n);
int tok_build_set(Tokenizer *t, int id, const char *piece, size_t len, float score, int type);
int tok_build_finish(Tokenizer *t, const char *name, int strict);
int tok_byte_of_piece(const char *p, size_t len); /* "<0xXX>" (uppercase hex) -> 0..255 or -1 */

int tok_idmap_find(const Tokenizer *t, const TokIdMap *m, const char *s, size_t len);
int tok_trie_add(TokTrie *tr, const char *s, size_t len, int value);
/* Longest match at s[0..len): its length (0 = none), *value the id. */
size_t tok_trie_match(const TokTrie *tr, const char *s, size_t len, int *value);

int tok_pairmap_put(TokPairMap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
const TokPairSlot *tok_pairmap_get(const TokPairMap *m, int32_t a, int32_t b);

/* UTF-8 as sentencepiece sees it: the length of one valid character at s (1..4), or 0 when
 * the bytes there are malformed (sentencepiece then consumes 1 byte and emits U+FFFD). */
#include "core/utf8.h"
static inline size_t tok_utf8_valid_len(const char *s, size_t n) { return utf8_char_len(s, n); }

/* ---- loaders ------------------------------------------------------------------------------ */
Tokenizer *tok_load_bin_mem(const uint8_t *d, size_t size, const char *name, int vocab_size);
Tokenizer *tok_load_spm_mem(const uint8_t *d, size_t size, const char *name);
Tokenizer *tok_load_json_mem(const uint8_t *d, size_t size, const char *name, const char *path);

/* Charsmap (tok_spm.c): parse a precompiled_charsmap blob; 0 / -1. */
int tok_charsmap_init(TokCharsMap *cm, const uint8_t *blob, size_t size, const char *name);
void tok_charsmap_free(TokCharsMap *cm);
/* Longest rule at s: consumed length (0 = none), *out / *out_len the replacement. */
size_t tok_charsmap_match(const TokCharsMap *cm, const char *s, size_t n, const char **out,
                          size_t *out_len);

/* Malformed UTF-8 -> U+FFFD before a Hugging Face pipeline (tokenizer.json, byte-level BPE),
 * which works on valid strings: core's utf8_sanitize (core/utf8.h), one U+FFFD per maximal
 * invalid subpart, the string Python's decode(errors="replace") and Node's Buffer.toString /
 * TextDecoder give transformers.js for the same bytes, and the rule of decoding. (SentencePiece
 * models replace one byte at a time, as sentencepiece's normalizer and decoder do: the loops
 * of tokenizer.c, nfkc_text and flush_bytes, keep that rule.) When
 * needed, *text and *len are pointed at the cleaned copy in `clean` (free clean->p after use).
 * 0 / -1 (OOM). */
int tok_utf8_clean(const char **text, size_t *len, TokBuf *clean);
/* tokenizer.json encoding (tok_json.c). */
int tok_json_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids);
void tok_json_free(Tokenizer *t);
/* The tokenizer.json normalizer steps (t->hf_norm) applied to b in place; 0 / -1 (OOM). */
int tok_json_normalize(const Tokenizer *t, TokBuf *b);
/* BPE merges on one pre-token w[0..n) (valid UTF-8, characters looked up as pieces): ids
 * appended to ids. Honours hf_ignore_merges, hf_byte_fallback, hf_unk / hf_fuse_unk. */
int tok_json_bpe_word(const Tokenizer *t, const char *w, size_t n, TokBuf *ids);
/* Merge `rank`: pieces a + b -> their concatenation, all three must be pieces. 0 / -1. */
int tok_json_add_merge(Tokenizer *t, const char *a, size_t la, const char *b, size_t lb, int rank, const char *name);

/* Byte-level BPE (tok_bpe.c). A loader makes t->bpe with tok_bpe_new, adds the pre-tokenizer
 * steps in order (ByteLevel last) and the added tokens, then calls tok_bpe_finish once the
 * vocabulary, normalizer and merges are in place. */
typedef enum { TOK_BPE_ISOLATED = 0, TOK_BPE_REMOVED, TOK_BPE_OTHER } TokBpeBehavior;
TokBpe *tok_bpe_new(void);
void tok_bpe_free(TokBpe *b);
int tok_bpe_add_split(TokBpe *b, const char *pattern, size_t len, int is_regex, TokBpeBehavior behavior, int invert,
                      const char *name);
int tok_bpe_add_bytelevel(TokBpe *b, int add_prefix_space, int use_regex, const char *name);
int tok_bpe_add_token(TokBpe *b, int id, const char *content, size_t len, int special, int normalized, int lstrip,
                      int rstrip);
int tok_bpe_finish(Tokenizer *t, const char *name);
/* Step i of the pre-tokenizer as it was added (tok_bpe_gguf.c names it for GGUF): 0, or -1
 * past the last step. */
typedef struct {
    int bytelevel;           /* ByteLevel (last) rather than Split */
    const char *pattern;     /* Split: the pattern as given (a Digits step: its regex) */
    int is_regex, removed, invert;
    int add_prefix_space, use_regex; /* ByteLevel */
} TokBpeStepInfo;
int tok_bpe_step_info(const TokBpe *b, int i, TokBpeStepInfo *info);
int tok_bpe_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids);
/* tok_spm_encode.c: SentencePiece normalization and BPE of text, ids (int) appended to ids. */
int tok_spm_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids);

/* The vocabulary tables' hash (FNV-1a, folded). */
static inline uint32_t tok_hash_bytes(const char *s, size_t n) {
    uint32_t h = hash_fnv32(s, n);
    return h ^ (h >> 15);
}
/* sentencepiece PieceToId without the unk fallback. */
static inline int tok_piece_to_id(const Tokenizer *t, const char *s, size_t len) {
    int id = tok_idmap_find(t, &t->reserved, s, len);
    if (id < 0) id = tok_idmap_find(t, &t->pieces, s, len);
    return id;
}
/* U+FFFD in UTF-8 (3 bytes). */
#define TOK_REPLACEMENT_CHAR "\xEF\xBF\xBD"

char *tok_bpe_decode(const Tokenizer *t, const int *ids, int n, size_t *len);

#endif
