/* tests/model/test_lora.c - LoRA adapters: layout, PEFT initialisation, the adapted
 * forward pass, target subsets, merging and unmerging, errors. (Gradients against
 * central differences: test_backward.c.) */
#include "gradcheck.h"
#include "core/error.h"

enum { B_ = 2, T_ = 5, N_ = B_ * T_ };

static void logits_of(Model *m, const LoraAdapter *a, const int *tok, float *out) { tiny_lora_logits(m, a, tok, B_, T_, out); }

static void test_layout_and_scaling(void **state) {
    (void)state;
    ModelConfig c = tiny_config(ROPE_INTERLEAVED, 0);
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &c, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    assert_true(a.scaling == 2.0f);
    int d = 16, qd = 16, kvd = 8, hid = 40;
    size_t per = 4 * ((size_t)(d + qd) + (d + kvd) * 2 + (qd + d) + (d + hid) * 2 + (hid + d));
    assert_int_equal(a.n_floats, per * 2);
    LoraMat *p = lora_mat(&a, 1, LORA_DOWN);
    assert_non_null(p);
    assert_int_equal(p->in, hid);
    assert_int_equal(p->out, d);
    assert_true(p->B + (size_t)p->out * p->rank == a.data + a.n_floats); /* last in data order */
    assert_true(lora_mat(&a, 0, LORA_K)->out == kvd);
    LoraAdapter g;
    assert_int_equal(lora_init_like(&g, &a), 0);
    assert_int_equal(g.n_floats, a.n_floats);
    assert_true(lora_mat(&g, 1, LORA_DOWN)->B - g.data == p->B - a.data);
    lora_free(&g);
    lora_free(&a);
    /* rsLoRA */
    assert_int_equal(lora_init(&a, &c, 4, 8.0f, 1, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V)), 0);
    assert_true(a.scaling == 4.0f);
    assert_null(lora_mat(&a, 0, LORA_K));
    assert_int_equal(a.n_floats, 2 * 4 * ((size_t)(d + qd) + (d + kvd)));
    lora_free(&a);
    /* bad settings */
    assert_int_equal(lora_init(&a, &c, 0, 8.0f, 0, LORA_TARGETS_ALL), -1);
    assert_non_null(strstr(err_msg(), "rank 0"));
    assert_int_equal(lora_init(&a, &c, 2, 8.0f, 0, 0), -1);
}

static void test_targets_parse(void **state) {
    (void)state;
    unsigned t;
    assert_int_equal(lora_targets_parse("q,v", &t), 0);
    assert_int_equal(t, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V));
    assert_int_equal(lora_targets_parse("all", &t), 0);
    assert_int_equal(t, LORA_TARGETS_ALL);
    assert_int_equal(lora_targets_parse("q,k,v,o,gate,up,down", &t), 0);
    assert_int_equal(t, LORA_TARGETS_ALL);
    assert_int_equal(lora_targets_parse("q,qq", &t), -1);
    assert_non_null(strstr(err_msg(), "\"qq\""));
    assert_int_equal(lora_targets_parse("", &t), -1);
    assert_string_equal(lora_target_name(LORA_GATE), "gate");
}

static void test_peft_init(void **state) {
    (void)state;
    ModelConfig c = tiny_config(ROPE_INTERLEAVED, 1);
    LoraAdapter a, b;
    assert_int_equal(lora_init(&a, &c, 3, 6.0f, 0, LORA_TARGETS_ALL), 0);
    assert_int_equal(lora_init(&b, &c, 3, 6.0f, 0, LORA_TARGETS_ALL), 0);
    lora_reset_peft(&a, 42);
    lora_reset_peft(&b, 42);
    assert_memory_equal(a.data, b.data, a.n_floats * sizeof(float));
    lora_reset_peft(&b, 43);
    assert_memory_not_equal(a.data, b.data, a.n_floats * sizeof(float));
    for (int l = 0; l < a.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *p = lora_mat(&a, l, (LoraTarget)t);
            float bound = 1.0f / sqrtf((float)p->in), mx = 0;
            double mean = 0;
            for (int i = 0; i < p->rank * p->in; i++) {
                assert_true(fabsf(p->A[i]) <= bound);
                mx = fabsf(p->A[i]) > mx ? fabsf(p->A[i]) : mx;
                mean += p->A[i];
            }
            assert_true(mx > 0.5f * bound); /* spread over the range, not a constant */
            for (int i = 0; i < p->out * p->rank; i++) assert_true(p->B[i] == 0.0f);
        }
    lora_free(&a);
    lora_free(&b);
}

