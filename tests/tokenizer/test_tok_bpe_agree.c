/* tests/tokenizer/test_tok_bpe_agree.c - byte-level BPE agreement with transformers.js.
 *
 * Driven by tests/tokenizer/bpe_agreement.sh, which writes the references with
 * tests/node/tok_reference.mjs and a manifest, then runs this program with
 * MUSCLE_TOK_BPE_AGREE=<manifest>. Without that variable it only says it was skipped.
 * Manifest lines (TAB-separated):
 *     <label> <tokenizer> <texts.jsonl> <ref.jsonl> <decode-ids.jsonl> <decode-ref.jsonl>
 * <tokenizer> is a tokenizer.json for tok_load(), or "gguf:<tokenizer.json>:<pre>": its
 * vocabulary, token types and merges written into a GGUF file (src/io/gguf.c writer) with
 * tokenizer.ggml.model "gpt2" and tokenizer.ggml.pre <pre>, read back with the GGUF reader and
 * built by tok_init_bpe_from_vocab (the GGUF path).
 * texts.jsonl: one JSON string per line; ref.jsonl: {"ids": [...], "dec": "..."} per text.
 * decode-ids.jsonl: one JSON array per line; decode-ref.jsonl: one JSON string per line.
 * Prints per manifest line: a TAP line for encode ids (texts, tokens, mismatches), one for
 * decoding those ids back, one for decoding the arbitrary id sequences. Below 100% = not ok.
 */
#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_no, failed;

static void tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", ok ? "ok" : "not ok", ++test_no);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!ok) failed = 1;
    fflush(stdout);
}

typedef struct {
    cJSON **v;
    int n;
} Lines;

static int read_jsonl(const char *path, Lines *out) {
    size_t n;
    char *txt = file_read_all(path, &n, 1u << 30);
    out->v = NULL;
    out->n = 0;
    if (!txt) return -1;
    int cap = 0;
    for (char *p = txt, *end = txt + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        if (nl > p) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 1024;
                out->v = realloc(out->v, sizeof *out->v * (size_t)cap);
            }
            cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
            if (!j) {
                fprintf(stderr, "%s: line %d: bad JSON\n", path, out->n + 1);
                free(txt);
                return -1;
            }
            out->v[out->n++] = j;
        }
        p = nl + 1;
    }
    free(txt);
    return 0;
}

static void free_lines(Lines *l) {
    for (int i = 0; i < l->n; i++) cJSON_Delete(l->v[i]);
    free(l->v);
}

