/* tests/tokenizer/test_tokenizer.c - unit tests of the tokenizer module.
 *
 * Expected ids were produced with Debian's python3-sentencepiece 0.1.97 on the same files
 * (EncodeAsIds on the raw bytes, DecodeIds); the agreement over the whole corpus is
 * tests/tokenizer/agreement.sh.
 */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>

#define L2_MODEL "models/llama2-tokenizer/llama2_tokenizer.model"
#define L2_BIN "models/llama2-tokenizer/llama2_tokenizer.bin"
#define T105_MODEL "models/babyllama105/tok105.model"
#define T105_BIN "models/babyllama105/tok105.bin"
#define T512_BIN "models/stories260K/tok512.bin"

static Tokenizer *load(const char *rel) {
    Tokenizer *t = tok_load(shared_path(rel));
    if (!t) fail_msg("loading %s: %s", rel, err_msg());
    return t;
}

/* Encodes text[0..len) and compares with want[0..n). */
static void check_enc(const Tokenizer *t, const char *text, size_t len, int bos, int eos, const int *want, int n) {
    int *ids = NULL, n_ids = -1;
    if (tok_encode(t, text, len, bos, eos, &ids, &n_ids) != 0) fail_msg("encode: %s", err_msg());
    if (n_ids != n) {
        print_error("encode '%.*s': got %d ids:", (int)len, text ? text : "", n_ids);
        for (int i = 0; i < n_ids; i++) print_error(" %d", ids[i]);
        print_error("\n");
    }
    assert_int_equal(n_ids, n);
    for (int i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
}

#define ENC(t, s, ...)                                                                             \
    do {                                                                                           \
        const int w_[] = {__VA_ARGS__};                                                            \
        check_enc(t, s, sizeof(s) - 1, 0, 0, w_, (int)(sizeof w_ / sizeof *w_));                   \
    } while (0)

static void check_dec(const Tokenizer *t, const int *ids, int n, const char *want) {
    size_t len;
    char *s = tok_decode(t, ids, n, &len);
    if (!s) fail_msg("decode: %s", err_msg());
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
    free(s);
}

#define DEC(t, want, ...)                                                                          \
    do {                                                                                           \
        const int i_[] = {__VA_ARGS__};                                                            \
        check_dec(t, i_, (int)(sizeof i_ / sizeof *i_), want);                                     \
    } while (0)

/* ---- loading the real files --------------------------------------------------------------- */

static void test_load_real_files(void **state) {
    (void)state;
    struct {
        const char *rel, *kind;
        int n;
    } f[] = {{T512_BIN, "llama2.c", 512},
             {T105_BIN, "llama2.c", 105},
             {T105_MODEL, "sentencepiece", 105},
             {L2_BIN, "llama2.c", 32000},
             {L2_MODEL, "sentencepiece", 32000}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        Tokenizer *t = load(f[i].rel);
        assert_string_equal(tok_kind(t), f[i].kind);
        assert_int_equal(tok_vocab_size(t), f[i].n);
        assert_int_equal(tok_bos_id(t), 1);
        assert_int_equal(tok_eos_id(t), 2);
        assert_int_equal(tok_unk_id(t), 0);
        size_t len;
        const char *p = tok_piece(t, 1, &len);
        assert_int_equal(len, 3);
        assert_memory_equal(p, "<s>", 3); /* llama2.c's "\n<s>\n" is mapped back */
        assert_int_equal(tok_type(t, 0), TOK_UNKNOWN);
        assert_int_equal(tok_type(t, 2), TOK_CONTROL);
        tok_free(t);
    }
    Tokenizer *t = load(L2_MODEL);
    size_t len;
    const char *p = tok_piece(t, 29871, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "\xe2\x96\x81", 3);
    assert_int_equal(tok_find(t, "\xe2\x96\x81hello", 8), 22172);
    assert_int_equal(tok_find(t, "<0x0A>", 6), 13);
    assert_int_equal(tok_type(t, 13), TOK_BYTE);
    assert_int_equal(tok_find(t, "no such piece", 13), -1);
    assert_float_equal(tok_score(t, 22172), -21913.0f, 0);
    tok_free(t);
    /* the .bin pieces/scores/types equal the .model ones */
    Tokenizer *a = load(L2_MODEL), *b = load(L2_BIN);
    for (int i = 0; i < 32000; i++) {
        size_t la, lb;
        const char *pa = tok_piece(a, i, &la), *pb = tok_piece(b, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(pa, pb, la);
        assert_float_equal(tok_score(a, i), tok_score(b, i), 0);
        assert_int_equal(tok_type(a, i), tok_type(b, i));
    }
    tok_free(a);
    tok_free(b);
}

/* ---- encoding ----------------------------------------------------------------------------- */

static void test_encode_llama2(void **state) {
    (void)state;
    const char *files[] = {L2_MODEL, L2_BIN};
    for (int k = 0; k < 2; k++) {
        Tokenizer *t = load(files[k]);
        ENC(t, "Hello world", 15043, 3186);
        /* byte fallback: a character outside the vocabulary (4-byte UTF-8) */
        ENC(t, "\xf0\x9f\x98\x80", 29871, 243, 162, 155, 131);
        ENC(t, "\xe6\x97\xa5\xe6\x9c\xac", 29871, 30325, 30346);
        /* invalid UTF-8: each bad byte becomes U+FFFD (a piece of this vocabulary) */
        ENC(t, "a\xc3", 263, 30140);
        ENC(t, "\xff", 29871, 30140);
        ENC(t, "x\xed\xa0\x80y", 921, 26308, 30140, 29891); /* surrogate: 3 bad bytes */
        /* whitespace is kept (remove_extra_whitespaces = false) */
        ENC(t, " ", 259);
        ENC(t, "  hello  world ", 259, 22172, 29871, 3186, 29871);
        /* newlines and tabs: byte pieces */
        ENC(t, "\n", 29871, 13);
        ENC(t, "a\nb\n\nc", 263, 13, 29890, 13, 13, 29883);
        ENC(t, "\t", 29871, 12);
        /* empty text, BOS/EOS flags */
        check_enc(t, "", 0, 0, 0, NULL, 0);
        check_enc(t, NULL, 0, 0, 0, NULL, 0);
        check_enc(t, "", 0, 1, 1, (const int[]){1, 2}, 2);
        check_enc(t, "Hello world", 11, 1, 0, (const int[]){1, 15043, 3186}, 3);
        check_enc(t, "Hello world", 11, 0, 1, (const int[]){15043, 3186, 2}, 3);
        check_enc(t, "Hello world", 11, 1, 1, (const int[]){1, 15043, 3186, 2}, 4);
        /* special pieces in the text are plain text for sentencepiece */
        ENC(t, "<s>x</s>", 529, 29879, 29958, 29916, 829, 29879, 29958);
        /* embedded NUL byte */
        ENC(t, "a\0b", 263, 3, 29890);
        /* a literal "▁" in the text is a space to sentencepiece (found by fuzz_tokenizer_encode's
         * round-trip oracle) */
        ENC(t, "tha\xe2\x96\x81" "down", 266, 29874, 1623);
        ENC(t, "\xe2\x96\x81" "x", 29871, 921);
        DEC(t, "tha down", 266, 29874, 1623);
        DEC(t, " x", 29871, 921);
        tok_free(t);
    }
}

static void test_encode_no_byte_fallback(void **state) {
    (void)state;
    const char *files[] = {T105_MODEL, T105_BIN};
    for (int k = 0; k < 2; k++) {
        Tokenizer *t = load(files[k]);
        ENC(t, "Hello world", 3, 33, 4, 14, 14, 7, 3, 17, 7, 13, 14, 11);
        /* unknown characters -> <unk>, a run of them fused into one */
        ENC(t, "\xf0\x9f\x98\x80", 3, 0);
        ENC(t, "\xe6\x97\xa5\xe6\x9c\xac", 3, 0);
        ENC(t, "a\xc3", 3, 5, 0);
        ENC(t, "x\xed\xa0\x80y", 3, 37, 0, 15);
        ENC(t, "a\nb\n\nc", 3, 5, 0, 23, 0, 22);
        ENC(t, "\t", 3, 0);
        /* remove_extra_whitespaces (sentencepiece's default for this model) */
        check_enc(t, " ", 1, 0, 0, NULL, 0);
        check_enc(t, "   ", 3, 1, 0, (const int[]){1}, 1);
        ENC(t, "  hello  world ", 3, 8, 4, 14, 14, 7, 3, 17, 7, 13, 14, 11);
        tok_free(t);
    }
}

/* A hand-made model (serialized by /usr/bin/python3, see below) with an UNUSED piece "abc"
 * (resegmented into its parts), a USER_DEFINED piece "<x>" (matched first, never merged)
 * and scores chosen so the merge order matters. Pieces:
 *  0 <unk> 1 <s> 2 </s> 3 ▁ 4 a 5 b 6 c 7 d 8 ab(-0.5) 9 abc(-0.25, UNUSED) 10 abcd(-0.75)
 *  11 cd(-0.6) 12 <x>(USER_DEFINED) 13 ▁a(-5.5) 14 bc(-0.3); BPE, identity normalizer. */
static const char SMALL_MODEL_HEX[] =
    "0a0e0a053c756e6b3e150000000018020a0c0a033c733e150000000018030a0d0a043c2f733e150000000018030a0a"
    "0a03e2968115000080bf0a080a016115000000c00a080a016215000040c00a080a016315000080c00a080a01641500"
    "00a0c00a090a02616215000000bf0a0c0a0361626315000080be18050a0b0a046162636415000040bf0a090a026364"
    "159a9919bf0a0c0a033c783e150000000018040a0b0a04e2968161150000b0c00a090a026263159a9999be12021802"
    "1a0a0a086964656e74697479";

static Tokenizer *small_model(void) {
    uint8_t buf[256];
    size_t n = strlen(SMALL_MODEL_HEX) / 2;
    for (size_t i = 0; i < n; i++) sscanf(SMALL_MODEL_HEX + 2 * i, "%2hhx", &buf[i]);
    Tokenizer *t = tok_load_mem(buf, n, "small.model");
    if (!t) fail_msg("small model: %s", err_msg());
    return t;
}

static void test_unused_and_user_defined(void **state) {
    (void)state;
    Tokenizer *t = small_model();
    assert_string_equal(tok_kind(t), "sentencepiece");
    assert_int_equal(tok_type(t, 9), TOK_UNUSED);
    assert_int_equal(tok_type(t, 12), TOK_USER_DEFINED);
    ENC(t, "abcd", 3, 10);        /* a+bc -> abc (unused, still merges) -> abcd */
    ENC(t, "abc", 3, 4, 14);      /* abc is UNUSED: resegmented into a + bc */
    ENC(t, "abcabc", 3, 4, 14, 4, 14);
    ENC(t, "ab<x>cd", 3, 8, 12, 11);
    ENC(t, "<x>", 3, 12);
    ENC(t, "<x><x>a", 3, 12, 12, 4);
    ENC(t, "zz", 3, 0);
    ENC(t, "a zz b", 13, 3, 0, 3, 5);
    ENC(t, "cdab", 3, 11, 8);
    DEC(t, "a  \xe2\x81\x87  b", 13, 3, 0, 3, 5);
    tok_free(t);
}

/* The whole corpus as ONE text (3.2 MB): checks the O(n log n) path on a long input, and
 * the segment-by-segment BPE (newlines never merge) against sentencepiece:
 * n ids and h = h*31 + id mod 2^32 over them, from python3-sentencepiece. */
static void test_encode_whole_corpus(void **state) {
    (void)state;
    struct {
        const char *rel;
        int n, first, last;
        uint32_t h;
    } c[] = {{L2_MODEL, 859224, 12689, 29889, 1976424142u}, {L2_BIN, 859224, 12689, 29889, 1976424142u},
             {T105_MODEL, 3189254, 3, -1, 2230169158u}};
    size_t n;
    char *text = file_read_all(shared_path("corpora/war-and-peace.txt"), &n, 0);
    assert_non_null(text);
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        Tokenizer *t = load(c[k].rel);
        int *ids, n_ids;
        assert_int_equal(tok_encode(t, text, n, 0, 0, &ids, &n_ids), 0);
        assert_int_equal(n_ids, c[k].n);
        uint32_t h = 0;
        for (int i = 0; i < n_ids; i++) h = h * 31u + (uint32_t)ids[i];
        assert_int_equal(h, c[k].h);
        assert_int_equal(ids[0], c[k].first);
        if (c[k].last >= 0) {
            assert_int_equal(ids[n_ids - 1], c[k].last);
            /* and it decodes back to the text (no unknown pieces in this vocabulary) */
            size_t dl;
            char *back = tok_decode(t, ids, n_ids, &dl);
            assert_non_null(back);
            assert_int_equal(dl, n);
            assert_memory_equal(back, text, n);
            free(back);
        }
        free(ids);
        tok_free(t);
    }
    free(text);
}

/* Concurrent encodes on one tokenizer give the sequential results. */
static void test_concurrent_encode(void **state) {
    (void)state;
    Tokenizer *t = load(L2_MODEL);
    size_t n;
    char *text = file_read_all(shared_path("corpora/war-and-peace.txt"), &n, 0);
    assert_non_null(text);
    enum { CHUNKS = 64 };
    size_t step = n / CHUNKS;
    uint32_t seq[CHUNKS], par[CHUNKS];
    for (int pass = 0; pass < 2; pass++) {
        uint32_t *out = pass ? par : seq;
        int bad = 0;
#pragma omp parallel for schedule(dynamic) num_threads(pass ? 4 : 1) reduction(+ : bad)
        for (int c = 0; c < CHUNKS; c++) {
            int *ids, m;
            if (tok_encode(t, text + (size_t)c * step, step, 1, 0, &ids, &m) != 0) {
                bad++;
                continue;
            }
            uint32_t h = 0;
            for (int i = 0; i < m; i++) h = h * 31u + (uint32_t)ids[i];
            out[c] = h;
            free(ids);
        }
        assert_int_equal(bad, 0);
    }
    assert_memory_equal(seq, par, sizeof seq);
    free(text);
    tok_free(t);
}

/* ---- decoding ----------------------------------------------------------------------------- */

static void test_decode(void **state) {
    (void)state;
    Tokenizer *t = load(L2_MODEL);
    /* byte pieces are reassembled into UTF-8, malformed bytes become U+FFFD */
    DEC(t, "\xf0\x9f\x98\x80", 243, 162, 155, 131);
    DEC(t, "\xef\xbf\xbd" "A", 3 + 0x80, 3 + 0x41);
    DEC(t, "\xef\xbf\xbd\xef\xbf\xbd", 3 + 0xe6, 3 + 0x97);                  /* truncated character */
    DEC(t, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3 + 0xf0, 3 + 0x9f, 3 + 0x98); /* likewise */
    DEC(t, "a\nb", 263, 13, 29890);
    DEC(t, "", 1);
    /* sentencepiece drops the first "▁" of the text, and only that one here */
    DEC(t, "hello", 22172);
    DEC(t, " hello", 29871, 22172);
    DEC(t, "  hello", 29871, 29871, 22172);
    DEC(t, " hello", 1, 29871, 22172, 2);
    DEC(t, "A  hello", 3 + 0x41, 29871, 22172);
    /* unknown and control ids */
    DEC(t, " \xe2\x81\x87  hello", 0, 22172);
    DEC(t, "hello", 2, 22172);
    /* ids out of range: an error naming the id */
    const int bad[] = {22172, 32000};
    assert_null(tok_decode(t, bad, 2, NULL));
    assert_non_null(strstr(err_msg(), "32000"));
    const int neg[] = {-1};
    assert_null(tok_decode(t, neg, 1, NULL));
    assert_non_null(strstr(err_msg(), "out of range"));
    assert_null(tok_piece(t, 32000, NULL));
    tok_free(t);

    /* remove_extra_whitespaces models strip every leading "▁" while the text is empty; this
     * model stores its own unk_surface */
    t = load(T105_MODEL);
    DEC(t, "hello", 3, 3, 8, 4, 14, 14, 7);
    DEC(t, " \\342\\201\\207 ", 0);
    tok_free(t);
    t = load(T105_BIN); /* the .bin cannot store it: sentencepiece's default */
    DEC(t, " \xe2\x81\x87 ", 0);
    tok_free(t);
}

static void test_decode_piece(void **state) {
    (void)state;
    Tokenizer *t = load(L2_BIN);
    char buf[8];
    size_t len;
    const char *p = tok_decode_piece(t, 1, 22172, buf, &len); /* after BOS: no leading space */
    assert_int_equal(len, 5);
    assert_memory_equal(p, "hello", 5);
    p = tok_decode_piece(t, 22172, 22172, buf, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, " hello", 6);
    p = tok_decode_piece(t, 22172, 13, buf, &len); /* <0x0A> -> "\n" */
    assert_ptr_equal(p, buf);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], '\n');
    p = tok_decode_piece(t, 22172, 3, buf, &len); /* <0x00> -> one NUL byte */
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 0);
    p = tok_decode_piece(t, 22172, 2, buf, &len); /* control: nothing */
    assert_int_equal(len, 0);
    p = tok_decode_piece(t, 22172, 0, buf, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "<unk>", 5);
    assert_null(tok_decode_piece(t, 1, 32000, buf, &len));
    assert_null(tok_decode_piece(t, 1, -5, buf, &len));
    assert_non_null(strstr(err_msg(), "-5"));
    tok_free(t);

    /* the stories260K greedy reference was printed piece by piece like this */
    t = load(T512_BIN);
    size_t n;
    char *want = file_read_all(shared_path("models/stories260K/greedy_256_from_bos.txt"), &n, 0);
    assert_non_null(want);
    int *ids, m;
    assert_int_equal(tok_encode(t, want, n, 1, 0, &ids, &m), 0);
    char *got = malloc(n + 64);
    size_t o = 0;
    for (int i = 1; i < m; i++) {
        p = tok_decode_piece(t, ids[i - 1], ids[i], buf, &len);
        assert_non_null(p);
        assert_true(o + len <= n + 63);
        memcpy(got + o, p, len);
        o += len;
    }
    assert_int_equal(o, n);
    assert_memory_equal(got, want, n);
    free(got);
    free(ids);
    free(want);
    tok_free(t);
}

