/* tests/model/test_generate_batch.c - batched, continuous decoding (model/generate_batch.h)
 * against decoding one prompt at a time (model_generate): the same ids, text and reason to
 * stop for ragged prompts, stop strings, no-repeat n-grams, adapters, the context limit, on
 * the shipped models (stories260K, babyllama105, the demo's v1 and v2), at several widths
 * (fewer slots than prompts: continuous batching); sampling that does not depend on the
 * width; the rows forward call's checks. */
#include "testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/forward.h"
#include "model/generate_batch.h"
#include "model/lora_peft.h"

#include <math.h>
#include <omp.h>

static const char *texts[] = {
    "Once upon a time",
    "",
    "Lily and Tom went to the park. They saw a big dog. The dog was",
    "The sun",
    "One day, a little girl named Sue found a shiny red ball in the garden. She",
    "Tim liked to",
    "A cat sat on the mat and looked at the bird in the tree. The bird sang a happy song and the cat",
    "He said",
    "Python module for reading and writing MIDI files with support for ports",
    "Once upon a time there was a",
    "Mom",
};
#define N_TEXTS (int)(sizeof texts / sizeof *texts)

typedef struct {
    Model m;
    Tokenizer *t;
    GenRequest req[N_TEXTS];
    int *ids[N_TEXTS];
} Fix;

static void fix_load(Fix *f, const char *path, KWeightType wt) {
    ModelLoadOptions o = {wt, 0};
    if (model_load(&f->m, path, &o) != 0) fail_msg("%s", err_msg());
    f->t = model_tokenizer_load(&f->m, NULL);
    if (!f->t) fail_msg("%s", err_msg());
    for (int i = 0; i < N_TEXTS; i++) {
        int n;
        assert_int_equal(tok_encode(f->t, texts[i], strlen(texts[i]), 1, 0, &f->ids[i], &n), 0);
        f->req[i].prompt = f->ids[i];
        f->req[i].n_prompt = n;
        f->req[i].seed = gen_seed(7, i);
    }
}

static void fix_free(Fix *f) {
    for (int i = 0; i < N_TEXTS; i++) free(f->ids[i]);
    model_tokenizer_free(&f->m, f->t);
    model_free(&f->m);
}

/* The batch at each width against model_generate one prompt at a time (seeded as the
 * batch seeds request i); returns how many results stopped for each reason. */
static void check_same(Fix *f, const GenOptions *base, const int *widths, int nw, int stops_seen[5]) {
    GenResult one[N_TEXTS], many[N_TEXTS];
    for (int i = 0; i < N_TEXTS; i++) {
        GenOptions g = *base;
        g.seed = f->req[i].seed;
        if (model_generate(&f->m, f->t, f->req[i].prompt, f->req[i].n_prompt, &g, NULL, NULL, &one[i]) != 0) fail_msg("%s", err_msg());
        if (stops_seen) stops_seen[one[i].stopped_by]++;
    }
    for (int w = 0; w < nw; w++) {
        if (model_generate_batch(&f->m, f->t, f->req, N_TEXTS, base, widths[w], NULL, NULL, many) != 0) fail_msg("%s", err_msg());
        for (int i = 0; i < N_TEXTS; i++) {
            if (many[i].n_ids != one[i].n_ids || memcmp(many[i].ids, one[i].ids, (size_t)one[i].n_ids * sizeof(int)))
                fail_msg("width %d, prompt %d: %d ids differ from single-stream's %d ('%s' vs '%s')", widths[w], i, many[i].n_ids,
                         one[i].n_ids, many[i].text, one[i].text);
            assert_string_equal(many[i].text, one[i].text);
            assert_int_equal(many[i].text_len, one[i].text_len);
            assert_int_equal(many[i].stopped_by, one[i].stopped_by);
            gen_result_free(&many[i]);
        }
    }
    for (int i = 0; i < N_TEXTS; i++) gen_result_free(&one[i]);
}

/* 1: the rows call on one sequence; 3 < prompts: continuous batching; 16 > prompts */
static const int widths[] = {1, 3, 16};

