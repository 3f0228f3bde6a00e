/* tests/metrics/test_rouge.c - ROUGE against tools/metrics/rouge_ref.py's fixture (an independent
 * Python implementation of rouge_score's definitions with nltk's Porter stemmer), hand-computed
 * cases, the tokenizer's edges, the stemmer against nltk, and answer extraction. */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "metrics/answer.h"
#include "metrics/rouge.h"

#include <cJSON.h>
#include <math.h>

#define CLOSE(a, b) assert_true(fabs((a) - (b)) <= 1e-12)

static void check_score(const RougeScore *s, double p, double r, double f) {
    CLOSE(s->precision, p);
    CLOSE(s->recall, r);
    CLOSE(s->f1, f);
}

/* Values worked out by hand (see docs/metrics.md for the first). */
static void test_hand_computed(void **state) {
    (void)state;
    RougeResult r;
    /* target 6 tokens (the x2, cat, sat, on, mat), prediction 5: unigram overlap 5;
     * bigrams: 5 vs 4, shared "the cat", "on the", "the mat" = 3; LCS "the cat on the mat" = 5 */
    assert_int_equal(rouge_compute("The cat sat on the mat.", "the cat, on the mat", 0, &r), 0);
    check_score(&r.rouge1, 1.0, 5.0 / 6, 10.0 / 11);
    check_score(&r.rouge2, 0.75, 0.6, 2.0 / 3);
    check_score(&r.rougeL, 1.0, 5.0 / 6, 10.0 / 11);
    /* clipping: "the" x4 vs "the": overlap min(4, 1) = 1 */
    assert_int_equal(rouge_compute("the the the the", "the", 0, &r), 0);
    check_score(&r.rouge1, 1.0, 0.25, 0.4);
    check_score(&r.rouge2, 0.0, 0.0, 0.0); /* the prediction has no bigram: 0 / max(0, 1) */
    check_score(&r.rougeL, 1.0, 0.25, 0.4);
    /* stemming: running -> run, dogs -> dog, runs -> run */
    assert_int_equal(rouge_compute("running dogs", "the dog runs", 1, &r), 0);
    check_score(&r.rouge1, 2.0 / 3, 1.0, 0.8);
    check_score(&r.rouge2, 0.0, 0.0, 0.0);
    check_score(&r.rougeL, 1.0 / 3, 0.5, 0.4);
    assert_int_equal(rouge_compute("running dogs", "the dog runs", 0, &r), 0);
    check_score(&r.rouge1, 0.0, 0.0, 0.0);
    /* empty sides: 0 everywhere, as rouge_score */
    const char *pairs[][2] = {{"", ""}, {"a b", ""}, {"", "a b"}, {"...", "?!"}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(rouge_compute(pairs[i][0], pairs[i][1], 1, &r), 0);
        check_score(&r.rouge1, 0, 0, 0);
        check_score(&r.rouge2, 0, 0, 0);
        check_score(&r.rougeL, 0, 0, 0);
    }
    /* ROUGE-3 through the token API */
    RougeTokens t, p;
    RougeScore s;
    assert_int_equal(rouge_tokenize("a b c d", 7, 0, &t), 0);
    assert_int_equal(rouge_tokenize("a b c x b c d", 13, 0, &p), 0);
    assert_int_equal(rouge_n(&t, &p, 3, &s), 0);
    /* trigrams: target abc bcd; prediction abc bcx cxb xbc bcd: 2 shared */
    check_score(&s, 2.0 / 5, 1.0, 2 * 0.4 * 1.0 / 1.4);
    assert_int_equal(rouge_n(&t, &p, 0, &s), -1);
    assert_non_null(strstr(err_msg(), "n >= 1"));
    rouge_tokens_free(&t);
    rouge_tokens_free(&p);
}

static void expect_tokens(const char *text, size_t len, int stem, const char *joined) {
    RougeTokens t;
    assert_int_equal(rouge_tokenize(text, len, stem, &t), 0);
    char buf[512] = "";
    for (size_t i = 0; i < t.n; i++) {
        if (i) strcat(buf, "|");
        strcat(buf, t.tok[i]);
    }
    if (strcmp(buf, joined) != 0) {
        print_error("tokens of '%s': got '%s', expected '%s'\n", text, buf, joined);
        fail();
    }
    rouge_tokens_free(&t);
}

