/* tests/tokenizer/test_tok_hostile.c - hand-made hostile tokenizer files, one per rule, in the
 * three formats (llama2.c tokenizer.bin, SentencePiece .model, tokenizer.json): huge and
 * negative lengths, lengths past the end, bad varints and wire types, oversized, empty and
 * NUL-holding pieces, out-of-range and sparse ids, non-UTF-8 text, escaped NULs, deep
 * nesting. Each must be refused with one message naming the file and the field (loaded
 * from memory in a buffer of the exact size, so ASan sees any overread). */
#include "testutil.h"
#include "core/error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

/* ---------------------------------------------------------------- helpers */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put32(Buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void putf(Buf *b, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    put32(b, v);
}
static void varint(Buf *b, uint64_t v) {
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        put(b, &c, 1);
    } while (v);
}
/* protobuf length-delimited field */
static void ld(Buf *b, unsigned field, const void *d, size_t n) {
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, n);
    put(b, d, n);
}
/* a SentencePiece piece record (ModelProto field 1) */
static void sp_piece(Buf *b, const void *s, size_t n, float score, unsigned type) {
    Buf p = {0};
    ld(&p, 1, s, n);
    varint(&p, 2 << 3 | 5);
    putf(&p, score);
    varint(&p, 3 << 3);
    varint(&p, type);
    ld(b, 1, p.p, p.n);
    free(p.p);
}
static void sp_bpe(Buf *b) { /* trainer_spec { model_type: BPE } */
    uint8_t ts[] = {3 << 3, 2};
    ld(b, 2, ts, sizeof ts);
}

enum { BIN, SPM, JSON };

/* loads from an exact-size copy; must fail with a message naming "hostile" and holding `want` */
static void refuse(int fmt, const void *d, size_t n, const char *want) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, d, n);
    err_clear();
    Tokenizer *t = fmt == BIN ? tok_load_bin_mem(copy, n, "hostile", 0)
                 : fmt == SPM ? tok_load_spm_mem(copy, n, "hostile")
                              : tok_load_json_mem(copy, n, "hostile", NULL);
    if (t) {
        tok_free(t);
        fail_msg("accepted a hostile file (wanted an error with \"%s\")", want);
    }
    if (!strstr(err_msg(), "hostile") || !strstr(err_msg(), want))
        fail_msg("message \"%s\": wanted one naming the file and holding \"%s\"", err_msg(), want);
    /* the detecting entry point refuses it too, and never crashes */
    t = tok_load_mem(copy, n, "hostile");
    assert_null(t);
    free(copy);
}
static void refuse_json(const char *text, const char *want) { refuse(JSON, text, strlen(text), want); }

/* ---------------------------------------------------------------- tokenizer.bin */

static void test_bin(void **state) {
    (void)state;
    Buf b = {0};
    put32(&b, 0xffffffffu); /* max_token_length -1 */
    refuse(BIN, b.p, b.n, "max_token_length");
    refuse(BIN, b.p, 3, "max_token_length"); /* cut inside it */
    b.n = 0;
    put32(&b, 16);
    refuse(BIN, b.p, b.n, "no token");
    putf(&b, 0);
    put32(&b, 5);
    put(&b, "<unk>", 5);
    size_t good = b.n;
    putf(&b, -1);
    refuse(BIN, b.p, b.n, "needs 8 bytes"); /* a score without its length */
    put32(&b, 0x80000000u); /* negative length */
    refuse(BIN, b.p, b.n, "field 'len'");
    b.n = good;
    putf(&b, -1);
    put32(&b, 0x7fffffffu); /* huge length, past the end */
    put(&b, "ab", 2);
    refuse(BIN, b.p, b.n, "field 'len'");
    /* NUL inside a piece, an empty piece: accepted, as llama2.c's run.c does (pieces are
     * bytes with a length; only the SentencePiece loader is strict about them) */
    b.n = good;
    putf(&b, -1);
    put32(&b, 3);
    put(&b, "a\0b", 3);
    putf(&b, -2);
    put32(&b, 0);
    Tokenizer *t = tok_load_bin_mem(b.p, b.n, "ok", 0);
    assert_non_null(t);
    assert_int_equal(tok_vocab_size(t), 3);
    tok_free(t);
    free(b.p);
}

/* ---------------------------------------------------------------- SentencePiece .model */

