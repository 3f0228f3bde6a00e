/* tests/model/test_lora_combine.c - weighted sums of LoRA adapters as one adapter
 * (model/lora_combine.h): the combined adapter's logits against the weighted deltas
 * merged into the base weights explicitly, the PEFT metadata (r, lora_alpha) on disk,
 * soups of three, adapters of another base (shapes that do not match), errors. */
#include "gradcheck.h"
#include "core/error.h"
#include "core/file.h"
#include "model/lora_combine.h"
#include "model/lora_peft.h"

enum { B_ = 2, T_ = 5, N_ = B_ * T_ };

static void logits_of(Model *m, const LoraAdapter *a, const int *tok, float *out) { tiny_lora_logits(m, a, tok, B_, T_, out); }

static void random_adapter(LoraAdapter *a, const ModelConfig *c, int rank, float alpha, int rslora, unsigned targets, uint64_t seed) {
    assert_int_equal(lora_init(a, c, rank, alpha, rslora, targets), 0);
    TRng r = {seed};
    trng_fill(&r, a->data, a->n_floats, 0.3f);
}

/* The logits of base + sum_i w_i delta_i with every delta merged into a fresh copy of
 * the base weights (the explicit reference; the model is rebuilt from its seed). */
static void explicit_logits(const ModelConfig *c, LoraAdapter **in, const double *w, int n, const int *tok, float *out) {
    Model m;
    tiny_model(&m, c, 9, 0.4f);
    for (int i = 0; i < n; i++) {
        LoraAdapter s;
        assert_int_equal(lora_init_like(&s, in[i]), 0);
        memcpy(s.data, in[i]->data, s.n_floats * sizeof(float));
        for (int l = 0; l < s.n_layers; l++) /* scale B by w_i: delta = w_i s_i B_i A_i */
            for (int t = 0; t < LORA_N_TARGETS; t++) {
                LoraMat *p = lora_mat(&s, l, (LoraTarget)t);
                if (p && p->B)
                    for (size_t k = 0; k < (size_t)p->out * p->rank; k++) p->B[k] *= (float)w[i];
            }
        assert_int_equal(lora_merge(&s, &m), 0);
        lora_free(&s);
    }
    logits_of(&m, NULL, tok, out);
    model_free(&m);
}

static void test_interpolation_exact(void **state) {
    (void)state;
    ModelConfig c = tiny_config(ROPE_HALF, 1);
    Model m;
    tiny_model(&m, &c, 9, 0.4f);
    LoraAdapter a2, x, comb;
    random_adapter(&a2, &m.cfg, 3, 6.0f, 0, LORA_TARGETS_ALL, 11);
    random_adapter(&x, &m.cfg, 2, 5.0f, 1, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V) | LORA_BIT(LORA_DOWN), 12);
    int tok[N_];
    for (int i = 0; i < N_; i++) tok[i] = (i * 13 + 5) % c.vocab_size;
    size_t nl = (size_t)N_ * c.vocab_size;
    float *got = malloc(nl * sizeof(float)), *want = malloc(nl * sizeof(float)), *base = malloc(nl * sizeof(float));
    logits_of(&m, NULL, tok, base);
    const double grid[] = {0.0, 0.3, 0.7, 1.0};
    for (int g = 0; g < 4; g++) {
        double a = grid[g], w[2] = {1 - a, a};
        const LoraAdapter *in[2] = {&a2, &x};
        assert_int_equal(lora_combine(&comb, &m.cfg, in, w, 2, 0, NULL), 0);
        assert_int_equal(comb.rank, 5);
        assert_true(comb.alpha == 5.0f && comb.scaling == 1.0f && !comb.rslora);
        assert_int_equal(comb.targets, LORA_TARGETS_ALL);
        logits_of(&m, &comb, tok, got);
        LoraAdapter *ins[2] = {&a2, &x};
        explicit_logits(&c, ins, w, 2, tok, want);
        double e = rel_err_ff(got, want, nl), moved = rel_err_ff(want, base, nl);
        printf("# a = %.1f: combined adapter vs (1-a) delta2 + a deltaX merged: logits rel err %.2e (the deltas move the logits by %.2e)\n",
               a, e, moved);
        assert_true(moved > 1e-2); /* the deltas do something */
        assert_true(e < 1e-5);
        if (g == 1) { /* the PEFT folder: r and lora_alpha, and the same logits read back */
            const char *dir = test_tmpdir();
            char ad[512], cfg[600];
            snprintf(ad, sizeof ad, "%s/comb", dir);
            assert_int_equal(lora_save_peft(&comb, &m.cfg, ad, "tiny", NULL, 0), 0);
            snprintf(cfg, sizeof cfg, "%s/adapter_config.json", ad);
            size_t n;
            char *text = file_read_all(cfg, &n, 1 << 20);
            assert_non_null(text);
            LoraPeftConfig pc;
            assert_int_equal(lora_peft_config_parse(&pc, text, n, cfg), 0);
            assert_int_equal(pc.rank, 5);
            assert_true(pc.alpha == 5.0f);
            assert_int_equal(pc.rslora, 0);
            assert_int_equal(pc.targets, LORA_TARGETS_ALL);
            free(text);
            LoraAdapter back;
            if (lora_load_peft(&back, &m.cfg, ad) != 0) fail_msg("%s", err_msg());
            float *again = malloc(nl * sizeof(float));
            logits_of(&m, &back, tok, again);
            assert_true(rel_err_ff(again, got, nl) < 1e-6);
            free(again);
            lora_free(&back);
        }
        lora_free(&comb);
    }
    free(got); free(want); free(base);
    lora_free(&a2); lora_free(&x);
    model_free(&m);
}