static void test_tokenizer(void **state) {
    (void)state;
    expect_tokens("Hello, World! 42x", 17, 0, "hello|world|42x");
    expect_tokens("state-of-the-art", 16, 0, "state|of|the|art");
    expect_tokens("caf\xc3\xa9 na\xc3\xafve", 12, 0, "caf|na|ve");
    expect_tokens("\xc4\xb0stanbul", 9, 0, "i|stanbul");            /* U+0130 */
    expect_tokens("\xe2\x84\xaa" "elvin", 8, 0, "kelvin");          /* U+212A */
    expect_tokens("ab\xff" "cd\xc3", 6, 0, "ab|cd");                /* invalid UTF-8 bytes separate */
    expect_tokens("a\0b", 3, 0, "a|b");                            /* NUL is a separator */
    expect_tokens("  \t\n ", 5, 0, "");
    expect_tokens("Running flies dies abc", 22, 1, "run|fli|die|abc");
    /* Python's str.lower() maps exactly two non-ASCII code points into [a-z0-9]:
     * U+0130 and U+212A. Check that no other one makes a token. */
    for (int32_t cp = 0x80; cp <= 0x10ffff; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        char u[4];
        size_t n;
        if (cp < 0x800) { u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
        else if (cp < 0x10000) { u[0] = (char)(0xe0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[2] = (char)(0x80 | (cp & 0x3f)); n = 3; }
        else { u[0] = (char)(0xf0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f)); n = 4; }
        RougeTokens t;
        assert_int_equal(rouge_tokenize(u, n, 0, &t), 0);
        if (t.n != 0 && cp != 0x130 && cp != 0x212a) {
            print_error("U+%04X makes the token '%s'\n", (unsigned)cp, t.tok[0]);
            fail();
        }
        rouge_tokens_free(&t);
    }
    /* a huge run of y's stems in linear time (NLTK's consonant test is recursive on y) */
    size_t big = 200000;
    char *y = malloc(big + 1);
    memset(y, 'y', big);
    y[big] = 0;
    RougeTokens t;
    assert_int_equal(rouge_tokenize(y, big, 1, &t), 0);
    assert_int_equal(t.n, 1);
    free(y);
    rouge_tokens_free(&t);
}

static void test_porter_against_nltk(void **state) {
    (void)state;
    size_t n;
    char *data = file_read_all("tests/fixtures/metrics/porter_cases.tsv", &n, 0);
    if (!data) fail_msg("%s", err_msg());
    size_t count = 0, bad = 0;
    char out[256];
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        rouge_porter_stem(line, strlen(line), out);
        if (strcmp(out, tab + 1) != 0) {
            if (bad < 10) print_error("stem(%s) = %s, nltk: %s\n", line, out, tab + 1);
            bad++;
        }
        count++;
    }
    free(data);
    printf("# porter: %zu words, %zu differ from nltk\n", count, bad);
    assert_true(count >= 5000);
    assert_int_equal(bad, 0);
}

static double get(const cJSON *o, const char *k, int i) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsArray(a) && cJSON_GetArraySize(a) == 3);
    return cJSON_GetArrayItem(a, i)->valuedouble;
}

static void test_against_reference_fixture(void **state) {
    (void)state;
    size_t n;
    char *data = file_read_all("tests/fixtures/metrics/rouge_cases.jsonl", &n, 0);
    if (!data) fail_msg("%s", err_msg());
    size_t cases = 0, bad = 0, nonzero = 0;
    double worst = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        const char *t = cJSON_GetObjectItemCaseSensitive(o, "target")->valuestring;
        const char *p = cJSON_GetObjectItemCaseSensitive(o, "prediction")->valuestring;
        int stem = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stem"));
        RougeResult r;
        assert_int_equal(rouge_compute(t, p, stem, &r), 0);
        const RougeScore *mine[3] = {&r.rouge1, &r.rouge2, &r.rougeL};
        const char *names[3] = {"rouge1", "rouge2", "rougeL"};
        for (int m = 0; m < 3; m++) {
            double got[3] = {mine[m]->precision, mine[m]->recall, mine[m]->f1};
            for (int k = 0; k < 3; k++) {
                double want = get(o, names[m], k), d = fabs(got[k] - want);
                if (d > worst) worst = d;
                if (want != 0) nonzero++;
                if (d > 1e-9) {
                    if (bad < 10)
                        print_error("case %zu (%s): %s[%d] = %.17g, reference %.17g\n", cases + 1,
                                    cJSON_GetObjectItemCaseSensitive(o, "note")->valuestring, names[m], k, got[k], want);
                    bad++;
                }
            }
        }
        cJSON_Delete(o);
        cases++;
    }
    free(data);
    printf("# rouge: %zu cases, %zu nonzero reference values, max |difference| %.3g, %zu beyond 1e-9\n", cases, nonzero,
           worst, bad);
    assert_true(cases >= 400);
    assert_true(nonzero > 1500);
    assert_int_equal(bad, 0);
}

