/* tokenizer/tok_bpe.c - byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM): the pipeline after
 * the vocabulary and merges are loaded (tok_json.c for tokenizer.json, tok_bpe_gguf.c for GGUF).
 *
 * Encoding follows transformers.js (@huggingface/tokenizers 0.2.0, Tokenizer.encode_text),
 * which the tests compare against:
 *   1. added tokens with normalized=false are split out of the raw text (leftmost-longest);
 *      lstrip / rstrip trim the JavaScript whitespace of the neighbouring text;
 *   2. each text section is normalized (NFC ...), then added tokens with normalized=true are
 *      split out of the normalized text the same way;
 *   3. pre-tokenizer steps in order: Split (regex, Isolated / Removed, invert), Digits, and a
 *      final ByteLevel (add_prefix_space, its own GPT-2 regex when use_regex) that maps every
 *      UTF-8 byte to its printable stand-in (GPT-2's bytes_to_unicode);
 *   4. BPE on each pre-token (tok_json_bpe_word: merges by rank, ties to the left, and
 *      ignore_merges).
 * Regexes are PCRE2 (UTF + UCP) with Oniguruma's constructs rewritten as transformers.js does:
 * (?i: ...) folds ASCII letters only, \s is Unicode White_Space (PCRE2's \s misses U+0085).
 * Decoding: bytes back through the map, WHATWG UTF-8 decoding (one U+FFFD per maximal
 * invalid subsequence, as TextDecoder and transformers' decode do), added tokens verbatim.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tok_internal.h"

#include "core/error.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define BPE_MAX_STEPS 16

typedef enum { BPE_STEP_SPLIT = 1, BPE_STEP_BYTELEVEL } BpeStepKind;

typedef struct {
    BpeStepKind kind;
    pcre2_code *re;       /* Split: the pattern; ByteLevel: GPT-2's regex or NULL (use_regex false) */
    int removed;          /* Split behavior Removed: matches dropped */
    int invert;           /* Split invert (transformers.js: keep only the matches) */
    int add_prefix_space; /* ByteLevel */
    char *src;            /* Split: the pattern as the loader gave it (tok_bpe_step_info) */
    int is_regex;         /* Split: src is a regex, not a literal */
} BpeStep;

typedef struct {
    int id;
    char *content;
    size_t len;
    char *norm; /* content after the normalizer (normalized tokens) */
    size_t norm_len;
    uint8_t lstrip, rstrip, normalized, special;
} BpeAdded;

struct TokBpe {
    BpeStep step[BPE_MAX_STEPS];
    int n_step;
    BpeAdded *added;
    int n_added;
    TokTrie raw, norm;   /* value = index into added[] */
    char enc[256][2];    /* byte -> UTF-8 of its stand-in (1 or 2 bytes) */
    uint8_t enc_len[256];
    int16_t dec[0x144];  /* stand-in code point -> byte, -1 none */
    uint8_t *is_added;   /* [t->n] decoded verbatim */
};

/* GPT-2's pre-tokenizer regex as transformers.js runs it: a native JavaScript RegExp whose \s is
 * WhiteSpace + LineTerminator (no U+0085, but U+FEFF); PCRE2's UCP \s differs, so the set is
 * spelled out. */
#define JS_WS "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" JS_WS "\\p{L}\\p{N}]+"
                              "|[" JS_WS "]+(?![^" JS_WS "])|[" JS_WS "]+";

/* ============================================================================================
 * Construction
 * ========================================================================================== */

TokBpe *tok_bpe_new(void) {
    TokBpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    /* bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others get 256 + k */
    int k = 0;
    for (int i = 0; i < 0x144; i++) b->dec[i] = -1;
    for (int c = 0; c < 256; c++) {
        int keep = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff);
        int cp = keep ? c : 256 + k++;
        b->dec[cp] = (int16_t)c;
        if (cp < 0x80) {
            b->enc[c][0] = (char)cp;
            b->enc_len[c] = 1;
        } else {
            b->enc[c][0] = (char)(0xc0 | (cp >> 6));
            b->enc[c][1] = (char)(0x80 | (cp & 0x3f));
            b->enc_len[c] = 2;
        }
    }
    return b;
}

