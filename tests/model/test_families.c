/* tests/model/test_families.c - Llama 3.x, SmolLM2, Mistral, Qwen2, Qwen3, Phi and Gemma against the
 * PyTorch reference (tests/model/make_family_fixtures.py, fixtures in
 * tests/fixtures/model/families/<family>/): the Hugging Face folder of each family (its
 * real config keys) must give
 *   - the reference's log-probs within 1e-4 and its greedy ids (KV-cache decoding),
 *   - KV-cache decoding = the full forward pass, packed rows = plain rows,
 *   - every base gradient (biases and q/k norms included) and every LoRA gradient of the
 *     PEFT adapter (the family's module names) within relative error 1e-4,
 *   - the same logits from a GGUF file of the same weights written with llama.cpp's
 *     architecture, keys and tensor names (llama/qwen2/qwen3/phi2/gemma, rope_freqs, biases,
 *     q/k norms, LayerNorm biases, lm_head bias, gemma's norms stored as 1 + w),
 *   - a bit-identical convert round trip (HF -> HF: same files, same logits),
 *   - a LoRA adapter trained briefly that lowers a held-out loss, and full training (AdamW
 *     over every tensor, the families' biases and q/k norms included) that does too. */
#include "model/gradcheck.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/backward.h"
#include "model/load_internal.h"
#include "model/lora_peft.h"
#include "train/adamw.h"

#include <cJSON.h>
#include <math.h>
#include <sys/stat.h>

#define FIX "tests/fixtures/model/families/"
#define TOL_LP 1e-4
#define TOL_GRAD 1e-4

static const char *const FAMILIES[] = {"llama3", "smollm2", "mistral", "qwen2", "qwen3", "phi", "gemma"};
#define N_FAM 7

typedef struct {
    cJSON *json;
    int B, T;
    int ids[64];
    char dir[256];
} Expect;

static void expect_load(Expect *e, const char *fam) {
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, FIX "%s", fam);
    char p[320];
    snprintf(p, sizeof p, "%s/expected.json", e->dir);
    size_t n;
    char *text = file_read_all(p, &n, 0);
    if (!text) fail_msg("%s", err_msg());
    e->json = cJSON_Parse(text);
    free(text);
    assert_non_null(e->json);
    const cJSON *ids = cJSON_GetObjectItem(e->json, "ids");
    e->B = cJSON_GetArraySize(ids);
    e->T = cJSON_GetArraySize(cJSON_GetArrayItem(ids, 0));
    assert_true(e->B * e->T <= 64);
    for (int b = 0; b < e->B; b++)
        for (int t = 0; t < e->T; t++) e->ids[b * e->T + t] = cJSON_GetArrayItem(cJSON_GetArrayItem(ids, b), t)->valueint;
}

static double jnum(const Expect *e, const char *k) { return cJSON_GetObjectItem(e->json, k)->valuedouble; }

static void load(Model *m, const char *path, int writable) {
    ModelLoadOptions o = {KW_F32, writable};
    if (model_load(m, path, &o) != 0) fail_msg("%s", err_msg());
}

/* logits [B*T, V] of the plain forward pass */
static float *logits_of(const Model *m, const int *ids, int B, int T) {
    RunState s;
    assert_int_equal(runstate_init(&s, m, B, T, T, RS_KEEP_NONE), 0);
    assert_int_equal(model_forward(&s, ids, B, T, 0), 0);
    size_t n = (size_t)B * T * m->cfg.vocab_size;
    float *out = malloc(n * sizeof *out);
    memcpy(out, s.logits, n * sizeof *out);
    runstate_free(&s);
    return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > w || isnan(d)) w = isnan(d) ? INFINITY : d;
    }
    return w;
}

/* position t of each row of T predicts id t + 1 (weight 1); the last one nothing (weight 0) */
static void next_targets(const int *ids, int N, int T, int *targets, float *w) {
    for (int i = 0; i < N; i++) {
        int last = i % T == T - 1;
        targets[i] = last ? 0 : ids[i + 1];
        w[i] = last ? 0.0f : 1.0f;
    }
}

static double worst_lp[N_FAM], worst_grad[N_FAM], worst_lora[N_FAM], worst_gguf[N_FAM], heldout[N_FAM][2];

/* ---- log-probs and greedy ids -------------------------------------------- */

