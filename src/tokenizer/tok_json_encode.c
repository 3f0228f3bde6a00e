/* tokenizer/tok_json_encode.c - encoding with a loaded tokenizer.json of the Llama kind
 * (tok_json.c): normalizer, added tokens, Metaspace pre-tokenizer, BPE merges by rank. */
#include "tokenizer/tok_internal.h"

#include "core/error.h"
#include "core/file.h"
#include "core/heap.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ============================================================================================
 * Encoding
 * ========================================================================================== */

typedef struct {
    int32_t id, prev, next;
    uint32_t len; /* bytes; 0 = merged away */
} HSym;

typedef struct {
    int32_t rank, pos, id;
} HMerge;

/* a before b: lower rank, then lower position (tokenizers' Merge ordering) */
static inline int hm_before(const HMerge *a, const HMerge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

HEAP_DEFINE(HHeap, hh, HMerge, hm_before) /* core/heap.h */

static int sym_add(HSym **s, int *n, int *cap, int id, uint32_t len) {
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 64;
        HSym *p = realloc(*s, sizeof *p * (size_t)c);
        if (!p) return -1;
        *s = p;
        *cap = c;
    }
    (*s)[*n] = (HSym){id, *n - 1, -1, len};
    if (*n > 0) (*s)[*n - 1].next = *n;
    (*n)++;
    return 0;
}

/* BPE::merge_word + Word::merge_all on one pre-token (valid UTF-8). */
int tok_json_bpe_word(const Tokenizer *t, const char *w, size_t n, TokBuf *ids) {
    if (!n) return 0;
    if (t->hf_ignore_merges) {
        int id = tok_find(t, w, n);
        if (id >= 0) return tok_buf_put(ids, &id, sizeof id);
    }
    HSym *s = NULL;
    int ns = 0, cap = 0, rc = -1;
    int unk_pending = 0;
    uint32_t unk_len = 0;
    HHeap h = {0};
    size_t i = 0;
    while (i < n) {
        size_t cl = tok_utf8_valid_len(w + i, n - i);
        if (!cl) cl = 1; /* cannot happen: the text was made valid first */
        int id = tok_find(t, w + i, cl);
        if (id >= 0) {
            if (unk_pending) {
                if (sym_add(&s, &ns, &cap, t->hf_unk, unk_len) < 0) goto oom;
                unk_pending = 0;
            }
            if (sym_add(&s, &ns, &cap, id, (uint32_t)cl) < 0) goto oom;
        } else {
            int ok = t->hf_byte_fallback;
            char code[7];
            int bid[4];
            for (size_t k = 0; ok && k < cl; k++) {
                snprintf(code, sizeof code, "<0x%02X>", (uint8_t)w[i + k]);
                bid[k] = tok_find(t, code, 6);
                if (bid[k] < 0) ok = 0;
            }
            if (ok) {
                for (size_t k = 0; k < cl; k++)
                    if (sym_add(&s, &ns, &cap, bid[k], 1) < 0) goto oom;
            } else if (t->hf_unk < 0) {
                err_set("tokenizer.json: character '%.*s' is not in the vocabulary and there is no unk_token",
                        (int)cl, w + i);
                goto done;
            } else if (unk_pending && t->hf_fuse_unk) {
                unk_len += (uint32_t)cl;
            } else {
                if (unk_pending && sym_add(&s, &ns, &cap, t->hf_unk, unk_len) < 0) goto oom;
                unk_pending = 1;
                unk_len = (uint32_t)cl;
            }
        }
        i += cl;
    }
    if (unk_pending && sym_add(&s, &ns, &cap, t->hf_unk, unk_len) < 0) goto oom;

    /* A symbol whose id is in no merge pair never merges: no candidate crosses it, so the
     * word splits there into independent problems (same result, small heaps on long texts). */
    for (int seg = 0; seg < ns;) {
        int end = seg;
        while (end < ns - 1 && t->hf_mergeable && t->hf_mergeable[s[end].id]) end++;
        if (!t->hf_mergeable) end = ns - 1;
        for (int k = seg; k < end; k++) {
            const TokPairSlot *m = tok_pairmap_get(&t->merges, s[k].id, s[k + 1].id);
            if (m && hh_push(&h, (HMerge){m->rank, k, m->id}) < 0) goto oom;
        }
        seg = end + 1;
    while (h.n) {
        HMerge top = hh_pop(&h);
        HSym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int nx = cur->next;
        const TokPairSlot *m = tok_pairmap_get(&t->merges, cur->id, s[nx].id);
        if (!m || m->id != top.id) continue;
        cur->id = top.id;
        cur->len += s[nx].len;
        cur->next = s[nx].next;
        s[nx].len = 0;
        if (cur->next >= 0) s[cur->next].prev = top.pos;
        if (cur->prev >= 0) {
            const TokPairSlot *p = tok_pairmap_get(&t->merges, s[cur->prev].id, cur->id);
            if (p && hh_push(&h, (HMerge){p->rank, cur->prev, p->id}) < 0) goto oom;
        }
        if (cur->next >= 0) {
            const TokPairSlot *p = tok_pairmap_get(&t->merges, cur->id, s[cur->next].id);
            if (p && hh_push(&h, (HMerge){p->rank, top.pos, p->id}) < 0) goto oom;
        }
    }
    }
    for (int k = 0; k >= 0 && k < ns; k = s[k].next)
        if (tok_buf_put(ids, &s[k].id, sizeof s[k].id) < 0) goto oom;
    rc = 0;
    goto done;
oom:
    err_set("tokenizer.json: out of memory encoding %zu bytes", n);
done:
    free(s);
    free(h.v);
    return rc;
}

