/* tokenizer/tok_spm.c - SentencePiece .model (ModelProto protobuf) loader and the
 * precompiled normalization charsmap.
 *
 * Why a hand-written protobuf reader: Debian ships no C library that can read this schema
 * without generated code (protobuf-c needs protoc-c output and a build step for
 * sentencepiece_model.proto; libprotobuf is C++). We need five fields of three messages, so
 * ~80 lines of bounds-checked wire-format reading (varint, 64-bit, length-delimited, 32-bit;
 * unknown fields skipped) are simpler and easier to audit. Every length is checked against
 * the bytes actually left before it is used.
 *
 * Fields read (sentencepiece_model.proto):
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece, 2 score (float), 3 type (NORMAL=1 .. BYTE=6)
 *   TrainerSpec     3 model_type (UNIGRAM=1, BPE=2, WORD=3, CHAR=4), 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 40-43 unk/bos/eos/pad id, 44 unk_surface,
 *                   45-47 unk/bos/eos piece
 *   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix,
 *                   4 remove_extra_whitespaces, 5 escape_whitespaces
 */
#include "tokenizer/tok_internal.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

/* ============================================================================================
 * Protobuf wire format
 * ========================================================================================== */

typedef struct {
    const uint8_t *p; /* message bytes */
    size_t n, pos;
    size_t base;      /* offset of p in the file, for messages */
    const char *name; /* file name */
    const char *msg;  /* message name, for messages */
} Pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int pb_varint(Pb *b, uint64_t *v) {
    uint64_t r = 0;
    for (int s = 0; s < 70; s += 7) {
        if (b->pos >= b->n)
            return err_set("%s: %s: truncated varint at offset %zu", b->name, b->msg, b->base + b->pos);
        uint8_t c = b->p[b->pos++];
        if (s == 63 && c > 1)
            return err_set("%s: %s: varint at offset %zu overflows 64 bits", b->name, b->msg,
                           b->base + b->pos - 1);
        r |= (uint64_t)(c & 0x7f) << s;
        if (c < 0x80) {
            *v = r;
            return 0;
        }
    }
    return err_set("%s: %s: varint at offset %zu is longer than 10 bytes", b->name, b->msg, b->base + b->pos);
}

typedef struct {
    uint32_t field;
    int wt;
    uint64_t v;          /* varint, I32, I64 value */
    const uint8_t *data; /* WT_LEN */
    size_t len;
    size_t at;           /* file offset of the field's tag */
} PbField;

/* Next field; 1 = got one, 0 = end of message, -1 = error. */
static int pb_next(Pb *b, PbField *f) {
    if (b->pos >= b->n) return 0;
    f->at = b->base + b->pos;
    uint64_t tag;
    if (pb_varint(b, &tag) < 0) return -1;
    f->field = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if (f->field == 0 || tag >> 3 > 536870911u)
        return err_set("%s: %s: invalid field number %llu at offset %zu", b->name, b->msg,
                       (unsigned long long)(tag >> 3), f->at);
    switch (f->wt) {
    case WT_VARINT: return pb_varint(b, &f->v) < 0 ? -1 : 1;
    case WT_I64:
    case WT_I32: {
        size_t w = f->wt == WT_I64 ? 8 : 4;
        if (b->n - b->pos < w)
            return err_set("%s: %s: field %u at offset %zu: %zu-byte value runs past the end (%zu bytes left)",
                           b->name, b->msg, f->field, f->at, w, b->n - b->pos);
        f->v = 0;
        for (size_t i = 0; i < w; i++) f->v |= (uint64_t)b->p[b->pos + i] << (8 * i);
        b->pos += w;
        return 1;
    }
    case WT_LEN: {
        uint64_t len;
        if (pb_varint(b, &len) < 0) return -1;
        if (len > b->n - b->pos)
            return err_set("%s: %s: field %u at offset %zu: length %llu runs past the end (%zu bytes left)",
                           b->name, b->msg, f->field, f->at, (unsigned long long)len, b->n - b->pos);
        f->data = b->p + b->pos;
        f->len = (size_t)len;
        b->pos += (size_t)len;
        return 1;
    }
    default:
        return err_set("%s: %s: field %u at offset %zu: unsupported wire type %d (expected 0, 1, 2 or 5)",
                       b->name, b->msg, f->field, f->at, f->wt);
    }
}

