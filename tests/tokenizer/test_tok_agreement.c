/* tests/tokenizer/test_tok_agreement.c - line-by-line agreement with python3-sentencepiece.
 *
 * Driven by tests/tokenizer/agreement.sh, which writes the references with
 * tools/tokenizer/sp_reference.py and a manifest, then runs this program with
 * MUSCLE_TOK_AGREE=<manifest>. Without that variable (plain tests/run.sh) it only says it
 * was skipped. Manifest lines (TAB-separated):
 *     <tokenizer> <reference> <corpus>
 * <tokenizer> is a file for tok_load(), or "vocab:<file>": that file loaded, then rebuilt
 * through tok_init_from_vocab() from its pieces/scores/types (the GGUF path).
 * <corpus> "whole:<file>" means the whole file is one text (sp_reference.py --whole).
 * Reference lines: "<ids separated by spaces>\t<hex of the decoded text>".
 * For each manifest line prints one TAP line with the agreement rate; anything below 100%
 * is "not ok", with the first mismatches shown as comments.
 */
#include "core/error.h"
#include "core/file.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int test_no;

static char *next_line(char **p, char *end) {
    if (*p >= end) return NULL;
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) nl = end;
    *nl = 0;
    *p = nl + 1;
    return s;
}

static Tokenizer *load_spec(const char *spec) {
    if (strncmp(spec, "vocab:", 6) != 0) return tok_load(spec);
    Tokenizer *src = tok_load(spec + 6);
    if (!src) return NULL;
    int n = tok_vocab_size(src);
    const char **pieces = malloc(sizeof *pieces * (size_t)n);
    uint32_t *lens = malloc(sizeof *lens * (size_t)n);
    float *scores = malloc(sizeof *scores * (size_t)n);
    int32_t *types = malloc(sizeof *types * (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t l;
        pieces[i] = tok_piece(src, i, &l);
        lens[i] = (uint32_t)l;
        scores[i] = tok_score(src, i);
        types[i] = tok_type(src, i);
    }
    Tokenizer *t = tok_init_from_vocab(n, pieces, lens, scores, types, tok_bos_id(src), tok_eos_id(src),
                                       tok_unk_id(src));
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    tok_free(src);
    return t;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void check(const char *spec, const char *ref_path, const char *corpus_path) {
    test_no++;
    size_t ref_n, corp_n;
    char *ref = file_read_all(ref_path, &ref_n, 0);
    int whole = strncmp(corpus_path, "whole:", 6) == 0;
    char *corp = file_read_all(corpus_path + (whole ? 6 : 0), &corp_n, 0);
    Tokenizer *t = ref && corp ? load_spec(spec) : NULL;
    if (!t) {
        printf("not ok %d - %s: %s\n", test_no, spec, err_msg());
        free(ref);
        free(corp);
        return;
    }
    long lines = 0, enc_ok = 0, dec_ok = 0, shown = 0, n_tokens = 0;
    double secs = 0;
    char *rp = ref, *rend = ref + ref_n, *cp = corp, *cend = corp + corp_n;
    char *rl;
    int *want = NULL;
    size_t want_cap = 0;
    char *want_dec = NULL;
    size_t dec_cap = 0;
    while ((rl = next_line(&rp, rend))) {
        char *line = whole ? cp : next_line(&cp, cend);
        if (!line) line = "";
        size_t line_len = whole ? corp_n : strlen(line); /* the corpora have no NUL bytes */
        if (whole) cp = cend;
        lines++;
        /* parse the reference */
        char *tab = strchr(rl, '\t');
        if (!tab) {
            printf("not ok %d - %s: %s line %ld has no TAB\n", test_no, spec, ref_path, lines);
            goto out;
        }
        *tab = 0;
        size_t nw = 0;
        for (char *q = rl; *q;) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q) break;
            if (nw == want_cap) {
                want_cap = want_cap ? want_cap * 2 : 256;
                want = realloc(want, sizeof *want * want_cap);
            }
            want[nw++] = (int)v;
            q = e;
        }
        size_t hl = strlen(tab + 1);
        if (hl / 2 + 1 > dec_cap) {
            dec_cap = hl / 2 + 1;
            want_dec = realloc(want_dec, dec_cap);
        }
        for (size_t i = 0; i + 1 < hl + 1 && i / 2 < hl / 2; i += 2)
            want_dec[i / 2] = (char)(hexval(tab[1 + i]) * 16 + hexval(tab[2 + i]));
        size_t want_dec_n = hl / 2;

        int *ids = NULL, n = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = tok_encode(t, line, line_len, 0, 0, &ids, &n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        secs += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        n_tokens += n;
        int e_ok = rc == 0 && (size_t)n == nw && (n == 0 || memcmp(ids, want, sizeof *ids * (size_t)n) == 0);
        /* decode the REFERENCE ids, so a decode check does not depend on the encode one */
        size_t dl = 0;
        char *dec = tok_decode(t, want, (int)nw, &dl);
        int d_ok = dec && dl == want_dec_n && memcmp(dec, want_dec, dl) == 0;
        enc_ok += e_ok;
        dec_ok += d_ok;
        if ((!e_ok || !d_ok) && shown < 3) {
            shown++;
            printf("# line %ld: %.80s\n", lines, line);
            if (!e_ok) {
                printf("#   encode: got");
                for (int i = 0; i < n && i < 30; i++) printf(" %d", ids[i]);
                printf("\n#   want    ");
                for (size_t i = 0; i < nw && i < 30; i++) printf(" %d", want[i]);
                printf("\n");
            }
            if (!d_ok) printf("#   decode: got '%.80s' want '%.*s'\n", dec ? dec : err_msg(),
                              (int)(want_dec_n < 80 ? want_dec_n : 80), want_dec);
        }
        free(dec);
        free(ids);
    }
    {
        double rate_e = lines ? 100.0 * (double)enc_ok / (double)lines : 0;
        double rate_d = lines ? 100.0 * (double)dec_ok / (double)lines : 0;
        printf("%s %d - %s: encode %ld/%ld lines (%.4f%%), decode %ld/%ld (%.4f%%); %ld tokens, %.0f tokens/s\n",
               lines > 0 && enc_ok == lines && dec_ok == lines ? "ok" : "not ok", test_no, spec, enc_ok,
               lines, rate_e, dec_ok, lines, rate_d, n_tokens, secs > 0 ? (double)n_tokens / secs : 0.0);
    }
out:
    free(want);
    free(want_dec);
    tok_free(t);
    free(ref);
    free(corp);
}

int main(void) {
    const char *manifest = getenv("MUSCLE_TOK_AGREE");
    if (!manifest || !*manifest) {
        printf("ok 1 - skipped: MUSCLE_TOK_AGREE not set (tests/tokenizer/agreement.sh runs this)\n");
        return 0;
    }
    size_t n;
    char *m = file_read_all(manifest, &n, 0);
    if (!m) {
        printf("not ok 1 - %s\n", err_msg());
        return 1;
    }
    char *p = m, *line;
    while ((line = next_line(&p, m + n))) {
        if (!*line || line[0] == '#') continue;
        char *a = line, *b = strchr(a, '\t');
        char *c = b ? strchr(b + 1, '\t') : NULL;
        if (!b || !c) {
            printf("not ok %d - manifest line '%s': expected 3 TAB-separated fields\n", ++test_no, line);
            continue;
        }
        *b++ = 0;
        *c++ = 0;
        check(a, b, c);
    }
    free(m);
    return 0;
}