static int replace_all(TokBuf *b, const char *pat, size_t pl, const char *rep, size_t rl) {
    if (!memmem(b->p, b->n, pat, pl)) return 0;
    TokBuf o = {0};
    size_t i = 0;
    while (i < b->n) {
        const char *f = memmem(b->p + i, b->n - i, pat, pl);
        size_t j = f ? (size_t)(f - b->p) : b->n;
        tok_buf_put(&o, b->p + i, j - i);
        if (!f) break;
        tok_buf_put(&o, rep, rl);
        i = j + pl;
    }
    tok_buf_put(&o, "", 0);
    if (o.oom) {
        free(o.p);
        return -1;
    }
    free(b->p);
    *b = o;
    return 0;
}

static int unicode_norm(TokBuf *b, int compat) {
    if (!b->n) return 0;
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)b->p, (utf8proc_ssize_t)b->n, &r,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | (compat ? UTF8PROC_COMPAT : 0));
    if (m < 0) return 0; /* invalid input cannot reach here; leave it as is */
    free(b->p);
    b->p = (char *)r;
    b->n = (size_t)m;
    b->cap = (size_t)m + 1;
    return 0;
}

int tok_json_normalize(const Tokenizer *t, TokBuf *b) {
    for (int i = 0; i < t->n_hf_norm; i++) {
        const HfNorm *h = &t->hf_norm[i];
        if (h->kind == HF_PREPEND && b->n) {
            TokBuf o = {0};
            tok_buf_put(&o, h->a, h->a_len);
            tok_buf_put(&o, b->p, b->n);
            if (o.oom) {
                free(o.p);
                return -1;
            }
            free(b->p);
            *b = o;
        } else if (h->kind == HF_REPLACE) {
            if (replace_all(b, h->a, h->a_len, h->b, h->b_len) < 0) return -1;
        } else if (h->kind == HF_NFKC || h->kind == HF_NFC) {
            unicode_norm(b, h->kind == HF_NFKC);
        }
    }
    return b->oom ? -1 : 0;
}

/* One stretch of text between added tokens: normalize, pre-tokenize, BPE each word. */
static int hf_segment(const Tokenizer *t, const char *s, size_t n, size_t offset, TokBuf *ids) {
    if (!n) return 0;
    TokBuf b = {0};
    int rc = -1;
    if (tok_buf_put(&b, s, n) < 0 || tok_json_normalize(t, &b) < 0) goto oom;
    if (t->hf_metaspace) {
        if (replace_all(&b, " ", 1, t->hf_repl, t->hf_repl_len) < 0) goto oom;
        int pre = t->hf_prepend == HF_PREPEND_ALWAYS || (t->hf_prepend == HF_PREPEND_FIRST && offset == 0);
        if (pre && b.n && !(b.n >= t->hf_repl_len && memcmp(b.p, t->hf_repl, t->hf_repl_len) == 0)) {
            TokBuf o = {0};
            tok_buf_put(&o, t->hf_repl, t->hf_repl_len);
            tok_buf_put(&o, b.p, b.n);
            if (o.oom) { free(o.p); goto oom; }
            free(b.p);
            b = o;
        }
        if (t->hf_split) { /* split before each replacement char (MergedWithNext) */
            size_t start = 0, i = t->hf_repl_len <= b.n ? 1 : b.n;
            while (i < b.n) {
                const char *f = memmem(b.p + i, b.n - i, t->hf_repl, t->hf_repl_len);
                if (!f) break;
                size_t j = (size_t)(f - b.p);
                if (tok_json_bpe_word(t, b.p + start, j - start, ids) < 0) goto done;
                start = j;
                i = j + t->hf_repl_len;
            }
            if (tok_json_bpe_word(t, b.p + start, b.n - start, ids) < 0) goto done;
            rc = 0;
            goto done;
        }
    }
    rc = tok_json_bpe_word(t, b.p ? b.p : "", b.n, ids);
    goto done;
oom:
    err_set("tokenizer.json: out of memory");
done:
    free(b.p);
    return rc;
}

int tok_utf8_clean(const char **text, size_t *len, TokBuf *clean) {
    const char *s = *text;
    size_t n = *len;
    if (utf8_valid_prefix(s, n) == n) return 0;
    /* core's rule (utf8_sanitize): what Python's decode(errors="replace") and Node's
     * Buffer.toString / TextDecoder make of these bytes before a tokenizer sees a string */
    if (n > (SIZE_MAX - 1) / 3 || strbuf_reserve(clean, 3 * n) != 0) {
        free(clean->p);
        *clean = (TokBuf){0};
        return err_set("tokenizer: out of memory");
    }
    clean->n = utf8_sanitize(s, n, clean->p);
    clean->p[clean->n] = 0;
    *text = clean->p;
    *len = clean->n;
    return 0;
}

int tok_json_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids) {
    /* HF works on valid UTF-8 strings: malformed bytes become U+FFFD first */
    TokBuf clean = {0};
    const char *s = text;
    size_t n = len;
    if (tok_utf8_clean(&s, &n, &clean) < 0) return -1;
    int rc = 0;
    size_t seg = 0, pos = 0;
    while (pos < n) {
        int id = -1;
        size_t m = t->user.n ? tok_trie_match(&t->user, s + pos, n - pos, &id) : 0;
        if (!m) {
            pos++;
            continue;
        }
        if ((rc = hf_segment(t, s + seg, pos - seg, seg, ids)) < 0) break;
        tok_buf_put(ids, &id, sizeof id);
        pos += m;
        seg = pos;
    }
    if (rc == 0) rc = hf_segment(t, s + seg, n - seg, seg, ids);
    free(clean.p);
    return rc;
}