void tok_bpe_free(TokBpe *b) {
    if (!b) return;
    for (int i = 0; i < b->n_step; i++) {
        pcre2_code_free(b->step[i].re);
        free(b->step[i].src);
    }
    for (int i = 0; i < b->n_added; i++) {
        free(b->added[i].content);
        free(b->added[i].norm);
    }
    free(b->added);
    free(b->raw.node);
    free(b->norm.node);
    free(b->is_added);
    free(b);
}

/* Oniguruma (tokenizers' regex engine) -> PCRE2 the way transformers.js rewrites it to a
 * JavaScript RegExp: ASCII-only folding inside (?i: ...), \s / \S as Unicode White_Space. */
static char *rewrite_regex(const char *re, size_t n, const char *name, const char *field) {
    TokBuf o = {0};
    int depth = 0, fold_depth = -1, in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char d = re[i + 1];
            if (d == 's') tok_buf_put(&o, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]", in_class ? 8 : 10);
            else if (d == 'S' && !in_class) tok_buf_put(&o, "[^\\s\\x{85}]", 11);
            else if (d == 'S') {
                free(o.p);
                err_set("%s: %s: \\S inside a character class is not supported", name, field);
                return NULL;
            } else tok_buf_put(&o, re + i, 2);
            i++;
            continue;
        }
        if (in_class) {
            if (c == ']') in_class = 0;
            if (fold_depth >= 0 && ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
                free(o.p);
                err_set("%s: %s: letters in a character class inside (?i: ...) are not supported", name, field);
                return NULL;
            }
            tok_buf_put(&o, &c, 1);
            continue;
        }
        if (c == '[') {
            in_class = 1;
            tok_buf_put(&o, &c, 1);
            if (i + 1 < n && re[i + 1] == '^') tok_buf_put(&o, re + ++i, 1);
            if (i + 1 < n && re[i + 1] == ']') tok_buf_put(&o, re + ++i, 1); /* literal ] first */
            continue;
        }
        if (c == '(') {
            depth++;
            if (n - i >= 4 && memcmp(re + i, "(?i:", 4) == 0) {
                if (fold_depth < 0) fold_depth = depth;
                tok_buf_put(&o, "(?:", 3);
                i += 3;
                continue;
            }
        } else if (c == ')') {
            if (depth == fold_depth) fold_depth = -1;
            depth--;
        } else if (fold_depth >= 0 && ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
            char cls[4] = {'[', (char)(c | 0x20), (char)(c & ~0x20), ']'};
            tok_buf_put(&o, cls, 4);
            continue;
        }
        tok_buf_put(&o, &c, 1);
    }
    tok_buf_put(&o, "", 1);
    if (o.oom) {
        free(o.p);
        err_set("%s: out of memory", name);
        return NULL;
    }
    return o.p;
}

