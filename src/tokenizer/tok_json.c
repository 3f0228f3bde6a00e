/* tokenizer/tok_json.c - Hugging Face tokenizer.json of the Llama kind.
 *
 * Supported (what LlamaConverter writes, old and new styles):
 *   model        {"type": "BPE", vocab, merges ("a b" strings or [a, b] pairs), unk_token,
 *                 fuse_unk, byte_fallback, ignore_merges}; dropout is ignored (deterministic)
 *   normalizer   null, Prepend, Replace (String pattern), NFC, NFKC, or a Sequence of them
 *   pre_tokenizer null or Metaspace (replacement, prepend_scheme always/first/never or the old
 *                 add_prefix_space, split), alone or in a Sequence
 *   added_tokens split out of the raw text first (leftmost-longest), as HF does by default
 * Encoding follows the tokenizers crate (models/bpe/model.rs merge_word, word.rs merge_all):
 * merges applied by rank, ties to the leftmost pair, unknown characters to byte pieces
 * "<0xXX>" (byte_fallback) or to unk_token (runs fused when fuse_unk).
 * Decoding uses SentencePiece DecodeIds semantics like every other kind (docs/tokenizer.md).
 * Anything else (ByteLevel BPE, WordPiece, Unigram, regex normalizers ...) is refused with an
 * error naming the field.
 */
#include "tokenizer/tok_internal.h"

#include "core/error.h"
#include "core/file.h"
#include "core/heap.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ============================================================================================
 * Loading
 * ========================================================================================== */

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

/* An integral JSON number in [0, max). */
static int jid(const cJSON *v, int max, int *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d < (double)max) || floor(d) != d) return -1;
    *out = (int)d;
    return 0;
}

static int add_norm(Tokenizer *t, HfNormKind kind, const char *a, const char *b) {
    HfNorm *p = realloc(t->hf_norm, sizeof *p * (size_t)(t->n_hf_norm + 1));
    if (!p) return -1;
    t->hf_norm = p;
    HfNorm *h = &p[t->n_hf_norm++];
    memset(h, 0, sizeof *h);
    h->kind = kind;
    if (a) {
        h->a = strdup(a);
        h->a_len = strlen(a);
        if (!h->a) return -1;
    }
    if (b) {
        h->b = strdup(b);
        h->b_len = strlen(b);
        if (!h->b) return -1;
    }
    return 0;
}

static int parse_normalizer(Tokenizer *t, const cJSON *n, const char *name, int depth) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *type = jstr(n, "type");
    if (depth > 8) return err_set("%s: field 'normalizer': Sequence nested deeper than 8 levels", name);
    if (!type) return err_set("%s: field 'normalizer': expected an object with a \"type\"", name);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list)) return err_set("%s: field 'normalizer.normalizers': expected an array", name);
        const cJSON *e;
        cJSON_ArrayForEach(e, list) if (parse_normalizer(t, e, name, depth + 1) < 0) return -1;
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p) return err_set("%s: normalizer Prepend: field 'prepend': expected a string", name);
        return add_norm(t, HF_PREPEND, p, NULL) < 0 ? err_set("%s: out of memory", name) : 0;
    }
    if (!strcmp(type, "Replace")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const char *s = jstr(pat, "String"), *c = jstr(n, "content");
        if (!s || !c || !*s)
            return err_set("%s: normalizer Replace: expected {\"pattern\": {\"String\": non-empty}, \"content\": string} "
                           "(Regex patterns are not supported)",
                           name);
        return add_norm(t, HF_REPLACE, s, c) < 0 ? err_set("%s: out of memory", name) : 0;
    }
    if (!strcmp(type, "NFKC")) return add_norm(t, HF_NFKC, NULL, NULL) < 0 ? err_set("%s: out of memory", name) : 0;
    if (!strcmp(type, "NFC")) return add_norm(t, HF_NFC, NULL, NULL) < 0 ? err_set("%s: out of memory", name) : 0;
    return err_set("%s: field 'normalizer': type '%s' is not supported (expected Sequence, Prepend, Replace, NFC, NFKC)",
                   name, type);
}