/* tokenizer.json -> GGUF (gpt2 metadata) -> tokenizer. */
static Tokenizer *via_gguf(const char *json_path, const char *pre, const char *gguf_path) {
    Tokenizer *src = tok_load(json_path);
    if (!src) return NULL;
    size_t jn;
    char *jt = file_read_all(json_path, &jn, 1u << 30);
    cJSON *root = jt ? cJSON_ParseWithLength(jt, jn) : NULL;
    free(jt);
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges");
    int n = tok_vocab_size(src), nm = cJSON_GetArraySize(merges);
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    uint64_t *lens = calloc((size_t)n, sizeof *lens);
    int32_t *types = calloc((size_t)n, sizeof *types);
    char **ms = calloc((size_t)nm + 1, sizeof *ms);
    for (int i = 0; i < n; i++) {
        size_t l;
        pieces[i] = tok_piece(src, i, &l);
        lens[i] = l;
        types[i] = tok_type(src, i) == 5 ? 1 : tok_type(src, i); /* unused ids (holes) as normal */
    }
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, merges) {
        if (cJSON_IsString(e)) ms[k++] = strdup(e->valuestring);
        else {
            const char *a = cJSON_GetArrayItem(e, 0)->valuestring, *b = cJSON_GetArrayItem(e, 1)->valuestring;
            ms[k] = malloc(strlen(a) + strlen(b) + 2);
            sprintf(ms[k++], "%s %s", a, b);
        }
    }
    GgufWriter w;
    gguf_writer_init(&w);
    gguf_writer_set_string(&w, "general.architecture", "llama");
    gguf_writer_set_string(&w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_string(&w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_str_array(&w, "tokenizer.ggml.tokens", pieces, lens, (uint64_t)n);
    gguf_writer_set_array(&w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
    gguf_writer_set_str_array(&w, "tokenizer.ggml.merges", (const char *const *)ms, NULL, (uint64_t)k);
    if (tok_bos_id(src) >= 0) gguf_writer_set_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)tok_bos_id(src));
    int wrc = gguf_writer_write(&w, gguf_path);
    gguf_writer_free(&w);
    for (int i = 0; i < k; i++) free(ms[i]);
    free(ms);
    free(pieces);
    free(lens);
    free(types);
    cJSON_Delete(root);
    tok_free(src);
    if (wrc != 0) return NULL;

    /* read back: what a model loader does with tokenizer.ggml.* */
    GgufFile g;
    if (gguf_open(&g, gguf_path) != 0) return NULL;
    const GgufStr *toks, *mstr;
    uint64_t nt, nmg, ntt;
    int32_t *tt = NULL;
    const char *gpre = NULL;
    Tokenizer *t = NULL;
    if (gguf_get_str_array(&g, "tokenizer.ggml.tokens", &toks, &nt) == 0 &&
        gguf_get_str_array(&g, "tokenizer.ggml.merges", &mstr, &nmg) == 0 &&
        gguf_get_i32_array(&g, "tokenizer.ggml.token_type", &tt, &ntt) == 0 &&
        gguf_get_string(&g, "tokenizer.ggml.pre", &gpre, NULL) == 0) {
        const char **p = malloc(sizeof *p * nt), **m = malloc(sizeof *m * (nmg + 1));
        uint32_t *pl = malloc(sizeof *pl * nt), *mlen = malloc(sizeof *mlen * (nmg + 1));
        for (uint64_t i = 0; i < nt; i++) {
            p[i] = toks[i].ptr;
            pl[i] = (uint32_t)toks[i].len;
        }
        for (uint64_t i = 0; i < nmg; i++) {
            m[i] = mstr[i].ptr;
            mlen[i] = (uint32_t)mstr[i].len;
        }
        uint32_t bos = 0;
        int has_bos = gguf_kv_find(&g, "tokenizer.ggml.bos_token_id") && gguf_get_u32(&g, "tokenizer.ggml.bos_token_id", &bos) == 0;
        t = tok_init_bpe_from_vocab((int)nt, p, pl, tt, (int)nmg, m, mlen, gpre, has_bos ? (int)bos : -1, -1);
        free(p);
        free(m);
        free(pl);
        free(mlen);
    }
    free(tt);
    gguf_close(&g);
    return t;
}

