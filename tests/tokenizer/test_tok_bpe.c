/* tests/tokenizer/test_tok_bpe.c - byte-level BPE facts that need no reference program (the
 * agreement with transformers.js on real files is tests/tokenizer/bpe_agreement.sh):
 *  - byte-level encoding is lossless: decode(encode(x)) == x for NFC text;
 *  - decoding follows the WHATWG UTF-8 decoder (TextDecoder): one U+FFFD per maximal invalid
 *    subpart (Unicode's "best practice", the examples of its chapter 3);
 *  - tok_decode_piece pieces concatenate to the text's bytes;
 *  - the GGUF path (tok_init_bpe_from_vocab) gives the tokenizer.json ids for the same pre;
 *  - every unsupported part of a tokenizer.json is refused with one line naming file and field.
 * Uses tests/tokenizer/regress/json/tiny-bytelevel.json (GPT-2 byte map, Llama 3 regex, NFC,
 * ignore_merges, added tokens with lstrip/rstrip/normalized). */
#include "testutil.h"

#include "core/error.h"
#include "tiny_bytelevel.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const char *TEXTS[] = {
    "hello world",
    "  Hello  world\n\n\tHELLO'S it's 12345 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa4\xb7\xe2\x80\x8d\xe2\x99\x82\xef\xb8\x8f",
    "<|x|>hello<|x|> word words",
    "   ",
    "\r\n\r\n x",
    "",
};

static void test_roundtrip(void **state) {
    (void)state;
    Tokenizer *t = tok_load(TINY);
    assert_non_null(t);
    for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
        int *ids, n;
        assert_int_equal(tok_encode(t, TEXTS[i], strlen(TEXTS[i]), 0, 0, &ids, &n), 0);
        size_t len;
        char *s = tok_decode(t, ids, n, &len);
        assert_non_null(s);
        assert_int_equal(len, strlen(TEXTS[i]));
        assert_memory_equal(s, TEXTS[i], len);
        /* streaming pieces give the same bytes (no special token in these texts but <|x|>) */
        char *cat = calloc(len + 64, 1), buf[8];
        size_t at = 0, pl;
        for (int k = 0; k < n; k++) {
            const char *p = tok_decode_piece(t, k ? ids[k - 1] : tok_bos_id(t), ids[k], buf, &pl);
            assert_non_null(p);
            if (tok_type(t, ids[k]) == TOK_CONTROL) p = "<|x|>", pl = 5; /* control tokens stream as "" */
            memcpy(cat + at, p, pl);
            at += pl;
        }
        assert_int_equal(at, len);
        assert_memory_equal(cat, TEXTS[i], len);
        free(cat);
        free(s);
        free(ids);
    }
    tok_free(t);
}