static int parse_pretok(Tokenizer *t, const cJSON *p, const char *name, int depth) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *type = jstr(p, "type");
    if (depth > 8) return err_set("%s: field 'pre_tokenizer': Sequence nested deeper than 8 levels", name);
    if (!type) return err_set("%s: field 'pre_tokenizer': expected an object with a \"type\"", name);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list)) return err_set("%s: field 'pre_tokenizer.pretokenizers': expected an array", name);
        const cJSON *e;
        cJSON_ArrayForEach(e, list) if (parse_pretok(t, e, name, depth + 1) < 0) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel") || !strcmp(type, "Split") || !strcmp(type, "Digits")) {
        if (!t->bpe && !(t->bpe = tok_bpe_new())) return err_set("%s: out of memory", name);
        if (!strcmp(type, "ByteLevel"))
            return tok_bpe_add_bytelevel(t->bpe, jbool(p, "add_prefix_space", 0), jbool(p, "use_regex", 1), name);
        if (!strcmp(type, "Digits")) { /* transformers.js: [^0-9]+ | [0-9] (or [0-9]+) */
            const char *d = jbool(p, "individual_digits", 0) ? "[0-9]" : "[0-9]+";
            return tok_bpe_add_split(t->bpe, d, strlen(d), 1, TOK_BPE_ISOLATED, 0, name);
        }
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char *re = jstr(pat, "Regex"), *str = jstr(pat, "String"), *beh = jstr(p, "behavior");
        if (!re && !str)
            return err_set("%s: pre_tokenizer Split: field 'pattern': expected {\"Regex\": string} or {\"String\": string}",
                           name);
        TokBpeBehavior b = !beh || !strcmp(beh, "Isolated") ? TOK_BPE_ISOLATED
                         : !strcmp(beh, "Removed")          ? TOK_BPE_REMOVED
                                                            : TOK_BPE_OTHER;
        if (b == TOK_BPE_OTHER)
            return err_set("%s: pre_tokenizer Split: field 'behavior': '%s' is not supported (expected Isolated or Removed)",
                           name, beh);
        const char *src = re ? re : str;
        return tok_bpe_add_split(t->bpe, src, strlen(src), re != NULL, b, jbool(p, "invert", 0), name);
    }
    if (strcmp(type, "Metaspace") != 0)
        return err_set("%s: field 'pre_tokenizer': type '%s' is not supported (expected Metaspace, ByteLevel, Split, "
                       "Digits or a Sequence of them)",
                       name, type);
    if (t->hf_metaspace) return err_set("%s: field 'pre_tokenizer': more than one Metaspace", name);
    const char *r = jstr(p, "replacement");
    if (!r || !*r) return err_set("%s: pre_tokenizer Metaspace: field 'replacement': expected a non-empty string", name);
    t->hf_metaspace = 1;
    t->hf_repl = strdup(r);
    if (!t->hf_repl) return err_set("%s: out of memory", name);
    t->hf_repl_len = strlen(r);
    const char *scheme = jstr(p, "prepend_scheme");
    if (scheme) {
        if (!strcmp(scheme, "always")) t->hf_prepend = HF_PREPEND_ALWAYS;
        else if (!strcmp(scheme, "first")) t->hf_prepend = HF_PREPEND_FIRST;
        else if (!strcmp(scheme, "never")) t->hf_prepend = HF_PREPEND_NEVER;
        else return err_set("%s: pre_tokenizer Metaspace: field 'prepend_scheme': expected always, first or never, got '%s'",
                            name, scheme);
    } else {
        t->hf_prepend = jbool(p, "add_prefix_space", 1) ? HF_PREPEND_ALWAYS : HF_PREPEND_NEVER;
    }
    t->hf_split = jbool(p, "split", 1);
    return 0;
}

/* bos_token / eos_token of a tokenizer_config.json beside the file (string or {"content"}). */
static void config_token(const cJSON *cfg, const char *key, char *out, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    if (s && strlen(s) < cap) strcpy(out, s);
}

static int find_piece(const Tokenizer *t, const char *s) { return s ? tok_find(t, s, strlen(s)) : -1; }

/* What cJSON lets through: malformed UTF-8 (a piece that can never match), an escaped NUL
 * in a string (cJSON cuts the string there: "a\u0000b" would become the piece "a"), and
 * nesting deep enough to matter (cJSON's own limit is 1000 levels; a tokenizer.json needs
 * about 6). */
#define JSON_MAX_DEPTH 64
static int json_prescan(const uint8_t *d, size_t n, const char *name) {
    int in_str = 0, depth = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = d[i];
        if (c >= 0x80) {
            size_t v = tok_utf8_valid_len((const char *)d + i, n - i);
            if (!v) return err_set("%s: not valid UTF-8 (byte %zu)", name, i);
            i += v;
            continue;
        }
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < n && d[i + 1] == 'u' && memcmp(d + i + 2, "0000", 4) == 0)
                    return err_set("%s: a string holds an escaped NUL (\\u0000) at byte %zu: not allowed", name, i);
                i += 2;
                continue;
            }
            if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_MAX_DEPTH) return err_set("%s: JSON nested deeper than %d levels at byte %zu", name, JSON_MAX_DEPTH, i);
        } else if (c == '}' || c == ']') {
            depth--;
        }
        i++;
    }
    return 0;
}