static void test_soup_of_three(void **state) {
    (void)state;
    ModelConfig c = tiny_config(ROPE_INTERLEAVED, 0);
    Model m;
    tiny_model(&m, &c, 9, 0.4f);
    LoraAdapter k[3], comb;
    for (int i = 0; i < 3; i++) random_adapter(&k[i], &m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL, 20 + (uint64_t)i);
    const LoraAdapter *in[3] = {&k[0], &k[1], &k[2]};
    LoraAdapter *ins[3] = {&k[0], &k[1], &k[2]};
    double w[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    assert_int_equal(lora_combine(&comb, &m.cfg, in, w, 3, 0, NULL), 0);
    assert_int_equal(comb.rank, 12);
    int tok[N_];
    for (int i = 0; i < N_; i++) tok[i] = (i * 7 + 3) % c.vocab_size;
    size_t nl = (size_t)N_ * c.vocab_size;
    float *got = malloc(nl * sizeof(float)), *want = malloc(nl * sizeof(float));
    logits_of(&m, &comb, tok, got);
    explicit_logits(&c, ins, w, 3, tok, want);
    double e = rel_err_ff(got, want, nl);
    printf("# soup of 3 (rank 12): logits rel err %.2e\n", e);
    assert_true(e < 1e-5);
    free(got); free(want);
    lora_free(&comb);
    for (int i = 0; i < 3; i++) lora_free(&k[i]);
    model_free(&m);
}

static void test_other_base(void **state) {
    (void)state;
    ModelConfig c = tiny_config(ROPE_HALF, 1), c1 = c;
    c1.hidden_dim = 24; /* v1 with another MLP width: gate, up, down do not fit v2 */
    Model m;
    tiny_model(&m, &c, 9, 0.4f);
    LoraAdapter a2, a1, comb, a1q;
    random_adapter(&a2, &c, 3, 6.0f, 0, LORA_TARGETS_ALL, 31);
    random_adapter(&a1, &c1, 3, 6.0f, 0, LORA_TARGETS_ALL, 32);
    const LoraAdapter *in[2] = {&a2, &a1};
    double w[2] = {0.6, 0.4};
    assert_int_equal(lora_combine(&comb, &m.cfg, in, w, 2, 0, NULL), -1);
    assert_non_null(strstr(err_msg(), "adapter 2, layer 0, gate"));
    int skipped = -1;
    assert_int_equal(lora_combine(&comb, &m.cfg, in, w, 2, 1, &skipped), 0);
    assert_int_equal(skipped, 2 * 3); /* 2 layers x gate, up, down */
    /* the reference: a1's attention matrices only, on v2's shapes */
    random_adapter(&a1q, &c, 3, 6.0f, 0, LORA_BIT(LORA_Q) | LORA_BIT(LORA_K) | LORA_BIT(LORA_V) | LORA_BIT(LORA_O), 99);
    for (int l = 0; l < 2; l++)
        for (int t = 0; t <= LORA_O; t++) {
            LoraMat *d = lora_mat(&a1q, l, (LoraTarget)t), *s = lora_mat(&a1, l, (LoraTarget)t);
            memcpy(d->A, s->A, (size_t)s->rank * s->in * sizeof(float));
            memcpy(d->B, s->B, (size_t)s->rank * s->out * sizeof(float));
        }
    int tok[N_];
    for (int i = 0; i < N_; i++) tok[i] = (i * 5 + 1) % c.vocab_size;
    size_t nl = (size_t)N_ * c.vocab_size;
    float *got = malloc(nl * sizeof(float)), *want = malloc(nl * sizeof(float));
    logits_of(&m, &comb, tok, got);
    LoraAdapter *ins[2] = {&a2, &a1q};
    explicit_logits(&c, ins, w, 2, tok, want);
    assert_true(rel_err_ff(got, want, nl) < 1e-5);
    free(got); free(want);
    lora_free(&comb); lora_free(&a1q);
    /* errors */
    double bad[2] = {NAN, 1};
    assert_int_equal(lora_combine(&comb, &m.cfg, in, bad, 2, 1, NULL), -1);
    assert_non_null(strstr(err_msg(), "weight 1 is not finite"));
    assert_int_equal(lora_combine(&comb, &m.cfg, in, w, 0, 0, NULL), -1);
    a2.merged = 1;
    assert_int_equal(lora_combine(&comb, &m.cfg, in, w, 2, 1, NULL), -1);
    assert_non_null(strstr(err_msg(), "merged"));
    a2.merged = 0;
    lora_free(&a2); lora_free(&a1);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interpolation_exact),
        cmocka_unit_test(test_soup_of_three),
        cmocka_unit_test(test_other_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
