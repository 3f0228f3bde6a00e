/* tests/model/torch_fixture.h - the PyTorch training fixture (tests/fixtures/train/,
 * made by tools/ref/make_train_fixtures.py): its batch, model, LoRA initialisation and
 * tensors, for test_grad_torch.c and tests/train/test_adamw.c. Header-only. */
#ifndef MUSCLE_TEST_TORCH_FIXTURE_H
#define MUSCLE_TEST_TORCH_FIXTURE_H

#include "testutil.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/backward.h"
#include "model/lora.h"

#include <cJSON.h>
#include <math.h>

#define TF_DIR "tests/fixtures/train/"
#define TF_B 2
#define TF_T 32
#define TF_N (TF_B * TF_T)

typedef struct {
    cJSON *json;
    int ids[TF_N];        /* [B, T] */
    int targets[TF_N];    /* ids shifted: position t predicts ids[t+1] */
    float w_mean[TF_N];   /* 1 on t = 0..T-2, 0 on the last position */
    float w_masked[TF_N]; /* loss_mask of the target token */
} TorchFixture;

static inline const cJSON *tf_get(const cJSON *o, const char *path) {
    /* "a.b.c" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, ".")) cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    if (!cur) fail_msg("train_fixture.json: no field %s", path);
    return cur;
}
static inline double tf_num(const TorchFixture *f, const char *path) {
    const cJSON *x = tf_get(f->json, path);
    if (!cJSON_IsNumber(x)) fail_msg("train_fixture.json: %s is not a number", path);
    return x->valuedouble;
}

static inline void tf_load(TorchFixture *f) {
    memset(f, 0, sizeof *f);
    size_t n;
    char *text = file_read_all(TF_DIR "train_fixture.json", &n, 0);
    if (!text) fail_msg("%s", err_msg());
    f->json = cJSON_Parse(text);
    free(text);
    assert_non_null(f->json);
    const cJSON *ids = tf_get(f->json, "batch.ids"), *mask = tf_get(f->json, "batch.loss_mask");
    assert_int_equal(cJSON_GetArraySize(ids), TF_B);
    for (int b = 0; b < TF_B; b++) {
        const cJSON *row = cJSON_GetArrayItem(ids, b), *mrow = cJSON_GetArrayItem(mask, b);
        assert_int_equal(cJSON_GetArraySize(row), TF_T);
        for (int t = 0; t < TF_T; t++) f->ids[b * TF_T + t] = cJSON_GetArrayItem(row, t)->valueint;
        for (int t = 0; t < TF_T; t++) {
            int last = t == TF_T - 1;
            f->targets[b * TF_T + t] = last ? 0 : f->ids[b * TF_T + t + 1];
            f->w_mean[b * TF_T + t] = last ? 0.0f : 1.0f;
            f->w_masked[b * TF_T + t] = last ? 0.0f : (float)cJSON_GetArrayItem(mrow, t + 1)->valueint;
        }
    }
}
static inline void tf_free(TorchFixture *f) { cJSON_Delete(f->json); }

static inline void tf_load_model(Model *m) {
    ModelLoadOptions o = {KW_F32, 1};
    if (model_load(m, shared_path("models/stories260K/stories260K.bin"), &o) != 0) fail_msg("%s", err_msg());
}

/* PEFT module name of a target */
static inline const char *tf_peft_module(LoraTarget t) {
    static const char *const names[LORA_N_TARGETS] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                      "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    return names[t];
}

/* Reads tensor `name` of file f (F32, numel n) into dst. */
static inline void tf_read(const StFile *f, const char *name, float *dst, size_t n) {
    const StTensor *t = st_tensor_find(f, name);
    if (!t) fail_msg("%s: no tensor %s", f->name, name);
    if (t->numel != n) fail_msg("%s: tensor %s has %llu elements, expected %zu", f->name, name, (unsigned long long)t->numel, n);
    if (st_tensor_to_f32(f, t, dst) != 0) fail_msg("%s", err_msg());
}

/* Fills every A and B of adapter a (or a gradient of its shape) from a PEFT-named file. */
static inline void tf_read_lora(const char *path, LoraAdapter *a) {
    StFile f;
    if (st_open(&f, path) != 0) fail_msg("%s", err_msg());
    char name[256];
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            LoraMat *p = lora_mat(a, l, (LoraTarget)t);
            if (!p) continue;
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.lora_A.weight", l, tf_peft_module((LoraTarget)t));
            tf_read(&f, name, p->A, (size_t)p->rank * p->in);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.lora_B.weight", l, tf_peft_module((LoraTarget)t));
            tf_read(&f, name, p->B, (size_t)p->out * p->rank);
        }
    st_close(&f);
}

/* The fixture's adapter: rank 4, alpha 8, all seven targets, values of lora_init. */
static inline void tf_lora_init(const TorchFixture *f, const Model *m, LoraAdapter *a) {
    int rank = (int)tf_num(f, "lora.rank");
    float alpha = (float)tf_num(f, "lora.alpha");
    assert_int_equal(lora_init(a, &m->cfg, rank, alpha, 0, LORA_TARGETS_ALL), 0);
    assert_true(fabs(a->scaling - tf_num(f, "lora.scaling")) < 1e-7);
    tf_read_lora(TF_DIR "lora_init.safetensors", a);
}

/* Llama / llama2.c model.py names of the base tensors, with the matching gradient buffer. */
typedef struct { char name[64]; float *g; size_t n; } TfTensor;
static inline int tf_model_tensors(const ModelGrads *g, TfTensor *t) {
    const ModelConfig *c = &g->cfg;
    size_t d = c->dim, hid = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    int k = 0;
#define TF_ADD(ptr, cnt, ...) do { snprintf(t[k].name, sizeof t[k].name, __VA_ARGS__); t[k].g = (ptr); t[k].n = (cnt); k++; } while (0)
    TF_ADD(g->tok_emb, (size_t)c->vocab_size * d, "tok_embeddings.weight");
    for (int l = 0; l < c->n_layers; l++) {
        const LayerGrads *L = &g->layers[l];
        TF_ADD(L->rms_att, d, "layers.%d.attention_norm.weight", l);
        TF_ADD(L->wq, qd * d, "layers.%d.attention.wq.weight", l);
        TF_ADD(L->wk, kvd * d, "layers.%d.attention.wk.weight", l);
        TF_ADD(L->wv, kvd * d, "layers.%d.attention.wv.weight", l);
        TF_ADD(L->wo, d * qd, "layers.%d.attention.wo.weight", l);
        TF_ADD(L->rms_ffn, d, "layers.%d.ffn_norm.weight", l);
        TF_ADD(L->w1, hid * d, "layers.%d.feed_forward.w1.weight", l);
        TF_ADD(L->w2, d * hid, "layers.%d.feed_forward.w2.weight", l);
        TF_ADD(L->w3, hid * d, "layers.%d.feed_forward.w3.weight", l);
    }
    TF_ADD(g->rms_final, d, "norm.weight");
    if (!c->tied) TF_ADD(g->wcls, (size_t)c->vocab_size * d, "output.weight");
#undef TF_ADD
    return k;
}

/* max|a - b| / max|b| */
static inline double tf_rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > num || isnan(e)) num = isnan(e) ? INFINITY : e;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}

#endif
