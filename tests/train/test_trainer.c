/* tests/train/test_trainer.c - training data, the training loop and checkpoints.
 *
 * Data: the three corpus formats (BOS at every document, same tokens whichever format
 * holds the same documents), windows and their padding, the held-out split, errors.
 * Trainer (a tiny random model built in memory, in-memory token streams): every example
 * once per epoch in a seeded order; gradient accumulation gives the batch's update
 * (B=4 x 1 = 2 x 2 = 1 x 4); weight-0 positions change nothing; the schedule is
 * applied; the loss falls on a learnable pattern; a run cut in two by a checkpoint and
 * a fresh trainer gives the same bits as one run (full and LoRA); changed settings are
 * refused by name. The command line (kills, signals, real model): tests/train/cli.sh.
 */
#include "testutil.h"
#include "core/error.h"
#include "core/file.h"
#include "train/trainer.h"

#include <math.h>
#include <sys/stat.h>

static ModelConfig tiny_config(void) {
    ModelConfig c = {0};
    c.dim = 16;
    c.hidden_dim = 40;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 4;
    c.vocab_size = 32;
    c.seq_len = 64;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    c.tied = 1;
    c.bos_id = 1;
    c.eos_id = 2;
    return c;
}

static void tiny_model(Model *m, int writable) {
    ModelConfig c = tiny_config();
    ModelLoadOptions o = {KW_F32, writable};
    assert_int_equal(model_init_random(m, &c, &o, 7), 0);
}

/* A stream with some structure: a repeating pattern with noise. */
static int *pattern(size_t n, uint64_t seed) {
    int *v = malloc(n * sizeof *v);
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) v[i] = (rng_u32(&r) % 8 == 0) ? (int)(rng_u32(&r) % 32) : (int)(3 + (i * 5) % 11);
    return v;
}

static char *write_tmp(const char *dir, const char *name, const char *text) {
    char *p = file_join(dir, name);
    assert_int_equal(file_write_all_atomic(p, text, strlen(text)), 0);
    return p;
}

/* ------------------------------------------------------------------------- */
/* data                                                                       */

static int count(const int *v, size_t n, int x) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += v[i] == x;
    return c;
}

static void test_corpus_formats(void **state) {
    (void)state;
    Tokenizer *t = tok_load(shared_path("models/stories260K/tok512.bin"));
    assert_non_null(t);
    const char *dir = test_tmpdir();
    char *txt = write_tmp(dir, "a.txt", "\n\nOnce upon a time\nthere was a cat.\n\n \t\nThe cat sat.\r\n\n\nThe end.  \n");
    char *lines = write_tmp(dir, "b.txt", "Once upon a time\nthere was a cat.\n\nThe cat sat.\nThe end.\n");
    char *jsonl = write_tmp(dir, "c.jsonl", "{\"text\": \"Once upon a time\\nthere was a cat.\"}\n\n{\"id\": 3, \"text\": \"The cat sat.\"}\n"
                                            "{\"text\": \"\"}\n{\"text\": \"The end.\"}\n");
    int *a, *b, *c;
    size_t na, nb, nc, da, db, dc;
    assert_int_equal(data_tokenize_file(txt, DATA_FMT_AUTO, t, &a, &na, &da), 0);
    assert_int_equal(data_tokenize_file(jsonl, DATA_FMT_AUTO, t, &c, &nc, &dc), 0); /* '{': JSON lines */
    assert_int_equal(da, 3);
    assert_int_equal(dc, 3); /* the empty text is skipped */
    assert_int_equal(na, nc);
    assert_memory_equal(a, c, na * sizeof(int));
    assert_int_equal(a[0], tok_bos_id(t));
    assert_int_equal(count(a, na, tok_bos_id(t)), 3);
    /* one document per line: 4 documents, the first two lines apart */
    assert_int_equal(data_tokenize_file(lines, DATA_FMT_LINES, t, &b, &nb, &db), 0);
    assert_int_equal(db, 4);
    assert_int_equal(count(b, nb, tok_bos_id(t)), 4);
    /* the text of the first document, tokenized alone */
    int *ids, n;
    const char *doc = "Once upon a time\nthere was a cat.";
    assert_int_equal(tok_encode(t, doc, strlen(doc), 1, 0, &ids, &n), 0);
    assert_memory_equal(a, ids, (size_t)n * sizeof(int));
    assert_int_equal(a[n], tok_bos_id(t));
    free(ids);
    free(a);
    free(b);
    free(c);
    free(txt);
    free(lines);
    free(jsonl);
    tok_free(t);
}