static pcre2_code *compile(const char *pat, size_t len, int literal, const char *name, const char *field) {
    int ec;
    PCRE2_SIZE at;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | (literal ? PCRE2_LITERAL : 0);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc) pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &ec, &at, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        err_set("%s: %s: the regex '%.60s' does not compile at offset %zu: %s", name, field, pat, (size_t)at,
                (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter serves when JIT is unavailable */
    return re;
}

static BpeStep *new_step(TokBpe *b, const char *name) {
    if (b->n_step == BPE_MAX_STEPS) {
        err_set("%s: field 'pre_tokenizer': more than %d steps", name, BPE_MAX_STEPS);
        return NULL;
    }
    if (b->n_step && b->step[b->n_step - 1].kind == BPE_STEP_BYTELEVEL) {
        err_set("%s: field 'pre_tokenizer': a step after ByteLevel is not supported (ByteLevel must come last)", name);
        return NULL;
    }
    BpeStep *s = &b->step[b->n_step];
    memset(s, 0, sizeof *s);
    return s;
}

int tok_bpe_add_split(TokBpe *b, const char *pattern, size_t len, int is_regex, TokBpeBehavior behavior, int invert,
                      const char *name) {
    const char *field = "pre_tokenizer Split: field 'pattern'";
    BpeStep *s = new_step(b, name);
    if (!s) return -1;
    if (behavior != TOK_BPE_ISOLATED && behavior != TOK_BPE_REMOVED)
        return err_set("%s: pre_tokenizer Split: field 'behavior': only Isolated and Removed are supported", name);
    if (!len) return err_set("%s: %s: expected a non-empty pattern", name, field);
    if (is_regex) {
        char *rw = rewrite_regex(pattern, len, name, field);
        if (!rw) return -1;
        s->re = compile(rw, strlen(rw), 0, name, field);
        free(rw);
    } else {
        s->re = compile(pattern, len, 1, name, field);
    }
    if (!s->re) return -1;
    if (!(s->src = malloc(len + 1))) return err_set("%s: out of memory", name);
    memcpy(s->src, pattern, len);
    s->src[len] = 0;
    s->is_regex = is_regex != 0;
    s->kind = BPE_STEP_SPLIT;
    s->removed = behavior == TOK_BPE_REMOVED;
    s->invert = invert;
    b->n_step++;
    return 0;
}

int tok_bpe_add_bytelevel(TokBpe *b, int add_prefix_space, int use_regex, const char *name) {
    BpeStep *s = new_step(b, name);
    if (!s) return -1;
    if (use_regex && !(s->re = compile(GPT2_RE, sizeof GPT2_RE - 1, 0, name, "pre_tokenizer ByteLevel"))) return -1;
    s->kind = BPE_STEP_BYTELEVEL;
    s->add_prefix_space = add_prefix_space;
    b->n_step++;
    return 0;
}

int tok_bpe_step_info(const TokBpe *b, int i, TokBpeStepInfo *info) {
    if (!b || i < 0 || i >= b->n_step) return -1;
    const BpeStep *s = &b->step[i];
    memset(info, 0, sizeof *info);
    info->bytelevel = s->kind == BPE_STEP_BYTELEVEL;
    info->pattern = s->src;
    info->is_regex = s->is_regex;
    info->removed = s->removed;
    info->invert = s->invert;
    info->add_prefix_space = s->add_prefix_space;
    info->use_regex = info->bytelevel && s->re != NULL;
    return 0;
}

int tok_bpe_add_token(TokBpe *b, int id, const char *content, size_t len, int special, int normalized, int lstrip,
                      int rstrip) {
    BpeAdded *p = realloc(b->added, sizeof *p * (size_t)(b->n_added + 1));
    if (!p) return err_set("out of memory");
    b->added = p;
    BpeAdded *a = &p[b->n_added];
    memset(a, 0, sizeof *a);
    a->content = malloc(len + 1);
    if (!a->content) return err_set("out of memory");
    memcpy(a->content, content, len);
    a->content[len] = 0;
    a->len = len;
    a->id = id;
    a->special = special != 0;
    a->normalized = normalized != 0;
    a->lstrip = lstrip != 0;
    a->rstrip = rstrip != 0;
    b->n_added++;
    return 0;
}

int tok_bpe_finish(Tokenizer *t, const char *name) {
    TokBpe *b = t->bpe;
    if (!b->n_step || b->step[b->n_step - 1].kind != BPE_STEP_BYTELEVEL)
        return err_set("%s: field 'pre_tokenizer': byte-level BPE needs a ByteLevel pre-tokenizer as the last step", name);
    b->is_added = calloc((size_t)t->n + 1, 1);
    if (!b->is_added) return err_set("%s: out of memory", name);
    for (int i = 0; i < b->n_added; i++) {
        BpeAdded *a = &b->added[i];
        if (a->id < 0 || a->id >= t->n) return err_set("%s: added token %d: id out of range", name, a->id);
        b->is_added[a->id] = 1;
        if (!a->len) continue;
        if (!a->normalized || !t->n_hf_norm) {
            if (tok_trie_add(&b->raw, a->content, a->len, i) < 0) return err_set("%s: out of memory", name);
            continue;
        }
        TokBuf nb = {0};
        if (tok_buf_put(&nb, a->content, a->len) < 0 || tok_json_normalize(t, &nb) < 0) {
            free(nb.p);
            return err_set("%s: out of memory", name);
        }
        a->norm = nb.p;
        a->norm_len = nb.n;
        if (nb.n && tok_trie_add(&b->norm, nb.p, nb.n, i) < 0) return err_set("%s: out of memory", name);
    }
    /* display strings for tok_decode_piece: the raw bytes of each piece, added tokens as they
     * are written (control tokens stay empty, as for every kind) */
    TokBuf d = {0};
    for (int i = 0; i < t->n; i++) {
        const char *p = t->blob + t->off[i];
        size_t len = t->len[i];
        if (d.n > UINT32_MAX / 2) {
            free(d.p);
            return err_set("%s: vocabulary too large", name);
        }
        t->disp_off[i] = (uint32_t)d.n;
        if (t->type[i] == TOK_CONTROL) {
        } else if (b->is_added[i]) {
            tok_buf_put(&d, p, len);
        } else {
            for (size_t k = 0; k < len;) {
                size_t cl = tok_utf8_valid_len(p + k, len - k);
                uint32_t cp = 0;
                if (cl == 1) cp = (uint8_t)p[k];
                else if (cl == 2) cp = ((uint32_t)(p[k] & 0x1f) << 6) | (p[k + 1] & 0x3f);
                else cp = 0x144; /* not a stand-in */
                uint8_t byte = cp < 0x144 && b->dec[cp] >= 0 ? (uint8_t)b->dec[cp] : 0;
                tok_buf_put(&d, &byte, 1);
                k += cl ? cl : 1;
            }
        }
        t->disp_len[i] = (uint32_t)(d.n - t->disp_off[i]);
        tok_buf_put(&d, "", 1);
    }
    if (d.oom) {
        free(d.p);
        return err_set("%s: out of memory", name);
    }
    free(t->disp);
    t->disp = d.p;
    return 0;
}

/* ============================================================================================
 * Encoding
 * ========================================================================================== */

typedef struct {
    const Tokenizer *t;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    TokBuf word;  /* one pre-token mapped to stand-ins */
    TokBuf ids;
    int rc;
} Enc;

static void bpe_word(Enc *e, const BpeStep *s, const char *w, size_t n) {
    const TokBpe *b = e->t->bpe;
    e->word.n = 0;
    if (s->add_prefix_space && !(n && w[0] == ' ')) tok_buf_put(&e->word, b->enc[' '], b->enc_len[' ']);
    for (size_t i = 0; i < n; i++) tok_buf_put(&e->word, b->enc[(uint8_t)w[i]], b->enc_len[(uint8_t)w[i]]);
    if (e->word.oom) {
        e->rc = err_set("tokenizer: out of memory");
        return;
    }
    if (tok_json_bpe_word(e->t, e->word.p, e->word.n, &e->ids) < 0) e->rc = -1;
}

/* pcre2_match; when JIT's default 32 KiB stack is too small (long whitespace runs), once more
 * with a large JIT stack made for this call. */
static int re_match(Enc *e, const pcre2_code *re, const char *s, size_t n, size_t pos) {
    int r = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, e->md, e->mc);
    if (r != PCRE2_ERROR_JIT_STACKLIMIT || e->js) return r;
    if (!e->mc) e->mc = pcre2_match_context_create(NULL);
    e->js = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
    if (!e->mc || !e->js) return r;
    pcre2_jit_stack_assign(e->mc, NULL, e->js);
    return pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, e->md, e->mc);
}

