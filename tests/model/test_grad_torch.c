/* tests/model/test_grad_torch.c - loss and gradients on stories260K against PyTorch.
 *
 * The fixture (tests/fixtures/train/, tools/ref/make_train_fixtures.py): a batch of
 * 2 x 32 tokens, the float64 PyTorch loss, and its gradients (float64, rounded to F32)
 * with respect to every base tensor and, for a rank-4 LoRA adapter on all seven
 * targets (base frozen), every A and B - for the mean loss and for the loss masked
 * to the answer tokens. Every tensor must match to relative error < 1e-4
 * (max|ours - torch| / max|torch|); the engine computes in float32.
 */
#include "model/torch_fixture.h"

#define TOL 1e-4

static double worst_full = 0, worst_lora = 0;

static void loss_and_grads(Model *m, const TorchFixture *f, const float *weights, LoraAdapter *ad, ModelGrads *g,
                           LoraAdapter *lg, int keep, double *loss) {
    RunState s;
    assert_int_equal(runstate_init(&s, m, TF_B, TF_T, TF_T, keep), 0);
    if (ad) assert_int_equal(runstate_set_lora(&s, ad), 0);
    if (model_loss(&s, f->ids, f->targets, weights, TF_B, TF_T, 0, loss, NULL) != 0) fail_msg("%s", err_msg());
    if (model_backward(&s, g, lg) != 0) fail_msg("%s", err_msg());
    runstate_free(&s);
}

static void full_case(int keep) {
    TorchFixture f;
    tf_load(&f);
    Model m;
    tf_load_model(&m);
    ModelGrads g;
    assert_int_equal(model_grads_init(&g, &m), 0);
    double loss;
    loss_and_grads(&m, &f, f.w_mean, NULL, &g, NULL, keep, &loss);
    double want = tf_num(&f, "loss.mean_f64");
    printf("# mean loss %.9f, PyTorch float64 %.9f (diff %.1e)\n", loss, want, fabs(loss - want));
    assert_true(fabs(loss - want) < 1e-5 * want);
    StFile st;
    if (st_open(&st, TF_DIR "grads_full.safetensors") != 0) fail_msg("%s", err_msg());
    TfTensor t[256];
    int nt = tf_model_tensors(&g, t);
    assert_int_equal((size_t)nt, st.n_tensors);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < nt; i++) {
        float *want_g = malloc(t[i].n * sizeof(float));
        tf_read(&st, t[i].name, want_g, t[i].n);
        double e = tf_rel_err(t[i].g, want_g, t[i].n);
        printf("#   %-36s rel err %.2e\n", t[i].name, e);
        if (!(e < TOL)) fail_msg("%s: gradient relative error %.3e vs PyTorch exceeds %.0e", t[i].name, e, TOL);
        if (e > worst) { worst = e; worst_name = t[i].name; }
        free(want_g);
    }
    printf("# full gradients (%s): worst %.2e (%s) over %d tensors\n", keep == RS_KEEP_ALL ? "activations kept" : "checkpointed",
           worst, worst_name, nt);
    if (worst > worst_full) worst_full = worst;
    st_close(&st);
    model_grads_free(&g);
    model_free(&m);
    tf_free(&f);
}
static void test_full_grads_match_torch(void **state) { (void)state; full_case(RS_KEEP_ALL); }
static void test_full_grads_match_torch_checkpointed(void **state) { (void)state; full_case(RS_KEEP_INPUTS); }

static void lora_case(int masked) {
    TorchFixture f;
    tf_load(&f);
    Model m;
    tf_load_model(&m);
    LoraAdapter ad, lg, want;
    tf_lora_init(&f, &m, &ad);
    assert_int_equal(lora_init_like(&lg, &ad), 0);
    assert_int_equal(lora_init_like(&want, &ad), 0);
    double loss;
    loss_and_grads(&m, &f, masked ? f.w_masked : f.w_mean, &ad, NULL, &lg, RS_KEEP_ALL, &loss);
    double wl = tf_num(&f, masked ? "lora.loss_masked_f64" : "lora.loss_mean_f64");
    printf("# LoRA %s loss %.9f, PyTorch float64 %.9f (diff %.1e)\n", masked ? "masked" : "mean", loss, wl, fabs(loss - wl));
    assert_true(fabs(loss - wl) < 1e-5 * wl);
    tf_read_lora(masked ? TF_DIR "grads_lora_masked.safetensors" : TF_DIR "grads_lora.safetensors", &want);
    double worst = 0;
    for (int l = 0; l < ad.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *p = lora_mat(&lg, l, (LoraTarget)t), *q = lora_mat(&want, l, (LoraTarget)t);
            double eA = tf_rel_err(p->A, q->A, (size_t)p->rank * p->in);
            double eB = tf_rel_err(p->B, q->B, (size_t)p->out * p->rank);
            printf("#   layer %d %-5s A rel err %.2e  B rel err %.2e\n", l, lora_target_name((LoraTarget)t), eA, eB);
            if (!(eA < TOL) || !(eB < TOL))
                fail_msg("LoRA layer %d %s: gradient relative error A %.3e B %.3e vs PyTorch exceeds %.0e", l,
                         lora_target_name((LoraTarget)t), eA, eB, TOL);
            worst = fmax(worst, fmax(eA, eB));
        }
    printf("# LoRA gradients (%s loss): worst %.2e over %d tensors\n", masked ? "masked" : "mean", worst, 2 * 7 * ad.n_layers);
    if (worst > worst_lora) worst_lora = worst;
    lora_free(&ad);
    lora_free(&lg);
    lora_free(&want);
    model_free(&m);
    tf_free(&f);
}
static void test_lora_grads_match_torch(void **state) { (void)state; lora_case(0); }
static void test_lora_grads_match_torch_masked(void **state) { (void)state; lora_case(1); }

/* The masked loss of the base model (no gradient file for it: the value only). */
static void test_masked_loss_matches_torch(void **state) {
    (void)state;
    TorchFixture f;
    tf_load(&f);
    Model m;
    tf_load_model(&m);
    RunState s;
    assert_int_equal(runstate_init(&s, &m, TF_B, TF_T, TF_T, RS_KEEP_ALL), 0);
    double loss;
    assert_int_equal(model_loss(&s, f.ids, f.targets, f.w_masked, TF_B, TF_T, 0, &loss, NULL), 0);
    double want = tf_num(&f, "loss.masked_f64");
    printf("# masked loss %.9f, PyTorch float64 %.9f\n", loss, want);
    assert_true(fabs(loss - want) < 1e-5 * want);
    runstate_free(&s);
    model_free(&m);
    tf_free(&f);
}

static int summary(void **state) {
    (void)state;
    printf("# worst relative error vs PyTorch: full %.2e, LoRA %.2e (tolerance %.0e)\n", worst_full, worst_lora, TOL);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_loss_matches_torch),
        cmocka_unit_test(test_full_grads_match_torch),
        cmocka_unit_test(test_full_grads_match_torch_checkpointed),
        cmocka_unit_test(test_lora_grads_match_torch),
        cmocka_unit_test(test_lora_grads_match_torch_masked),
    };
    return cmocka_run_group_tests(tests, NULL, summary);
}

