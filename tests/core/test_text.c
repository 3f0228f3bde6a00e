/* tests/core/test_text.c - core/hash, core/utf8, core/strbuf: FNV-1a against the published
 * test vectors, UTF-8 validation against utf8proc's decoder on every 1..3-byte sequence and
 * a sampled set of 4-byte ones, the string builder across growth and printf sizes. */
#include "testutil.h"
#include "core/hash.h"
#include "core/strbuf.h"
#include "core/utf8.h"

#include <utf8proc.h>

/* FNV-1a vectors of the reference (isthe.com/chongo/tech/comp/fnv test suite). */
static void test_fnv_vectors(void **state) {
    (void)state;
    assert_true(hash_fnv64(HASH_FNV64_BASIS, "", 0) == 0xcbf29ce484222325ull);
    assert_true(hash_fnv64(HASH_FNV64_BASIS, "a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(hash_fnv64(HASH_FNV64_BASIS, "foobar", 6) == 0x85944171f73967e8ull);
    assert_true(hash_fnv64_str("foobar") == 0x85944171f73967e8ull);
    assert_true(hash_fnv32("", 0) == 0x811c9dc5u);
    assert_true(hash_fnv32("a", 1) == 0xe40c292cu);
    assert_true(hash_fnv32("foobar", 6) == 0xbf9cf968u);
    /* chaining: the hash of x then y is the hash of xy */
    assert_true(hash_fnv64(hash_fnv64(HASH_FNV64_BASIS, "foo", 3), "bar", 3) == 0x85944171f73967e8ull);
}

/* utf8proc's decoder as the reference: 1 char of k bytes is valid when it decodes k bytes
 * to a valid code point. */
static size_t ref_char_len(const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(s, (utf8proc_ssize_t)n, &cp);
    if (k <= 0 || !utf8proc_codepoint_valid(cp)) return 0;
    /* overlong forms: the shortest encoding of cp must have k bytes */
    size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    return (size_t)k == want ? (size_t)k : 0;
}

static void test_utf8_against_utf8proc(void **state) {
    (void)state;
    uint8_t b[4];
    size_t checked = 0;
    for (uint32_t a = 0; a < 256; a++) {
        b[0] = (uint8_t)a;
        assert_int_equal(utf8_char_len(b, 1), ref_char_len(b, 1));
        for (uint32_t c = 0; c < 256; c++) {
            b[1] = (uint8_t)c;
            assert_int_equal(utf8_char_len(b, 2), ref_char_len(b, 2));
            if (a < 0xe0 || a > 0xf4) continue;
            for (uint32_t d = 0; d < 256; d++) {
                b[2] = (uint8_t)d;
                size_t got = utf8_char_len(b, 3), want = ref_char_len(b, 3);
                if (got != want) fail_msg("%02x %02x %02x: %zu, want %zu", a, c, d, got, want);
                checked++;
                if (a >= 0xf0 && (d & 7) == 0) {
                    for (uint32_t e = 0x70; e < 0xd0; e += 5) { /* around the continuation range */
                        b[3] = (uint8_t)e;
                        got = utf8_char_len(b, 4), want = ref_char_len(b, 4);
                        if (got != want) fail_msg("%02x %02x %02x %02x: %zu, want %zu", a, c, d, e, got, want);
                    }
                }
            }
        }
    }
    assert_true(checked > 1000000);
}

static void test_utf8_prefix_and_cut(void **state) {
    (void)state;
    const char *ok = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    size_t n = strlen(ok);
    assert_int_equal(utf8_valid_prefix(ok, n), n);
    assert_int_equal(utf8_valid_prefix(ok, 2), 1);       /* é cut */
    assert_int_equal(utf8_valid_prefix("ab\xed\xa0\x80", 5), 2); /* a surrogate */
    assert_int_equal(utf8_valid_prefix("\xc0\xaf", 2), 0);       /* overlong '/' */
    assert_int_equal(utf8_valid_prefix("\xf4\x90\x80\x80", 4), 0); /* above U+10FFFF */
    assert_int_equal(utf8_valid_prefix("a\0b", 3), 3);           /* NUL is valid */
    assert_int_equal(utf8_valid_prefix("", 0), 0);
    assert_int_equal(utf8_cut(ok, n, 100), n);
    assert_int_equal(utf8_cut(ok, n, 2), 1);  /* not inside é */
    assert_int_equal(utf8_cut(ok, n, 3), 3);
    assert_int_equal(utf8_cut(ok, n, 8), 6);  /* not inside 😀 */
    assert_int_equal(utf8_cut(ok, n, 0), 0);
}

static void test_strbuf(void **state) {
    (void)state;
    StrBuf b = {0};
    char *empty = strbuf_take(&b);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    free(empty);
    for (int i = 0; i < 1000; i++) assert_int_equal(strbuf_printf(&b, "%d,", i), 0);
    assert_int_equal(b.p[b.n], 0);
    char big[700];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(strbuf_printf(&b, "[%s]", big), 0); /* longer than the small printf buffer */
    assert_int_equal(strbuf_put(&b, "a\0b", 3), 0);      /* bytes, NUL included */
    assert_int_equal(strbuf_puts(&b, "end"), 0);
    size_t n = b.n;
    char *s = strbuf_take(&b);
    assert_non_null(s);
    assert_int_equal(b.n, 0);
    assert_null(b.p);
    assert_memory_equal(s, "0,1,2,", 6);
    assert_memory_equal(s + n - 6, "a\0bend", 6);
    assert_int_equal(s[n], 0);
    assert_int_equal(s[n - 6 - 2 - (sizeof big - 1)], '[');
    free(s);
    /* a size that cannot be represented: sticky failure, take gives NULL */
    StrBuf c = {0};
    assert_int_equal(strbuf_puts(&c, "x"), 0);
    assert_int_equal(strbuf_reserve(&c, SIZE_MAX), -1);
    assert_int_equal(c.oom, 1);
    assert_int_equal(strbuf_puts(&c, "y"), -1);
    assert_null(strbuf_take(&c));
    assert_null(c.p);
    strbuf_free(&c);
}

/* utf8_sanitize against Python's bytes.decode("utf-8", "replace") (the WHATWG maximal
 * subpart rule; expected outputs computed with python3). */
static void test_utf8_sanitize(void **st) {
    (void)st;
    static const struct { const char *in; size_t n; const char *out; } v[] = {
        {"abc", 3, "abc"},
        {"a\xe2\x82", 3, "a\xef\xbf\xbd"},                      /* cut: one U+FFFD */
        {"\xe2\x82\xac", 3, "\xe2\x82\xac"},                     /* the euro sign */
        {"\xf0\x9f\x98", 3, "\xef\xbf\xbd"},                     /* cut 4-byte: one */
        {"\x80\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd"},             /* lone continuations: one each */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate: three */
        {"\xe0\x80\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong: three */
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"\xe2\x82x", 3, "\xef\xbf\xbdx"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xff", 1, "\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[64];
        size_t m = utf8_sanitize(v[i].in, v[i].n, out);
        assert_int_equal(m, strlen(v[i].out));
        assert_memory_equal(out, v[i].out, m);
        assert_int_equal(utf8_valid_prefix(out, m), m);
    }
    assert_int_equal(utf8_incomplete_tail("a\xe2\x82", 3), 2);
    assert_int_equal(utf8_incomplete_tail("a\xf0\x9f", 3), 2);
    assert_int_equal(utf8_incomplete_tail("a\xe2\x82\xac", 4), 0);
    assert_int_equal(utf8_incomplete_tail("a\xed\xa0", 3), 0); /* can never become valid */
    assert_int_equal(utf8_incomplete_tail("\x80", 1), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv_vectors),
        cmocka_unit_test(test_utf8_against_utf8proc),
        cmocka_unit_test(test_utf8_prefix_and_cut),
        cmocka_unit_test(test_strbuf),
        cmocka_unit_test(test_utf8_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