static size_t char_len(const char *s, size_t n) {
    size_t l = tok_utf8_valid_len(s, n);
    return l ? l : 1;
}

/* Calls fn on each piece of s[0..n) that the regex split keeps, in order. */
static void pretok(Enc *e, int k, const char *s, size_t n);

static void emit(Enc *e, int k, const char *s, size_t n) {
    if (n && e->rc == 0) pretok(e, k + 1, s, n);
}

static void bytelevel(Enc *e, const BpeStep *st, const char *s, size_t n) {
    if (!st->re) {
        bpe_word(e, st, s, n);
        return;
    }
    /* add_prefix_space applies to the text before the regex runs */
    char *buf = NULL;
    if (st->add_prefix_space && !(n && s[0] == ' ')) {
        buf = malloc(n + 1);
        if (!buf) {
            e->rc = err_set("tokenizer: out of memory");
            return;
        }
        buf[0] = ' ';
        memcpy(buf + 1, s, n);
        s = buf;
        n++;
    }
    BpeStep plain = *st;
    plain.add_prefix_space = 0;
    size_t pos = 0;
    while (pos < n && e->rc == 0) {
        int r = re_match(e, st->re, s, n, pos);
        if (r < 0) {
            if (r != PCRE2_ERROR_NOMATCH) e->rc = err_set("tokenizer: regex match failed (PCRE2 error %d)", r);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        if (ov[1] > ov[0]) bpe_word(e, &plain, s + ov[0], ov[1] - ov[0]);
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + char_len(s + ov[0], n - ov[0]);
    }
    free(buf);
}

static void pretok(Enc *e, int k, const char *s, size_t n) {
    const BpeStep *st = &e->t->bpe->step[k];
    if (st->kind == BPE_STEP_BYTELEVEL) {
        bytelevel(e, st, s, n);
        return;
    }
    size_t pos = 0, prev = 0;
    while (pos <= n && e->rc == 0) {
        int r = re_match(e, st->re, s, n, pos);
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) {
            e->rc = err_set("tokenizer: regex match failed (PCRE2 error %d)", r);
            return;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t a = ov[0], z = ov[1];
        if (!st->invert) emit(e, k, s + prev, a - prev);
        if (!st->removed || st->invert) emit(e, k, s + a, z - a);
        prev = z;
        if (z > a) pos = z;
        else if (a < n) pos = a + char_len(s + a, n - a);
        else break;
    }
    if (!st->invert) emit(e, k, s + prev, n - prev);
}

/* JavaScript's String.prototype.trim whitespace (WhiteSpace + LineTerminator). */
static size_t js_space_len(const char *s, size_t n) {
    uint8_t c = (uint8_t)s[0];
    if (c == ' ' || (c >= 9 && c <= 13)) return 1;
    size_t l = tok_utf8_valid_len(s, n);
    if (l < 2) return 0;
    uint32_t cp = l == 2 ? ((uint32_t)(c & 0x1f) << 6) | (s[1] & 0x3f)
                : l == 3 ? ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f)
                         : 0;
    int sp = cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
             cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
    return sp ? l : 0;
}

