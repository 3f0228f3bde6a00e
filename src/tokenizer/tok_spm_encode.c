/* tokenizer/tok_spm_encode.c - SentencePiece encoding: the normalizer (normalizer.cc: Normalize /
 * NormalizePrefix) and BPE with PopulateSentencePieceText's output stage (bpe_model.cc:
 * Model::Encode), step by step as sentencepiece 0.1.97 does them (tokenizer.c's header says
 * why). BPE is a linked list of symbols plus a priority queue of candidate pairs: O(n log n)
 * in the text length. Reads the Tokenizer only: concurrent encodes are safe. */
#include "tokenizer/tok_internal.h"

#include "core/error.h"
#include "core/heap.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* sentencepiece string_util::OneCharLen: from the lead byte only. */
static size_t one_char_len(uint8_t c) { return (size_t)"\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4]; }

/* ============================================================================================
 * SentencePiece normalizer (normalizer.cc: Normalize / NormalizePrefix)
 * ========================================================================================== */

/* One normalization step at s: the replacement text and how many input bytes it consumes. */
static size_t normalize_prefix(const Tokenizer *t, const char *s, size_t n, const char **out,
                               size_t *out_len) {
    if (t->user.n) {
        size_t m = tok_trie_match(&t->user, s, n, NULL);
        if (m) {
            *out = s;
            *out_len = m;
            return m;
        }
    }
    if (t->cmap.n_units) {
        size_t m = tok_charsmap_match(&t->cmap, s, n, out, out_len);
        if (m) return m;
    }
    size_t v = tok_utf8_valid_len(s, n);
    if (v == 0) {
        *out = TOK_REPLACEMENT_CHAR;
        *out_len = 3;
        return 1;
    }
    *out = s;
    *out_len = v;
    return v;
}

static void add_ws(const Tokenizer *t, TokBuf *o) {
    if (t->escape_ws) tok_buf_put(o, TOK_WS, TOK_WS_LEN);
    else tok_buf_put(o, " ", 1);
}

/* NFKC of the text (with malformed bytes replaced by U+FFFD first, as sentencepiece would):
 * used only for nmt_nfkc-like normalizers that come without a precompiled charsmap. */
static char *nfkc_text(const char *s, size_t n, size_t *out_n) {
    TokBuf b = {0};
    size_t i = 0;
    while (i < n) {
        size_t v = tok_utf8_valid_len(s + i, n - i);
        if (v == 0 || (v == 1 && s[i] == 0)) {
            if (v == 0) tok_buf_put(&b, TOK_REPLACEMENT_CHAR, 3);
            else tok_buf_put(&b, s + i, 1);
            i++;
        } else {
            tok_buf_put(&b, s + i, v);
            i += v;
        }
    }
    if (tok_buf_put(&b, "", 0) < 0) {
        free(b.p);
        return NULL;
    }
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)b.p, (utf8proc_ssize_t)b.n, &r,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (m < 0) { /* cannot happen on valid UTF-8; keep the text unnormalized */
        *out_n = b.n;
        return b.p;
    }
    free(b.p);
    *out_n = (size_t)m;
    return (char *)r;
}

static int spm_normalize(const Tokenizer *t, const char *in, size_t n, TokBuf *o) {
    char *tmp = NULL;
    if (t->nfkc && !t->cmap.n_units && n) {
        size_t m;
        tmp = nfkc_text(in, n, &m);
        if (!tmp) return err_set("out of memory normalizing %zu bytes", n);
        in = tmp;
        n = m;
    }
    const char *r;
    size_t rl;
    if (t->remove_extra_ws) { /* heading spaces */
        while (n) {
            size_t c = normalize_prefix(t, in, n, &r, &rl);
            if (!(rl == 1 && r[0] == ' ')) break;
            in += c;
            n -= c;
        }
    }
    if (n == 0) {
        free(tmp);
        return 0;
    }
    if (!t->ws_suffix && t->add_dummy_prefix) add_ws(t, o);
    int prev_space = t->remove_extra_ws;
    while (n) {
        size_t c = normalize_prefix(t, in, n, &r, &rl);
        while (prev_space && rl && r[0] == ' ') {
            r++;
            rl--;
        }
        if (rl) {
            size_t k = 0;
            while (k < rl) {
                size_t j = k;
                if (t->escape_ws)
                    while (j < rl && r[j] != ' ') j++;
                else
                    j = rl;
                tok_buf_put(o, r + k, j - k);
                if (j < rl) {
                    tok_buf_put(o, TOK_WS, TOK_WS_LEN);
                    j++;
                }
                k = j;
            }
            prev_space = r[rl - 1] == ' ';
        }
        in += c;
        n -= c;
        if (!t->remove_extra_ws) prev_space = 0;
    }
    if (t->remove_extra_ws) {
        const char *sp = t->escape_ws ? TOK_WS : " ";
        size_t sl = t->escape_ws ? TOK_WS_LEN : 1;
        while (o->n >= sl && memcmp(o->p + o->n - sl, sp, sl) == 0) o->n -= sl;
    }
    if (t->ws_suffix && t->add_dummy_prefix) add_ws(t, o);
    free(tmp);
    if (o->oom) return err_set("out of memory normalizing %zu bytes", n);
    return 0;
}

