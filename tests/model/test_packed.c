/* tests/model/test_packed.c - packed multiple-choice scoring (shared context, each
 * choice in its own segment with its own positions) equals separate full sequences. */
#include "testutil.h"
#include "core/error.h"
#include "model/forward.h"

#include <math.h>

static const int CTX[] = {1, 403, 261, 378, 426, 271, 9, 359, 409, 268};
static const int C1[] = {281, 267}, C2[] = {501, 15, 33, 511}, C3[] = {100, 200, 300};

/* log p of each choice token, from a plain forward of ctx + choice */
static void separate(const Model *m, const int *ch, int nc, float *out) {
    int n = 10 + nc, tok[32];
    memcpy(tok, CTX, sizeof CTX);
    memcpy(tok + 10, ch, (size_t)nc * sizeof(int));
    RunState s;
    assert_int_equal(runstate_init(&s, m, 1, n, n, 0), 0);
    assert_int_equal(model_forward(&s, tok, 1, n, 0), 0);
    logsoftmax_rows(s.logits, n, m->cfg.vocab_size);
    for (int j = 0; j < nc; j++) out[j] = s.logits[(size_t)(9 + j) * m->cfg.vocab_size + ch[j]];
    runstate_free(&s);
}

static void test_packed_equals_separate(void **st) {
    (void)st;
    Model m;
    if (model_load(&m, shared_path("models/stories260K/stories260K.bin"), NULL) != 0) fail_msg("%s", err_msg());
    const int *chs[3] = {C1, C2, C3};
    int lens[3] = {2, 4, 3};
    /* batch of 2 packed rows: row 0 = ctx + C1 + C2 + C3; row 1 = ctx + C3 + C1, padded */
    enum { N = 19 };
    int tok[2 * N] = {0}, pos[2 * N] = {0}, seg[2 * N] = {0};
    for (int b = 0; b < 2; b++) {
        int k = 0;
        for (int i = 0; i < 10; i++, k++) { tok[b * N + k] = CTX[i]; pos[b * N + k] = i; seg[b * N + k] = 0; }
        int order[2][3] = {{0, 1, 2}, {2, 0, -1}};
        for (int o = 0; o < 3; o++) {
            int c = order[b][o];
            if (c < 0) break;
            for (int j = 0; j < lens[c]; j++, k++) { tok[b * N + k] = chs[c][j]; pos[b * N + k] = 10 + j; seg[b * N + k] = o + 1; }
        }
        for (; k < N; k++) { tok[b * N + k] = 0; pos[b * N + k] = 0; seg[b * N + k] = 99; } /* padding: own segment */
    }
    RunState s;
    assert_int_equal(runstate_init(&s, &m, 2, N, N, 0), 0);
    assert_int_equal(model_forward_packed(&s, tok, pos, seg, 2, N), 0);
    int V = m.cfg.vocab_size;
    logsoftmax_rows(s.logits, 2 * N, V);
    double worst = 0;
    int starts[2][3] = {{10, 12, 16}, {13, -1, 10}}; /* where each choice sits in each row */
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 3; c++) {
            int st0 = starts[b][c];
            if (st0 < 0) continue;
            float ref[8];
            separate(&m, chs[c], lens[c], ref);
            for (int j = 0; j < lens[c]; j++) {
                int row = j == 0 ? 9 : st0 + j - 1;
                double got = s.logits[((size_t)b * N + row) * V + chs[c][j]];
                worst = fmax(worst, fabs(got - ref[j]));
            }
        }
    print_message("# packed vs separate: max |d log p| = %.2e\n", worst);
    assert_true(worst < 2e-5);
    /* a wrong mask (all one segment) must be caught by the same comparison */
    int seg1[2 * N];
    for (int i = 0; i < 2 * N; i++) seg1[i] = 0;
    assert_int_equal(model_forward_packed(&s, tok, pos, seg1, 2, N), 0);
    logsoftmax_rows(s.logits, 2 * N, V);
    float ref[8];
    separate(&m, C2, 4, ref);
    assert_true(fabs(s.logits[(size_t)(12) * V + C2[1]] - ref[1]) > 1e-3);
    /* bad positions are an error, not a crash */
    pos[3] = N + 5;
    assert_int_equal(model_forward_packed(&s, tok, pos, seg, 2, N), -1);
    runstate_free(&s);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_packed_equals_separate)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