static void check_logprobs(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m;
    load(&m, e.dir, 0);
    int V = m.cfg.vocab_size;
    float *lg = logits_of(&m, e.ids, e.B, e.T);
    logsoftmax_rows(lg, e.B * e.T, V);
    const cJSON *nl = cJSON_GetObjectItem(e.json, "next_logprobs");
    double worst = 0;
    for (int b = 0; b < e.B; b++)
        for (int t = 0; t + 1 < e.T; t++) {
            double want = cJSON_GetArrayItem(cJSON_GetArrayItem(nl, b), t)->valuedouble;
            double got = lg[((size_t)b * e.T + t) * V + e.ids[b * e.T + t + 1]];
            if (fabs(got - want) > worst) worst = fabs(got - want);
        }
    const cJSON *lr = cJSON_GetObjectItem(e.json, "last_row_logprobs");
    assert_int_equal(cJSON_GetArraySize(lr), V);
    for (int v = 0; v < V; v++) {
        double d = fabs(lg[(size_t)(e.T - 1) * V + v] - cJSON_GetArrayItem(lr, v)->valuedouble);
        if (d > worst) worst = d;
    }
    worst_lp[fi] = worst;
    printf("# %s: log-probs max |diff| vs PyTorch %.2e\n", FAMILIES[fi], worst);
    if (!(worst < TOL_LP)) fail_msg("%s: log-probs differ from PyTorch by %.3e", FAMILIES[fi], worst);
    free(lg);

    /* greedy with the KV cache: the prompt at once, then one token per call */
    const cJSON *gi = cJSON_GetObjectItem(e.json, "greedy_ids");
    int P = (int)jnum(&e, "greedy_prompt"), total = cJSON_GetArraySize(gi);
    int seq[64];
    for (int i = 0; i < P; i++) seq[i] = cJSON_GetArrayItem(gi, i)->valueint;
    RunState s;
    assert_int_equal(runstate_init(&s, &m, 1, total, total, RS_KEEP_NONE), 0);
    float *dec = malloc((size_t)total * V * sizeof *dec); /* the decoder's logits at each position */
    assert_int_equal(model_forward(&s, seq, 1, P, 0), 0);
    memcpy(dec, s.logits, (size_t)P * V * sizeof *dec);
    for (int pos = P; pos < total; pos++) {
        const float *row = dec + (size_t)(pos - 1) * V;
        int best = 0;
        for (int v = 1; v < V; v++) if (row[v] > row[best]) best = v;
        seq[pos] = best;
        assert_int_equal(model_forward(&s, &seq[pos], 1, 1, pos), 0);
        memcpy(dec + (size_t)pos * V, s.logits, (size_t)V * sizeof *dec);
    }
    runstate_free(&s);
    for (int i = P; i < total; i++)
        if (seq[i] != cJSON_GetArrayItem(gi, i)->valueint)
            fail_msg("%s: greedy id %d is %d, PyTorch %d", FAMILIES[fi], i, seq[i], cJSON_GetArrayItem(gi, i)->valueint);
    /* KV-cache decoding = one full forward pass over the final sequence */
    float *full = logits_of(&m, seq, 1, total);
    double kd = max_abs_diff(dec, full, (size_t)total * V);
    printf("# %s: greedy ids equal (%d), KV-cache vs full forward max |diff| %.2e\n", FAMILIES[fi], total - P, kd);
    assert_true(kd < 1e-5);
    free(full);
    free(dec);
    model_free(&m);
    cJSON_Delete(e.json);
}

/* ---- packed rows = plain rows ---------------------------------------------- */

static void check_packed(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m;
    load(&m, e.dir, 0);
    int V = m.cfg.vocab_size;
    enum { PRE = 8, SEG = 7, N = PRE + 2 * SEG };
    int toks[N], pos[N], seg[N], rowA[PRE + SEG], rowB[PRE + SEG];
    for (int i = 0; i < N; i++) {
        toks[i] = e.ids[i % (e.B * e.T)];
        int s_ = i < PRE ? 0 : 1 + (i - PRE) / SEG;
        seg[i] = s_;
        pos[i] = i < PRE ? i : PRE + (i - PRE) % SEG;
    }
    for (int i = 0; i < PRE + SEG; i++) {
        rowA[i] = i < PRE ? toks[i] : toks[i];
        rowB[i] = i < PRE ? toks[i] : toks[i + SEG];
    }
    RunState s;
    assert_int_equal(runstate_init(&s, &m, 1, N, N, RS_KEEP_NONE), 0);
    assert_int_equal(model_forward_packed(&s, toks, pos, seg, 1, N), 0);
    float *a = logits_of(&m, rowA, 1, PRE + SEG), *b = logits_of(&m, rowB, 1, PRE + SEG);
    double w = max_abs_diff(s.logits, a, (size_t)(PRE + SEG) * V);
    double w2 = max_abs_diff(s.logits + (size_t)(PRE + SEG) * V, b + (size_t)PRE * V, (size_t)SEG * V);
    if (w2 > w) w = w2;
    printf("# %s: packed vs plain rows max |diff| %.2e\n", FAMILIES[fi], w);
    assert_true(w < 1e-5);
    free(a);
    free(b);
    runstate_free(&s);
    model_free(&m);
    cJSON_Delete(e.json);
}

/* ---- gradients --------------------------------------------------------------- */

static void read_f32(const StFile *f, const char *name, float *dst, size_t n) {
    const StTensor *t = st_tensor_find(f, name);
    if (!t) fail_msg("%s: no tensor %s", f->name, name);
    if (t->numel != n) fail_msg("%s: %s has %llu elements, expected %zu", f->name, name, (unsigned long long)t->numel, n);
    if (st_tensor_to_f32(f, t, dst) != 0) fail_msg("%s", err_msg());
}

/* compares our gradient g [n] (q/k rows of `heads` heads in the engine's interleaved
 * order, rows of `row` floats) with PyTorch's (Hugging Face order) */
