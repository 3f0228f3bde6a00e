/* tests/task/test_prompt_cut_xtok.c - a generation prompt cut in text for two models with
 * different tokenizers (task_prompt_cut_text; issue 14 item 5): the demo's SentencePiece
 * tokenizer (512 pieces, whole words) and a byte-level BPE one of another granularity.
 *  1. Cutting each model's tokens (BOS + the latest ones, eval_prompt_fit) gives the two
 *     models different texts; the text cut gives one text that fits both, and it is the
 *     smallest cut at a word start (one word more does not fit one of them).
 *  2. A prompt that fits is not cut; a single long word is cut at a character; a context
 *     too small even for the last character is refused. */
#include "testutil.h"
#include "task/task.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const char *PROMPT =
    "Package: loqui\nDescription: Loqui is a IRC/chat client for the GNOME desktop, written in Python. It supports "
    "multiple servers, automatic reconnection and nick completion.\nSection:";

static int count(const Tokenizer *t, const char *s) {
    int *ids = NULL, n = 0;
    assert_int_equal(tok_encode(t, s, strlen(s), tok_bos_id(t) >= 0, 0, &ids, &n), 0);
    free(ids);
    return n;
}

/* the text a model reads when its prompt is cut in tokens: BOS + the latest ones */
static char *token_cut_text(const Tokenizer *t, const char *s, int limit) {
    int *ids = NULL, n = 0, bos = tok_bos_id(t) >= 0;
    assert_int_equal(tok_encode(t, s, strlen(s), bos, 0, &ids, &n), 0);
    size_t len = 0;
    int keep = limit - bos;
    char *txt = n > limit ? tok_decode(t, ids + n - keep, keep, &len) : tok_decode(t, ids + bos, n - bos, &len);
    free(ids);
    return txt;
}

static void test_two_tokenizers(void **st) {
    (void)st;
    Tokenizer *a = tok_load("demo/models/v1/tokenizer.model"), *b = tok_load("tests/tokenizer/regress/json/tiny-bytelevel.json");
    assert_non_null(a);
    assert_non_null(b);
    int na = count(a, PROMPT), nb = count(b, PROMPT);
    assert_true(nb > na + 10); /* b is finer: more tokens for the same text */
    int limits[2] = {na * 2 / 3, nb * 2 / 3};
    /* the token cut: each model keeps another text */
    char *ta = token_cut_text(a, PROMPT, limits[0]), *tb = token_cut_text(b, PROMPT, limits[1]);
    assert_non_null(ta);
    assert_non_null(tb);
    if (strcmp(ta, tb) == 0) fail_msg("a token cut gave both models the same text: the test shows nothing");
    free(ta);
    free(tb);
    /* the text cut: one text, within both contexts, at a word start, the smallest such */
    const Tokenizer *toks[2] = {a, b};
    size_t start = 0;
    assert_int_equal(task_prompt_cut_text(PROMPT, toks, limits, 2, &start), 0);
    assert_true(start > 0);
    assert_true(PROMPT[start - 1] == ' ' || PROMPT[start - 1] == '\n');
    assert_true(count(a, PROMPT + start) <= limits[0]);
    assert_true(count(b, PROMPT + start) <= limits[1]);
    size_t prev = start - 1;
    while (prev > 0 && !(PROMPT[prev - 1] == ' ' || PROMPT[prev - 1] == '\n')) prev--;
    if (count(a, PROMPT + prev) <= limits[0] && count(b, PROMPT + prev) <= limits[1])
        fail_msg("the cut at %zu fits but %zu was chosen", prev, start);
    /* the finer tokenizer decides here: cutting for a alone keeps more text */
    size_t start_a = 0;
    assert_int_equal(task_prompt_cut_text(PROMPT, toks, limits, 1, &start_a), 0);
    assert_true(start_a < start);
    tok_free(a);
    tok_free(b);
}

static void test_edges(void **st) {
    (void)st;
    Tokenizer *b = tok_load("tests/tokenizer/regress/json/tiny-bytelevel.json");
    assert_non_null(b);
    const Tokenizer *toks[1] = {b};
    size_t start = 99;
    int lim = count(b, PROMPT);
    assert_int_equal(task_prompt_cut_text(PROMPT, toks, &lim, 1, &start), 0);
    assert_int_equal(start, 0); /* fits whole */
    const char *word = "Supercalifragilisticexpialidocious\xc3\xa9\xc3\xa9\xc3\xa9";
    lim = 6;
    assert_int_equal(task_prompt_cut_text(word, toks, &lim, 1, &start), 0);
    assert_true(start > 0);
    assert_true(((unsigned char)word[start] & 0xC0) != 0x80); /* never inside a character */
    assert_true(count(b, word + start) <= 6);
    lim = 1;
    assert_int_equal(task_prompt_cut_text(word, toks, &lim, 1, &start), -1);
    tok_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_tokenizers), cmocka_unit_test(test_edges)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