static void test_spm(void **state) {
    (void)state;
    Buf b = {0};
    sp_piece(&b, "<unk>", 5, 0, 2);
    size_t head = b.n;
    /* a length of 2^32 - 1 past the end */
    uint8_t huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'};
    put(&b, huge, sizeof huge);
    refuse(SPM, b.p, b.n, "runs past the end");
    /* varints: 11 bytes long, overflowing 64 bits, cut short */
    b.n = head;
    uint8_t longv[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    put(&b, longv, sizeof longv);
    refuse(SPM, b.p, b.n, "overflows 64 bits"); /* the 10th byte may only be 0 or 1 */
    b.n = head;
    uint8_t over[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    put(&b, over, sizeof over);
    refuse(SPM, b.p, b.n, "overflows 64 bits");
    b.n = head;
    uint8_t cut[] = {0x08, 0x80};
    put(&b, cut, sizeof cut);
    refuse(SPM, b.p, b.n, "truncated varint");
    /* wire types 3 and 4 (groups), 7; field number 0 */
    b.n = head;
    uint8_t grp[] = {0x0b, 0x0c};
    put(&b, grp, sizeof grp);
    refuse(SPM, b.p, b.n, "wire type");
    b.n = head;
    uint8_t f0[] = {0x02, 0x00};
    put(&b, f0, sizeof f0);
    refuse(SPM, b.p, b.n, "field number");
    /* pieces: 8000+ bytes, NUL, empty, unknown type, duplicate */
    char *big = malloc(9000);
    memset(big, 'x', 9000);
    b.n = head;
    sp_piece(&b, big, 9000, 0, 1);
    sp_bpe(&b);
    refuse(SPM, b.p, b.n, "fewer than 8000");
    free(big);
    b.n = head;
    sp_piece(&b, "a\0b", 3, 0, 1);
    sp_bpe(&b);
    refuse(SPM, b.p, b.n, "NUL");
    b.n = head;
    sp_piece(&b, "", 0, 0, 1);
    sp_bpe(&b);
    refuse(SPM, b.p, b.n, "non-empty");
    b.n = head;
    sp_piece(&b, "a", 1, 0, 7);
    sp_bpe(&b);
    refuse(SPM, b.p, b.n, "field 'type'");
    b.n = head;
    sp_piece(&b, "a", 1, 0, 1);
    sp_piece(&b, "a", 1, -1, 1);
    sp_bpe(&b);
    refuse(SPM, b.p, b.n, "already defined");
    /* a normalization charsmap whose trie runs past its end */
    b.n = head;
    sp_piece(&b, "a", 1, 0, 1);
    sp_bpe(&b);
    Buf ns = {0}, cm = {0};
    put32(&cm, 4096);
    put32(&cm, 0);
    ld(&ns, 2, cm.p, cm.n);
    ld(&b, 3, ns.p, ns.n);
    refuse(SPM, b.p, b.n, "trie size");
    free(ns.p);
    free(cm.p);
    /* non-UTF-8 bytes in a piece are accepted, as sentencepiece does (proto2 `string` is
     * not checked): such a piece can never match normalized text, and decodes as bytes */
    b.n = head;
    sp_piece(&b, "a\xff", 2, 0, 1);
    sp_bpe(&b);
    Tokenizer *t = tok_load_spm_mem(b.p, b.n, "ok");
    assert_non_null(t);
    tok_free(t);
    free(b.p);
}

/* ---------------------------------------------------------------- tokenizer.json */

static void test_json(void **state) {
    (void)state;
    refuse_json("{\"model\": {\"type\": \"BPE\", ", "invalid JSON");
    refuse_json("[1, 2]", "field 'model'");
    /* non-UTF-8: a bad byte, an overlong form, a surrogate, a cut sequence */
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\xff\":0},\"merges\":[]}}", "not valid UTF-8");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xc0\xaf\":0},\"merges\":[]}}", "not valid UTF-8");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xed\xa0\x80\":0},\"merges\":[]}}", "not valid UTF-8");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xe6\x97\":0},\"merges\":[]}}", "not valid UTF-8");
    /* an escaped NUL would cut the piece ("a\u0000b" -> "a"); an escaped backslash before
     * u0000 is an ordinary string */
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\\u0000b\":1},\"merges\":[]}}", "escaped NUL");
    const char *bs = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\\\\u0000b\":1},\"merges\":[]}}";
    Tokenizer *t = tok_load_json_mem((const uint8_t *)bs, strlen(bs), "ok", NULL);
    assert_non_null(t);
    assert_int_equal(tok_vocab_size(t), 2);
    tok_free(t);
    /* nesting: 5000 levels anywhere; normalizer Sequences 10 deep */
    size_t depth = 5000;
    char *deep = malloc(2 * depth + 32);
    size_t k = (size_t)sprintf(deep, "{\"x\":");
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    strcpy(deep + k, "}");
    refuse_json(deep, "nested deeper than 64 levels");
    free(deep);
    char seq[2048];
    k = (size_t)sprintf(seq, "{\"normalizer\":");
    for (int i = 0; i < 10; i++) k += (size_t)sprintf(seq + k, "{\"type\":\"Sequence\",\"normalizers\":[");
    k += (size_t)sprintf(seq + k, "{\"type\":\"NFC\"}");
    for (int i = 0; i < 10; i++) k += (size_t)sprintf(seq + k, "]}");
    sprintf(seq + k, ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}");
    refuse_json(seq, "nested deeper than 8 levels");
    /* ids: negative, 2^24, fractional, a string; sparse (a tiny file naming id 16777215) */
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", "expected an id");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":16777216},\"merges\":[]}}", "expected an id");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1.5},\"merges\":[]}}", "expected an id");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"0\"},\"merges\":[]}}", "expected an id");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":16777215},\"merges\":[]}}", "dense");
    refuse_json("{\"added_tokens\":[{\"id\":1e300,\"content\":\"x\"}],\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                "added_tokens");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "empty vocabulary");
    /* merges naming pieces that do not exist, or malformed */
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", "not in model.vocab");
    refuse_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":{}}}", "model.merges");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bin),
        cmocka_unit_test(test_spm),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