static size_t trim_start(const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n && (l = js_space_len(s + i, n - i))) i += l;
    return i;
}

static size_t trim_end(const char *s, size_t n) {
    while (n) {
        size_t st = n - 1;
        while (st > 0 && ((uint8_t)s[st] & 0xc0) == 0x80 && n - st < 4) st--;
        size_t l = js_space_len(s + st, n - st);
        if (l != n - st) break;
        n = st;
    }
    return n;
}

typedef struct {
    const char *s;
    size_t n;
    int added; /* index into bpe->added, -1 = text */
} Section;

/* DictionarySplitter.split + the lstrip/rstrip pass of encode_text. *out is malloc'd. */
static int split_added(const TokTrie *tr, const char *s, size_t n, Section **out, int *n_out) {
    Section *v = NULL;
    int nv = 0, cap = 0;
    size_t start = 0, i = 0;
    for (;;) {
        int val = -1;
        size_t m = 0;
        if (!tr->n) i = n; /* no added tokens: one section */
        else if (i < n) m = tok_trie_match(tr, s + i, n - i, &val);
        if (i >= n || m) {
            for (int r = 0; r < 2; r++) {
                Section sec = r == 0 ? (Section){s + start, i - start, -1} : (Section){s + i, m, val};
                if ((r == 0 && i == start) || (r == 1 && !m)) continue;
                if (nv == cap) {
                    cap = cap ? cap * 2 : 16;
                    Section *q = realloc(v, sizeof *q * (size_t)cap);
                    if (!q) {
                        free(v);
                        return err_set("tokenizer: out of memory");
                    }
                    v = q;
                }
                v[nv++] = sec;
            }
            if (i >= n) break;
            i += m;
            start = i;
        } else {
            i++;
        }
    }
    *out = v;
    *n_out = nv;
    return 0;
}

static void apply_strip(const TokBpe *b, Section *v, int nv) {
    for (int i = 0; i < nv; i++) {
        if (v[i].added < 0) continue;
        const BpeAdded *a = &b->added[v[i].added];
        if (a->lstrip && i > 0) v[i - 1].n = trim_end(v[i - 1].s, v[i - 1].n);
        if (a->rstrip && i < nv - 1) {
            size_t k = trim_start(v[i + 1].s, v[i + 1].n);
            v[i + 1].s += k;
            v[i + 1].n -= k;
        }
    }
}