/* byte b is piece id b in tiny-bytelevel.json (its vocabulary lists the 256 stand-ins first) */
static void check_bytes(const Tokenizer *t, const char *bytes, const char *want) {
    int ids[16], n = (int)strlen(bytes);
    for (int i = 0; i < n; i++) ids[i] = (uint8_t)bytes[i];
    size_t len;
    char *s = tok_decode(t, ids, n, &len);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_whatwg_decode(void **state) {
    (void)state;
    Tokenizer *t = tok_load(TINY);
    assert_non_null(t);
#define FFFD "\xef\xbf\xbd"
    check_bytes(t, "a\xe2\x82", "a" FFFD);                      /* truncated 3-byte sequence: one */
    check_bytes(t, "\xc0\x80", FFFD FFFD);                      /* C0 is never valid: two */
    check_bytes(t, "\xf0\x9f\x98" "a", FFFD "a");               /* truncated 4-byte before ASCII */
    check_bytes(t, "\xed\xa0\x80", FFFD FFFD FFFD);             /* surrogate: ED then A0 out of range */
    check_bytes(t, "\xe0\x80\xaf", FFFD FFFD FFFD);             /* overlong */
    check_bytes(t, "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);    /* above U+10FFFF */
    check_bytes(t, "\x61\xf1\x80\x80\xe1\x80\xc2\x62", "a" FFFD FFFD FFFD "b"); /* Unicode 3-8 example */
    check_bytes(t, "\xe2\x82\xac", "\xe2\x82\xac");             /* a whole euro sign */
    tok_free(t);
}

/* Encoding malformed bytes: they become U+FFFD first by the same rule (tok_utf8_clean ->
 * utf8_sanitize), so decode(encode(x)) is what Python's bytes.decode("utf-8", "replace") and
 * Node's Buffer.toString() give for x (checked by hand: b"a\xe2\x82A\xc0\x80\xed\xa0\x80"
 * -> "a\ufffdA" + 5 x "\ufffd" in both). */
static void check_encode_clean(const Tokenizer *t, const char *bytes, const char *want) {
    int *ids, n;
    assert_int_equal(tok_encode(t, bytes, strlen(bytes), 0, 0, &ids, &n), 0);
    size_t len;
    char *s = tok_decode(t, ids, n, &len);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
    free(ids);
}

static void test_encode_malformed(void **state) {
    (void)state;
    Tokenizer *t = tok_load(TINY);
    assert_non_null(t);
    check_encode_clean(t, "a\xe2\x82" "A\xc0\x80\xed\xa0\x80", "a" FFFD "A" FFFD FFFD FFFD FFFD FFFD);
    check_encode_clean(t, "a\xe2\x82", "a" FFFD);                 /* truncated: one, not two */
    check_encode_clean(t, "\xf0\x9f\x98" "a", FFFD "a");
    check_encode_clean(t, "\x61\xf1\x80\x80\xe1\x80\xc2\x62", "a" FFFD FFFD FFFD "b");
    check_encode_clean(t, "ok \xe2\x82\xac", "ok \xe2\x82\xac");   /* valid text untouched */
    tok_free(t);
}

static void test_gguf_same_ids(void **state) {
    (void)state;
    Tokenizer *j = tok_load(TINY);
    assert_non_null(j);
    TinyArrays a;
    tiny_arrays(j, &a);
    Tokenizer *g = tok_init_bpe_from_vocab(a.n, a.pieces, a.lens32, a.types, TINY_N_MERGES, TINY_MERGES, NULL,
                                           "llama-bpe", -1, -1);
    assert_non_null(g);
    for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
        if (strstr(TEXTS[i], "word")) continue; /* "word" is a normalized added token only in the json */
        int *x, nx, *y, ny;
        assert_int_equal(tok_encode(j, TEXTS[i], strlen(TEXTS[i]), 0, 0, &x, &nx), 0);
        assert_int_equal(tok_encode(g, TEXTS[i], strlen(TEXTS[i]), 0, 0, &y, &ny), 0);
        assert_int_equal(nx, ny);
        assert_memory_equal(x, y, sizeof *x * (size_t)nx);
        free(x);
        free(y);
    }
    tok_free(g);
    assert_null(tok_init_bpe_from_vocab(a.n, a.pieces, a.lens32, a.types, TINY_N_MERGES, TINY_MERGES, NULL,
                                        "no-such-pre", -1, -1));
    assert_non_null(strstr(err_msg(), "tokenizer.ggml.pre"));
    static const char *bad_merge[] = {"h e", "x"};
    assert_null(tok_init_bpe_from_vocab(a.n, a.pieces, a.lens32, a.types, 2, bad_merge, NULL, "gpt-2", -1, -1));
    assert_non_null(strstr(err_msg(), "tokenizer.ggml.merges[1]"));
    tiny_arrays_free(&a);
    tok_free(j);
}

static void test_refusals(void **state) {
    (void)state;
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"bytelevel-unknown-pretok.json", "field 'pre_tokenizer': type 'Punctuation' is not supported"},
        {"bytelevel-split-merged.json", "field 'behavior': 'MergedWithPrevious' is not supported"},
        {"bytelevel-bad-regex.json", "field 'pattern': the regex '(?<x' does not compile"},
        {"bytelevel-no-decoder.json", "field 'decoder'"},
        {"bytelevel-after-bytelevel.json", "a step after ByteLevel is not supported"},
        {"bytelevel-unknown-normalizer.json", "field 'normalizer': type 'Lowercase' is not supported"},
        {"bytelevel-wordpiece.json", "field 'model.type': expected \"BPE\", got \"WordPiece\""},
        {"bytelevel-single-word.json", "single_word true is not supported"},
        {"bytelevel-nested-class-fold.json", "inside (?i: ...) are not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/tokenizer/regress/json/%s", cases[i].file);
        assert_null(tok_load(path));
        const char *m = err_msg();
        if (!strstr(m, cases[i].want) || !strstr(m, path) || strchr(m, '\n')) fail_msg("%s: got '%s'", path, m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_whatwg_decode), cmocka_unit_test(test_encode_malformed),
        cmocka_unit_test(test_gguf_same_ids),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