static void test_corpus_errors(void **state) {
    (void)state;
    Tokenizer *t = tok_load(shared_path("models/stories260K/tok512.bin"));
    const char *dir = test_tmpdir();
    int *ids;
    size_t n, nd;
    struct { const char *name, *text; DataFormat f; const char *want; } cases[] = {
        {"empty.txt", "", DATA_FMT_AUTO, "no text"},
        {"blank.txt", "  \n\n\t\n", DATA_FMT_AUTO, "no text"},
        {"blank.jsonl", "{\"text\": \"\"}\n", DATA_FMT_AUTO, "no text"},
        {"bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"\n", DATA_FMT_AUTO, "bad.jsonl:2: expected a JSON object"},
        {"notext.jsonl", "{\"text\": \"a\"}\n\n{\"body\": \"b\"}\n", DATA_FMT_AUTO, "notext.jsonl:3: field 'text' is missing"},
        {"num.jsonl", "{\"text\": 5}\n", DATA_FMT_AUTO, "field 'text': expected a string"},
        {"plain.txt", "hello\n", DATA_FMT_JSONL, "plain.txt:1: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = write_tmp(dir, cases[i].name, cases[i].text);
        assert_int_equal(data_tokenize_file(p, cases[i].f, t, &ids, &n, &nd), -1);
        if (!strstr(err_msg(), cases[i].want)) fail_msg("%s: message '%s' lacks '%s'", cases[i].name, err_msg(), cases[i].want);
        assert_non_null(strstr(err_msg(), cases[i].name));
        free(p);
    }
    assert_int_equal(data_tokenize_file("/nonexistent/corpus.txt", DATA_FMT_AUTO, t, &ids, &n, &nd), -1);
    assert_non_null(strstr(err_msg(), "/nonexistent/corpus.txt"));
    DataFormat f;
    assert_int_equal(data_format_parse("jsonl", &f), 0);
    assert_int_equal(f, DATA_FMT_JSONL);
    assert_int_equal(data_format_parse("csv", &f), -1);
    tok_free(t);
}

static void test_windows(void **state) {
    (void)state;
    int ids[11];
    for (int i = 0; i < 11; i++) ids[i] = 100 + i;
    TrainData d;
    assert_int_equal(data_stream_open(&d, ids, 11, ids, 5, 4), 0);
    assert_int_equal(d.n[DATA_TRAIN], 3); /* 10 predictions: 4 + 4 + 2 */
    assert_int_equal(d.n[DATA_VAL], 1);
    TrainBatch b;
    assert_int_equal(train_batch_init(&b, 2, 4), 0);
    assert_int_equal(data_fill_row(&d, DATA_TRAIN, 1, &b, 0), 0);
    assert_int_equal(data_fill_row(&d, DATA_TRAIN, 2, &b, 1), 0);
    int tok0[4] = {104, 105, 106, 107}, tgt0[4] = {105, 106, 107, 108};
    assert_memory_equal(b.tokens, tok0, sizeof tok0);
    assert_memory_equal(b.targets, tgt0, sizeof tgt0);
    for (int j = 0; j < 4; j++) assert_true(b.weights[j] == 1.0f);
    /* the short last window: 2 real positions, 2 of padding with weight 0 */
    assert_int_equal(b.tokens[4], 108);
    assert_int_equal(b.targets[5], 110);
    assert_true(b.weights[5] == 1.0f && b.weights[6] == 0.0f && b.weights[7] == 0.0f);
    assert_int_equal(data_fill_row(&d, DATA_TRAIN, 3, &b, 0), -1);
    assert_int_equal(data_fill_row(&d, DATA_VAL, 0, &b, 2), -1);
    uint64_t h = d.hash;
    data_free(&d);
    ids[5]++;
    assert_int_equal(data_stream_open(&d, ids, 11, ids, 5, 4), 0);
    assert_true(d.hash != h);
    data_free(&d);
    assert_int_equal(data_stream_open(&d, ids, 1, NULL, 0, 4), -1);
    train_batch_free(&b);
}

static void test_heldout_split(void **state) {
    (void)state;
    Tokenizer *t = tok_load(shared_path("models/stories260K/tok512.bin"));
    const char *dir = test_tmpdir();
    char text[8192] = "";
    for (int i = 0; i < 40; i++) strcat(text, "The little dog ran to the park and played with a red ball.\n\n");
    char *p = write_tmp(dir, "s.txt", text);
    TextDataOptions o;
    text_data_options_default(&o);
    o.seq_len = 16;
    o.val_frac = 0.1;
    TrainData d;
    assert_int_equal(data_text_open(&d, p, &o, t), 0);
    size_t n = d.n_tokens[0] + d.n_tokens[1];
    assert_int_equal(d.n_tokens[1], (size_t)llround(0.1 * (double)n));
    assert_int_equal(d.n_docs, 40);
    data_free(&d);
    o.val_frac = 0;
    assert_int_equal(data_text_open(&d, p, &o, t), 0);
    assert_int_equal(d.n[DATA_VAL], 0);
    data_free(&d);
    /* too little text for a window of each */
    o.val_frac = 0.05;
    o.seq_len = 512;
    assert_int_equal(data_text_open(&d, p, &o, t), -1);
    assert_non_null(strstr(err_msg(), "too few"));
    free(p);
    tok_free(t);
}

/* ------------------------------------------------------------------------- */
/* the trainer                                                                */

static void quiet_opts(TrainOptions *o, TrainMode mode) {
    train_options_default(o, mode);
    o->quiet = 1;
    o->lr = 3e-3;
    o->batch = 2;
    o->grad_accum = 2;
    o->steps = 6;
}

static void test_data_order(void **state) {
    (void)state;
    Model m;
    tiny_model(&m, 1);
    int *ids = pattern(8 * 7 + 1, 1);
    TrainData d;
    assert_int_equal(data_stream_open(&d, ids, 8 * 7 + 1, NULL, 0, 8), 0);
    assert_int_equal(d.n[DATA_TRAIN], 7);
    TrainOptions o;
    quiet_opts(&o, TRAIN_FULL);
    Trainer t;
    assert_int_equal(trainer_init(&t, &m, NULL, &d, &o, NULL), 0);
    long first[7], seen[7] = {0};
    for (int i = 0; i < 7; i++) first[i] = t.perm[i];
    for (int i = 0; i < 7; i++) seen[first[i]]++;
    for (int i = 0; i < 7; i++) assert_int_equal(seen[i], 1);
    /* 4 examples a step: step 2 runs across the end of epoch 0 */
    assert_int_equal(trainer_step(&t), 0);
    assert_int_equal(t.epoch, 0);
    assert_int_equal(t.index, 4);
    assert_int_equal(trainer_step(&t), 0);
    assert_int_equal(t.epoch, 1);
    assert_int_equal(t.index, 1);
    int differs = 0;
    for (int i = 0; i < 7; i++) differs |= t.perm[i] != first[i];
    assert_true(differs); /* a new order each epoch */
    trainer_free(&t);
    /* the same seed draws the same order, another seed another */
    assert_int_equal(trainer_init(&t, &m, NULL, &d, &o, NULL), 0);
    assert_memory_equal(t.perm, first, sizeof first);
    trainer_free(&t);
    o.seed = 43;
    assert_int_equal(trainer_init(&t, &m, NULL, &d, &o, NULL), 0);
    differs = 0;
    for (int i = 0; i < 7; i++) differs |= t.perm[i] != first[i];
    assert_true(differs);
    trainer_free(&t);
    data_free(&d);
    free(ids);
    model_free(&m);
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    return worst / scale;
}

/* trains `steps` steps of B x G (fixed data: one epoch of 4 examples a step) and returns the weights */
static float *train_weights(int B, int G, int steps, double *first_loss, double *last_loss) {
    Model m;
    tiny_model(&m, 1);
    int *ids = pattern(4 * 12 + 1, 2);
    TrainData d;
    assert_int_equal(data_stream_open(&d, ids, 4 * 12 + 1, NULL, 0, 12), 0);
    TrainOptions o;
    quiet_opts(&o, TRAIN_FULL);
    o.batch = B;
    o.grad_accum = G;
    o.steps = steps;
    o.warmup = 0;
    o.schedule = LR_CONSTANT;
    Trainer t;
    assert_int_equal(trainer_init(&t, &m, NULL, &d, &o, NULL), 0);
    for (int s = 0; s < steps; s++) {
        assert_int_equal(trainer_step(&t), 0);
        if (s == 0 && first_loss) *first_loss = t.loss;
    }
    if (last_loss) *last_loss = t.loss;
    size_t n = (size_t)m.cfg.vocab_size * m.cfg.dim;
    float *w = malloc(n * sizeof *w);
    memcpy(w, m.tok_emb.f32, n * sizeof *w);
    trainer_free(&t);
    data_free(&d);
    free(ids);
    model_free(&m);
    return w;
}

static void test_grad_accumulation(void **state) {
    (void)state;
    double l41, l22, l14;
    float *a = train_weights(4, 1, 3, &l41, NULL), *b = train_weights(2, 2, 3, &l22, NULL), *c = train_weights(1, 4, 3, &l14, NULL);
    size_t n = 32 * 16;
    double e1 = max_rel_diff(a, b, n), e2 = max_rel_diff(a, c, n);
    printf("# accumulation: 4x1 vs 2x2 rel diff %.2e, vs 1x4 %.2e; first loss %.7f %.7f %.7f\n", e1, e2, l41, l22, l14);
    assert_true(e1 < 1e-4 && e2 < 1e-4);
    assert_true(fabs(l41 - l22) < 1e-5 && fabs(l41 - l14) < 1e-5);
    free(a);
    free(b);
    free(c);
}

static void test_loss_falls_and_schedule(void **state) {
    (void)state;
    Model m;
    tiny_model(&m, 1);
    int *ids = pattern(2000, 3);
    TrainData d;
    assert_int_equal(data_stream_open(&d, ids, 1800, ids + 1800, 200, 16), 0);
    TrainOptions o;
    quiet_opts(&o, TRAIN_FULL);
    o.steps = 40;
    o.warmup = 5;
    o.lr = 1e-2;
    o.min_lr = 1e-3;
    Trainer t;
    assert_int_equal(trainer_init(&t, &m, NULL, &d, &o, NULL), 0);
    assert_int_equal(trainer_eval(&t), 0);
    double v0 = t.val_loss;
    assert_true(fabs(v0 - log(32.0)) < 0.3); /* random weights: about uniform */
    for (long s = 0; s < o.steps; s++) {
        double want = lr_schedule_at(&t.sched, s);
        assert_int_equal(trainer_step(&t), 0);
        assert_true(t.lr == want);
        assert_true(t.grad_norm > 0);
    }
    assert_int_equal(trainer_eval(&t), 0);
    printf("# held-out loss %.4f -> %.4f (%.0f tokens)\n", v0, t.val_loss, t.val_tokens);
    assert_true(t.val_loss < v0 - 0.5);
    assert_true(t.val_tokens == 199);
    trainer_free(&t);
    data_free(&d);
    free(ids);
    model_free(&m);
}

/* A source of 2 examples whose positions 4.. have weight 0: variant 1 changes their
 * targets (must change nothing), variant 2 a weighted target (must change something). */
typedef struct { int variant; } MaskSrc;
static int mask_fill(const TrainData *d, int split, long i, int *tok, int *tgt, float *w) {
    const MaskSrc *s = d->impl;
    (void)split;
    for (int j = 0; j < d->seq_len; j++) {
        tok[j] = (int)(3 + (i * 7 + j * 3) % 20);
        w[j] = j < 4 ? 1.0f : 0.0f;
        tgt[j] = j < 4 ? (int)(5 + (j + i) % 9) : s->variant == 1 ? 31 - j : 0;
    }
    if (s->variant == 2) tgt[1] = 30;
    return 0;
}

static float *train_masked(int variant) {
    Model m;
    tiny_model(&m, 1);
    MaskSrc src = {variant};
    TrainData d = {0};
    d.seq_len = 8;
    d.n[DATA_TRAIN] = 2;
    d.fill = mask_fill;
    d.impl = &src;
    TrainOptions o;
    quiet_opts(&o, TRAIN_FULL);
    o.batch = 1;
    Trainer t;
    assert_int_equal(trainer_init(&t, &m, NULL, &d, &o, NULL), 0);
    for (int s = 0; s < 3; s++) assert_int_equal(trainer_step(&t), 0);
    size_t n = (size_t)m.cfg.vocab_size * m.cfg.dim;
    float *w = malloc(n * sizeof *w);
    memcpy(w, m.tok_emb.f32, n * sizeof *w);
    trainer_free(&t);
    model_free(&m);
    return w;
}

static void test_weights_mask(void **state) {
    (void)state;
    float *a = train_masked(0), *b = train_masked(1), *c = train_masked(2);
    size_t n = 32 * 16;
    assert_memory_equal(a, b, n * sizeof *a);
    assert_true(memcmp(a, c, n * sizeof *a) != 0);
    free(a);
    free(b);
    free(c);
}

/* --recompute (RS_KEEP_INPUTS) recomputes each layer in the backward pass: same bits */
static void recompute_case(TrainMode mode) {
    float *w[2];
    size_t n = 0;
    int *ids = pattern(400, 6);
    for (int rc = 0; rc < 2; rc++) {
        Model m;
        tiny_model(&m, mode == TRAIN_FULL);
        LoraAdapter a, *ap = NULL;
        if (mode == TRAIN_LORA) {
            assert_int_equal(lora_init(&a, &m.cfg, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
            lora_reset_peft(&a, 5);
            ap = &a;
        }
        TrainData d;
        assert_int_equal(data_stream_open(&d, ids, 400, NULL, 0, 16), 0);
        TrainOptions o;
        quiet_opts(&o, mode);
        o.recompute = rc;
        Trainer t;
        assert_int_equal(trainer_init(&t, &m, ap, &d, &o, NULL), 0);
        for (int s = 0; s < 4; s++) assert_int_equal(trainer_step(&t), 0);
        n = train_spans_total(t.spans, t.n_spans);
        w[rc] = malloc(n * sizeof(float));
        for (int i = 0, off = 0; i < t.n_spans; off += (int)t.spans[i].n, i++) memcpy(w[rc] + off, t.spans[i].param, t.spans[i].n * sizeof(float));
        trainer_free(&t);
        data_free(&d);
        if (ap) lora_free(ap);
        model_free(&m);
    }
    assert_memory_equal(w[0], w[1], n * sizeof(float));
    free(w[0]);
    free(w[1]);
    free(ids);
}

static void test_recompute_same_bits(void **state) {
    (void)state;
    recompute_case(TRAIN_FULL);
    recompute_case(TRAIN_LORA);
}

/* ---- checkpoints and resuming ---- */

static void snapshot(const Trainer *t, float **out, size_t *n) {
    size_t total = train_spans_total(t->spans, t->n_spans), off = 0;
    float *v = malloc((total * 3) * sizeof *v);
    for (int i = 0; i < t->n_spans; i++) {
        memcpy(v + off, t->spans[i].param, t->spans[i].n * sizeof *v);
        off += t->spans[i].n;
    }
    memcpy(v + off, t->adam.m, total * sizeof *v);
    memcpy(v + off + total, t->adam.v, total * sizeof *v);
    *out = v;
    *n = total * 3;
}

/* One run of `steps`, or the same run stopped after `cut` steps, saved, and continued
 * by a fresh trainer (new model, adapter and data objects): the same bits. */
static void resume_case(TrainMode mode, int steps, int cut) {
    const char *dir = test_tmpdir();
    char outa[300], outb[300];
    snprintf(outa, sizeof outa, "%s/a", dir);
    snprintf(outb, sizeof outb, "%s/b", dir);
    int *ids = pattern(700, 4);
    float *ref = NULL, *got = NULL;
    size_t nref = 0, ngot = 0;
    for (int run = 0; run < 3; run++) {
        Model m;
        tiny_model(&m, mode == TRAIN_FULL);
        LoraAdapter a, *ap = NULL;
        if (mode == TRAIN_LORA) {
            assert_int_equal(lora_init(&a, &m.cfg, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
            lora_reset_peft(&a, 5);
            ap = &a;
        }
        TrainData d;
        assert_int_equal(data_stream_open(&d, ids, 600, ids + 600, 100, 10), 0); /* 60 examples: 15 steps an epoch */
        TrainOptions o;
        quiet_opts(&o, mode);
        o.steps = steps;
        o.out_dir = run == 0 ? outa : outb;
        o.resume = run == 2;
        o.eval_every = 4;
        Trainer t;
        assert_int_equal(trainer_init(&t, &m, ap, &d, &o, NULL), 0);
        if (run == 0) {
            assert_int_equal(trainer_run(&t), 0);
            snapshot(&t, &ref, &nref);
        } else if (run == 1) { /* as trainer_run starts, then stopped after `cut` steps */
            assert_int_equal(trainer_eval(&t), 0);
            t.start_val_loss = t.val_loss;
            for (int s = 0; s < cut; s++) assert_int_equal(trainer_step(&t), 0);
            assert_int_equal(trainer_save(&t), 0);
        } else {
            assert_int_equal(trainer_run(&t), 0);
            assert_int_equal(t.adam.step, steps);
            snapshot(&t, &got, &ngot);
        }
        trainer_free(&t);
        data_free(&d);
        if (ap) lora_free(ap);
        model_free(&m);
    }
    assert_int_equal(nref, ngot);
    assert_memory_equal(ref, got, nref * sizeof *ref);
    /* the two final checkpoints too */
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/checkpoint/%s", outa, CKPT_FILE);
    snprintf(pb, sizeof pb, "%s/checkpoint/%s", outb, CKPT_FILE);
    size_t na, nb;
    char *fa = file_read_all(pa, &na, 0), *fb = file_read_all(pb, &nb, 0);
    assert_non_null(fa);
    assert_non_null(fb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);
    /* resuming with a changed setting is refused by name */
    Model m;
    tiny_model(&m, mode == TRAIN_FULL);
    LoraAdapter a, *ap = NULL;
    if (mode == TRAIN_LORA) {
        assert_int_equal(lora_init(&a, &m.cfg, 2, 4.0f, 0, LORA_TARGETS_ALL), 0);
        lora_reset_peft(&a, 5);
        ap = &a;
    }
    TrainData d;
    assert_int_equal(data_stream_open(&d, ids, 600, ids + 600, 100, 10), 0);
    TrainOptions o;
    quiet_opts(&o, mode);
    o.steps = steps;
    o.out_dir = outb;
    o.resume = 1;
    o.lr *= 2;
    Trainer t;
    assert_int_equal(trainer_init(&t, &m, ap, &d, &o, NULL), 0);
    assert_int_equal(trainer_run(&t), -1);
    assert_non_null(strstr(err_msg(), "setting 'lr' is 0.006 now, 0.003 in the checkpoint"));
    trainer_free(&t);
    /* a new run into a folder holding one */
    o.lr /= 2;
    o.resume = 0;
    assert_int_equal(trainer_init(&t, &m, ap, &d, &o, NULL), -1);
    assert_non_null(strstr(err_msg(), "holds a training run already"));
    data_free(&d);
    if (ap) lora_free(ap);
    model_free(&m);
    free(ids);
    free(ref);
    free(got);
}

static void test_resume_full(void **state) { (void)state; resume_case(TRAIN_FULL, 20, 7); }
static void test_resume_lora(void **state) { (void)state; resume_case(TRAIN_LORA, 20, 15); }

static void test_checkpoint_settings(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    float a[3] = {1, 2, 3}, b[2] = {4, 5}, ra[3], rb[2];
    CkptTensor t[2] = {{"a", a, 3}, {"b", b, 2}}, r[2] = {{"a", ra, 3}, {"b", rb, 2}};
    CkptSettings s = {0};
    assert_int_equal(ckpt_settings_set(&s, "lr", "%g", 1e-3), 0);
    assert_int_equal(ckpt_settings_set(&s, "seed", "%d", 7), 0);
    assert_int_equal(ckpt_settings_set(&s, "seed", "%d", 8), 0); /* replaces */
    assert_int_equal(s.n, 2);
    assert_string_equal(ckpt_settings_get(&s, "seed"), "8");
    /* a value of any length (an ensemble's adapter paths), kept whole through save and load */
    char longv[1200];
    for (size_t i = 0; i < sizeof longv - 1; i++) longv[i] = (char)('a' + i % 26);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(ckpt_settings_set(&s, "compat_ensemble", "%s", longv), 0);
    CkptPos p = {5, 10, 1, 3, 0x0123456789abcdefull, 2, 2.5, NAN}, q;
    assert_false(ckpt_exists(dir));
    assert_int_equal(ckpt_save(dir, t, 2, &p, &s), 0);
    assert_true(ckpt_exists(dir));
    assert_int_equal(ckpt_load(dir, r, 2, &q, &s), 0);
    assert_memory_equal(a, ra, sizeof a);
    assert_memory_equal(b, rb, sizeof b);
    assert_int_equal(q.step, 5);
    assert_int_equal(q.index, 3);
    assert_true(q.rng == 0x0123456789abcdefull);
    assert_true(q.val_loss == 2.5 && isnan(q.start_val_loss));
    assert_string_equal(ckpt_settings_get(&s, "compat_ensemble"), longv);
    /* a different long value is a different setting on resume */
    longv[1000] = '#';
    assert_int_equal(ckpt_settings_set(&s, "compat_ensemble", "%s", longv), 0);
    assert_int_equal(ckpt_load(dir, r, 2, &q, &s), -1);
    assert_non_null(strstr(err_msg(), "compat_ensemble"));
    longv[1000] = (char)('a' + 1000 % 26);
    assert_int_equal(ckpt_settings_set(&s, "compat_ensemble", "%s", longv), 0);
    /* a tensor of another size */
    CkptTensor bad[1] = {{"a", ra, 2}};
    assert_int_equal(ckpt_load(dir, bad, 1, &q, &s), -1);
    assert_non_null(strstr(err_msg(), "tensor 'a'"));
    /* a setting that is not recorded */
    assert_int_equal(ckpt_settings_set(&s, "rank", "8"), 0);
    assert_int_equal(ckpt_load(dir, r, 2, &q, &s), -1);
    assert_non_null(strstr(err_msg(), "setting 'rank' is not recorded"));
    ckpt_settings_free(&s);
    /* no checkpoint */
    char other[300];
    snprintf(other, sizeof other, "%s/none", dir);
    assert_int_equal(ckpt_load(other, r, 2, &q, NULL), -1);
    assert_non_null(strstr(err_msg(), "no checkpoint"));
    /* a stale temporary file of a killed save is removed by the next save */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.abcdef", dir, CKPT_FILE);
    assert_int_equal(file_write_all_atomic(tmp, "x", 1), 0);
    assert_int_equal(ckpt_save(dir, t, 2, &p, NULL), 0);
    assert_false(file_exists(tmp));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_formats),
        cmocka_unit_test(test_corpus_errors),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_heldout_split),
        cmocka_unit_test(test_data_order),
        cmocka_unit_test(test_grad_accumulation),
        cmocka_unit_test(test_loss_falls_and_schedule),
        cmocka_unit_test(test_weights_mask),
        cmocka_unit_test(test_recompute_same_bits),
        cmocka_unit_test(test_checkpoint_settings),
        cmocka_unit_test(test_resume_full),
        cmocka_unit_test(test_resume_lora),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