static double cmp_grad(const StFile *f, const Model *m, const char *name, const float *g, size_t n, int heads, size_t row) {
    float *want = malloc(n * sizeof *want), *ours = malloc(n * sizeof *ours);
    read_f32(f, name, want, n);
    if (heads) model_qk_permute(ours, g, heads, m->cfg.head_dim, m->cfg.rope_dims, row * sizeof(float), 1);
    else memcpy(ours, g, n * sizeof *ours);
    double e = rel_err_ff(ours, want, n);
    free(want);
    free(ours);
    if (!(e < TOL_GRAD)) fail_msg("%s: gradient relative error %.3e vs PyTorch exceeds %.0e", name, e, TOL_GRAD);
    return e;
}

static void check_grads(int fi, int keep) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m;
    load(&m, e.dir, 1);
    const ModelConfig *c = &m.cfg;
    int N = e.B * e.T;
    int targets[64];
    float w[64];
    next_targets(e.ids, N, e.T, targets, w);
    ModelGrads g;
    assert_int_equal(model_grads_init(&g, &m), 0);
    RunState s;
    assert_int_equal(runstate_init(&s, &m, e.B, e.T, e.T, keep), 0);
    double loss;
    if (model_loss(&s, e.ids, targets, w, e.B, e.T, 0, &loss, NULL) != 0) fail_msg("%s", err_msg());
    assert_true(fabs(loss - jnum(&e, "loss")) < 1e-5 * jnum(&e, "loss"));
    assert_int_equal(model_backward(&s, &g, NULL), 0);
    runstate_free(&s);
    StFile f;
    char p[320];
    snprintf(p, sizeof p, "%s/grads.safetensors", e.dir);
    if (st_open(&f, p) != 0) fail_msg("%s", err_msg());
    const ModelArch *a = c->arch;
    size_t d = c->dim, hid = c->hidden_dim, hd = c->head_dim, qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    size_t V = c->vocab_size;
    double worst = 0, ex;
    int count = 0;
    char nm[192];
#define CMP(name, ptr, n, heads, row) do { ex = cmp_grad(&f, &m, name, ptr, n, heads, row); if (ex > worst) worst = ex; count++; } while (0)
    /* tied (SmolLM2 is stored as lm_head only): the one matrix has both gradients */
    CMP(c->tied && !st_tensor_find(&f, "model.embed_tokens.weight") ? "lm_head.weight" : "model.embed_tokens.weight", g.tok_emb, V * d, 0, 0);
    const size_t out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d}, in[LIN_COUNT] = {d, d, d, qd, d, d, hid};
    for (int l = 0; l < c->n_layers; l++) {
        LayerGrads *L = &g.layers[l];
        float *lin[LIN_COUNT] = {L->wq, L->wk, L->wv, L->wo, L->w1, L->w3, L->w2};
        int heads[LIN_COUNT] = {c->n_heads, c->n_kv_heads, 0, 0, 0, 0, 0};
#define NM(part, suf) (snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, part, suf), nm)
        CMP(NM(a->hf_norm[NORM_ATTN], "weight"), L->rms_att, d, 0, 0);
        if (L->norm_att_b) CMP(NM(a->hf_norm[NORM_ATTN], "bias"), L->norm_att_b, d, 0, 0);
        if (model_has_ffn_norm(c)) CMP(NM(a->hf_norm[NORM_FFN], "weight"), L->rms_ffn, d, 0, 0);
        if (L->norm_ffn_b) CMP(NM(a->hf_norm[NORM_FFN], "bias"), L->norm_ffn_b, d, 0, 0);
        if (c->qk_norm) {
            CMP(NM(a->hf_norm[NORM_Q], "weight"), L->q_norm, hd, 1, 1);
            CMP(NM(a->hf_norm[NORM_K], "weight"), L->k_norm, hd, 1, 1);
        }
        for (int t = 0; t < LIN_COUNT; t++) {
            if (!model_has_linear(c, (LinearSlot)t)) continue;
            CMP(NM(a->hf_lin[t], "weight"), lin[t], out[t] * in[t], heads[t], in[t]);
            if (c->bias & LIN_BIT(t)) CMP(NM(a->hf_lin[t], "bias"), L->bias[t], out[t], heads[t], 1);
        }
#undef NM
    }
    snprintf(nm, sizeof nm, "%s.weight", a->hf_global[GT_NORM]);
    CMP(nm, g.rms_final, d, 0, 0);
    if (g.norm_final_b) CMP((snprintf(nm, sizeof nm, "%s.bias", a->hf_global[GT_NORM]), nm), g.norm_final_b, d, 0, 0);
    if (!c->tied) CMP("lm_head.weight", g.wcls, V * d, 0, 0);
    if (g.cls_b) CMP("lm_head.bias", g.cls_b, V, 0, 0);
#undef CMP
    printf("# %s: base gradients (%s), %d tensors, worst relative error %.2e\n", FAMILIES[fi],
           keep == RS_KEEP_ALL ? "kept" : "checkpointed", count, worst);
    if (worst > worst_grad[fi]) worst_grad[fi] = worst;
    st_close(&f);
    model_grads_free(&g);
    model_free(&m);
    cJSON_Delete(e.json);
}