static void show_ids(const char *what, const int *ids, int n) {
    printf("#   %s:", what);
    for (int i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf(n > 40 ? " ...\n" : "\n");
}

static void run(char *line, const char *tmpdir) {
    char *f[6];
    int nf = 0;
    for (char *s = line; nf < 6;) {
        f[nf++] = s;
        char *tab = strchr(s, '\t');
        if (!tab) break;
        *tab = 0;
        s = tab + 1;
    }
    if (nf != 6) {
        tap(0, "manifest line with %d fields, expected 6", nf);
        return;
    }
    const char *label = f[0], *spec = f[1];
    Tokenizer *t;
    if (!strncmp(spec, "gguf:", 5)) {
        char *json = strdup(spec + 5), *colon = strrchr(json, ':');
        *colon = 0;
        char gpath[4096];
        snprintf(gpath, sizeof gpath, "%s/%s.gguf", tmpdir, label);
        t = via_gguf(json, colon + 1, gpath);
        free(json);
    } else {
        t = tok_load(spec);
    }
    Lines texts, refs, dids, drefs;
    if (!t || read_jsonl(f[2], &texts) || read_jsonl(f[3], &refs) || read_jsonl(f[4], &dids) ||
        read_jsonl(f[5], &drefs) || texts.n != refs.n || dids.n != drefs.n) {
        tap(0, "%s: setup failed: %s", label, t ? "reference files unreadable or of different lengths" : err_msg());
        tok_free(t);
        return;
    }
    long tokens = 0;
    int bad = 0, bad_dec = 0, shown = 0;
    for (int i = 0; i < texts.n; i++) {
        const char *text = cJSON_GetStringValue(texts.v[i]);
        const cJSON *rids = cJSON_GetObjectItem(refs.v[i], "ids");
        const char *rdec = cJSON_GetStringValue(cJSON_GetObjectItem(refs.v[i], "dec"));
        int *ids = NULL, n = 0;
        if (!text || !rids || !rdec || tok_encode(t, text, strlen(text), 0, 0, &ids, &n) != 0) {
            bad++;
            if (shown++ < 3) printf("#   text %d: encode failed: %s\n", i + 1, err_msg());
            continue;
        }
        tokens += n;
        int same = n == cJSON_GetArraySize(rids);
        for (int k = 0; same && k < n; k++) same = ids[k] == cJSON_GetArrayItem(rids, k)->valueint;
        if (!same) {
            bad++;
            if (shown++ < 3) {
                printf("#   text %d differs: %.80s\n", i + 1, text);
                show_ids("muscle", ids, n);
                int rn = cJSON_GetArraySize(rids);
                int *r = malloc(sizeof *r * (size_t)(rn + 1));
                for (int k = 0; k < rn; k++) r[k] = cJSON_GetArrayItem(rids, k)->valueint;
                show_ids("transformers.js", r, rn);
                free(r);
            }
        }
        size_t dl;
        char *dec = tok_decode(t, ids, n, &dl);
        if (!dec || dl != strlen(rdec) || memcmp(dec, rdec, dl) != 0) {
            bad_dec++;
            if (shown++ < 3) printf("#   text %d: decode differs: '%.80s' vs '%.80s'\n", i + 1, dec ? dec : "(null)", rdec);
        }
        free(dec);
        free(ids);
    }
    tap(bad == 0, "%s: encode agrees with transformers.js on %d of %d texts (%ld tokens, %d mismatches)", label,
        texts.n - bad, texts.n, tokens, bad);
    tap(bad_dec == 0, "%s: decode of those ids agrees on %d of %d texts", label, texts.n - bad_dec, texts.n);
    int bad_r = 0;
    shown = 0;
    for (int i = 0; i < dids.n; i++) {
        int n = cJSON_GetArraySize(dids.v[i]);
        int *ids = malloc(sizeof *ids * (size_t)(n + 1));
        for (int k = 0; k < n; k++) ids[k] = cJSON_GetArrayItem(dids.v[i], k)->valueint;
        const char *r = cJSON_GetStringValue(drefs.v[i]);
        size_t dl;
        char *dec = tok_decode(t, ids, n, &dl);
        if (!dec || !r || dl != strlen(r) || memcmp(dec, r, dl) != 0) {
            bad_r++;
            if (shown++ < 3) printf("#   id sequence %d: decode '%.60s' vs '%.60s'\n", i + 1, dec ? dec : "(null)", r ? r : "");
        }
        free(dec);
        free(ids);
    }
    tap(bad_r == 0, "%s: decode of %d arbitrary id sequences (partial UTF-8 -> U+FFFD) agrees on %d", label, dids.n,
        dids.n - bad_r);
    free_lines(&texts);
    free_lines(&refs);
    free_lines(&dids);
    free_lines(&drefs);
    tok_free(t);
}

int main(void) {
    const char *manifest = getenv("MUSCLE_TOK_BPE_AGREE");
    if (!manifest) {
        printf("ok 1 - skipped: MUSCLE_TOK_BPE_AGREE not set (tests/tokenizer/bpe_agreement.sh runs this)\n");
        return 0;
    }
    size_t n;
    char *m = file_read_all(manifest, &n, 1u << 20);
    if (!m) {
        tap(0, "manifest %s: %s", manifest, err_msg());
        return 1;
    }
    char *dir = file_dirname(manifest);
    for (char *p = m, *end = m + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        if (*p) run(p, dir);
        p = nl + 1;
    }
    free(dir);
    free(m);
    return failed;
}