static void test_gsm8k_extraction(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"She has 3 apples and buys 5 more.\n#### 8", "8"},
        {"#### $1,234.50.", "1234.5"},
        {"The answer is 72.", "72"},
        {"it costs $18.00 in total", "18"},
        {"first 5 then 7 #### 12 and later 99", "12"},
        {"#### -3", "-3"},
        {"a loss of -0.0", "0"},
        {"007 agents", "7"},
        {"from 10-20 items", "20"},
        {"#### no number here, but 4 before", "4"},
        {"3 #### nothing after", "3"},
        {"1,000,000 people", "1000000"},
        {"x-5", "5"},
        {"(-5)", "-5"},
        {"-$7", "-7"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = answer_gsm8k_extract(cases[i][0], out, sizeof out);
        if (rc != 1 || strcmp(out, cases[i][1]) != 0) {
            print_error("'%s': got %d '%s', expected '%s'\n", cases[i][0], rc, out, cases[i][1]);
            fail();
        }
    }
    assert_int_equal(answer_gsm8k_extract("no digits at all", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(answer_gsm8k_extract("", out, sizeof out), 0);
    assert_int_equal(answer_gsm8k_extract("#### 123456789", out, 5), -1);
    assert_non_null(strstr(err_msg(), "longer than 4"));
    assert_int_equal(answer_gsm8k_match("so 5 + 3 = 8\n#### 8", "Janet ... #### 8"), 1);
    assert_int_equal(answer_gsm8k_match("The answer is 8.00", "#### 8"), 1);
    assert_int_equal(answer_gsm8k_match("#### 9", "#### 8"), 0);
    assert_int_equal(answer_gsm8k_match("no idea", "#### 8"), 0);
    assert_int_equal(answer_gsm8k_match("", ""), 0);
    /* every GSM8K test reference has an answer after "####" */
    const char *path = shared_path("data/gsm8k/test.jsonl");
    size_t n;
    char *data = file_read_all(path, &n, 0);
    assert_non_null(data);
    size_t lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        const char *a = cJSON_GetObjectItemCaseSensitive(o, "answer")->valuestring;
        const char *mark = strstr(a, "####");
        assert_non_null(mark);
        assert_int_equal(answer_gsm8k_extract(a, out, sizeof out), 1);
        /* the canonical answer equals the text after "####" with commas dropped */
        char want[64];
        size_t w = 0;
        for (const char *c = mark + 4; *c && w < sizeof want - 1; c++)
            if (*c != ' ' && *c != ',') want[w++] = *c;
        want[w] = 0;
        if (strcmp(out, want) != 0) {
            print_error("'%s': %s vs %s\n", mark, out, want);
            fail();
        }
        cJSON_Delete(o);
        lines++;
    }
    free(data);
    assert_true(lines > 1000);
}

static void test_plain_exact_match(void **state) {
    (void)state;
    char *s = answer_normalize("  hello \t\n  world  ");
    assert_string_equal(s, "hello world");
    free(s);
    s = answer_normalize(" \n ");
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(answer_exact_match("A  B", " A B\n"), 1);
    assert_int_equal(answer_exact_match("a b", "A B"), 0); /* case-sensitive */
    assert_int_equal(answer_exact_match("", "   "), 1);
    assert_int_equal(answer_exact_match("ab", "a b"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_porter_against_nltk),
        cmocka_unit_test(test_against_reference_fixture),
        cmocka_unit_test(test_gsm8k_extraction),
        cmocka_unit_test(test_plain_exact_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
