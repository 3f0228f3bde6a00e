/* tests/metrics/test_mixture.c - the inference-time mixture of multiple-choice models
 * (metrics/mixture.h) on hand-computed instances, and its errors. */
#include "testutil.h"
#include "core/error.h"
#include "metrics/mixture.h"

#include <math.h>

static void parse(PredFile *f, const char *text, const char *name) {
    if (preds_parse_buffer(f, text, strlen(text), name, NULL) != 0) fail_msg("%s", err_msg());
}

/* Instance a (gold 0): M1 p = (.8, .2); the two M2 seeds p = (.3, .7) and (.4, .6): mean (.35, .65).
 *   mixture at weight w of M1: p0 = .35 + .45 w  > .5  iff  w > 1/3.
 * Instance b (gold 1): M1 (.5 + tiny, .5 - tiny): wrong; M2 mean (.1, .9): right at every w < ~.9. */
#define L(p) log(p)
static void test_hand_computed(void **state) {
    (void)state;
    char old[512], n1[512], n2[512];
    snprintf(old, sizeof old, "{\"id\":\"a\",\"correct\":true,\"prediction\":0,\"target\":0,\"choice_logprobs\":[%.17g,%.17g]}\n"
             "{\"id\":\"b\",\"correct\":false,\"prediction\":0,\"target\":1,\"choice_logprobs\":[%.17g,%.17g]}\n",
             L(.8), L(.2), L(.51), L(.49));
    snprintf(n1, sizeof n1, "{\"id\":\"b\",\"correct\":true,\"prediction\":1,\"choice_logprobs\":[%.17g,%.17g]}\n"
             "{\"id\":\"a\",\"correct\":false,\"prediction\":1,\"choice_logprobs\":[%.17g,%.17g]}\n", L(.1), L(.9), L(.3), L(.7));
    snprintf(n2, sizeof n2, "{\"id\":\"a\",\"correct\":false,\"prediction\":1,\"choice_logprobs\":[%.17g,%.17g]}\n"
             "{\"id\":\"b\",\"correct\":true,\"prediction\":1,\"choice_logprobs\":[%.17g,%.17g]}\n", L(.4), L(.6), L(.1), L(.9));
    PredFile fo, fn[2];
    parse(&fo, old, "old");
    parse(&fn[0], n1, "new1");
    parse(&fn[1], n2, "new2");
    size_t *idx[2];
    assert_int_equal(preds_match(&fo, &fn[0], &idx[0]), 0);
    assert_int_equal(preds_match(&fo, &fn[1], &idx[1]), 0);
    CompatInstance x[2];
    const double w[] = {0, 0.3, 0.34, 0.5, 1};
    const int right_a[] = {0, 0, 1, 1, 1}, right_b[] = {1, 1, 1, 1, 0};
    for (int g = 0; g < 5; g++) {
        assert_int_equal(mixture_instances(&fo, fn, idx, 2, w[g], x), 0);
        assert_int_equal(x[0].correct1, 1);
        assert_int_equal(x[1].correct1, 0);
        if (x[0].correct2 != right_a[g] || x[1].correct2 != right_b[g])
            fail_msg("w = %g: a %d (want %d), b %d (want %d)", w[g], x[0].correct2, right_a[g], x[1].correct2, right_b[g]);
        assert_int_equal(x[0].same_pred, right_a[g]); /* M1 predicts 0 on a */
    }
    /* one seed only: M2 seed 1 (.3, .7) on a: right iff .3 + .5 w > .5 iff w > .4 */
    assert_int_equal(mixture_instances(&fo, fn, idx, 1, 0.39, x), 0);
    assert_int_equal(x[0].correct2, 0);
    assert_int_equal(mixture_instances(&fo, fn, idx, 1, 0.41, x), 0);
    assert_int_equal(x[0].correct2, 1);
    free(idx[0]);
    free(idx[1]);
    preds_free(&fn[0]);
    preds_free(&fn[1]);
    /* errors: a file without log-likelihoods; another number of choices */
    parse(&fn[0], "{\"id\":\"a\",\"correct\":true}\n{\"id\":\"b\",\"correct\":true}\n", "bare");
    assert_int_equal(preds_match(&fo, &fn[0], &idx[0]), 0);
    assert_int_equal(mixture_instances(&fo, fn, idx, 1, 0.5, x), -1);
    assert_non_null(strstr(err_msg(), "bare:"));
    free(idx[0]);
    preds_free(&fn[0]);
    parse(&fn[0], "{\"id\":\"a\",\"correct\":true,\"choice_logprobs\":[-1,-2,-3]}\n{\"id\":\"b\",\"correct\":true,\"choice_logprobs\":[-1,-2]}\n", "three");
    assert_int_equal(preds_match(&fo, &fn[0], &idx[0]), 0);
    assert_int_equal(mixture_instances(&fo, fn, idx, 1, 0.5, x), -1);
    assert_non_null(strstr(err_msg(), "expected 2 finite numbers"));
    free(idx[0]);
    preds_free(&fn[0]);
    preds_free(&fo);
    cJSON *t2 = cJSON_CreateNumber(2), *ts = cJSON_CreateString("1"), *tb = cJSON_CreateString("x");
    assert_int_equal(mixture_gold_index(t2, 3), 2);
    assert_int_equal(mixture_gold_index(t2, 2), -1);
    assert_int_equal(mixture_gold_index(ts, 2), 1);
    assert_int_equal(mixture_gold_index(tb, 2), -1);
    cJSON_Delete(t2);
    cJSON_Delete(ts);
    cJSON_Delete(tb);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hand_computed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