/* Under AddressSanitizer (about 20x slower here) the five models' runs are cut short: the
 * plain build checks them in full, the sanitizer build checks memory on the same paths. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static void greedy_model(const char *path, KWeightType wt, int max_tokens) {
    Fix f;
    fix_load(&f, path, wt);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = SANITIZED ? 6 : max_tokens;
    check_same(&f, &g, SANITIZED ? widths + 1 : widths, SANITIZED ? 2 : 3, NULL);
    fix_free(&f);
}

static void test_greedy_stories260K(void **st) { (void)st; greedy_model(shared_path("models/stories260K/stories260K.bin"), KW_F32, 40); }
static void test_greedy_stories260K_bf16(void **st) { (void)st; greedy_model(shared_path("models/stories260K/stories260K.bin"), KW_BF16, 40); }
static void test_greedy_babyllama105(void **st) { (void)st; greedy_model(shared_path("models/babyllama105/model.bin"), KW_F32, 32); }
static void test_greedy_demo_v1(void **st) { (void)st; greedy_model("demo/models/v1", KW_F32, 32); }
static void test_greedy_demo_v2_bf16(void **st) { (void)st; greedy_model("demo/models/v2", KW_BF16, 32); }

/* Stop strings and no-repeat n-grams: the same as single-stream, and they do act. */
static void test_stops_ngram(void **st) {
    (void)st;
    Fix f;
    fix_load(&f, shared_path("models/stories260K/stories260K.bin"), KW_F32);
    const char *stops[] = {" dog", "!", " ball"};
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 60;
    g.stops = stops;
    g.n_stops = 3;
    int seen[5] = {0};
    check_same(&f, &g, widths, 3, seen);
    print_message("# stopped by: max tokens %d, eos %d, stop string %d\n", seen[0], seen[1], seen[2]);
    assert_true(seen[2] > 0); /* some prompt stopped at a stop string ... */
    assert_true(seen[2] < N_TEXTS); /* ... and not all at once */
    g.stops = NULL;
    g.n_stops = 0;
    g.no_repeat_ngram = 2;
    check_same(&f, &g, widths, 3, NULL);
    GenResult r[N_TEXTS];
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, N_TEXTS, &g, 5, NULL, NULL, r), 0);
    for (int i = 0; i < N_TEXTS; i++) { /* no bigram twice in prompt + output */
        int n = f.req[i].n_prompt + r[i].n_ids;
        int *h = malloc((size_t)n * sizeof *h);
        memcpy(h, f.req[i].prompt, (size_t)f.req[i].n_prompt * sizeof *h);
        memcpy(h + f.req[i].n_prompt, r[i].ids, (size_t)r[i].n_ids * sizeof *h);
        for (int a = f.req[i].n_prompt - 1; a + 1 < n; a++)
            for (int b = 0; b < a; b++)
                if (h[b] == h[a] && h[b + 1] == h[a + 1] && a + 1 >= f.req[i].n_prompt) fail_msg("prompt %d: bigram repeated", i);
        free(h);
        gen_result_free(&r[i]);
    }
    fix_free(&f);
}

/* A random adapter on stories260K and the demo's real sum-v1 adapter on v1. */
static void test_adapters(void **st) {
    (void)st;
    Fix f;
    fix_load(&f, shared_path("models/stories260K/stories260K.bin"), KW_F32);
    LoraAdapter a;
    assert_int_equal(lora_init(&a, &f.m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    Rng rng;
    rng_seed(&rng, 3);
    for (size_t i = 0; i < a.n_floats; i++) a.data[i] = 0.2f * rng_normal(&rng);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 40;
    g.lora = &a;
    check_same(&f, &g, widths, 3, NULL);
    /* the adapter changes the output (so the test above tests it) */
    GenResult with, without;
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, 1, &g, 1, NULL, NULL, &with), 0);
    g.lora = NULL;
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, 1, &g, 1, NULL, NULL, &without), 0);
    assert_true(with.n_ids != without.n_ids || memcmp(with.ids, without.ids, (size_t)with.n_ids * sizeof(int)) != 0);
    gen_result_free(&with);
    gen_result_free(&without);
    lora_free(&a);
    fix_free(&f);

    fix_load(&f, "demo/models/v1", KW_F32);
    assert_int_equal(lora_load_peft(&a, &f.m.cfg, "demo/adapters/sum-v1"), 0);
    g.lora = &a;
    g.stops = (const char *[]){"\n"};
    g.n_stops = 1;
    check_same(&f, &g, widths, 3, NULL);
    lora_free(&a);
    fix_free(&f);
}

/* Sampling: the same text for a seed whatever the width (each prompt its own stream),
 * and as model_generate with that stream's seed; another seed gives other texts. */