static int pb_expect(const Pb *b, const PbField *f, int wt, const char *field_name) {
    if (f->wt == wt) return 0;
    return err_set("%s: %s: field '%s' (%u) at offset %zu: expected wire type %d, got %d", b->name, b->msg,
                   field_name, f->field, f->at, wt, f->wt);
}

static Pb pb_sub(const Pb *parent, const PbField *f, const char *msg) {
    Pb s = {f->data, f->len, 0, (size_t)(f->data - parent->p) + parent->base, parent->name, msg};
    return s;
}

/* ============================================================================================
 * Precompiled charsmap: <uint32 trie size><darts-clone double array><NUL-separated strings>
 * ========================================================================================== */

int tok_charsmap_init(TokCharsMap *cm, const uint8_t *blob, size_t size, const char *name) {
    memset(cm, 0, sizeof *cm);
    if (size <= 4)
        return err_set("%s: normalizer_spec.precompiled_charsmap: %zu bytes, expected more than 4", name, size);
    uint32_t trie = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                    (uint32_t)blob[3] << 24;
    if (trie > size - 4 || trie % 4 != 0 || trie < 4)
        return err_set("%s: normalizer_spec.precompiled_charsmap: trie size %u, expected a multiple of 4 in 4..%zu",
                       name, trie, size - 4);
    uint32_t *u = malloc(trie);
    if (!u) return err_set("%s: out of memory", name);
    for (uint32_t i = 0; i < trie / 4; i++) {
        const uint8_t *q = blob + 4 + 4 * (size_t)i;
        u[i] = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    }
    cm->buf = (uint8_t *)u;
    cm->unit = u;
    cm->n_units = trie / 4;
    size_t ns = size - 4 - trie;
    char *norm = malloc(ns + 1);
    if (!norm) {
        tok_charsmap_free(cm);
        return err_set("%s: out of memory", name);
    }
    memcpy(norm, blob + 4 + trie, ns);
    norm[ns] = 0;
    cm->norm = norm;
    cm->norm_size = ns;
    return 0;
}

void tok_charsmap_free(TokCharsMap *cm) {
    free(cm->buf);
    free((void *)cm->norm);
    memset(cm, 0, sizeof *cm);
}

/* darts-clone DoubleArray unit accessors */
static inline uint32_t da_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t da_value(uint32_t u) { return u & ((1u << 31) - 1); }
static inline uint32_t da_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline uint32_t da_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

size_t tok_charsmap_match(const TokCharsMap *cm, const char *s, size_t n, const char **out,
                          size_t *out_len) {
    if (!cm->n_units) return 0;
    size_t best = 0;
    uint32_t best_val = 0;
    uint32_t id = da_offset(cm->unit[0]);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        id ^= c;
        if (id >= cm->n_units) break;
        uint32_t u = cm->unit[id];
        if (da_label(u) != c) break;
        id ^= da_offset(u);
        if (da_has_leaf(u)) {
            if (id >= cm->n_units) break;
            best = i + 1;
            best_val = da_value(cm->unit[id]);
        }
    }
    if (!best || best_val >= cm->norm_size + 1) return 0;
    *out = cm->norm + best_val;
    *out_len = strlen(*out); /* norm has a terminating NUL of our own */
    return best;
}

/* ============================================================================================
 * ModelProto
 * ========================================================================================== */

typedef struct {
    const uint8_t *piece;
    size_t len;
    float score;
    int type;
} RawPiece;

