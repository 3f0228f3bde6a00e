/* tests/train/test_data_task.c - task instances as masked training examples. */
#include "testutil.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "train/data_task.h"

static void check_set(const char *rel, TaskKind kind) {
    TaskSet all, ts;
    assert_int_equal(task_set_load(&all, shared_path(rel), NULL), 0);
    assert_int_equal(all.kind, kind);
    int idx[50];
    for (int i = 0; i < 50; i++) idx[i] = i;
    assert_int_equal(task_set_subset(&all, idx, 50, &ts), 0);
    Tokenizer *t = tok_load(shared_path("models/stories260K/tok512.bin"));
    assert_non_null(t);
    TaskPrompt p;
    assert_int_equal(task_prompt_default(&p, &ts), 0);
    TaskDataOptions o;
    task_data_options_default(&o);
    TrainData d;
    if (data_task_open(&d, &ts, NULL, &p, t, &o) != 0) fail_msg("%s", err_msg());
    assert_int_equal(d.n[DATA_TRAIN], 40); /* 80/20 */
    assert_int_equal(d.n[DATA_VAL], 10);
    int T = d.seq_len;
    assert_true(T > 8 && T < 512);
    int *tok = malloc(sizeof(int) * T), *tgt = malloc(sizeof(int) * T);
    float *w = malloc(sizeof(float) * T);
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < d.n[s]; i++) {
            assert_int_equal(d.fill(&d, s, i, tok, tgt, w), 0);
            assert_int_equal(tok[0], tok_bos_id(t));
            int nw = 0, first = -1, last = -1;
            for (int j = 0; j < T; j++) {
                if (j + 1 < T && w[j + 1] > 0) assert_int_equal(tok[j + 1], tgt[j]); /* targets are the next inputs */
                if (w[j] > 0) { nw++; if (first < 0) first = j; last = j; }
            }
            assert_true(nw >= 1);
            assert_int_equal(last - first + 1, nw); /* the answer is one contiguous span at the end */
            assert_true(first > 1);                  /* the context is not trained on */
            if (kind == TASK_GEN) assert_int_equal(tgt[last], tok_eos_id(t));
        }
    TrainData d2;
    assert_int_equal(data_task_open(&d2, &ts, NULL, &p, t, &o), 0);
    assert_true(d.hash == d2.hash); /* deterministic */
    data_free(&d2);
    free(tok); free(tgt); free(w);
    data_free(&d);
    task_prompt_free(&p);
    tok_free(t);
    task_set_free(&ts);
    task_set_free(&all);
}

static void test_mc(void **st) { (void)st; check_set("data/debian/debian-section.train.jsonl", TASK_MC); }
static void test_gen(void **st) { (void)st; check_set("data/debian/debian-sum.train.jsonl", TASK_GEN); }

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_mc), cmocka_unit_test(test_gen)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