int tok_json_add_merge(Tokenizer *t, const char *a, size_t la, const char *b, size_t lb, int rank, const char *name) {
    char stack[256];
    char *buf = la + lb <= sizeof stack ? stack : malloc(la + lb);
    if (!buf) return err_set("%s: out of memory", name);
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    int ia = tok_find(t, a, la), ib = tok_find(t, b, lb), iab = tok_find(t, buf, la + lb);
    if (buf != stack) free(buf);
    if (ia < 0 || ib < 0 || iab < 0)
        return err_set("%s: field 'model.merges[%d]': '%.*s' + '%.*s': %s is not in model.vocab", name, rank,
                       (int)(la < 40 ? la : 40), a, (int)(lb < 40 ? lb : 40), b,
                       ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the merged piece");
    if (!t->hf_mergeable && !(t->hf_mergeable = calloc((size_t)t->n, 1))) return err_set("%s: out of memory", name);
    t->hf_mergeable[ia] = t->hf_mergeable[ib] = 1;
    if (tok_pairmap_put(&t->merges, ia, ib, rank, iab) < 0) return err_set("%s: out of memory", name);
    /* a score for tok_score()/GGUF export: earlier merges score higher */
    if (t->score[iab] == 0.0f) t->score[iab] = -(float)(rank + 1);
    return 0;
}

/* Byte-level BPE: the parts only it has (decoder, added token flags), then tok_bpe_finish. */
static int json_bpe_finish(Tokenizer *t, const cJSON *root, const cJSON *model, const cJSON *added, const char *name) {
    if (t->hf_metaspace)
        return err_set("%s: field 'pre_tokenizer': Metaspace together with ByteLevel/Split is not supported", name);
    if (t->hf_byte_fallback)
        return err_set("%s: field 'model.byte_fallback': true is not supported with a ByteLevel pre-tokenizer", name);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *dt = jstr(dec, "type");
    if (!dt || strcmp(dt, "ByteLevel") != 0)
        return err_set("%s: field 'decoder': expected {\"type\": \"ByteLevel\"} with a ByteLevel pre-tokenizer, got %s", name,
                       dt ? dt : "none");
    const cJSON *e;
    cJSON_ArrayForEach(e, added) {
        int id = -1;
        jid(cJSON_GetObjectItemCaseSensitive(e, "id"), TOK_MAX_VOCAB, &id);
        const char *c = jstr(e, "content");
        int special = jbool(e, "special", 0);
        if (jbool(e, "single_word", 0))
            return err_set("%s: field 'added_tokens' (id %d): single_word true is not supported", name, id);
        if (tok_bpe_add_token(t->bpe, id, c, strlen(c), special, jbool(e, "normalized", !special), jbool(e, "lstrip", 0),
                              jbool(e, "rstrip", 0)) < 0)
            return err_prefix("%s", name);
    }
    (void)model;
    t->unk = t->hf_unk;
    return tok_bpe_finish(t, name);
}

Tokenizer *tok_load_json_mem(const uint8_t *d, size_t size, const char *name, const char *path) {
    if (json_prescan(d, size, name) != 0) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)d, size, &end, 0);
    Tokenizer *t = NULL;
    if (!root) {
        size_t at = end && end >= (const char *)d && end <= (const char *)d + size ? (size_t)(end - (const char *)d) : 0;
        err_set("%s: invalid JSON near byte %zu (expected a Hugging Face tokenizer.json)", name, at);
        return NULL;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        err_set("%s: field 'model': expected an object (a Hugging Face tokenizer.json)", name);
        goto fail;
    }
    const char *mtype = jstr(model, "type");
    if (mtype ? strcmp(mtype, "BPE") != 0 : !cJSON_GetObjectItemCaseSensitive(model, "merges")) {
        err_set("%s: field 'model.type': expected \"BPE\", got \"%s\"", name, mtype ? mtype : "(none)");
        goto fail;
    }
    const char *cont = jstr(model, "continuing_subword_prefix"), *suf = jstr(model, "end_of_word_suffix");
    if ((cont && *cont) || (suf && *suf)) {
        err_set("%s: field 'model.%s': not supported (not a Llama-kind tokenizer)", name,
                cont && *cont ? "continuing_subword_prefix" : "end_of_word_suffix");
        goto fail;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) {
        err_set("%s: field 'model.vocab': expected an object {piece: id}", name);
        goto fail;
    }
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges)) {
        err_set("%s: field 'model.merges': expected an array", name);
        goto fail;
    }
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added)) {
        err_set("%s: field 'added_tokens': expected an array", name);
        goto fail;
    }
    /* vocabulary size: the largest id + 1 */
    int n = 0, id, defined = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        defined++;
        if (jid(e, TOK_MAX_VOCAB, &id) < 0) {
            err_set("%s: field 'model.vocab': piece '%.40s': expected an id in 0..%d", name, e->string, TOK_MAX_VOCAB - 1);
            goto fail;
        }
        if (id >= n) n = id + 1;
    }
    cJSON_ArrayForEach(e, added) {
        if (jid(cJSON_GetObjectItemCaseSensitive(e, "id"), TOK_MAX_VOCAB, &id) < 0 || !jstr(e, "content")) {
            err_set("%s: field 'added_tokens': expected objects with an id in 0..%d and a string 'content'", name,
                    TOK_MAX_VOCAB - 1);
            goto fail;
        }
        if (id >= n) n = id + 1;
        defined++;
    }
    /* ids with no piece become unused entries; a few are normal (padding), but a tiny file
     * naming id 16777215 must not make us allocate 16 million entries */
    if (n > 2 * defined + 1024) {
        err_set("%s: the largest id is %d but only %d pieces are defined: ids must be (nearly) dense", name, n - 1, defined);
        goto fail;
    }
    if (n == 0) {
        err_set("%s: field 'model.vocab': empty vocabulary", name);
        goto fail;
    }
    t = tok_build_new(TOK_KIND_JSON, n);
    if (!t) goto fail;
    const char **piece = calloc((size_t)n, sizeof *piece);
    uint8_t *type = calloc((size_t)n, 1);
    if (!piece || !type) {
        free(piece);
        free(type);
        err_set("%s: out of memory", name);
        goto fail;
    }
    int byte_fallback = jbool(model, "byte_fallback", 0);
    const char *unk_tok = jstr(model, "unk_token");
    cJSON_ArrayForEach(e, vocab) {
        jid(e, TOK_MAX_VOCAB, &id);
        if (!piece[id]) piece[id] = e->string;
    }
    cJSON_ArrayForEach(e, added) {
        jid(cJSON_GetObjectItemCaseSensitive(e, "id"), TOK_MAX_VOCAB, &id);
        const char *c = jstr(e, "content");
        if (piece[id] && strcmp(piece[id], c) != 0 && !type[id]) {
            err_set("%s: added_tokens: id %d is '%.40s' but model.vocab has '%.40s' there", name, id, c, piece[id]);
            free(piece);
            free(type);
            goto fail;
        }
        piece[id] = c;
        type[id] = jbool(e, "special", 0) ? TOK_CONTROL : TOK_USER_DEFINED;
    }
    for (int i = 0; i < n; i++) {
        const char *p = piece[i] ? piece[i] : "";
        int ty = type[i];
        if (!piece[i]) ty = TOK_UNUSED;
        else if (unk_tok && !strcmp(p, unk_tok)) ty = TOK_UNKNOWN;
        else if (!ty) ty = byte_fallback && tok_byte_of_piece(p, strlen(p)) >= 0 ? TOK_BYTE : TOK_NORMAL;
        if (tok_build_set(t, i, p, strlen(p), 0.0f, ty) < 0) {
            err_prefix("%s", name);
            free(piece);
            free(type);
            goto fail;
        }
    }
    /* added tokens: matched in the raw text before anything else */
    cJSON_ArrayForEach(e, added) {
        jid(cJSON_GetObjectItemCaseSensitive(e, "id"), TOK_MAX_VOCAB, &id);
        const char *c = jstr(e, "content");
        if (*c && tok_trie_add(&t->user, c, strlen(c), id) < 0) {
            err_set("%s: out of memory", name);
            free(piece);
            free(type);
            goto fail;
        }
    }
    free(piece);
    free(type);
    if (tok_build_finish(t, name, 0) < 0) goto fail;
    t->byte_fallback = 0; /* HF's own byte fallback applies (hf_byte_fallback) */
    t->hf_byte_fallback = byte_fallback;
    t->hf_fuse_unk = jbool(model, "fuse_unk", 0);
    t->hf_ignore_merges = jbool(model, "ignore_merges", 0);
    t->hf_unk = unk_tok ? find_piece(t, unk_tok) : -1;
    t->unk = t->hf_unk;

    /* merges: rank = position; each must name two pieces whose concatenation is a piece */
    if (cJSON_IsArray(merges)) {
        int rank = 0;
        cJSON_ArrayForEach(e, merges) {
            const char *a, *b;
            size_t la, lb;
            if (cJSON_IsString(e)) {
                a = e->valuestring;
                const char *sp = strchr(a, ' ');
                if (!sp) {
                    err_set("%s: field 'model.merges[%d]': expected \"left right\", got '%.40s'", name, rank, a);
                    goto fail;
                }
                la = (size_t)(sp - a);
                b = sp + 1;
                lb = strlen(b);
            } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                       cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
                a = cJSON_GetArrayItem(e, 0)->valuestring;
                b = cJSON_GetArrayItem(e, 1)->valuestring;
                la = strlen(a);
                lb = strlen(b);
            } else {
                err_set("%s: field 'model.merges[%d]': expected a string or a pair of strings", name, rank);
                goto fail;
            }
            if (tok_json_add_merge(t, a, la, b, lb, rank, name) < 0) goto fail;
            rank++;
        }
    }
    if (parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), name, 0) < 0) goto fail;
    if (parse_pretok(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), name, 0) < 0) goto fail;
    if (t->bpe && json_bpe_finish(t, root, model, added, name) < 0) goto fail;
    /* SentencePiece decode semantics need to know whether a dummy prefix is added */
    t->add_dummy_prefix = 0;
    for (int i = 0; i < t->n_hf_norm; i++)
        if (t->hf_norm[i].kind == HF_PREPEND) t->add_dummy_prefix = 1;
    if (t->hf_metaspace && t->hf_prepend != HF_PREPEND_NEVER) t->add_dummy_prefix = 1;
    t->remove_extra_ws = 0;

    /* BOS / EOS: tokenizer_config.json beside the file, else the post-processor's first
     * special token, else <s> and </s> */
    char bos[256] = "", eos[256] = "";
    if (path) {
        char *dir = file_dirname(path);
        char *cfg_path = dir ? file_join(dir, "tokenizer_config.json") : NULL;
        size_t cn;
        char *txt = cfg_path && file_exists(cfg_path) ? file_read_all(cfg_path, &cn, 64u << 20) : NULL;
        cJSON *cfg = txt ? cJSON_ParseWithLength(txt, cn) : NULL;
        if (cfg) {
            config_token(cfg, "bos_token", bos, sizeof bos);
            config_token(cfg, "eos_token", eos, sizeof eos);
        }
        cJSON_Delete(cfg);
        free(txt);
        free(cfg_path);
        free(dir);
    }
    if (!*bos) {
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
        const cJSON *first = cJSON_IsArray(single) ? cJSON_GetArrayItem(single, 0) : NULL;
        const char *s = jstr(cJSON_GetObjectItemCaseSensitive(first, "SpecialToken"), "id");
        if (s && strlen(s) < sizeof bos) strcpy(bos, s);
    }
    /* <s> / </s> are Llama-kind defaults; in a byte-level vocabulary "<s>" is plain text */
    t->bos = find_piece(t, *bos ? bos : t->bpe ? NULL : "<s>");
    t->eos = find_piece(t, *eos ? eos : t->bpe ? NULL : "</s>");
    cJSON_Delete(root);
    return t;
fail:
    cJSON_Delete(root);
    tok_free(t);
    return NULL;
}

void tok_json_free(Tokenizer *t) {
    for (int i = 0; i < t->n_hf_norm; i++) {
        free(t->hf_norm[i].a);
        free(t->hf_norm[i].b);
    }
    free(t->hf_norm);
    free(t->hf_repl);
    free(t->hf_mergeable);
    tok_bpe_free(t->bpe);
}

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
    size_t n = *len, i = 0;
    while (i < n) {
        size_t v = tok_utf8_valid_len(s + i, n - i);
        if (!v) break;
        i += v;
    }
    if (i == n) return 0;
    for (i = 0; i < n;) {
        size_t v = tok_utf8_valid_len(s + i, n - i);
        tok_buf_put(clean, v ? s + i : "\xEF\xBF\xBD", v ? v : 3);
        i += v ? v : 1;
    }
    if (clean->oom) {
        free(clean->p);
        *clean = (TokBuf){0};
        return err_set("tokenizer: out of memory");
    }
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