/* B = 0: the adapted model is the base model, to the bit */
static void test_fresh_adapter_is_identity(void **state) {
    (void)state;
    Model m;
    ModelConfig c = tiny_config(ROPE_HALF, 0);
    tiny_model(&m, &c, 5, 0.4f);
    int tok[N_];
    for (int i = 0; i < N_; i++) tok[i] = (i * 7 + 3) % c.vocab_size;
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    lora_reset_peft(&a, 1);
    size_t nl = (size_t)N_ * c.vocab_size;
    float *base = malloc(nl * sizeof(float)), *ad = malloc(nl * sizeof(float));
    logits_of(&m, NULL, tok, base);
    logits_of(&m, &a, tok, ad);
    assert_memory_equal(base, ad, nl * sizeof(float));
    free(base);
    free(ad);
    lora_free(&a);
    model_free(&m);
}

/* A subset of targets is the full set with the others zero: same logits, same gradients. */
static void test_target_subset(void **state) {
    (void)state;
    Model m;
    ModelConfig c = tiny_config(ROPE_INTERLEAVED, 1);
    tiny_model(&m, &c, 6, 0.4f);
    unsigned sub = LORA_BIT(LORA_Q) | LORA_BIT(LORA_V) | LORA_BIT(LORA_DOWN);
    LoraAdapter all, part, gall, gpart;
    assert_int_equal(lora_init(&all, &m.cfg, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
    assert_int_equal(lora_init(&part, &m.cfg, 2, 4.0f, 0, sub), 0);
    TRng r = {8};
    trng_fill(&r, part.data, part.n_floats, 0.3f);
    for (int l = 0; l < c.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *p = lora_mat(&part, l, (LoraTarget)t), *q = lora_mat(&all, l, (LoraTarget)t);
            if (!p) continue;
            memcpy(q->A, p->A, (size_t)p->rank * p->in * sizeof(float));
            memcpy(q->B, p->B, (size_t)p->out * p->rank * sizeof(float));
        }
    assert_int_equal(lora_init_like(&gall, &all), 0);
    assert_int_equal(lora_init_like(&gpart, &part), 0);
    int tok[N_], tgt[N_];
    for (int i = 0; i < N_; i++) {
        tok[i] = (i * 5 + 1) % c.vocab_size;
        tgt[i] = (i * 11 + 2) % c.vocab_size;
    }
    RunState s1, s2;
    assert_int_equal(runstate_init(&s1, &m, B_, T_, T_, RS_KEEP_ALL), 0);
    assert_int_equal(runstate_init(&s2, &m, B_, T_, T_, RS_KEEP_ALL), 0);
    assert_int_equal(runstate_set_lora(&s1, &all), 0);
    assert_int_equal(runstate_set_lora(&s2, &part), 0);
    double l1, l2;
    assert_int_equal(model_loss(&s1, tok, tgt, NULL, B_, T_, 0, &l1, NULL), 0);
    assert_int_equal(model_loss(&s2, tok, tgt, NULL, B_, T_, 0, &l2, NULL), 0);
    assert_memory_equal(s1.logits, s2.logits, (size_t)N_ * c.vocab_size * sizeof(float));
    assert_true(l1 == l2);
    assert_int_equal(model_backward(&s1, NULL, &gall), 0);
    assert_int_equal(model_backward(&s2, NULL, &gpart), 0);
    for (int l = 0; l < c.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *p = lora_mat(&gpart, l, (LoraTarget)t), *q = lora_mat(&gall, l, (LoraTarget)t);
            if (!p) continue;
            assert_memory_equal(q->A, p->A, (size_t)p->rank * p->in * sizeof(float));
            assert_memory_equal(q->B, p->B, (size_t)p->out * p->rank * sizeof(float));
        }
    runstate_free(&s1);
    runstate_free(&s2);
    lora_free(&all); lora_free(&part); lora_free(&gall); lora_free(&gpart);
    model_free(&m);
}

static void test_merge_unmerge(void **state) {
    (void)state;
    Model m;
    ModelConfig c = tiny_config(ROPE_HALF, 1);
    tiny_model(&m, &c, 9, 0.4f);
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &m.cfg, 3, 6.0f, 0, LORA_TARGETS_ALL), 0);
    TRng r = {10};
    trng_fill(&r, a.data, a.n_floats, 0.3f);
    int tok[N_];
    for (int i = 0; i < N_; i++) tok[i] = (i * 13 + 5) % c.vocab_size;
    size_t nl = (size_t)N_ * c.vocab_size, nw = (size_t)m.layers[0].w2.n * m.layers[0].w2.k;
    float *base = malloc(nl * sizeof(float)), *ad = malloc(nl * sizeof(float)), *mg = malloc(nl * sizeof(float));
    float *w2 = malloc(nw * sizeof(float));
    memcpy(w2, m.layers[0].w2.f32, nw * sizeof(float));
    logits_of(&m, NULL, tok, base);
    logits_of(&m, &a, tok, ad);
    assert_true(rel_err_ff(ad, base, nl) > 1e-2); /* the adapter does something */
    assert_int_equal(lora_merge(&a, &m), 0);
    assert_int_equal(lora_merge(&a, &m), -1); /* twice */
    assert_non_null(strstr(err_msg(), "already merged"));
    logits_of(&m, NULL, tok, mg);
    double e = rel_err_ff(mg, ad, nl);
    printf("# merged weights vs adapter in the forward: logits rel err %.2e\n", e);
    assert_true(e < 1e-5);
    /* a merged adapter attached to a run state is skipped (not applied twice) */
    logits_of(&m, &a, tok, ad);
    assert_memory_equal(ad, mg, nl * sizeof(float));
    assert_int_equal(lora_unmerge(&a, &m), 0);
    double ew = rel_err_ff(m.layers[0].w2.f32, w2, nw);
    logits_of(&m, NULL, tok, mg);
    double el = rel_err_ff(mg, base, nl);
    printf("# unmerged: weights rel err %.2e, logits rel err %.2e\n", ew, el);
    assert_true(ew < 1e-6 && el < 1e-5);
    free(base); free(ad); free(mg); free(w2);
    lora_free(&a);
    model_free(&m);
}


