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
 * Anything else (WordPiece, Unigram, regex normalizers ...) is refused with an error naming
 * the field. This file loads; the encoder is tok_json_encode.c (byte-level BPE: tok_bpe.c).
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

/* bos_token / eos_token / pad_token of a tokenizer_config.json beside the file (string or {"content"}). */
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
    char bos[256] = "", eos[256] = "", pad[256] = "";
    if (path) {
        char *dir = file_dirname(path);
        char *cfg_path = dir ? file_join(dir, "tokenizer_config.json") : NULL;
        size_t cn;
        char *txt = cfg_path && file_exists(cfg_path) ? file_read_all(cfg_path, &cn, 64u << 20) : NULL;
        cJSON *cfg = txt ? cJSON_ParseWithLength(txt, cn) : NULL;
        if (cfg) {
            config_token(cfg, "bos_token", bos, sizeof bos);
            config_token(cfg, "eos_token", eos, sizeof eos);
            config_token(cfg, "pad_token", pad, sizeof pad);
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
    t->pad = find_piece(t, *pad ? pad : NULL);
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