/* ---- arrays (GGUF) ------------------------------------------------------------------------ */

static void test_init_from_vocab(void **state) {
    (void)state;
    /* types inferred: 0 unk, 1-2 control, the rest normal */
    const char *pieces[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "ab"};
    const float scores[] = {0, 0, 0, -1, -2, -3, -0.5f, -0.1f};
    Tokenizer *t = tok_init_from_vocab(8, pieces, NULL, scores, NULL, 1, 2, 0);
    assert_non_null(t);
    assert_string_equal(tok_kind(t), "gguf");
    assert_int_equal(tok_type(t, 0), TOK_UNKNOWN);
    assert_int_equal(tok_type(t, 1), TOK_CONTROL);
    assert_int_equal(tok_type(t, 4), TOK_NORMAL);
    ENC(t, "ab", 7);
    ENC(t, "ab ab", 7, 7);
    ENC(t, "ba", 3, 5, 4);
    ENC(t, "ac", 3, 4, 0); /* no byte pieces: unknown */
    check_enc(t, "ab", 2, 1, 1, (const int[]){1, 7, 2}, 3);
    tok_set_whitespace(t, 0, 0);
    ENC(t, "ab", 6);
    tok_free(t);
    /* bad arguments */
    assert_null(tok_init_from_vocab(0, pieces, NULL, NULL, NULL, -1, -1, -1));
    assert_null(tok_init_from_vocab(8, pieces, NULL, NULL, NULL, 9, 2, 0));
    assert_non_null(strstr(err_msg(), "bos 9"));
    const int32_t types[] = {2, 3, 3, 1, 1, 7, 1, 1};
    assert_null(tok_init_from_vocab(8, pieces, NULL, NULL, types, 1, 2, 0));
    assert_non_null(strstr(err_msg(), "token 5"));
    /* no BOS: add_bos is an error */
    t = tok_init_from_vocab(8, pieces, NULL, scores, NULL, -1, -1, 0);
    int *ids, n;
    assert_int_equal(tok_encode(t, "a", 1, 1, 0, &ids, &n), -1);
    assert_non_null(strstr(err_msg(), "BOS"));
    tok_free(t);
}

