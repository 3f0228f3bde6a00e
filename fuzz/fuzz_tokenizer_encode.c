/* fuzz/fuzz_tokenizer_encode.c - libFuzzer harness for encoding/decoding arbitrary text with
 * fixed real tokenizers. FUZZ_TOK_FILES (colon-separated paths, set by fuzz/run_tokenizer.sh)
 * lists them; the default is the Llama 2 and tok105 files in ../shared.
 * Oracles, besides the sanitizers:
 *  - every id is in range and decodes;
 *  - the Llama 2 .model (identity normalizer, extra spaces kept, byte fallback) is lossless:
 *    decode(encode(x)) == x with each malformed UTF-8 byte replaced by U+FFFD and "▁" by a space;
 *  - the Llama 2 .bin gives exactly the .model's ids (differential);
 *  - the byte-level GPT-2 and Llama 3 tokenizer.json files (tests/node, when installed) are
 *    lossless: decode(encode(x)) == x with each maximal invalid UTF-8 subpart replaced by
 *    U+FFFD (utf8_sanitize: what Python and Node make of the bytes);
 *  - tok_decode_piece pieces concatenated after BOS reproduce the text for byte-fallback
 *    tokenizers whose pieces carry no control ids. */
#include "tokenizer/tokenizer.h"
#include "core/error.h"
#include "core/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOK 16
static Tokenizer *toks[MAX_TOK];
static int n_toks, l2_model = -1, l2_bin = -1;
static uint8_t lossless[MAX_TOK]; /* byte-level BPE without a normalizer: decode(encode(x)) == x */

static void init(void) {
    static int done;
    if (done) return;
    done = 1;
    const char *list = getenv("FUZZ_TOK_FILES");
    char def[2048];
    if (!list) {
        const char *s = getenv("MUSCLE_SHARED") ? getenv("MUSCLE_SHARED") : "../shared";
        snprintf(def, sizeof def,
                 "%s/models/llama2-tokenizer/llama2_tokenizer.model:%s/models/llama2-tokenizer/llama2_tokenizer.bin:"
                 "%s/models/babyllama105/tok105.model",
                 s, s, s);
        list = def;
    }
    char *copy = strdup(list), *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p && n_toks < MAX_TOK; p = strtok_r(NULL, ":", &save)) {
        Tokenizer *t = tok_load(p);
        if (!t) {
            fprintf(stderr, "fuzz_tokenizer_encode: %s\n", err_msg());
            abort();
        }
        if (strstr(p, "llama2_tokenizer.model")) l2_model = n_toks;
        if (strstr(p, "llama2_tokenizer.bin")) l2_bin = n_toks;
        if (strstr(p, "tokenizer-gpt2") || strstr(p, "tokenizer-llama3")) lossless[n_toks] = 1;
        toks[n_toks++] = t;
    }
    free(copy);
}

static size_t sanitize(const uint8_t *d, size_t n, char *out, int spm) {
    /* sentencepiece's view: malformed bytes -> U+FFFD, one byte at a time */
    size_t o = 0, i = 0;
    while (i < n) {
        uint8_t c = d[i];
        size_t l = 0;
        uint32_t cp = 0;
        if (c < 0x80) l = 1, cp = c;
        else if ((c & 0xE0) == 0xC0 && n - i >= 2) l = 2, cp = (uint32_t)(c & 0x1F) << 6 | (d[i + 1] & 0x3F);
        else if ((c & 0xF0) == 0xE0 && n - i >= 3) l = 3, cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(d[i + 1] & 0x3F) << 6 | (d[i + 2] & 0x3F);
        else if ((c & 0xF8) == 0xF0 && n - i >= 4)
            l = 4, cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(d[i + 1] & 0x3F) << 12 | (uint32_t)(d[i + 2] & 0x3F) << 6 | (d[i + 3] & 0x3F);
        int ok = l > 0;
        for (size_t k = 1; ok && k < l; k++) ok = (d[i + k] & 0xC0) == 0x80;
        if (ok && l == 2 && cp < 0x80) ok = 0;
        if (ok && l == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) ok = 0;
        if (ok && l == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ok = 0;
        if (ok && spm && l == 3 && cp == 0x2581) { /* a literal "▁" decodes as a space */
            out[o++] = ' ';
            i += 3;
        } else if (ok) {
            memcpy(out + o, d + i, l);
            o += l;
            i += l;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    return o;
}

/* the tokenizers load once before fuzzing starts (the big tokenizer.json files take seconds
 * under ASan, which libFuzzer's -timeout would count against the first input) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    int *ref = NULL, n_ref = -1;
    for (int k = 0; k < n_toks; k++) {
        Tokenizer *t = toks[k];
        int *ids, n;
        if (tok_encode(t, (const char *)data, size, 0, 0, &ids, &n) != 0) {
            /* only tokenizer.json without unk/byte pieces may refuse a character */
            if (strcmp(tok_kind(t), "tokenizer.json") != 0) abort();
            continue;
        }
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= tok_vocab_size(t)) abort();
        size_t dl;
        char *dec = tok_decode(t, ids, n, &dl);
        if (!dec) abort();
        char buf[8];
        size_t len;
        for (int i = 0; i < n; i++)
            if (!tok_decode_piece(t, i ? ids[i - 1] : tok_bos_id(t), ids[i], buf, &len)) abort();
        if (lossless[k]) { /* Hugging Face's view: one U+FFFD per maximal invalid subpart */
            char *want = malloc(size * 3 + 1);
            size_t wl = utf8_sanitize(data, size, want);
            if (wl != dl || memcmp(want, dec, dl) != 0) abort();
            free(want);
        }
        if (k == l2_model) {
            char *want = malloc(size * 3 + 1);
            size_t wl = sanitize(data, size, want, 1);
            if (wl != dl || memcmp(want, dec, dl) != 0) abort();
            free(want);
            ref = ids;
            n_ref = n;
            ids = NULL;
        }
        if (k == l2_bin && ref && (n != n_ref || memcmp(ids, ref, sizeof *ids * (size_t)n) != 0)) abort();
        free(dec);
        free(ids);
    }
    free(ref);
    return 0;
}