static void test_sampling_width(void **st) {
    (void)st;
    Fix f;
    fix_load(&f, shared_path("models/stories260K/stories260K.bin"), KW_F32);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 32;
    g.temperature = 0.9f;
    g.top_p = 0.95f;
    check_same(&f, &g, widths, 3, NULL);
    GenResult a[N_TEXTS], b[N_TEXTS];
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, N_TEXTS, &g, 2, NULL, NULL, a), 0);
    for (int i = 0; i < N_TEXTS; i++) f.req[i].seed = gen_seed(8, i);
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, N_TEXTS, &g, 2, NULL, NULL, b), 0);
    int differ = 0;
    for (int i = 0; i < N_TEXTS; i++) {
        differ += strcmp(a[i].text, b[i].text) != 0;
        gen_result_free(&a[i]);
        gen_result_free(&b[i]);
    }
    assert_true(differ > N_TEXTS / 2);
    assert_true(gen_seed(7, 0) != gen_seed(7, 1) && gen_seed(7, 0) != gen_seed(8, 0));
    fix_free(&f);
}

/* The context limit (prompts near seq_len), max tokens 0, and the done callback. */
static void on_done(void *ctx, int i, const GenResult *r) {
    (void)r;
    int *seen = ctx;
    seen[i]++;
}

static void test_limits(void **st) {
    (void)st;
    Fix f;
    fix_load(&f, shared_path("models/stories260K/stories260K.bin"), KW_F32);
    int S = f.m.cfg.seq_len;
    int *longp = malloc((size_t)S * sizeof *longp);
    for (int i = 0; i < S; i++) longp[i] = f.ids[2][i % f.req[2].n_prompt];
    GenRequest keep[3] = {f.req[0], f.req[2], f.req[3]};
    f.req[0].prompt = longp;
    f.req[0].n_prompt = S - 5; /* stops when the context is full */
    f.req[2].prompt = longp;
    f.req[2].n_prompt = S; /* a full prompt: one token, then full */
    f.req[3].n_prompt = 1;
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = 20;
    g.ignore_eos = 1;
    int seen[5] = {0};
    check_same(&f, &g, widths, 3, seen);
    assert_true(seen[3] >= 2);
    int calls[N_TEXTS] = {0};
    GenResult r[N_TEXTS];
    g.max_tokens = 0;
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, N_TEXTS, &g, 3, on_done, calls, r), 0);
    for (int i = 0; i < N_TEXTS; i++) {
        assert_int_equal(calls[i], 1);
        assert_int_equal(r[i].n_ids, 0);
        assert_string_equal(r[i].text, "");
        gen_result_free(&r[i]);
    }
    /* bad input: one clear error, nothing left allocated */
    g.max_tokens = 4;
    f.req[4].n_prompt = 0;
    assert_int_equal(model_generate_batch(&f.m, f.t, f.req, N_TEXTS, &g, 3, NULL, NULL, r), -1);
    assert_non_null(strstr(err_msg(), "prompt 5"));
    f.req[0] = keep[0];
    f.req[2] = keep[1];
    f.req[3] = keep[2];
    free(longp);
    fix_free(&f);
}

/* model_forward_rows: a row's logits are those of its sequence run alone, whatever slot
 * and whatever else is in the call; bad slots and positions are refused. */
static void test_forward_rows(void **st) {
    (void)st;
    Model m;
    if (model_load(&m, shared_path("models/stories260K/stories260K.bin"), NULL) != 0) fail_msg("%s", err_msg());
    int V = m.cfg.vocab_size;
    int seq[12] = {1, 403, 407, 261, 378, 1186 % V, 290, 350, 267, 343, 271, 360};
    RunState a, b;
    assert_int_equal(runstate_init(&a, &m, 1, 16, 12, 0), 0);
    assert_int_equal(model_forward(&a, seq, 1, 12, 0), 0);
    assert_int_equal(runstate_init(&b, &m, 3, 16, 4, 0), 0);
    /* the sequence in slot 2 as chunks of 4 (three rows in one call) */
    int pos[12], slot[3] = {2, 2, 2};
    for (int i = 0; i < 12; i++) pos[i] = i;
    assert_int_equal(model_forward_rows(&b, seq, pos, slot, 3, 4), 0);
    double worst = 0;
    for (size_t i = 0; i < (size_t)12 * V; i++) worst = fmax(worst, fabs(a.logits[i] - b.logits[i]));
    assert_true(worst < 1e-4);
    /* then one step in slot 2 at position 12 beside a stranger in slot 0 */
    int t2[2] = {5, 300}, p2[2] = {3, 12}, s2[2] = {0, 2};
    assert_int_equal(model_forward_rows(&b, t2, p2, s2, 2, 1), 0);
    assert_int_equal(model_forward(&a, &t2[1], 1, 1, 12), 0);
    worst = 0;
    for (int i = 0; i < V; i++) worst = fmax(worst, fabs(a.logits[i] - b.logits[V + i]));
    assert_true(worst < 1e-4);
    assert_null(a.panels); /* no panel copies outside generation's run states */
    assert_null(b.panels);
    int bad_slot[1] = {3}, bad_pos[2] = {4, 6}, p15[2] = {15, 16};
    assert_int_equal(model_forward_rows(&b, t2, p2, bad_slot, 1, 1), -1);
    assert_int_equal(model_forward_rows(&b, t2, bad_pos, s2, 1, 2), -1);
    assert_int_equal(model_forward_rows(&b, t2, p15, s2, 1, 2), -1);
    runstate_free(&a);
    runstate_free(&b);
    model_free(&m);
}

