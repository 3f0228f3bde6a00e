/* tests/compat/test_compat_mixgen.c - greedy decoding from a mixture of models
 * (compat/compat_mixgen.h), the teacher of the sequence-level ensemble and mixture:
 *   - against a reference written here without a KV cache: every member runs the whole
 *     prefix again at every step (model_forward), p = sum_k w_k softmax(z_k) in double,
 *     the no-repeat n-gram rule, argmax (first on a tie), EOS/BOS ends;
 *   - one member of weight 1 gives model_generate_batch's ids with that adapter;
 *   - two copies of one member at 1/2 each give that member's ids (the mean of equal
 *     distributions is the distribution);
 *   - a member of weight 0 (the mixture at a = 0) gives the ensemble's ids;
 *   - widths 1, 2 and the default (continuous batching) give the same ids;
 *   - bad members: one clear message each. */
#include "testutil.h"
#include "compat/compat_mixgen.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/forward.h"
#include "model/sample.h"

#include <math.h>

static const char *texts[] = {
    "Once upon a time",
    "Lily and Tom went to the park. They saw a big dog. The dog was",
    "The sun",
    "One day, a little girl named Sue found a shiny red ball in the garden. She",
    "Tim liked to",
};
#define N_TEXTS (int)(sizeof texts / sizeof *texts)
#define N_AD 3

typedef struct {
    Model m;
    Tokenizer *t;
    LoraAdapter a[N_AD];
    GenRequest req[N_TEXTS];
    int *ids[N_TEXTS];
} Fix;

