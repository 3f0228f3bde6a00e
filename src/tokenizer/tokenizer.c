/* tokenizer/tokenizer.c - vocabulary tables, loading, queries, encode dispatch, decoding
 * (SentencePiece normalization and BPE: tok_spm_encode.c).
 *
 * The algorithms follow sentencepiece 0.1.97 (normalizer.cc, bpe_model.cc,
 * sentencepiece_processor.cc) step by step, because "close" is not good enough: a model
 * trained on sentencepiece ids must see the very same ids. Where sentencepiece has a quirk
 * (runs of unknown pieces fused into one <unk>, the first "▁" of a decoded text dropped,
 * pieces that are both control and normal resolving to the control id) we reproduce it.
 * Nothing writes to the Tokenizer after loading: concurrent encodes are safe.
 */
#include "tokenizer/tok_internal.h"

#include "core/error.h"
#include "core/file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================================================
 * Small utilities
 * ========================================================================================== */

static const char *piece_ptr(const Tokenizer *t, int id) { return t->blob + t->off[id]; }

int tok_byte_of_piece(const char *p, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    const char *h = strchr(hex, p[3]), *l = strchr(hex, p[4]);
    if (!p[3] || !p[4] || !h || !l) return -1;
    return (int)((h - hex) * 16 + (l - hex));
}

/* ============================================================================================
 * Hash maps and trie
 * ========================================================================================== */

static int idmap_init(TokIdMap *m, int expected) {
    uint32_t cap = 16;
    while (cap < (uint32_t)expected * 2u + 1u) cap *= 2;
    m->slot = malloc(sizeof *m->slot * cap);
    if (!m->slot) return -1;
    memset(m->slot, 0xff, sizeof *m->slot * cap);
    m->mask = cap - 1;
    m->count = 0;
    return 0;
}

int tok_idmap_find(const Tokenizer *t, const TokIdMap *m, const char *s, size_t len) {
    if (!m->slot) return -1;
    uint32_t i = tok_hash_bytes(s, len) & m->mask;
    for (;;) {
        int32_t id = m->slot[i];
        if (id < 0) return -1;
        if (t->len[id] == len && memcmp(piece_ptr(t, id), s, len) == 0) return id;
        i = (i + 1) & m->mask;
    }
}

/* Inserts id; returns the id already there for the same string, or -1 when inserted. */
static int idmap_insert(const Tokenizer *t, TokIdMap *m, int id) {
    const char *s = piece_ptr(t, id);
    size_t len = t->len[id];
    uint32_t i = tok_hash_bytes(s, len) & m->mask;
    for (;;) {
        int32_t o = m->slot[i];
        if (o < 0) {
            m->slot[i] = id;
            m->count++;
            return -1;
        }
        if (t->len[o] == len && memcmp(piece_ptr(t, o), s, len) == 0) return o;
        i = (i + 1) & m->mask;
    }
}

static int trie_node(TokTrie *tr, uint8_t byte) {
    if (tr->n == tr->cap) {
        int cap = tr->cap ? tr->cap * 2 : 64;
        TokTrieNode *p = realloc(tr->node, sizeof *p * (size_t)cap);
        if (!p) return -1;
        tr->node = p;
        tr->cap = cap;
    }
    TokTrieNode *nd = &tr->node[tr->n];
    nd->child = nd->sibling = nd->value = -1;
    nd->byte = byte;
    return tr->n++;
}

int tok_trie_add(TokTrie *tr, const char *s, size_t len, int value) {
    if (tr->n == 0 && trie_node(tr, 0) < 0) return -1;
    int cur = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        int ch = tr->node[cur].child;
        while (ch >= 0 && tr->node[ch].byte != c) ch = tr->node[ch].sibling;
        if (ch < 0) {
            ch = trie_node(tr, c);
            if (ch < 0) return -1;
            tr->node[ch].sibling = tr->node[cur].child;
            tr->node[cur].child = ch;
        }
        cur = ch;
    }
    if (tr->node[cur].value < 0) tr->node[cur].value = value;
    return 0;
}