/* Generation's run states (attn_rows): a prompt cut into calls of 12, of 4 and 4 x 3 rows,
 * or fed one token at a time gives bit-identical logits for its last token, computed alone
 * (logit_rows) or among all rows (at level avx512 on the fp32 weights' panel copies); a logit row list that is not ascending or leaves the
 * call is refused. */
static void test_rows_bits(void **st) {
    (void)st;
    Model m;
    if (model_load(&m, shared_path("models/stories260K/stories260K.bin"), NULL) != 0) fail_msg("%s", err_msg());
    int V = m.cfg.vocab_size;
    int seq[12] = {1, 403, 407, 261, 378, 1186 % V, 290, 350, 267, 343, 271, 360};
    RunState a, b, c;
    assert_int_equal(runstate_init(&a, &m, 1, 16, 12, 0), 0);
    assert_int_equal(runstate_init(&b, &m, 3, 16, 4, 0), 0);
    assert_int_equal(runstate_init(&c, &m, 1, 16, 1, 0), 0);
    a.attn_rows = b.attn_rows = c.attn_rows = 1;
    assert_int_equal(model_forward(&a, seq, 1, 12, 0), 0);
    float *full = malloc((size_t)V * sizeof(float));
    memcpy(full, a.logits + (size_t)11 * V, (size_t)V * sizeof(float));
    int last = 11;
    a.logit_rows = &last;
    a.n_logit_rows = 1;
    assert_int_equal(model_forward(&a, seq, 1, 12, 0), 0);
    assert_memory_equal(a.logits, full, (size_t)V * sizeof(float));
    int pos[12], slot[3] = {1, 1, 1}, lr = 2 * 4 + 3;
    for (int i = 0; i < 12; i++) pos[i] = i;
    b.logit_rows = &lr;
    b.n_logit_rows = 1;
    assert_int_equal(model_forward_rows(&b, seq, pos, slot, 3, 4), 0);
    assert_memory_equal(b.logits, full, (size_t)V * sizeof(float));
    for (int i = 0; i < 12; i++) assert_int_equal(model_forward(&c, seq + i, 1, 1, i), 0);
    assert_memory_equal(c.logits, full, (size_t)V * sizeof(float));
    if (kmm_level() >= KMM_AVX512 && !getenv("MUSCLE_F32_PANELS")) { /* on the panel copies (forward.h) */
        int cls = m.cfg.n_layers * LORA_N_TARGETS;
        assert_non_null(a.panels);
        assert_non_null(a.panels[cls].p);
        assert_non_null(b.panels[LORA_DOWN].p);
        assert_non_null(c.panels[0].p);
    }
    int bad1[2] = {3, 3}, bad2[1] = {12};
    b.logit_rows = bad1;
    b.n_logit_rows = 2;
    assert_int_equal(model_forward_rows(&b, seq, pos, slot, 3, 4), -1);
    b.logit_rows = bad2;
    b.n_logit_rows = 1;
    assert_int_equal(model_forward_rows(&b, seq, pos, slot, 3, 4), -1);
    free(full);
    runstate_free(&a);
    runstate_free(&b);
    runstate_free(&c);
    model_free(&m);
}

/* KV cache in bf16 (GenOptions.kv_bf16, RS_KV_BF16): batched ids still equal single-stream
 * ones (both read the same rounded cache); against the fp32 cache the log-probabilities
 * move, but little (bf16's 2^-8 relative rounding of keys and values). */