static void fix_load(Fix *f) {
    ModelLoadOptions o = {KW_F32, 0};
    if (model_load(&f->m, shared_path("models/stories260K/stories260K.bin"), &o) != 0) fail_msg("%s", err_msg());
    f->t = model_tokenizer_load(&f->m, NULL);
    if (!f->t) fail_msg("%s", err_msg());
    for (int k = 0; k < N_AD; k++) { /* three different task models on one base */
        assert_int_equal(lora_init(&f->a[k], &f->m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
        Rng rng;
        rng_seed(&rng, 3 + (uint64_t)k);
        for (size_t i = 0; i < f->a[k].n_floats; i++) f->a[k].data[i] = 0.15f * rng_normal(&rng);
    }
    for (int i = 0; i < N_TEXTS; i++) {
        int n;
        assert_int_equal(tok_encode(f->t, texts[i], strlen(texts[i]), 1, 0, &f->ids[i], &n), 0);
        f->req[i] = (GenRequest){f->ids[i], n, 0};
    }
}

static void fix_free(Fix *f) {
    for (int i = 0; i < N_TEXTS; i++) free(f->ids[i]);
    for (int k = 0; k < N_AD; k++) lora_free(&f->a[k]);
    model_tokenizer_free(&f->m, f->t);
    model_free(&f->m);
}

/* The reference: no cache, the whole prefix at every step, the mixture in double. */
static int ref_decode(const CompatMember *mem, int nm, const GenRequest *r, const GenOptions *o, int *out) {
    const Model *m = mem[0].model;
    int V = m->cfg.vocab_size, total = r->n_prompt + o->max_tokens, n = 0;
    if (total > m->cfg.seq_len) total = m->cfg.seq_len;
    int *hist = malloc((size_t)total * sizeof *hist);
    double *p = malloc((size_t)V * sizeof *p);
    float *ban = malloc((size_t)V * sizeof *ban);
    memcpy(hist, r->prompt, (size_t)r->n_prompt * sizeof *hist);
    int nh = r->n_prompt;
    while (n < o->max_tokens) {
        memset(p, 0, (size_t)V * sizeof *p);
        for (int k = 0; k < nm; k++) {
            RunState s;
            assert_int_equal(runstate_init(&s, mem[k].model, 1, nh, nh, RS_KEEP_NONE), 0);
            if (mem[k].adapter) assert_int_equal(runstate_set_lora(&s, mem[k].adapter), 0);
            assert_int_equal(model_forward(&s, hist, 1, nh, 0), 0);
            const float *z = s.logits + (size_t)(nh - 1) * V;
            double mx = z[0], sum = 0;
            for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
            for (int j = 0; j < V; j++) sum += exp((double)z[j] - mx);
            for (int j = 0; j < V; j++) p[j] += mem[k].w * exp((double)z[j] - mx) / sum;
            runstate_free(&s);
        }
        memset(ban, 0, (size_t)V * sizeof *ban);
        if (o->no_repeat_ngram) ngram_block(ban, V, hist, nh, o->no_repeat_ngram);
        int best = -1;
        for (int j = 0; j < V; j++)
            if (ban[j] == 0.0f && (best < 0 || p[j] > p[best])) best = j;
        if (best == m->cfg.eos_id || best == m->cfg.bos_id) break;
        out[n++] = best;
        hist[nh++] = best;
        if (nh >= total) break;
    }
    free(hist);
    free(p);
    free(ban);
    return n;
}

static void expect_ids(const GenResult *r, const int *ids, int n, const char *what, int i) {
    if (r->n_ids != n || memcmp(r->ids, ids, (size_t)n * sizeof *ids))
        fail_msg("%s, prompt %d: %d ids ('%s'), the reference %d", what, i, r->n_ids, r->text, n);
}

static void test_against_reference(void **st) {
    (void)st;
    Fix f;
    fix_load(&f);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 16;
    g.no_repeat_ngram = 2;
    /* the mixture of the issue: (1 - a)/K for K = 2 new adapters, a for a third ("M1") */
    CompatMember mem[3] = {{&f.m, &f.a[0], 0.35, "new 1"}, {&f.m, &f.a[1], 0.35, "new 2"}, {&f.m, &f.a[2], 0.3, "old"}};
    int widths[3] = {1, 2, 0};
    GenResult res[N_TEXTS];
    int ref[N_TEXTS][64], nref[N_TEXTS], differ_from_one = 0;
    for (int i = 0; i < N_TEXTS; i++) nref[i] = ref_decode(mem, 3, &f.req[i], &g, ref[i]);
    for (int w = 0; w < 3; w++) {
        assert_int_equal(compat_mix_generate(mem, 3, f.t, f.req, N_TEXTS, &g, widths[w], NULL, NULL, res), 0);
        for (int i = 0; i < N_TEXTS; i++) {
            expect_ids(&res[i], ref[i], nref[i], "mixture of 3", i);
            gen_result_free(&res[i]);
        }
    }
    /* the mixture is not any one member (so the test above tests the mixing) */
    for (int k = 0; k < 3; k++) {
        CompatMember one = {&f.m, &f.a[k], 1.0, "one"};
        assert_int_equal(compat_mix_generate(&one, 1, f.t, f.req, N_TEXTS, &g, 0, NULL, NULL, res), 0);
        for (int i = 0; i < N_TEXTS; i++) {
            differ_from_one += res[i].n_ids != nref[i] || memcmp(res[i].ids, ref[i], (size_t)nref[i] * sizeof(int));
            gen_result_free(&res[i]);
        }
    }
    printf("# mixture of 3 = the reference on %d prompts at widths 1, 2, default; %d of %d (member, prompt) differ from one member's\n",
           N_TEXTS, differ_from_one, 3 * N_TEXTS);
    assert_true(differ_from_one > 0);
    fix_free(&f);
}

static void test_special_cases(void **st) {
    (void)st;
    Fix f;
    fix_load(&f);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 32;
    g.no_repeat_ngram = 2;
    GenResult batch[N_TEXTS], mix[N_TEXTS], other[N_TEXTS];
    /* one member of weight 1 = model_generate_batch with its adapter */
    g.lora = &f.a[1];
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, N_TEXTS, &g, 0, NULL, NULL, batch), 0);
    g.lora = NULL;
    CompatMember one = {&f.m, &f.a[1], 1.0, "A"};
    assert_int_equal(compat_mix_generate(&one, 1, f.t, f.req, N_TEXTS, &g, 0, NULL, NULL, mix), 0);
    for (int i = 0; i < N_TEXTS; i++) {
        expect_ids(&mix[i], batch[i].ids, batch[i].n_ids, "one member vs model_generate_batch", i);
        assert_string_equal(mix[i].text, batch[i].text);
        assert_int_equal(mix[i].stopped_by, batch[i].stopped_by);
        gen_result_free(&mix[i]);
    }
    /* two copies at 1/2: the mixing path, the same ids */
    CompatMember two[2] = {{&f.m, &f.a[1], 0.5, "A"}, {&f.m, &f.a[1], 0.5, "A again"}};
    assert_int_equal(compat_mix_generate(two, 2, f.t, f.req, N_TEXTS, &g, 2, NULL, NULL, mix), 0);
    for (int i = 0; i < N_TEXTS; i++) {
        expect_ids(&mix[i], batch[i].ids, batch[i].n_ids, "two copies at 1/2", i);
        gen_result_free(&mix[i]);
        gen_result_free(&batch[i]);
    }
    /* the mixture at a = 0 = the ensemble */
    CompatMember ens[2] = {{&f.m, &f.a[0], 0.5, "A"}, {&f.m, &f.a[1], 0.5, "B"}};
    CompatMember mix0[3] = {{&f.m, &f.a[0], 0.5, "A"}, {&f.m, &f.a[1], 0.5, "B"}, {&f.m, &f.a[2], 0.0, "M1"}};
    assert_int_equal(compat_mix_generate(ens, 2, f.t, f.req, N_TEXTS, &g, 0, NULL, NULL, mix), 0);
    assert_int_equal(compat_mix_generate(mix0, 3, f.t, f.req, N_TEXTS, &g, 0, NULL, NULL, other), 0);
    for (int i = 0; i < N_TEXTS; i++) {
        expect_ids(&other[i], mix[i].ids, mix[i].n_ids, "mixture at a = 0 vs the ensemble", i);
        assert_string_equal(other[i].text, mix[i].text);
        gen_result_free(&mix[i]);
        gen_result_free(&other[i]);
    }
    fix_free(&f);
}