static void check_lora_grads(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m;
    load(&m, e.dir, 0);
    char p[320];
    snprintf(p, sizeof p, "%s/adapter", e.dir);
    LoraAdapter ad, lg;
    if (lora_load_peft(&ad, &m.cfg, p) != 0) fail_msg("%s", err_msg());
    assert_int_equal(ad.targets, LORA_TARGETS_ALL & m.cfg.linears);
    assert_int_equal(lora_init_like(&lg, &ad), 0);
    int N = e.B * e.T, targets[64];
    float w[64];
    next_targets(e.ids, N, e.T, targets, w);
    RunState s;
    assert_int_equal(runstate_init(&s, &m, e.B, e.T, e.T, RS_KEEP_ALL), 0);
    assert_int_equal(runstate_set_lora(&s, &ad), 0);
    double loss;
    if (model_loss(&s, e.ids, targets, w, e.B, e.T, 0, &loss, NULL) != 0) fail_msg("%s", err_msg());
    printf("# %s: LoRA loss %.9f, PyTorch %.9f\n", FAMILIES[fi], loss, jnum(&e, "lora_loss"));
    assert_true(fabs(loss - jnum(&e, "lora_loss")) < 1e-5 * jnum(&e, "lora_loss"));
    assert_int_equal(model_backward(&s, NULL, &lg), 0);
    runstate_free(&s);
    /* written as PEFT (Hugging Face row order, the family's module names), compared by name */
    const char *dir = test_tmpdir();
    char gd[512], gf[600];
    snprintf(gd, sizeof gd, "%s/g", dir);
    assert_int_equal(lora_save_peft(&lg, &m.cfg, gd, "grads", NULL, 0), 0);
    snprintf(gf, sizeof gf, "%s/adapter_model.safetensors", gd);
    StFile ours, want;
    snprintf(p, sizeof p, "%s/grads.safetensors", e.dir);
    if (st_open(&ours, gf) != 0 || st_open(&want, p) != 0) fail_msg("%s", err_msg());
    double worst = 0;
    for (size_t i = 0; i < ours.n_tensors; i++) {
        const StTensor *t = &ours.tensors[i];
        float *a = malloc(t->numel * sizeof *a), *b = malloc(t->numel * sizeof *b);
        read_f32(&ours, t->name, a, t->numel);
        read_f32(&want, t->name, b, t->numel);
        double er = rel_err_ff(a, b, t->numel);
        if (!(er < TOL_GRAD)) fail_msg("%s: LoRA gradient relative error %.3e", t->name, er);
        if (er > worst) worst = er;
        free(a);
        free(b);
    }
    assert_int_equal(ours.n_tensors, 2 * (size_t)__builtin_popcount(m.cfg.linears) * m.cfg.n_layers);
    printf("# %s: LoRA gradients, %zu tensors (PEFT names), worst relative error %.2e\n", FAMILIES[fi], ours.n_tensors, worst);
    worst_lora[fi] = worst;
    st_close(&ours);
    st_close(&want);
    lora_free(&ad);
    lora_free(&lg);
    model_free(&m);
    cJSON_Delete(e.json);
}

/* ---- GGUF of the same weights, as llama.cpp's converter writes it ------------ */

/* a string key set last (replacing a written one): hostile files from good ones */
static const char *gguf_override_key, *gguf_override_val;
static float *norm_plus_one(const float *v, int d, float **keep, int *nk) {
    float *f = malloc((size_t)d * sizeof *f);
    for (int i = 0; i < d; i++) f[i] = 1.0f + v[i];
    keep[(*nk)++] = f;
    return f;
}

