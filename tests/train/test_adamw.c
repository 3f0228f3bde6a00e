/* tests/train/test_adamw.c - AdamW, clipping, schedule; 10 training steps on
 * stories260K against PyTorch (LoRA and full training, tests/fixtures/train/). */
#include "testutil.h"
#include "core/error.h"
#include "train/adamw.h"

#include <math.h>

/* torch.optim.AdamW's update, written out in float64 */
static void ref_adamw(double *p, double *m, double *v, const double *g, int n, long t, double lr, double b1, double b2,
                     double eps, double wd) {
    for (int i = 0; i < n; i++) {
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
}

static void test_adamw_update_formula(void **state) {
    (void)state;
    enum { N1 = 4, N2 = 3 };
    float p[N1 + N2] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, -0.25f, 3.0f}, g[N1 + N2];
    double pd[N1 + N2], md[N1 + N2] = {0}, vd[N1 + N2] = {0}, gd[N1 + N2];
    double pn[N2], mn[N2] = {0}, vn[N2] = {0};
    for (int i = 0; i < N1 + N2; i++) pd[i] = p[i];
    for (int i = 0; i < N2; i++) pn[i] = p[N1 + i];
    ParamSpan sp[2] = {{p, g, N1, 0}, {p + N1, g + N1, N2, 1}};
    AdamWConfig c = adamw_config_default();
    c.weight_decay = 0.1;
    AdamW o;
    assert_int_equal(adamw_init(&o, &c, N1 + N2), 0);
    for (int step = 1; step <= 5; step++) {
        for (int i = 0; i < N1 + N2; i++) g[i] = gd[i] = (float)(sin(i * 1.7 + step) * (i == 3 ? 1e-6 : 0.3));
        double lr = 0.01 * step;
        assert_int_equal(adamw_step(&o, sp, 2, lr), 0);
        ref_adamw(pd, md, vd, gd, N1, step, lr, 0.9, 0.999, 1e-8, 0.1);
        ref_adamw(pn, mn, vn, gd + N1, N2, step, lr, 0.9, 0.999, 1e-8, 0.0); /* no decay on span 2 */
    }
    for (int i = 0; i < N1; i++) assert_true(fabs(p[i] - pd[i]) < 1e-6 * (1 + fabs(pd[i])));
    for (int i = 0; i < N2; i++) assert_true(fabs(p[N1 + i] - pn[i]) < 1e-6 * (1 + fabs(pn[i])));
    assert_int_equal(o.step, 5);
    /* wrong sizes */
    assert_int_equal(adamw_step(&o, sp, 1, 0.01), -1);
    assert_non_null(strstr(err_msg(), "4 parameters"));
    adamw_free(&o);
    c.beta1 = 1.0;
    assert_int_equal(adamw_init(&o, &c, 3), -1);
}

static void test_clip_global_norm(void **state) {
    (void)state;
    float p[3] = {0}, g[3] = {3, 4, 0}, q[1] = {0}, h[1] = {12};
    ParamSpan sp[2] = {{p, g, 3, 0}, {q, h, 1, 0}};
    assert_true(fabs(grad_global_norm(sp, 2) - 13.0) < 1e-12);
    double n = grad_clip_global_norm(sp, 2, 20.0); /* below: untouched */
    assert_true(fabs(n - 13.0) < 1e-12);
    assert_true(g[0] == 3 && g[1] == 4 && h[0] == 12);
    n = grad_clip_global_norm(sp, 2, 6.5);
    assert_true(fabs(n - 13.0) < 1e-12);
    float coef = (float)(6.5 / (13.0 + 1e-6));
    assert_true(g[0] == 3 * coef && g[1] == 4 * coef && h[0] == 12 * coef);
    assert_true(fabs(grad_global_norm(sp, 2) - 6.5) < 1e-5);
    /* a long span (several chunks) */
    size_t big = 200000;
    float *bg = malloc(big * sizeof(float));
    for (size_t i = 0; i < big; i++) bg[i] = (i % 2) ? 0.5f : -0.5f;
    ParamSpan bs = {bg, bg, big, 0};
    assert_true(fabs(grad_global_norm(&bs, 1) - sqrt(big * 0.25)) < 1e-9);
    train_spans_zero_grads(&bs, 1);
    assert_true(grad_global_norm(&bs, 1) == 0.0);
    free(bg);
    float w[4] = {1, 0, 2.5f, 0.5f};
    assert_true(train_weight_sum(w, 4) == 4.0);
    assert_true(train_weight_sum(NULL, 7) == 7.0);
}

static void test_lr_schedule(void **state) {
    (void)state;
    LrSchedule s = {1e-3, 1e-4, 10, 110, LR_COSINE};
    assert_true(fabs(lr_schedule_at(&s, 0) - 1e-4) < 1e-15);   /* 1/10 of the peak */
    assert_true(fabs(lr_schedule_at(&s, 9) - 1e-3) < 1e-15);   /* the 10th update: the peak */
    assert_true(fabs(lr_schedule_at(&s, 10) - 1e-3) < 1e-15);  /* decay starts at the peak */
    assert_true(fabs(lr_schedule_at(&s, 60) - 5.5e-4) < 1e-12); /* half way: (peak + floor) / 2 */
    assert_true(fabs(lr_schedule_at(&s, 110) - 1e-4) < 1e-15);
    assert_true(fabs(lr_schedule_at(&s, 500) - 1e-4) < 1e-15);
    for (long t = 10; t < 110; t++) assert_true(lr_schedule_at(&s, t + 1) <= lr_schedule_at(&s, t));
    s.decay = LR_LINEAR;
    assert_true(fabs(lr_schedule_at(&s, 35) - (1e-4 + 9e-4 * 0.75)) < 1e-12);
    s.decay = LR_CONSTANT;
    assert_true(lr_schedule_at(&s, 100) == 1e-3);
    LrSchedule nw = {2e-4, 0, 0, 100, LR_LINEAR};
    assert_true(lr_schedule_at(&nw, 0) == 2e-4);
    assert_true(fabs(lr_schedule_at(&nw, 50) - 1e-4) < 1e-15);
}