static int put_id(Enc *e, int id) { return tok_buf_put(&e->ids, &id, sizeof id); }

static void encode_section(Enc *e, const char *s, size_t n) {
    const Tokenizer *t = e->t;
    const TokBpe *b = t->bpe;
    TokBuf nb = {0};
    if (t->n_hf_norm) {
        if (tok_buf_put(&nb, s, n) < 0 || tok_json_normalize(t, &nb) < 0) {
            free(nb.p);
            e->rc = err_set("tokenizer: out of memory");
            return;
        }
        s = nb.p ? nb.p : "";
        n = nb.n;
    }
    Section *v = NULL;
    int nv = 0;
    if (n && split_added(&b->norm, s, n, &v, &nv) < 0) e->rc = -1;
    apply_strip(b, v, nv);
    for (int i = 0; i < nv && e->rc == 0; i++) {
        if (v[i].added >= 0) put_id(e, b->added[v[i].added].id);
        else if (v[i].n) pretok(e, 0, v[i].s, v[i].n);
    }
    free(v);
    free(nb.p);
}

int tok_bpe_encode(const Tokenizer *t, const char *text, size_t len, TokBuf *ids) {
    const TokBpe *b = t->bpe;
    /* tokenizers work on valid UTF-8 strings: malformed bytes become U+FFFD first */
    TokBuf clean = {0};
    if (tok_utf8_clean(&text, &len, &clean) < 0) return -1;
    Enc e = {.t = t, .ids = *ids};
    e.md = pcre2_match_data_create(8, NULL);
    if (!e.md) e.rc = err_set("tokenizer: out of memory");
    Section *v = NULL;
    int nv = 0;
    if (e.rc == 0 && split_added(&b->raw, text, len, &v, &nv) < 0) e.rc = -1;
    apply_strip(b, v, nv);
    for (int k = 0; k < nv && e.rc == 0; k++) {
        if (v[k].added >= 0) put_id(&e, b->added[v[k].added].id);
        else if (v[k].n) encode_section(&e, v[k].s, v[k].n);
    }
    free(v);
    pcre2_match_data_free(e.md);
    pcre2_match_context_free(e.mc);
    if (e.js) pcre2_jit_stack_free(e.js);
    free(e.word.p);
    free(clean.p);
    *ids = e.ids;
    return e.rc;
}

/* ============================================================================================
 * Decoding
 * ========================================================================================== */

/* WHATWG UTF-8 decode (TextDecoder, fatal false): one U+FFFD per maximal invalid subpart. */
static void whatwg_utf8(TokBuf *o, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            tok_buf_put(o, s + i, 1);
            i++;
            continue;
        }
        int need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            tok_buf_put(o, "\xEF\xBF\xBD", 3);
            i++;
            continue;
        }
        size_t j = i + 1;
        int ok = 1;
        for (int k = 0; k < need; k++, j++) {
            if (j >= n || s[j] < lo || s[j] > hi) {
                ok = 0;
                break;
            }
            lo = 0x80;
            hi = 0xbf;
        }
        if (ok) tok_buf_put(o, s + i, j - i);
        else tok_buf_put(o, "\xEF\xBF\xBD", 3);
        i = j;
    }
}

char *tok_bpe_decode(const Tokenizer *t, const int *ids, int n, size_t *len) {
    const TokBpe *b = t->bpe;
    TokBuf o = {0}, bytes = {0};
    tok_buf_put(&o, "", 0);
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        const char *p = t->blob + t->off[id];
        if (b->is_added[id]) {
            whatwg_utf8(&o, (const uint8_t *)bytes.p, bytes.n);
            bytes.n = 0;
            tok_buf_put(&o, p, t->len[id]);
        } else {
            tok_buf_put(&bytes, t->disp + t->disp_off[id], t->disp_len[id]);
        }
    }
    whatwg_utf8(&o, (const uint8_t *)bytes.p, bytes.n);
    tok_buf_put(&o, "", 1);
    free(bytes.p);
    if (o.oom || bytes.oom) {
        free(o.p);
        err_set("tok_decode: out of memory");
        return NULL;
    }
    o.n--;
    if (len) *len = o.n;
    return o.p;
}