static void write_gguf(const Model *m, const char *path) {
    const ModelConfig *c = &m->cfg;
    const ModelArch *a = c->arch;
    const char *arch = a->gguf_arch;
    GgufWriter w;
    gguf_writer_init(&w);
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    gguf_writer_set_string(&w, "general.architecture", arch);
    gguf_writer_set_u32(&w, KEY("context_length"), (uint32_t)c->seq_len);
    gguf_writer_set_u32(&w, KEY("embedding_length"), (uint32_t)c->dim);
    gguf_writer_set_u32(&w, KEY("feed_forward_length"), (uint32_t)c->hidden_dim);
    gguf_writer_set_u32(&w, KEY("block_count"), (uint32_t)c->n_layers);
    gguf_writer_set_u32(&w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    gguf_writer_set_u32(&w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    gguf_writer_set_f32(&w, KEY(a->gguf_eps_key ? a->gguf_eps_key : "attention.layer_norm_rms_epsilon"), c->norm_eps);
    gguf_writer_set_f32(&w, KEY("rope.freq_base"), c->rope_theta);
    gguf_writer_set_u32(&w, KEY("rope.dimension_count"), (uint32_t)c->rope_dims);
    if (c->head_dim != c->dim / c->n_heads) {
        gguf_writer_set_u32(&w, KEY("attention.key_length"), (uint32_t)c->head_dim);
        gguf_writer_set_u32(&w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    if (c->sliding_window) gguf_writer_set_u32(&w, KEY("attention.sliding_window"), (uint32_t)c->sliding_window);
    if (c->rope_scaling == ROPE_SCALING_LINEAR) {
        gguf_writer_set_string(&w, KEY("rope.scaling.type"), "linear");
        gguf_writer_set_f32(&w, KEY("rope.scaling.factor"), c->rope_factor);
    }
#undef KEY
    /* tensors; q/k rows: llama keeps the engine's (Meta) order, qwen2/qwen3 the HF order */
    float *bufs[256], *plus1[64];
    int np1 = 0;
    /* llama.cpp's gemma converter stores each norm as 1 + w */
#define NORMV(v) (a->gguf_norm_plus_one ? norm_plus_one(v, c->dim, plus1, &np1) : (v))
    int nb = 0;
    char names[256][96];
    int nn = 0;
#define ADD(vec, n, kk, heads, row)                                                              \
    do {                                                                                         \
        float *f = malloc((size_t)(n) * (kk ? kk : 1) * sizeof *f);                              \
        if (heads && a->gguf_qk_half) model_qk_permute(f, vec, heads, c->head_dim, c->rope_dims, (row) * sizeof *f, 1); \
        else memcpy(f, vec, (size_t)(n) * (kk ? kk : 1) * sizeof *f);                            \
        bufs[nb++] = f;                                                                          \
        uint64_t ne[2] = {kk ? (uint64_t)(kk) : (uint64_t)(n), (uint64_t)(n)};                    \
        assert_int_equal(gguf_writer_add_tensor_f32(&w, names[nn - 1], 0, kk ? 2 : 1, ne, f), 0); \
    } while (0)
#define NAME(...) (snprintf(names[nn], sizeof names[nn], __VA_ARGS__), nn++)
    NAME("token_embd.weight");
    ADD(m->tok_emb.f32, c->vocab_size, c->dim, 0, 0);
    if (c->rope_scaling == ROPE_SCALING_LLAMA3) { /* llama.cpp: one divisor per frequency */
        int half = c->head_dim / 2;
        float div[512];
        for (int i = 0; i < half; i++) {
            double f = pow((double)c->rope_theta, -2.0 * i / c->head_dim), wl = 2 * M_PI / f;
            double lo = c->rope_orig_ctx / c->rope_low_freq, hi = c->rope_orig_ctx / c->rope_high_freq;
            if (wl < hi) div[i] = 1.0f;
            else if (wl > lo) div[i] = c->rope_factor;
            else {
                double sm = (c->rope_orig_ctx / wl - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
                div[i] = (float)(1.0 / ((1 - sm) / c->rope_factor + sm));
            }
        }
        NAME("rope_freqs.weight");
        ADD(div, half, 0, 0, 0);
    }
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        NAME("blk.%d.attn_norm.weight", l);
        ADD(NORMV(L->rms_att), c->dim, 0, 0, 0);
        if (L->norm_att_b) {
            NAME("blk.%d.attn_norm.bias", l);
            ADD(L->norm_att_b, c->dim, 0, 0, 0);
        }
        if (L->rms_ffn) {
            NAME("blk.%d.ffn_norm.weight", l);
            ADD(NORMV(L->rms_ffn), c->dim, 0, 0, 0);
        }
        if (c->qk_norm) {
            NAME("blk.%d.attn_q_norm.weight", l);
            ADD(L->q_norm, c->head_dim, 0, 1, 1);
            NAME("blk.%d.attn_k_norm.weight", l);
            ADD(L->k_norm, c->head_dim, 0, 1, 1);
        }
        static const char *const gl[LIN_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
        int heads[LIN_COUNT] = {c->n_heads, c->n_kv_heads, 0, 0, 0, 0, 0};
        for (int t = 0; t < LIN_COUNT; t++) {
            if (!model_has_linear(c, (LinearSlot)t)) continue;
            const KWeight *kw = model_linear(m, l, (LinearSlot)t);
            NAME("blk.%d.%s.weight", l, gl[t]);
            ADD(kw->f32, kw->n, kw->k, heads[t], (size_t)kw->k);
            if (L->bias[t]) {
                NAME("blk.%d.%s.bias", l, gl[t]);
                ADD(L->bias[t], kw->n, 0, heads[t], 1);
            }
        }
    }
    NAME("output_norm.weight");
    ADD(NORMV(m->rms_final), c->dim, 0, 0, 0);
    if (m->norm_final_b) {
        NAME("output_norm.bias");
        ADD(m->norm_final_b, c->dim, 0, 0, 0);
    }
    if (!c->tied) {
        NAME("output.weight");
        ADD(m->wcls.f32, c->vocab_size, c->dim, 0, 0);
    }
    if (m->cls_b) {
        NAME("output.bias");
        ADD(m->cls_b, c->vocab_size, 0, 0, 0);
    }
#undef NORMV
#undef ADD
#undef NAME
    if (gguf_override_key) gguf_writer_set_string(&w, gguf_override_key, gguf_override_val);
    if (gguf_writer_write(&w, path) != 0) fail_msg("%s", err_msg());
    gguf_writer_free(&w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    for (int i = 0; i < np1; i++) free(plus1[i]);
}

static void check_gguf(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model hf, gg;
    load(&hf, e.dir, 0);
    char p[600];
    snprintf(p, sizeof p, "%s/%s.gguf", test_tmpdir(), FAMILIES[fi]);
    write_gguf(&hf, p);
    load(&gg, p, 0);
    assert_ptr_equal(gg.cfg.arch->gguf_arch, hf.cfg.arch->gguf_arch);
    assert_int_equal(gg.cfg.bias, hf.cfg.bias);
    assert_int_equal(gg.cfg.qk_norm, hf.cfg.qk_norm);
    assert_int_equal(gg.cfg.sliding_window, hf.cfg.sliding_window);
    assert_int_equal(gg.cfg.head_dim, hf.cfg.head_dim);
    assert_int_equal(gg.cfg.rope_dims, hf.cfg.rope_dims);
    assert_int_equal(gg.cfg.linears, hf.cfg.linears);
    assert_true(gg.cfg.norm_eps == hf.cfg.norm_eps);
    float *a = logits_of(&hf, e.ids, e.B, e.T), *b = logits_of(&gg, e.ids, e.B, e.T);
    double d = max_abs_diff(a, b, (size_t)e.B * e.T * hf.cfg.vocab_size);
    printf("# %s: GGUF (%s, %s) vs HF folder logits max |diff| %.2e\n", FAMILIES[fi], gg.cfg.arch->gguf_arch,
           hf.cfg.rope_scaling == ROPE_SCALING_LLAMA3 ? "rope_freqs table" : "same rotary", d);
    worst_gguf[fi] = d;
    assert_true(d < 1e-5);
    /* GGUF -> HF (convert): the family's config and names again; Gemma's stored 1 + w
     * written back as w (a llama3 rope_freqs table has no config.json form: refused) */
    if (gg.cfg.rope_scaling == ROPE_SCALING_TABLE) goto done;
    char hd[600];
    snprintf(hd, sizeof hd, "%s/%s-from-gguf", test_tmpdir(), FAMILIES[fi]);
    assert_int_equal(model_save_hf(&gg, hd, DT_F32), 0);
    Model back;
    load(&back, hd, 0);
    assert_ptr_equal(back.cfg.arch, hf.cfg.arch);
    assert_true(back.cfg.norm_offset == hf.cfg.norm_offset);
    float *c2 = logits_of(&back, e.ids, e.B, e.T);
    double d2 = max_abs_diff(a, c2, (size_t)e.B * e.T * hf.cfg.vocab_size);
    printf("# %s: GGUF -> HF folder vs HF folder logits max |diff| %.2e\n", FAMILIES[fi], d2);
    assert_true(d2 < 1e-5);
    free(c2);
    model_free(&back);
done:
    free(a);
    free(b);
    unlink(p);
    model_free(&hf);
    model_free(&gg);
    cJSON_Delete(e.json);
}

/* GGUF files llama.cpp could write that muscle does not run: one line naming file and key */
static void gguf_refused(const char *key, const char *val, const char *want) {
    Model m, bad;
    load(&m, FIX "qwen2", 0);
    char p[600];
    snprintf(p, sizeof p, "%s/bad.gguf", test_tmpdir());
    gguf_override_key = key;
    gguf_override_val = val;
    write_gguf(&m, p);
    gguf_override_key = NULL;
    ModelLoadOptions o = {KW_F32, 0};
    err_clear();
    assert_int_equal(model_load(&bad, p, &o), -1);
    printf("# refused: %s\n", err_msg());
    if (!strstr(err_msg(), p) || !strstr(err_msg(), want)) fail_msg("message \"%s\": wanted the path and \"%s\"", err_msg(), want);
    unlink(p);
    model_free(&m);
}

static void test_gguf_refused(void **state) {
    (void)state;
    gguf_refused("general.architecture", "falcon", "general.architecture is 'falcon': supported are llama, qwen2, qwen3, phi2 and gemma");
    gguf_refused("qwen2.rope.scaling.type", "yarn", "metadata key 'qwen2.rope.scaling.type': 'yarn' is not supported");
}

/* ---- convert round trip ------------------------------------------------------ */

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = file_read_all(a, &na, 0), *y = file_read_all(b, &nb, 0);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void check_convert(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m, m2;
    load(&m, e.dir, 0);
    const char *dir = test_tmpdir();
    char d1[512], d2[512], f1[600], f2[600];
    snprintf(d1, sizeof d1, "%s/c1", dir);
    snprintf(d2, sizeof d2, "%s/c2", dir);
    assert_int_equal(model_save_hf(&m, d1, DT_F32), 0);
    load(&m2, d1, 0);
    assert_int_equal(model_save_hf(&m2, d2, DT_F32), 0);
    snprintf(f1, sizeof f1, "%s/model.safetensors", d1);
    snprintf(f2, sizeof f2, "%s/model.safetensors", d2);
    assert_true(same_file(f1, f2));
    snprintf(f1, sizeof f1, "%s/config.json", d1);
    snprintf(f2, sizeof f2, "%s/config.json", d2);
    assert_true(same_file(f1, f2));
    /* the family's model_type and tensor names */
    size_t n;
    char *cj = file_read_all(f1, &n, 0);
    char want[64];
    snprintf(want, sizeof want, "\"model_type\":\t\"%s\"", m.cfg.arch->model_type);
    if (!strstr(cj, want)) fail_msg("%s: config.json lacks %s:\n%s", FAMILIES[fi], want, cj);
    free(cj);
    float *a = logits_of(&m, e.ids, e.B, e.T), *b = logits_of(&m2, e.ids, e.B, e.T);
    assert_int_equal(memcmp(a, b, (size_t)e.B * e.T * m.cfg.vocab_size * sizeof(float)), 0);
    printf("# %s: convert HF -> HF -> HF: files and logits bit-identical (model_type %s)\n", FAMILIES[fi], m.cfg.arch->model_type);
    free(a);
    free(b);
    model_free(&m);
    model_free(&m2);
    cJSON_Delete(e.json);
}

/* ---- a LoRA adapter trained briefly lowers a held-out loss -------------------- */

static double rule_loss(RunState *s, const int *ids, int B, int T, int V) {
    int targets[256];
    float w[256];
    next_targets(ids, B * T, T, targets, w);
    (void)V;
    double loss;
    if (model_loss(s, ids, targets, w, B, T, 0, &loss, NULL) != 0) fail_msg("%s", err_msg());
    return loss;
}

/* rows of B x T ids following a rule to learn (next = 5 * id + 3 mod V): training rows and
 * held-out rows from other starting ids */
static void rule_data(int *train, int *held, int B, int T, int V) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            train[b * T + t] = t ? (5 * train[b * T + t - 1] + 3) % V : 7 + 11 * b;
            held[b * T + t] = t ? (5 * held[b * T + t - 1] + 3) % V : 50 + 13 * b;
        }
}

static void check_lora_training(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m;
    load(&m, e.dir, 0);
    int V = m.cfg.vocab_size;
    enum { B = 4, T = 16 };
    int train[B * T], held[B * T];
    rule_data(train, held, B, T, V);
    LoraAdapter ad, g, mom, var;
    assert_int_equal(lora_init(&ad, &m.cfg, 4, 8.0f, 0, LORA_TARGETS_ALL), 0);
    lora_reset_peft(&ad, 5);
    assert_int_equal(lora_init_like(&g, &ad), 0);
    assert_int_equal(lora_init_like(&mom, &ad), 0);
    assert_int_equal(lora_init_like(&var, &ad), 0);
    RunState s;
    assert_int_equal(runstate_init(&s, &m, B, T, T, RS_KEEP_ALL), 0);
    assert_int_equal(runstate_set_lora(&s, &ad), 0);
    double before = rule_loss(&s, held, B, T, V);
    for (int step = 1; step <= 30; step++) { /* Adam, lr 1e-2 */
        lora_zero(&g);
        rule_loss(&s, train, B, T, V);
        assert_int_equal(model_backward(&s, NULL, &g), 0);
        for (size_t i = 0; i < ad.n_floats; i++) {
            mom.data[i] = 0.9f * mom.data[i] + 0.1f * g.data[i];
            var.data[i] = 0.999f * var.data[i] + 0.001f * g.data[i] * g.data[i];
            float mh = mom.data[i] / (1.0f - powf(0.9f, (float)step)), vh = var.data[i] / (1.0f - powf(0.999f, (float)step));
            ad.data[i] -= 1e-2f * mh / (sqrtf(vh) + 1e-8f);
        }
    }
    double after = rule_loss(&s, held, B, T, V);
    printf("# %s: LoRA, 30 Adam steps: held-out loss %.4f -> %.4f\n", FAMILIES[fi], before, after);
    heldout[fi][0] = before;
    heldout[fi][1] = after;
    assert_true(after < before - 0.1);
    runstate_free(&s);
    lora_free(&ad);
    lora_free(&g);
    lora_free(&mom);
    lora_free(&var);
    model_free(&m);
    cJSON_Delete(e.json);
}

/* ---- full training: every tensor (biases and q/k norms too) is a span of the optimizer --- */

static void check_full_training(int fi) {
    Expect e;
    expect_load(&e, FAMILIES[fi]);
    Model m;
    load(&m, e.dir, 1);
    int V = m.cfg.vocab_size;
    enum { B = 4, T = 16 };
    int train[B * T], held[B * T];
    rule_data(train, held, B, T, V);
    ModelGrads g;
    assert_int_equal(model_grads_init(&g, &m), 0);
    int ns = train_spans_model_count(&m);
    ParamSpan *spans = calloc((size_t)ns, sizeof *spans);
    assert_int_equal(train_spans_model(&m, &g, 1, spans, ns), ns);
    size_t total = 0;
    for (int i = 0; i < ns; i++) total += spans[i].n;
    assert_int_equal(total, g.n_floats); /* every gradient has its parameter */
    AdamWConfig ac = adamw_config_default();
    AdamW o;
    assert_int_equal(adamw_init(&o, &ac, total), 0);
    float before_extra = m.layers[0].bias[LIN_Q] ? m.layers[0].bias[LIN_Q][0] : m.layers[0].q_norm ? m.layers[0].q_norm[0] : 0;
    RunState s;
    assert_int_equal(runstate_init(&s, &m, B, T, T, RS_KEEP_ALL), 0);
    double before = rule_loss(&s, held, B, T, V);
    for (int step = 0; step < 20; step++) {
        model_grads_zero(&g);
        rule_loss(&s, train, B, T, V);
        assert_int_equal(model_backward(&s, &g, NULL), 0);
        assert_int_equal(adamw_step(&o, spans, ns, 3e-3), 0);
    }
    double after = rule_loss(&s, held, B, T, V);
    float after_extra = m.layers[0].bias[LIN_Q] ? m.layers[0].bias[LIN_Q][0] : m.layers[0].q_norm ? m.layers[0].q_norm[0] : 0;
    printf("# %s: full training, %d spans, 20 AdamW steps: held-out loss %.4f -> %.4f%s\n", FAMILIES[fi], ns, before, after,
           m.cfg.bias || m.cfg.qk_norm ? " (biases / q-k norms updated)" : "");
    assert_true(after < before - 0.1);
    if (m.cfg.bias || m.cfg.qk_norm) assert_true(after_extra != before_extra);
    runstate_free(&s);
    adamw_free(&o);
    free(spans);
    model_grads_free(&g);
    model_free(&m);
    cJSON_Delete(e.json);
}

/* ---- the families' configurations ------------------------------------------- */

static void test_configs(void **state) {
    (void)state;
    ModelConfig c;
    assert_int_equal(hf_config_read(&c, FIX "llama3"), 0);
    assert_string_equal(c.arch->model_type, "llama");
    assert_int_equal(c.rope_scaling, ROPE_SCALING_LLAMA3);
    assert_int_equal(c.eos_id, 2); /* the first of the list */
    assert_int_equal(hf_config_read(&c, FIX "smollm2"), 0);
    assert_int_equal(c.tied, 1);
    assert_int_equal(hf_config_read(&c, FIX "mistral"), 0);
    assert_string_equal(c.arch->model_type, "mistral");
    assert_int_equal(c.sliding_window, 6);
    assert_int_equal(hf_config_read(&c, FIX "qwen2"), 0);
    assert_int_equal(c.bias, LIN_QKV);
    assert_int_equal(c.rope_scaling, ROPE_SCALING_LINEAR);
    assert_int_equal(c.sliding_window, 0); /* use_sliding_window false */
    assert_int_equal(hf_config_read(&c, FIX "qwen3"), 0);
    assert_int_equal(c.qk_norm, 1);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(hf_config_read(&c, FIX "phi"), 0);
    assert_string_equal(c.arch->model_type, "phi");
    assert_int_equal(c.rope_dims, 4); /* partial_rotary_factor 0.5 of head_dim 8 */
    assert_int_equal(c.bias, LIN_ALL & ~LIN_BIT(LIN_GATE));
    assert_int_equal(c.linears, LIN_ALL & ~LIN_BIT(LIN_GATE));
    assert_true(c.norm_eps == 1e-5f);
    assert_int_equal(hf_config_read(&c, FIX "gemma"), 0);
    assert_string_equal(c.arch->model_type, "gemma");
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.n_kv_heads, 1);
    assert_int_equal(c.tied, 1);
    assert_true(c.norm_offset == 1.0f);
    /* SmolLM2: tied, stored only as lm_head.weight, as transformers loads it */
    Model m;
    load(&m, FIX "smollm2", 0);
    assert_int_equal(m.cfg.tied, 1);
    assert_ptr_equal(m.wcls.f32, m.tok_emb.f32);
    model_free(&m);
}

#define FAM_TESTS(i, name)                                                                  \
    static void test_logprobs_##name(void **s) { (void)s; check_logprobs(i); }              \
    static void test_packed_##name(void **s) { (void)s; check_packed(i); }                 \
    static void test_grads_##name(void **s) { (void)s; check_grads(i, RS_KEEP_ALL); check_grads(i, RS_KEEP_INPUTS); } \
    static void test_lora_grads_##name(void **s) { (void)s; check_lora_grads(i); }          \
    static void test_gguf_##name(void **s) { (void)s; check_gguf(i); }                      \
    static void test_convert_##name(void **s) { (void)s; check_convert(i); }                \
    static void test_lora_train_##name(void **s) { (void)s; check_lora_training(i); }        \
    static void test_full_train_##name(void **s) { (void)s; check_full_training(i); }
FAM_TESTS(0, llama3)
FAM_TESTS(1, smollm2)
FAM_TESTS(2, mistral)
FAM_TESTS(3, qwen2)
FAM_TESTS(4, qwen3)
FAM_TESTS(5, phi)
FAM_TESTS(6, gemma)

static void test_summary(void **state) {
    (void)state;
    printf("# family   logprob|diff|  base grad rel  LoRA grad rel  GGUF|diff|  held-out loss\n");
    for (int i = 0; i < N_FAM; i++)
        printf("# %-8s %.2e       %.2e       %.2e       %.2e    %.3f -> %.3f\n", FAMILIES[i], worst_lp[i], worst_grad[i],
               worst_lora[i], worst_gguf[i], heldout[i][0], heldout[i][1]);
}

#define FAM_UNITS(name)                                                                     \
    cmocka_unit_test(test_logprobs_##name), cmocka_unit_test(test_packed_##name),           \
    cmocka_unit_test(test_grads_##name), cmocka_unit_test(test_lora_grads_##name),          \
    cmocka_unit_test(test_gguf_##name), cmocka_unit_test(test_convert_##name),              \
    cmocka_unit_test(test_lora_train_##name), cmocka_unit_test(test_full_train_##name)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configs),
        cmocka_unit_test(test_gguf_refused),
        FAM_UNITS(llama3), FAM_UNITS(smollm2), FAM_UNITS(mistral), FAM_UNITS(qwen2), FAM_UNITS(qwen3),
        FAM_UNITS(phi), FAM_UNITS(gemma),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