#include "model/torch_fixture.h"

#define LOSS_TOL 1e-4

/* 10 AdamW steps on the fixture's batch (mean loss), like make_train_fixtures.py */
static void train_case(int lora) {
    TorchFixture f;
    tf_load(&f);
    Model m;
    tf_load_model(&m);
    RunState s;
    assert_int_equal(runstate_init(&s, &m, TF_B, TF_T, TF_T, RS_KEEP_ALL), 0);
    LoraAdapter ad, lg;
    ModelGrads g;
    ParamSpan spans[128];
    int ns;
    if (lora) {
        tf_lora_init(&f, &m, &ad);
        assert_int_equal(lora_init_like(&lg, &ad), 0);
        assert_int_equal(runstate_set_lora(&s, &ad), 0);
        assert_int_equal(train_spans_lora(&ad, &lg, &spans[0]), 0);
        ns = 1;
    } else {
        assert_int_equal(model_grads_init(&g, &m), 0);
        ns = train_spans_model(&m, &g, 0, spans, 128);
        assert_int_equal(ns, train_spans_model_count(&m));
    }
    AdamWConfig c;
    const cJSON *betas = tf_get(f.json, "adamw.betas");
    c.beta1 = cJSON_GetArrayItem(betas, 0)->valuedouble;
    c.beta2 = cJSON_GetArrayItem(betas, 1)->valuedouble;
    c.eps = tf_num(&f, "adamw.eps");
    c.weight_decay = tf_num(&f, "adamw.weight_decay");
    double lr = tf_num(&f, "adamw.lr");
    int steps = (int)tf_num(&f, "adamw.steps");
    AdamW o;
    assert_int_equal(adamw_init(&o, &c, train_spans_total(spans, ns)), 0);
    const char *key = lora ? "adamw.lora" : "adamw.full";
    char path[64];
    snprintf(path, sizeof path, "%s.losses_f64", key);
    const cJSON *want64 = tf_get(f.json, path);
    snprintf(path, sizeof path, "%s.losses_f32", key);
    const cJSON *want32 = tf_get(f.json, path);
    double norm = train_weight_sum(f.w_mean, TF_N), worst64 = 0, worst32 = 0;
    for (int step = 0; step <= steps; step++) {
        double loss;
        train_spans_zero_grads(spans, ns);
        assert_int_equal(model_loss(&s, f.ids, f.targets, f.w_mean, TF_B, TF_T, norm, &loss, NULL), 0);
        double w64, w32;
        if (step < steps) {
            w64 = cJSON_GetArrayItem(want64, step)->valuedouble;
            w32 = cJSON_GetArrayItem(want32, step)->valuedouble;
        } else {
            snprintf(path, sizeof path, "%s.final_loss_f64", key);
            w64 = tf_num(&f, path);
            snprintf(path, sizeof path, "%s.final_loss_f32", key);
            w32 = tf_num(&f, path);
        }
        printf("# %s step %2d: loss %.7f  PyTorch f64 %.7f (diff %+.1e)  f32 %.7f (diff %+.1e)\n", lora ? "LoRA" : "full",
               step, loss, w64, loss - w64, w32, loss - w32);
        worst64 = fmax(worst64, fabs(loss - w64));
        worst32 = fmax(worst32, fabs(loss - w32));
        if (step == steps) break;
        assert_int_equal(model_backward(&s, lora ? NULL : &g, lora ? &lg : NULL), 0);
        assert_int_equal(adamw_step(&o, spans, ns, lr), 0);
    }
    printf("# %s: largest loss difference over %d steps: %.1e vs PyTorch float64, %.1e vs float32 (tolerance %.0e)\n",
           lora ? "LoRA" : "full", steps + 1, worst64, worst32, LOSS_TOL);
    assert_true(worst64 < LOSS_TOL);
    assert_true(worst32 < LOSS_TOL);
    if (lora) {
        LoraAdapter want;
        assert_int_equal(lora_init_like(&want, &ad), 0);
        tf_read_lora(TF_DIR "lora_after_adamw.safetensors", &want);
        double e = tf_rel_err(ad.data, want.data, ad.n_floats);
        printf("# LoRA parameters after %d steps vs PyTorch float64: rel err %.2e\n", steps, e);
        assert_true(e < 1e-3);
        lora_free(&want);
        lora_free(&ad);
        lora_free(&lg);
    } else {
        model_grads_free(&g);
    }
    adamw_free(&o);
    runstate_free(&s);
    model_free(&m);
    tf_free(&f);
}
static void test_lora_adamw_matches_torch(void **state) { (void)state; train_case(1); }
static void test_full_adamw_matches_torch(void **state) { (void)state; train_case(0); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_update_formula),
        cmocka_unit_test(test_clip_global_norm),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_lora_adamw_matches_torch),
        cmocka_unit_test(test_full_adamw_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