size_t tok_trie_match(const TokTrie *tr, const char *s, size_t len, int *value) {
    size_t best = 0;
    if (tr->n == 0) return 0;
    int cur = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        int ch = tr->node[cur].child;
        while (ch >= 0 && tr->node[ch].byte != c) ch = tr->node[ch].sibling;
        if (ch < 0) break;
        cur = ch;
        if (tr->node[cur].value >= 0) {
            best = i + 1;
            if (value) *value = tr->node[cur].value;
        }
    }
    return best;
}

static uint64_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

int tok_pairmap_put(TokPairMap *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
    if (!m->slot || (uint64_t)(m->count + 1) * 2 > m->mask + 1) {
        uint64_t cap = m->slot ? (m->mask + 1) * 2 : 1024;
        TokPairSlot *s = malloc(sizeof *s * cap);
        if (!s) return -1;
        for (uint64_t i = 0; i < cap; i++) s[i].key = UINT64_MAX;
        if (m->slot) {
            for (uint64_t i = 0; i <= m->mask; i++) {
                if (m->slot[i].key == UINT64_MAX) continue;
                uint64_t j = pair_hash(m->slot[i].key) & (cap - 1);
                while (s[j].key != UINT64_MAX) j = (j + 1) & (cap - 1);
                s[j] = m->slot[i];
            }
            free(m->slot);
        }
        m->slot = s;
        m->mask = cap - 1;
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t j = pair_hash(key) & m->mask;
    while (m->slot[j].key != UINT64_MAX) {
        if (m->slot[j].key == key) { /* a later duplicate overwrites, as HF's HashMap collect */
            m->slot[j].rank = rank;
            m->slot[j].id = id;
            return 1;
        }
        j = (j + 1) & m->mask;
    }
    m->slot[j].key = key;
    m->slot[j].rank = rank;
    m->slot[j].id = id;
    m->count++;
    return 0;
}

const TokPairSlot *tok_pairmap_get(const TokPairMap *m, int32_t a, int32_t b) {
    if (!m->slot || a < 0 || b < 0) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t j = pair_hash(key) & m->mask;
    while (m->slot[j].key != UINT64_MAX) {
        if (m->slot[j].key == key) return &m->slot[j];
        j = (j + 1) & m->mask;
    }
    return NULL;
}

/* ============================================================================================
 * Construction
 * ========================================================================================== */

Tokenizer *tok_build_new(TokKind kind, int n) {
    if (n < 0 || n > TOK_MAX_VOCAB) {
        err_set("vocabulary size %d: expected 0..%d", n, TOK_MAX_VOCAB);
        return NULL;
    }
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->kind = kind;
    t->n = n;
    size_t m = n ? (size_t)n : 1;
    t->off = calloc(m, sizeof *t->off);
    t->len = calloc(m, sizeof *t->len);
    t->score = calloc(m, sizeof *t->score);
    t->type = calloc(m, 1);
    t->canon = calloc(m, sizeof *t->canon);
    t->disp_off = calloc(m, sizeof *t->disp_off);
    t->disp_len = calloc(m, sizeof *t->disp_len);
    if (!t->off || !t->len || !t->score || !t->type || !t->canon || !t->disp_off || !t->disp_len)
        goto oom;
    t->bos = t->eos = t->unk = t->pad = -1;
    t->hf_unk = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    t->add_dummy_prefix = 1;
    t->escape_ws = 1;
    return t;
oom:
    tok_free(t);
    err_set("out of memory for a vocabulary of %d pieces", n);
    return NULL;
}

int tok_build_set(Tokenizer *t, int id, const char *piece, size_t len, float score, int type) {
    if (id < 0 || id >= t->n) return err_set("token id %d out of range [0, %d)", id, t->n);
    if (len > UINT32_MAX / 2 || t->build.n > UINT32_MAX / 2)
        return err_set("token %d: piece of %zu bytes is too long", id, len);
    t->off[id] = (uint32_t)t->build.n;
    t->len[id] = (uint32_t)len;
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
    if (tok_buf_put(&t->build, piece, len) < 0 || tok_buf_put(&t->build, "", 1) < 0)
        return err_set("out of memory reading token %d", id);
    return 0;
}

/* A piece shown in an error message: at most 40 bytes, non-printables escaped. */
static const char *show_piece(const char *p, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap && i < 40; i++) {
        uint8_t c = (uint8_t)p[i];
        if (c >= 0x20 && c != 0x7f && c != '\'' && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

int tok_build_finish(Tokenizer *t, const char *name, int strict) {
    char sb[200];
    /* take over the blob */
    free(t->blob);
    t->blob = t->build.oom ? NULL : t->build.p ? t->build.p : calloc(1, 1);
    if (t->build.oom) free(t->build.p);
    t->build = (TokBuf){0};
    if (!t->blob) return err_set("%s: out of memory", name);

    if (idmap_init(&t->pieces, t->n) < 0 || idmap_init(&t->reserved, t->n < 1024 ? t->n : 1024) < 0)
        return err_set("%s: out of memory", name);
    int n_unknown = 0, first_unknown = -1, n_bytes = 0;
    for (int i = 0; i < t->n; i++) {
        const char *p = piece_ptr(t, i);
        size_t len = t->len[i];
        int type = t->type[i];
        if (type < TOK_NORMAL || type > TOK_BYTE)
            return err_set("%s: token %d: field 'type': expected 1..6 (NORMAL..BYTE), got %d", name, i,
                           type);
        if (isnan(t->score[i]))
            return err_set("%s: token %d: field 'score': expected a number, got NaN", name, i);
        if (len == 0) {
            if (strict) return err_set("%s: token %d: field 'piece': expected a non-empty piece", name, i);
            continue;
        }
        if (strict && len >= TOK_MAX_PIECE)
            return err_set("%s: token %d: piece of %zu bytes, expected fewer than %d", name, i, len,
                           TOK_MAX_PIECE);
        if (strict && memchr(p, 0, len))
            return err_set("%s: token %d: piece must not contain a NUL byte", name, i);
        int normal = type == TOK_NORMAL || type == TOK_USER_DEFINED || type == TOK_UNUSED;
        TokIdMap *m = normal ? &t->pieces : &t->reserved;
        if (!normal && (uint32_t)m->count * 2 + 2 > m->mask) {
            /* grow the reserved map (rarely large) */
            TokIdMap big;
            if (idmap_init(&big, m->count * 2 + 16) < 0) return err_set("%s: out of memory", name);
            for (uint32_t k = 0; k <= m->mask; k++)
                if (m->slot[k] >= 0) idmap_insert(t, &big, m->slot[k]);
            free(m->slot);
            *m = big;
        }
        int dup = idmap_insert(t, m, i);
        if (dup >= 0 && strict)
            return err_set("%s: token %d: piece '%s' is already defined (token %d)", name, i,
                           show_piece(p, len, sb, sizeof sb), dup);
        if (type == TOK_USER_DEFINED && t->kind != TOK_KIND_JSON && tok_trie_add(&t->user, p, len, i) < 0)
            return err_set("%s: out of memory", name);
        if (type == TOK_UNUSED) t->has_unused = 1;
        if (type == TOK_UNKNOWN) {
            n_unknown++;
            if (first_unknown < 0) first_unknown = i;
        }
        if (type == TOK_BYTE) {
            int b = tok_byte_of_piece(p, len);
            if (b < 0) {
                if (strict)
                    return err_set("%s: token %d: BYTE piece '%s': expected <0xXX>", name, i,
                                   show_piece(p, len, sb, sizeof sb));
                continue;
            }
            if (strict && !t->byte_fallback)
                return err_set("%s: token %d: byte piece '%s' is found although byte_fallback is false",
                               name, i, show_piece(p, len, sb, sizeof sb));
            if (t->byte_id[b] < 0) {
                t->byte_id[b] = i;
                n_bytes++;
            }
        }
    }
    if (strict) {
        if (n_unknown == 0) return err_set("%s: no piece of type UNKNOWN: unk is not defined", name);
        if (n_unknown > 1) return err_set("%s: more than one piece of type UNKNOWN", name);
        t->unk = first_unknown;
        if (t->byte_fallback && n_bytes != 256)
            return err_set("%s: byte_fallback is true but only %d of the 256 byte pieces <0x00>..<0xFF> exist",
                           name, n_bytes);
    } else {
        if (t->unk < 0 || t->unk >= t->n) t->unk = first_unknown;
        if (t->unk < 0 && t->kind != TOK_KIND_JSON) {
            if (t->n == 0) return err_set("%s: empty vocabulary", name);
            t->unk = 0;
        }
        t->byte_fallback = n_bytes == 256;
    }
    if (t->bos >= t->n) t->bos = -1;
    if (t->eos >= t->n) t->eos = -1;

    /* ASCII characters that no multi-byte piece contains can never be merged: BPE may treat
     * them as barriers and work segment by segment (see spm_bpe) */
    memset(t->isolated, 1, sizeof t->isolated);
    for (int i = 0; i < t->n; i++) {
        int ty = t->type[i];
        if (t->len[i] < 2 || !(ty == TOK_NORMAL || ty == TOK_USER_DEFINED || ty == TOK_UNUSED)) continue;
        const uint8_t *p = (const uint8_t *)piece_ptr(t, i);
        for (uint32_t k = 0; k < t->len[i]; k++)
            if (p[k] < 0x80) t->isolated[p[k]] = 0;
    }

    /* canonical ids (sentencepiece PieceToId(IdToPiece(id)): the reserved map first) */
    for (int i = 0; i < t->n; i++) {
        int c = tok_idmap_find(t, &t->reserved, piece_ptr(t, i), t->len[i]);
        if (c < 0) c = tok_idmap_find(t, &t->pieces, piece_ptr(t, i), t->len[i]);
        t->canon[i] = c >= 0 ? c : i;
    }

    /* display strings for tok_decode_piece */
    TokBuf d = {0};
    for (int i = 0; i < t->n; i++) {
        const char *p = piece_ptr(t, i);
        size_t len = t->len[i];
        if (d.n > UINT32_MAX / 2) return err_set("%s: vocabulary too large", name);
        t->disp_off[i] = (uint32_t)d.n;
        if (t->type[i] != TOK_CONTROL) {
            size_t k = 0;
            while (k < len) {
                if (len - k >= TOK_WS_LEN && memcmp(p + k, TOK_WS, TOK_WS_LEN) == 0) {
                    tok_buf_put(&d, " ", 1);
                    k += TOK_WS_LEN;
                } else {
                    tok_buf_put(&d, p + k, 1);
                    k++;
                }
            }
        }
        t->disp_len[i] = (uint32_t)(d.n - t->disp_off[i]);
        tok_buf_put(&d, "", 1);
    }
    if (tok_buf_put(&d, "", 0) < 0) {
        free(d.p);
        return err_set("%s: out of memory", name);
    }
    t->disp = d.p;
    if (!t->unk_surface) {
        t->unk_surface = strdup(" " "\xe2\x81\x87" " ");
        if (!t->unk_surface) return err_set("%s: out of memory", name);
        t->unk_surface_len = strlen(t->unk_surface);
    }
    return 0;
}

void tok_free(Tokenizer *t) {
    if (!t) return;
    free(t->build.p);
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->disp);
    free(t->disp_off);
    free(t->disp_len);
    free(t->score);
    free(t->type);
    free(t->canon);
    free(t->unk_surface);
    free(t->pieces.slot);
    free(t->reserved.slot);
    free(t->user.node);
    free(t->merges.slot);
    tok_charsmap_free(&t->cmap);
    tok_json_free(t);
    free(t);
}

/* ============================================================================================
 * Loading: detection from content
 * ========================================================================================== */

static Tokenizer *load_mem(const uint8_t *d, size_t size, const char *name, const char *path) {
    if (size == 0 || !d) {
        err_set("%s: empty file: expected a tokenizer (llama2.c tokenizer.bin, SentencePiece .model or tokenizer.json)",
                name);
        return NULL;
    }
    /* llama2.c: a little-endian int32 max_token_length, small and positive. A protobuf starts
     * with a tag byte then a non-zero length varint, which reads as a huge int32. */
    if (size >= 4) {
        uint32_t mx = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
        if (mx >= 1 && mx <= 65536) return tok_load_bin_mem(d, size, name, 0);
    }
    size_t i = 0;
    while (i < size && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
    if (i < size && d[i] == '{') return tok_load_json_mem(d, size, name, path);
    return tok_load_spm_mem(d, size, name);
}

Tokenizer *tok_load_mem(const void *data, size_t size, const char *name) {
    return load_mem(data, size, name ? name : "<memory>", NULL);
}

static Tokenizer *load_path(const char *path, int bin_vocab) {
    MappedFile f;
    if (file_map(&f, path) < 0) return NULL;
    Tokenizer *t;
    if (bin_vocab >= 0 && f.size == 0) {
        err_set("%s: empty file: expected a llama2.c tokenizer.bin", path);
        t = NULL;
    } else if (bin_vocab >= 0) {
        t = tok_load_bin_mem(f.data, f.size, path, bin_vocab);
    } else {
        t = load_mem(f.data, f.size, path, path);
    }
    file_unmap(&f);
    return t;
}

Tokenizer *tok_load(const char *path) { return load_path(path, -1); }

Tokenizer *tok_load_llama2c(const char *path, int vocab_size) {
    if (vocab_size < 0) {
        err_set("%s: vocab_size %d: expected >= 0", path, vocab_size);
        return NULL;
    }
    return load_path(path, vocab_size);
}

Tokenizer *tok_init_from_vocab(int n, const char *const *pieces, const uint32_t *piece_lens,
                               const float *scores, const int32_t *types, int bos_id, int eos_id,
                               int unk_id) {
    const char *name = "gguf vocabulary";
    if (n <= 0 || n > TOK_MAX_VOCAB || !pieces) {
        err_set("%s: %d tokens: expected 1..%d and a piece array", name, n, TOK_MAX_VOCAB);
        return NULL;
    }
    if (bos_id >= n || eos_id >= n || unk_id >= n || bos_id < -1 || eos_id < -1 || unk_id < -1) {
        err_set("%s: special ids bos %d, eos %d, unk %d: expected -1 or 0..%d", name, bos_id, eos_id,
                unk_id, n - 1);
        return NULL;
    }
    Tokenizer *t = tok_build_new(TOK_KIND_GGUF, n);
    if (!t) return NULL;
    for (int i = 0; i < n; i++) {
        const char *p = pieces[i] ? pieces[i] : "";
        size_t len = piece_lens ? piece_lens[i] : strlen(p);
        int type;
        if (types) {
            type = types[i];
            if (type < TOK_NORMAL || type > TOK_BYTE) {
                err_set("%s: token %d: field 'token_type': expected 1..6, got %d", name, i, (int)types[i]);
                tok_free(t);
                return NULL;
            }
        } else if (i == (unk_id >= 0 ? unk_id : 0)) {
            type = TOK_UNKNOWN;
        } else if (i == bos_id || i == eos_id) {
            type = TOK_CONTROL;
        } else if (tok_byte_of_piece(p, len) >= 0) {
            type = TOK_BYTE;
        } else {
            type = TOK_NORMAL;
        }
        if (tok_build_set(t, i, p, len, scores ? scores[i] : 0.0f, type) < 0) {
            err_prefix("%s", name);
            tok_free(t);
            return NULL;
        }
    }
    t->bos = bos_id;
    t->eos = eos_id;
    t->unk = unk_id;
    if (tok_build_finish(t, name, 0) < 0) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_set_whitespace(Tokenizer *t, int add_dummy_prefix, int remove_extra_whitespaces) {
    if (!t) return;
    t->add_dummy_prefix = add_dummy_prefix != 0;
    t->remove_extra_ws = remove_extra_whitespaces != 0;
}

/* ============================================================================================
 * Queries
 * ========================================================================================== */

int tok_vocab_size(const Tokenizer *t) { return t ? t->n : 0; }
int tok_bos_id(const Tokenizer *t) { return t ? t->bos : -1; }
int tok_eos_id(const Tokenizer *t) { return t ? t->eos : -1; }
int tok_unk_id(const Tokenizer *t) { return t ? t->unk : -1; }
int tok_pad_id(const Tokenizer *t) { return t ? t->pad : -1; }

int tok_is_byte_level(const Tokenizer *t) { return t && t->bpe; }

const char *tok_kind(const Tokenizer *t) {
    if (!t) return "";
    switch (t->kind) {
    case TOK_KIND_LLAMA2C: return "llama2.c";
    case TOK_KIND_SPM: return "sentencepiece";
    case TOK_KIND_JSON: return "tokenizer.json";
    case TOK_KIND_GGUF: return "gguf";
    }
    return "";
}

const char *tok_piece(const Tokenizer *t, int id, size_t *len) {
    if (!t || id < 0 || id >= t->n) {
        err_set("token id %d is out of range [0, %d)", id, t ? t->n : 0);
        return NULL;
    }
    if (len) *len = t->len[id];
    return piece_ptr(t, id);
}

float tok_score(const Tokenizer *t, int id) { return t && id >= 0 && id < t->n ? t->score[id] : 0.0f; }
int tok_type(const Tokenizer *t, int id) { return t && id >= 0 && id < t->n ? t->type[id] : 0; }

int tok_find(const Tokenizer *t, const char *piece, size_t len) {
    if (!t || (!piece && len)) return -1;
    return tok_piece_to_id(t, piece ? piece : "", len);
}

/* ============================================================================================
 * Public encode / decode
 * ========================================================================================== */

int tok_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int add_eos, int **ids,
               int *n_ids) {
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (!t || !ids || !n_ids || (!text && len)) return err_set("tok_encode: bad arguments");
    if (len > TOK_MAX_TEXT)
        return err_set("tok_encode: text of %zu bytes, expected at most %zu", len, TOK_MAX_TEXT);
    if (add_bos && t->bos < 0) return err_set("tok_encode: add_bos: the tokenizer has no BOS token");
    if (add_eos && t->eos < 0) return err_set("tok_encode: add_eos: the tokenizer has no EOS token");
    TokBuf out = {0};
    if (add_bos) tok_buf_put(&out, &t->bos, sizeof t->bos);
    int rc;
    if (t->bpe)
        rc = tok_bpe_encode(t, text ? text : "", len, &out);
    else if (t->kind == TOK_KIND_JSON)
        rc = tok_json_encode(t, text ? text : "", len, &out);
    else
        rc = tok_spm_encode(t, text ? text : "", len, &out);
    if (add_eos) tok_buf_put(&out, &t->eos, sizeof t->eos);
    if (rc == 0 && out.oom) rc = err_set("tok_encode: out of memory");
    if (rc < 0) {
        free(out.p);
        return -1;
    }
    *n_ids = (int)(out.n / sizeof(int));
    if (!out.p) out.p = malloc(sizeof(int));
    if (!out.p) return err_set("tok_encode: out of memory");
    *ids = (int *)(void *)out.p;
    return 0;
}

/* ProcessBytePieces of sentencepiece's Decode: valid UTF-8 characters as they are, every
 * malformed byte as U+FFFD. */
static void flush_bytes(TokBuf *o, const char *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t v = tok_utf8_valid_len(b + i, n - i);
        if (v == 0) {
            tok_buf_put(o, TOK_REPLACEMENT_CHAR, 3);
            i++;
        } else {
            tok_buf_put(o, b + i, v);
            i += v;
        }
    }
}

char *tok_decode(const Tokenizer *t, const int *ids, int n, size_t *len) {
    if (len) *len = 0;
    if (!t || n < 0 || (!ids && n)) {
        err_set("tok_decode: bad arguments");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n) {
            err_set("tok_decode: token %d (position %d) is out of range [0, %d)", ids[i], i, t->n);
            return NULL;
        }
    if (t->bpe) return tok_bpe_decode(t, ids, n, len);
    TokBuf o = {0};
    tok_buf_put(&o, "", 0);
    TokBuf bytes = {0};
    int is_bos_ws = 1, bos_ws_seen = 0;
    int strip_ok = t->add_dummy_prefix || t->remove_extra_ws;
    for (int i = 0; i < n; i++) {
        int id = t->canon[ids[i]];
        if (t->type[id] == TOK_BYTE) {
            int b = tok_byte_of_piece(piece_ptr(t, id), t->len[id]);
            if (b < 0) b = 0;
            char c = (char)b;
            tok_buf_put(&bytes, &c, 1);
            continue;
        }
        flush_bytes(&o, bytes.p, bytes.n);
        bytes.n = 0;
        if (bos_ws_seen || o.n) is_bos_ws = 0;
        if (t->type[id] == TOK_CONTROL) {
            bos_ws_seen = 0;
            continue;
        }
        if (id == t->unk) {
            tok_buf_put(&o, t->unk_surface, t->unk_surface_len);
            bos_ws_seen = 0;
            continue;
        }
        const char *p = piece_ptr(t, id);
        size_t pl = t->len[id];
        int has = 0;
        if (is_bos_ws && strip_ok) {
            if (pl >= TOK_WS_LEN && memcmp(p, TOK_WS, TOK_WS_LEN) == 0) {
                p += TOK_WS_LEN;
                pl -= TOK_WS_LEN;
                has = 1;
            }
            if (t->remove_extra_ws) has = 0;
        }
        bos_ws_seen = has;
        size_t k = 0;
        while (k < pl) {
            const char *w = pl - k >= TOK_WS_LEN ? memmem(p + k, pl - k, TOK_WS, TOK_WS_LEN) : NULL;
            size_t j = w ? (size_t)(w - p) : pl;
            tok_buf_put(&o, p + k, j - k);
            if (w) {
                tok_buf_put(&o, " ", 1);
                j += TOK_WS_LEN;
            }
            k = j;
        }
    }
    flush_bytes(&o, bytes.p, bytes.n);
    free(bytes.p);
    if (o.oom || bytes.oom) {
        free(o.p);
        err_set("tok_decode: out of memory");
        return NULL;
    }
    if (len) *len = o.n;
    return o.p;
}

const char *tok_decode_piece(const Tokenizer *t, int prev_id, int id, char buf[8], size_t *len) {
    if (len) *len = 0;
    if (!t || id < 0 || id >= t->n) {
        err_set("tok_decode_piece: token %d is out of range [0, %d)", id, t ? t->n : 0);
        return NULL;
    }
    if (t->type[id] == TOK_BYTE && !t->bpe) {
        int b = tok_byte_of_piece(piece_ptr(t, id), t->len[id]);
        if (b >= 0) {
            buf[0] = (char)b;
            buf[1] = 0;
            if (len) *len = 1;
            return buf;
        }
    }
    const char *p = t->disp + t->disp_off[id];
    size_t n = t->disp_len[id];
    if (prev_id >= 0 && prev_id == t->bos && n && p[0] == ' ' && !t->bpe) {
        p++;
        n--;
    }
    if (len) *len = n;
    return p;
}