/* ============================================================================================
 * SentencePiece BPE (bpe_model.cc: Model::Encode) and PopulateSentencePieceText
 * ========================================================================================== */

typedef struct {
    int32_t prev, next;
    uint32_t start, len;
    int32_t id;     /* piece id when known (-1 = look it up at the end) */
    uint8_t freeze; /* USER_DEFINED: never merged */
} Sym;

typedef struct {
    float score;
    int32_t left;
    uint32_t size;
    int32_t id;
} Cand;

/* a before b: higher score, then leftmost (sentencepiece's SymbolPairComparator). */
static inline int cand_before(const Cand *a, const Cand *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

HEAP_DEFINE(Heap, heap, Cand, cand_before) /* core/heap.h */

/* rev_merge of bpe_model.cc: merged UNUSED piece (by content) -> length of its left part.
 * Keyed by content; later insertions overwrite earlier ones, as in the original. */
typedef struct {
    uint32_t start, len, left_len; /* len == 0: empty slot */
} RevSlot;
typedef struct {
    RevSlot *s;
    uint32_t mask, count;
} RevMap;

static const RevSlot *rev_find(const RevMap *m, const char *buf, const char *w, size_t len) {
    if (!m->s) return NULL;
    uint32_t i = tok_hash_bytes(w, len) & m->mask;
    while (m->s[i].len) {
        if (m->s[i].len == len && memcmp(buf + m->s[i].start, w, len) == 0) return &m->s[i];
        i = (i + 1) & m->mask;
    }
    return NULL;
}

static int rev_put(RevMap *m, const char *buf, uint32_t start, uint32_t len, uint32_t left_len) {
    if (!m->s || (m->count + 1) * 2 > m->mask) {
        uint32_t cap = m->s ? (m->mask + 1) * 2 : 64;
        RevSlot *s = calloc(cap, sizeof *s);
        if (!s) return -1;
        if (m->s) {
            for (uint32_t i = 0; i <= m->mask; i++) {
                if (!m->s[i].len) continue;
                uint32_t j = tok_hash_bytes(buf + m->s[i].start, m->s[i].len) & (cap - 1);
                while (s[j].len) j = (j + 1) & (cap - 1);
                s[j] = m->s[i];
            }
            free(m->s);
        }
        m->s = s;
        m->mask = cap - 1;
    }
    uint32_t i = tok_hash_bytes(buf + start, len) & m->mask;
    while (m->s[i].len) {
        if (m->s[i].len == len && memcmp(buf + m->s[i].start, buf + start, len) == 0) {
            m->s[i].start = start;
            m->s[i].left_len = left_len;
            return 0;
        }
        i = (i + 1) & m->mask;
    }
    m->s[i] = (RevSlot){start, len, left_len};
    m->count++;
    return 0;
}

/* Output stage: PopulateSentencePieceText's handling of control, unknown and byte pieces. */
typedef struct {
    TokBuf ids; /* int array */
    int prev_unk;
} Emit;

static void emit_id(Emit *e, int id) { tok_buf_put(&e->ids, &id, sizeof id); }

static void emit_piece(const Tokenizer *t, Emit *e, const char *w, size_t len, int id) {
    int is_unk = id == t->unk;
    if (t->type[id] == TOK_CONTROL) {
        emit_id(e, id);
    } else if (is_unk && t->byte_fallback) {
        for (size_t i = 0; i < len; i++) emit_id(e, t->byte_id[(uint8_t)w[i]]);
    } else if (!(is_unk && e->prev_unk)) {
        emit_id(e, id);
    }
    e->prev_unk = is_unk;
}

/* resegment of bpe_model.cc (iterative): UNUSED pieces are split back into their parts. */
static int resegment(const Tokenizer *t, Emit *e, const RevMap *rev, const char *buf, uint32_t start,
                     uint32_t len, int id) {
    if (id < 0) id = tok_piece_to_id(t, buf + start, len);
    if (id < 0) id = t->unk;
    if (t->type[id] != TOK_UNUSED || !rev->s) {
        emit_piece(t, e, buf + start, len, id);
        return 0;
    }
    /* explicit stack of (start, len) spans, processed left to right */
    size_t cap = 16, n = 0;
    uint32_t *st = malloc(sizeof *st * 2 * cap);
    if (!st) return -1;
    st[0] = start;
    st[1] = len;
    n = 1;
    while (n) {
        n--;
        uint32_t s = st[2 * n], l = st[2 * n + 1];
        int pid = tok_piece_to_id(t, buf + s, l);
        if (pid < 0) pid = t->unk;
        const RevSlot *r = t->type[pid] == TOK_UNUSED ? rev_find(rev, buf, buf + s, l) : NULL;
        if (!r || r->left_len == 0 || r->left_len >= l) {
            emit_piece(t, e, buf + s, l, pid);
            continue;
        }
        if (n + 2 > cap) {
            cap *= 2;
            uint32_t *p = realloc(st, sizeof *st * 2 * cap);
            if (!p) { free(st); return -1; }
            st = p;
        }
        /* push right then left so the left part is emitted first */
        st[2 * n] = s + r->left_len;
        st[2 * n + 1] = l - r->left_len;
        n++;
        st[2 * n] = s;
        st[2 * n + 1] = r->left_len;
        n++;
    }
    free(st);
    return 0;
}

static int spm_bpe(const Tokenizer *t, const char *buf, size_t n, Emit *e) {
    if (n == 0) return 0;
    Sym *sym = malloc(sizeof *sym * n);
    Heap h = {0};
    RevMap rev = {0};
    int rc = -1;
    if (!sym) goto done;
    int ns = 0;
    size_t pos = 0;
    while (pos < n) {
        Sym s;
        size_t m = t->user.n ? tok_trie_match(&t->user, buf + pos, n - pos, NULL) : 0;
        s.freeze = m > 0;
        if (!m) {
            m = one_char_len((uint8_t)buf[pos]);
            if (m > n - pos) m = n - pos;
        }
        s.start = (uint32_t)pos;
        s.len = (uint32_t)m;
        s.prev = ns - 1;
        pos += m;
        s.next = pos < n ? ns + 1 : -1;
        s.id = -1;
        sym[ns++] = s;
    }

#define MAYBE_ADD(L, R)                                                                           \
    do {                                                                                          \
        int l_ = (L), r_ = (R);                                                                   \
        if (l_ >= 0 && r_ >= 0 && !sym[l_].freeze && !sym[r_].freeze) {                           \
            uint32_t sz_ = sym[l_].len + sym[r_].len;                                             \
            int id_ = tok_idmap_find(t, &t->pieces, buf + sym[l_].start, sz_);                    \
            if (id_ >= 0) {                                                                       \
                Cand c_ = {t->score[id_], l_, sz_, id_};                                          \
                if (heap_push(&h, c_) < 0) goto done;                                             \
                if (t->type[id_] == TOK_UNUSED &&                                                 \
                    rev_put(&rev, buf, sym[l_].start, sz_, sym[l_].len) < 0)                      \
                    goto done;                                                                    \
            }                                                                                     \
        }                                                                                         \
    } while (0)

    /* Segments: a frozen symbol or an isolated ASCII character never merges, so no candidate
     * pair crosses it and the text splits there into independent BPE problems. Working one
     * segment at a time keeps the heap small (a long text is as fast as short lines) and gives
     * the same merges: the order only matters between candidates that interact. Not done with
     * UNUSED pieces: their rev_merge table depends on the global push order. */
    int segmented = !t->has_unused;
    for (int seg = 0; seg < ns;) {
        int end = ns - 1;
        if (segmented)
            for (end = seg; end < ns - 1; end++)
                if (sym[end].freeze ||
                    (sym[end].len == 1 && (uint8_t)buf[sym[end].start] < 0x80 && t->isolated[(uint8_t)buf[sym[end].start]]))
                    break;
        for (int i = seg + 1; i <= end; i++) MAYBE_ADD(i - 1, i);
        while (h.n) {
            Cand top = heap_pop(&h);
            Sym *l = &sym[top.left];
            if (l->len == 0 || l->next < 0) continue;
            Sym *r = &sym[l->next];
            if (r->len == 0 || l->len + r->len != top.size) continue;
            l->len += r->len;
            l->id = top.id;
            l->next = r->next;
            if (r->next >= 0) sym[r->next].prev = top.left;
            r->len = 0;
            MAYBE_ADD(l->prev, top.left);
            MAYBE_ADD(top.left, l->next);
        }
        seg = end + 1;
    }
#undef MAYBE_ADD

    for (int i = 0; i != -1; i = sym[i].next) {
        int id = sym[i].id >= 0 ? t->canon[sym[i].id] : -1;
        if (resegment(t, e, &rev, buf, sym[i].start, sym[i].len, id) < 0) goto done;
    }
    rc = 0;
done:
    if (rc < 0) err_set("out of memory encoding %zu bytes", n);
    free(sym);
    free(h.v);
    free(rev.s);
    return rc;
}

/* Note on the symbol/pair validity test: sentencepiece checks that both symbols are still
 * non-empty and that their sizes add up to the candidate's; since a symbol only grows by
 * absorbing its right neighbour, `r` must be `l`'s current next. Using l->next instead of a
 * stored right index is equivalent and needs no extra field. */

int tok_spm_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids) {
    TokBuf norm = {0};
    int rc = spm_normalize(t, text, len, &norm);
    if (rc == 0 && norm.n > INT32_MAX / 2) rc = err_set("tok_encode: normalized text too long");
    Emit e = {*ids, 0};
    if (rc == 0) rc = spm_bpe(t, norm.p ? norm.p : "", norm.n, &e);
    *ids = e.ids;
    free(norm.p);
    return rc;
}