static void expect_err(const CompatMember *mem, int nm, const Fix *f, const GenOptions *g, const char *pat) {
    GenResult r[N_TEXTS];
    err_clear();
    assert_int_equal(compat_mix_generate(mem, nm, f->t, f->req, N_TEXTS, g, 0, NULL, NULL, r), -1);
    if (!strstr(err_msg(), pat)) fail_msg("expected '%s' in: %s", pat, err_msg());
    assert_null(strchr(err_msg(), '\n'));
    for (int i = 0; i < N_TEXTS; i++) assert_null(r[i].text);
}

static void test_bad_members(void **st) {
    (void)st;
    Fix f;
    fix_load(&f);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 4;
    Model other;
    ModelConfig c = f.m.cfg;
    c.vocab_size = 300;
    ModelLoadOptions lo = {KW_F32, 0};
    assert_int_equal(model_init_random(&other, &c, &lo, 1), 0);
    CompatMember m2[2] = {{&f.m, NULL, 0.5, "M2"}, {&other, NULL, 0.5, "M1"}};
    expect_err(m2, 2, &f, &g, "M1 has 300 tokens in its vocabulary, M2 512: the members must share a tokenizer");
    CompatMember neg[2] = {{&f.m, NULL, 1.5, "M2"}, {&f.m, NULL, -0.5, "M1"}};
    expect_err(neg, 2, &f, &g, "weight -0.5 of M1: expected a number >= 0");
    CompatMember zero[2] = {{&f.m, NULL, 0.0, "M2"}, {&f.m, NULL, 0.0, "M1"}};
    expect_err(zero, 2, &f, &g, "the weights sum to 0");
    expect_err(m2, 0, &f, &g, "no model to decode with");
    g.temperature = 0.7f;
    CompatMember ok = {&f.m, NULL, 1.0, "M2"};
    expect_err(&ok, 1, &f, &g, "greedy");
    model_free(&other);
    fix_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_special_cases),
        cmocka_unit_test(test_bad_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