/* ---- tokenizer.json --------------------------------------------------------------------- */

static const char SMALL_JSON[] =
    "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
    "  {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\xe2\x96\x81\"},"
    "   {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}]},"
    " \"pre_tokenizer\": null,"
    " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": false,"
    "  \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"\xe2\x96\x81\": 3, \"a\": 4, \"b\": 5, \"ab\": 6,"
    "             \"\xe2\x96\x81" "a\": 7, \"\xe2\x96\x81" "ab\": 8},"
    "  \"merges\": [\"a b\", \"\xe2\x96\x81 a\", \"\xe2\x96\x81 ab\", \"\xe2\x96\x81" "a b\"]}}";

static Tokenizer *json_tok(const char *json) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(file_write_all_atomic(path, json, strlen(json)), 0);
    Tokenizer *t = tok_load(path);
    unlink(path);
    rmdir(dir);
    return t;
}

static void test_json_small(void **state) {
    (void)state;
    Tokenizer *t = json_tok(SMALL_JSON);
    if (!t) fail_msg("%s", err_msg());
    assert_string_equal(tok_kind(t), "tokenizer.json");
    assert_int_equal(tok_bos_id(t), 1);
    assert_int_equal(tok_eos_id(t), 2);
    assert_int_equal(tok_type(t, 1), TOK_CONTROL);
    /* rank order: "a b" (0) first, then "▁ ab" (2); "▁ a" (1) never applies after it */
    ENC(t, "ab", 8);
    ENC(t, "a", 7);
    ENC(t, "ba", 3, 5, 4);
    ENC(t, "xyz", 3, 0); /* unknown run fused into one <unk> */
    /* added tokens are split out of the raw text first; each piece is normalized on its own */
    ENC(t, "<s>ab</s>", 1, 8, 2);
    ENC(t, "ab<s>", 8, 1);
    DEC(t, "ab ab", 8, 1, 8);
    tok_free(t);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static void expect_error(const char *path, const char *what) {
    Tokenizer *t = tok_load(path);
    if (t) fail_msg("%s loaded, expected an error about '%s'", path, what);
    const char *m = err_msg();
    if (!strstr(m, path) || !strstr(m, what)) fail_msg("error for %s: '%s' (expected '%s')", path, m, what);
}

static void test_errors(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[600];
    size_t n;
    char *bin = file_read_all(shared_path(T512_BIN), &n, 0);
    char *model = NULL;
    size_t mn;
    assert_non_null(bin);

    /* missing, empty, directory */
    snprintf(path, sizeof path, "%s/missing.model", dir);
    expect_error(path, "cannot open");
    snprintf(path, sizeof path, "%s/empty.bin", dir);
    write_file(path, "", 0);
    expect_error(path, "empty file");
    unlink(path);
    expect_error(dir, "not a regular file");

    /* truncated llama2.c file: cut inside a record */
    snprintf(path, sizeof path, "%s/trunc.bin", dir);
    write_file(path, bin, 101);
    expect_error(path, "truncated");
    assert_null(tok_load_llama2c(path, 0));
    /* too few records for the vocabulary size the model asks for */
    write_file(path, bin, n);
    assert_null(tok_load_llama2c(path, 600));
    assert_non_null(strstr(err_msg(), "truncated"));
    Tokenizer *t = tok_load_llama2c(path, 100); /* run.c reads 100 and ignores the rest */
    assert_non_null(t);
    assert_int_equal(tok_vocab_size(t), 100);
    tok_free(t);
    /* corrupted llama2.c file: a negative length */
    bin[4 + 4] = (char)0xff, bin[4 + 5] = (char)0xff, bin[4 + 6] = (char)0xff, bin[4 + 7] = (char)0xff;
    write_file(path, bin, n);
    expect_error(path, "field 'len'");
    unlink(path);

    /* truncated / corrupted SentencePiece model */
    model = file_read_all(shared_path(T105_MODEL), &mn, 0);
    assert_non_null(model);
    snprintf(path, sizeof path, "%s/trunc.model", dir);
    write_file(path, model, mn - 7);
    expect_error(path, "runs past the end");
    model[1] = 0x7f; /* first piece's length now covers the next ones: garbage inside */
    write_file(path, model, mn);
    expect_error(path, "SentencePiece");
    model[1] = (char)0x8e; /* unterminated varint swallowing bytes */
    memset(model + 1, 0xff, 12);
    write_file(path, model, mn);
    expect_error(path, "varint");
    unlink(path);

    /* a SentencePiece model that is not BPE */
    static const uint8_t unigram[] = {0x0a, 0x09, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x18, 0x02,
                                      0x12, 0x02, 0x18, 0x01};
    snprintf(path, sizeof path, "%s/unigram.model", dir);
    write_file(path, unigram, sizeof unigram);
    expect_error(path, "model_type");
    unlink(path);
    /* a duplicate piece */
    static const uint8_t dup[] = {0x0a, 0x09, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x18, 0x02,
                                  0x0a, 0x03, 0x0a, 0x01, 'a', 0x0a, 0x03, 0x0a, 0x01, 'a',
                                  0x12, 0x02, 0x18, 0x02};
    snprintf(path, sizeof path, "%s/dup.model", dir);
    write_file(path, dup, sizeof dup);
    expect_error(path, "already defined");
    unlink(path);

    /* JSON */
    snprintf(path, sizeof path, "%s/bad.json", dir);
    const char *trunc = "{\"model\": {\"type\": \"BPE\", ";
    write_file(path, trunc, strlen(trunc));
    expect_error(path, "invalid JSON");
    const char *wp = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}";
    write_file(path, wp, strlen(wp));
    expect_error(path, "model.type");
    const char *bl = "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                     "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}";
    write_file(path, bl, strlen(bl));
    expect_error(path, "ByteLevel");
    const char *bm = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}";
    write_file(path, bm, strlen(bm));
    expect_error(path, "merged piece is not in model.vocab");
    const char *bid = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}";
    write_file(path, bid, strlen(bid));
    expect_error(path, "model.vocab");
    unlink(path);

    /* garbage */
    snprintf(path, sizeof path, "%s/garbage", dir);
    write_file(path, "\x12\x34\x56\x78\x9a", 5);
    assert_null(tok_load(path));
    assert_non_null(strstr(err_msg(), path));
    unlink(path);
    free(bin);
    free(model);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_real_files),
        cmocka_unit_test(test_encode_llama2),
        cmocka_unit_test(test_encode_no_byte_fallback),
        cmocka_unit_test(test_unused_and_user_defined),
        cmocka_unit_test(test_encode_whole_corpus),
        cmocka_unit_test(test_concurrent_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_piece),
        cmocka_unit_test(test_init_from_vocab),
        cmocka_unit_test(test_json_small),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
