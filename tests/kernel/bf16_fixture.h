/* tests/kernel/bf16_fixture.h - the mixed-precision fixtures of tests/fixtures/kernel/
 * (made by tests/kernel/make_bf16_fixture.py and make_bf16_full_fixture.py), for
 * test_bf16_model.c and test_bf16_full.c. Header-only. */
#ifndef MUSCLE_TEST_BF16_FIXTURE_H
#define MUSCLE_TEST_BF16_FIXTURE_H

#include "model/torch_fixture.h"

#define KF_DIR "tests/fixtures/kernel/"

/* KF_DIR/name parsed; the script that makes it named when it is missing. */
static inline cJSON *kf_load(const char *name, const char *script) {
    char path[256];
    snprintf(path, sizeof path, KF_DIR "%s", name);
    size_t n;
    char *text = file_read_all(path, &n, 0);
    if (!text) fail_msg("%s (make it with tests/kernel/%s)", err_msg(), script);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

/* j.kind.key, or the test fails naming it. */
static inline const cJSON *kf_get(const cJSON *j, const char *kind, const char *key) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, kind), key);
    if (!o) fail_msg("fixture: no %s.%s", kind, key);
    return o;
}

/* Loss, per-position nll [TF_N] and gradients of the fixture's batch with model m: full
 * gradients into g (lg NULL), or LoRA gradients of adapter ad into lg (g NULL). */
static inline double kf_loss_grads(const Model *m, const TorchFixture *f, ModelGrads *g, LoraAdapter *ad, LoraAdapter *lg,
                                   float *nll) {
    RunState s;
    assert_int_equal(runstate_init(&s, m, TF_B, TF_T, TF_T, RS_KEEP_ALL), 0);
    if (ad) assert_int_equal(runstate_set_lora(&s, ad), 0);
    double loss;
    if (g) model_grads_zero(g);
    if (lg) lora_zero(lg);
    if (model_loss(&s, f->ids, f->targets, f->w_mean, TF_B, TF_T, 0, &loss, nll) != 0) fail_msg("%s", err_msg());
    if (model_backward(&s, g, lg) != 0) fail_msg("%s", err_msg());
    runstate_free(&s);
    return loss;
}

/* max over positions of |nll - ref| (ref [B, T-1], ours [B*T] with the last 0) */
static inline double kf_nll_diff(const float *nll, const cJSON *ref) {
    double worst = 0;
    for (int b = 0; b < TF_B; b++)
        for (int t = 0; t < TF_T - 1; t++)
            worst = fmax(worst, fabs(nll[b * TF_T + t] - cJSON_GetArrayItem(ref, b * (TF_T - 1) + t)->valuedouble));
    return worst;
}

#endif