/* Decoding with an adapter: a prompt chunk then one token at a time through the KV
 * cache (adapted k and v are cached) gives the logits of one whole-sequence pass. */
static void test_decode_with_adapter(void **state) {
    (void)state;
    Model m;
    ModelConfig c = tiny_config(ROPE_INTERLEAVED, 0);
    tiny_model(&m, &c, 12, 0.4f);
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &m.cfg, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
    TRng r = {13};
    trng_fill(&r, a.data, a.n_floats, 0.3f);
    enum { T = 7 };
    int tok[T] = {1, 5, 9, 30, 2, 17, 4};
    int V = c.vocab_size;
    RunState whole, step;
    assert_int_equal(runstate_init(&whole, &m, 1, T, T, RS_KEEP_NONE), 0);
    assert_int_equal(runstate_init(&step, &m, 1, T, 3, RS_KEEP_NONE), 0);
    assert_int_equal(runstate_set_lora(&whole, &a), 0);
    assert_int_equal(runstate_set_lora(&step, &a), 0);
    assert_int_equal(model_forward(&whole, tok, 1, T, 0), 0);
    assert_int_equal(model_forward(&step, tok, 1, 3, 0), 0);
    assert_true(rel_err_ff(step.logits, whole.logits, (size_t)3 * V) < 1e-5);
    for (int t = 3; t < T; t++) {
        assert_int_equal(model_forward(&step, tok + t, 1, 1, t), 0);
        double e = rel_err_ff(step.logits, whole.logits + (size_t)t * V, V);
        if (!(e < 1e-5)) fail_msg("position %d: decoded logits differ from the whole pass by %.2e", t, e);
    }
    runstate_free(&whole);
    runstate_free(&step);
    lora_free(&a);
    model_free(&m);
}