static void kv_model(const char *path, KWeightType wt, double tol, int *same, int *total) {
    Fix f;
    fix_load(&f, path, wt);
    GenOptions g;
    gen_options_default(&g);
    g.max_tokens = SANITIZED ? 6 : 24;
    g.kv_bf16 = 1;
    check_same(&f, &g, SANITIZED ? widths + 1 : widths, SANITIZED ? 2 : 3, NULL);
    /* against the fp32 cache: greedy ids (counted), then the log-prob distance of a
     * prompt and its continuation scored in one pass */
    GenOptions g32 = g;
    g32.kv_bf16 = 0;
    int V = f.m.cfg.vocab_size;
    for (int i = 0; i < N_TEXTS; i++) {
        GenResult a, b;
        if (model_generate(&f.m, f.t, f.req[i].prompt, f.req[i].n_prompt, &g, NULL, NULL, &a) != 0) fail_msg("%s", err_msg());
        if (model_generate(&f.m, f.t, f.req[i].prompt, f.req[i].n_prompt, &g32, NULL, NULL, &b) != 0) fail_msg("%s", err_msg());
        *same += a.n_ids == b.n_ids && !memcmp(a.ids, b.ids, (size_t)a.n_ids * sizeof(int));
        (*total)++;
        int n = f.req[i].n_prompt + b.n_ids;
        int *seq = malloc((size_t)n * sizeof *seq);
        memcpy(seq, f.req[i].prompt, (size_t)f.req[i].n_prompt * sizeof *seq);
        memcpy(seq + f.req[i].n_prompt, b.ids, (size_t)b.n_ids * sizeof *seq);
        RunState r32, r16;
        assert_int_equal(runstate_init(&r32, &f.m, 1, n, n, RS_KEEP_NONE), 0);
        assert_int_equal(runstate_init(&r16, &f.m, 1, n, n, RS_KEEP_NONE | RS_KV_BF16), 0);
        assert_null(r16.kcache);
        assert_int_equal(model_forward(&r32, seq, 1, n, 0), 0);
        assert_int_equal(model_forward(&r16, seq, 1, n, 0), 0);
        logsoftmax_rows(r32.logits, n, V);
        logsoftmax_rows(r16.logits, n, V);
        /* the log-prob of each next token (what scoring reads), and the whole distribution */
        double worst = 0, all = 0;
        for (int j = 0; j + 1 < n; j++) worst = fmax(worst, fabs(r32.logits[(size_t)j * V + seq[j + 1]] - r16.logits[(size_t)j * V + seq[j + 1]]));
        for (size_t j = 0; j < (size_t)n * V; j++) all = fmax(all, fabs(r32.logits[j] - r16.logits[j]));
        if (!(worst <= tol) || !(all <= 3 * tol))
            fail_msg("%s prompt %d: log-probs of the bf16 cache %.4g (next token), %.4g (any) from the fp32 cache's (tolerance %g, %g)",
                     path, i, worst, all, tol, 3 * tol);
        /* fp32 weights: the bf16 cache must change something. bf16 weights: a pass of more than
         * 4 rows runs attention in mixed precision (model_products: keys, values and P rounded to
         * bf16, fp32 sums), so the fp32 cache's keys and values are rounded to what the bf16
         * cache holds: the same log-probs, exactly */
        if (wt == KW_F32 && n > 1 && all == 0) fail_msg("%s prompt %d: the bf16 cache changed nothing (is it used?)", path, i);
        if (wt == KW_BF16 && n > 4 && all != 0)
            fail_msg("%s prompt %d: bf16 weights: the bf16 cache moved the log-probs by %.3g; mixed-precision attention rounds keys and values the same way", path, i, all);
        runstate_free(&r32);
        runstate_free(&r16);
        free(seq);
        gen_result_free(&a);
        gen_result_free(&b);
    }
    /* training run states refuse it */
    RunState rt;
    assert_int_equal(runstate_init(&rt, &f.m, 1, 8, 8, RS_KEEP_ALL | RS_KV_BF16), -1);
    fix_free(&f);
}

static void test_kv_bf16(void **st) {
    (void)st;
    int same = 0, total = 0;
    kv_model(shared_path("models/stories260K/stories260K.bin"), KW_F32, 0.1, &same, &total);
    kv_model("demo/models/v1", KW_F32, 0.1, &same, &total);
    kv_model("demo/models/v2", KW_BF16, 0.1, &same, &total);
    print_message("# bf16 KV cache: greedy ids equal to the fp32 cache's for %d of %d prompts\n", same, total);
}

int main(void) {
    /* one thread: the test compares the batched and single-stream paths, both at the same
     * thread count; at 2 threads on a shared machine thousands of tiny parallel regions a
     * decoding run cost minutes in barriers */
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_rows),      cmocka_unit_test(test_rows_bits),
        cmocka_unit_test(test_greedy_stories260K),
        cmocka_unit_test(test_greedy_stories260K_bf16), cmocka_unit_test(test_greedy_babyllama105),
        cmocka_unit_test(test_greedy_demo_v1),    cmocka_unit_test(test_greedy_demo_v2_bf16),
        cmocka_unit_test(test_stops_ngram),       cmocka_unit_test(test_adapters),
        cmocka_unit_test(test_sampling_width),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_kv_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