static int is_nfkc_name(const uint8_t *s, size_t n) {
    static const char *names[] = {"nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) return 1;
    return 0;
}

Tokenizer *tok_load_spm_mem(const uint8_t *d, size_t size, const char *name) {
    Pb top = {d, size, 0, 0, name, "ModelProto"};
    PbField f;
    RawPiece *pc = NULL;
    size_t npc = 0, cap = 0;
    int model_type = 1, byte_fallback = 0, ws_suffix = 0;
    int add_dummy_prefix = 1, remove_extra_ws = 1, escape_ws = 1;
    const uint8_t *norm_name = NULL, *charsmap = NULL, *unk_surface = NULL;
    size_t norm_name_len = 0, charsmap_len = 0, unk_surface_len = 0;
    const uint8_t *bos_piece = (const uint8_t *)"<s>", *eos_piece = (const uint8_t *)"</s>";
    size_t bos_piece_len = 3, eos_piece_len = 4;
    int has_trainer = 0, r;
    Tokenizer *t = NULL;

    while ((r = pb_next(&top, &f)) == 1) {
        if (f.field == 1) {
            if (pb_expect(&top, &f, WT_LEN, "pieces") < 0) goto fail;
            Pb m = pb_sub(&top, &f, "SentencePiece");
            RawPiece p = {(const uint8_t *)"", 0, 0.0f, TOK_NORMAL};
            PbField g;
            while ((r = pb_next(&m, &g)) == 1) {
                if (g.field == 1) {
                    if (pb_expect(&m, &g, WT_LEN, "piece") < 0) goto fail;
                    p.piece = g.data;
                    p.len = g.len;
                } else if (g.field == 2) {
                    if (pb_expect(&m, &g, WT_I32, "score") < 0) goto fail;
                    uint32_t u = (uint32_t)g.v;
                    memcpy(&p.score, &u, 4);
                } else if (g.field == 3) {
                    if (pb_expect(&m, &g, WT_VARINT, "type") < 0) goto fail;
                    if (g.v < TOK_NORMAL || g.v > TOK_BYTE) {
                        err_set("%s: piece %zu: field 'type': expected 1..6 (NORMAL..BYTE), got %llu", name, npc,
                                (unsigned long long)g.v);
                        goto fail;
                    }
                    p.type = (int)g.v;
                }
            }
            if (r < 0) goto fail;
            if (npc == cap) {
                if (npc >= TOK_MAX_VOCAB) {
                    err_set("%s: more than %d pieces", name, TOK_MAX_VOCAB);
                    goto fail;
                }
                cap = cap ? cap * 2 : 1024;
                RawPiece *q = realloc(pc, sizeof *q * cap);
                if (!q) {
                    err_set("%s: out of memory", name);
                    goto fail;
                }
                pc = q;
            }
            pc[npc++] = p;
        } else if (f.field == 2) {
            if (pb_expect(&top, &f, WT_LEN, "trainer_spec") < 0) goto fail;
            has_trainer = 1;
            Pb m = pb_sub(&top, &f, "TrainerSpec");
            PbField g;
            while ((r = pb_next(&m, &g)) == 1) {
                switch (g.field) {
                case 3:
                    if (pb_expect(&m, &g, WT_VARINT, "model_type") < 0) goto fail;
                    model_type = g.v > 100 ? 100 : (int)g.v;
                    break;
                case 24:
                    if (pb_expect(&m, &g, WT_VARINT, "treat_whitespace_as_suffix") < 0) goto fail;
                    ws_suffix = g.v != 0;
                    break;
                case 35:
                    if (pb_expect(&m, &g, WT_VARINT, "byte_fallback") < 0) goto fail;
                    byte_fallback = g.v != 0;
                    break;
                case 44:
                    if (pb_expect(&m, &g, WT_LEN, "unk_surface") < 0) goto fail;
                    unk_surface = g.data;
                    unk_surface_len = g.len;
                    break;
                case 46:
                    if (pb_expect(&m, &g, WT_LEN, "bos_piece") < 0) goto fail;
                    bos_piece = g.data;
                    bos_piece_len = g.len;
                    break;
                case 47:
                    if (pb_expect(&m, &g, WT_LEN, "eos_piece") < 0) goto fail;
                    eos_piece = g.data;
                    eos_piece_len = g.len;
                    break;
                default: break;
                }
            }
            if (r < 0) goto fail;
        } else if (f.field == 3) {
            if (pb_expect(&top, &f, WT_LEN, "normalizer_spec") < 0) goto fail;
            Pb m = pb_sub(&top, &f, "NormalizerSpec");
            PbField g;
            while ((r = pb_next(&m, &g)) == 1) {
                switch (g.field) {
                case 1:
                    if (pb_expect(&m, &g, WT_LEN, "name") < 0) goto fail;
                    norm_name = g.data;
                    norm_name_len = g.len;
                    break;
                case 2:
                    if (pb_expect(&m, &g, WT_LEN, "precompiled_charsmap") < 0) goto fail;
                    charsmap = g.data;
                    charsmap_len = g.len;
                    break;
                case 3:
                    if (pb_expect(&m, &g, WT_VARINT, "add_dummy_prefix") < 0) goto fail;
                    add_dummy_prefix = g.v != 0;
                    break;
                case 4:
                    if (pb_expect(&m, &g, WT_VARINT, "remove_extra_whitespaces") < 0) goto fail;
                    remove_extra_ws = g.v != 0;
                    break;
                case 5:
                    if (pb_expect(&m, &g, WT_VARINT, "escape_whitespaces") < 0) goto fail;
                    escape_ws = g.v != 0;
                    break;
                default: break;
                }
            }
            if (r < 0) goto fail;
        }
    }
    if (r < 0) goto fail;
    if (npc == 0) {
        err_set("%s: not a tokenizer: no SentencePiece pieces (ModelProto field 1) found; expected a llama2.c "
                "tokenizer.bin, a SentencePiece .model or a tokenizer.json",
                name);
        goto fail;
    }
    if (model_type != 2) {
        static const char *mt[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        err_set("%s: field 'trainer_spec.model_type': expected 2 (BPE), got %d (%s)%s", name, model_type,
                model_type >= 1 && model_type <= 4 ? mt[model_type] : "unknown",
                has_trainer ? ": only BPE models are supported" : " (no trainer_spec: the default is UNIGRAM)");
        goto fail;
    }

    t = tok_build_new(TOK_KIND_SPM, (int)npc);
    if (!t) goto fail;
    for (size_t i = 0; i < npc; i++)
        if (tok_build_set(t, (int)i, (const char *)pc[i].piece, pc[i].len, pc[i].score, pc[i].type) < 0) {
            err_prefix("%s", name);
            goto fail;
        }
    t->byte_fallback = byte_fallback;
    if (tok_build_finish(t, name, 1) < 0) goto fail;
    t->add_dummy_prefix = add_dummy_prefix;
    t->remove_extra_ws = remove_extra_ws;
    t->escape_ws = escape_ws;
    t->ws_suffix = ws_suffix;
    if (charsmap_len) {
        if (tok_charsmap_init(&t->cmap, charsmap, charsmap_len, name) < 0) goto fail;
    } else if (norm_name && is_nfkc_name(norm_name, norm_name_len)) {
        t->nfkc = 1;
    }
    if (unk_surface) {
        free(t->unk_surface);
        t->unk_surface = malloc(unk_surface_len + 1);
        if (!t->unk_surface) {
            err_set("%s: out of memory", name);
            goto fail;
        }
        memcpy(t->unk_surface, unk_surface, unk_surface_len);
        t->unk_surface[unk_surface_len] = 0;
        t->unk_surface_len = unk_surface_len;
    }
    /* sentencepiece's bos_id()/eos_id(): the id of bos_piece/eos_piece when it is a control piece */
    int b = tok_find(t, (const char *)bos_piece, bos_piece_len);
    int e = tok_find(t, (const char *)eos_piece, eos_piece_len);
    t->bos = b >= 0 && t->type[b] == TOK_CONTROL ? b : -1;
    t->eos = e >= 0 && t->type[e] == TOK_CONTROL ? e : -1;
    free(pc);
    return t;
fail:
    free(pc);
    tok_free(t);
    return NULL;
}