/* LoRA on a bf16 base (weights rounded to bf16, adapter fp32): the gradients are those
 * of the fp32 base up to the rounding of the weights. */
static void test_lora_on_bf16_base(void **state) {
    (void)state;
    Model m32, m16;
    ModelLoadOptions o32 = {KW_F32, 0}, o16 = {KW_BF16, 0};
    const char *path = shared_path("models/stories260K/stories260K.bin");
    assert_int_equal(model_load(&m32, path, &o32), 0);
    assert_int_equal(model_load(&m16, path, &o16), 0);
    LoraAdapter a, g32, g16;
    assert_int_equal(lora_init(&a, &m32.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    TRng r = {14};
    trng_fill(&r, a.data, a.n_floats, 0.05f);
    assert_int_equal(lora_init_like(&g32, &a), 0);
    assert_int_equal(lora_init_like(&g16, &a), 0);
    enum { T = 24 };
    int tok[T], tgt[T];
    for (int i = 0; i < T; i++) {
        tok[i] = i == 0 ? 1 : (i * 37 + 11) % 512;
        tgt[i] = ((i + 1) * 37 + 11) % 512; /* the next token (the last one wraps) */
    }
    Model *ms[2] = {&m32, &m16};
    LoraAdapter *gs[2] = {&g32, &g16};
    double loss[2];
    for (int k = 0; k < 2; k++) {
        RunState s;
        assert_int_equal(runstate_init(&s, ms[k], 1, T, T, RS_KEEP_INPUTS), 0);
        assert_int_equal(runstate_set_lora(&s, &a), 0);
        assert_int_equal(model_loss(&s, tok, tgt, NULL, 1, T, 0, &loss[k], NULL), 0);
        assert_int_equal(model_backward(&s, NULL, gs[k]), 0);
        runstate_free(&s);
    }
    double e = rel_err_ff(g16.data, g32.data, a.n_floats);
    printf("# bf16 base: loss %.6f (fp32 base %.6f), LoRA gradient rel err %.2e\n", loss[1], loss[0], e);
    assert_true(fabs(loss[1] - loss[0]) < 0.02 * loss[0]);
    assert_true(e < 0.05);
    lora_free(&a); lora_free(&g32); lora_free(&g16);
    model_free(&m32);
    model_free(&m16);
}

static void test_errors(void **state) {
    (void)state;
    Model m;
    ModelConfig c = tiny_config(ROPE_HALF, 1);
    tiny_model(&m, &c, 9, 0.4f);
    ModelConfig c2 = c;
    c2.n_layers = 3;
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &c2, 2, 2.0f, 0, LORA_TARGETS_ALL), 0);
    RunState s;
    assert_int_equal(runstate_init(&s, &m, 1, 4, 4, RS_KEEP_NONE), 0);
    assert_int_equal(runstate_set_lora(&s, &a), -1);
    assert_non_null(strstr(err_msg(), "3 layers"));
    lora_free(&a);
    c2 = c;
    c2.hidden_dim = 48;
    assert_int_equal(lora_init(&a, &c2, 2, 2.0f, 0, LORA_BIT(LORA_UP)), 0);
    assert_int_equal(runstate_set_lora(&s, &a), -1);
    assert_non_null(strstr(err_msg(), "target up"));
    lora_free(&a);
    runstate_free(&s);
    /* merging needs a writable model */
    assert_int_equal(lora_init(&a, &c, 2, 2.0f, 0, LORA_TARGETS_ALL), 0);
    m.writable = 0;
    assert_int_equal(lora_merge(&a, &m), -1);
    assert_non_null(strstr(err_msg(), "writable"));
    m.writable = 1;
    assert_int_equal(lora_unmerge(&a, &m), -1);
    lora_free(&a);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_scaling),
        cmocka_unit_test(test_targets_parse),
        cmocka_unit_test(test_peft_init),
        cmocka_unit_test(test_fresh_adapter_is_identity),
        cmocka_unit_test(test_target_subset),
        cmocka_unit_test(test_merge_unmerge),
        cmocka_unit_test(test_decode_with_adapter),
        cmocka_unit_test(test_lora_on_bf16_base),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
