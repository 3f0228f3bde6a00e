/* model/model_random.c - a model with random weights, for tests, benchmarks and
 * pretraining from scratch. Matrices ~ N(0, 0.02^2), norm weights 1 (as llama2.c's
 * model.py initialises), everything owned fp32 (or bf16 when asked). */
#include "load_internal.h"
#include "core/error.h"
#include "core/rng.h"

#include <stdlib.h>
#include <string.h>

static int rand_weight(Model *m, KWeight *w, int n, int k, Rng *r, float std) {
    size_t cnt = (size_t)n * k;
    if (m->wtype == KW_F32) { /* generate straight into the model's own buffer */
        float *f = model_alloc(m, cnt * sizeof *f);
        if (!f) return -1;
        for (size_t i = 0; i < cnt; i++) f[i] = std * rng_normal(r);
        return kweight_init_f32(w, f, n, k);
    }
    float *tmp = malloc(cnt * sizeof *tmp);
    if (!tmp) return err_set("out of memory");
    for (size_t i = 0; i < cnt; i++) tmp[i] = std * rng_normal(r);
    int rc = model_make_weight(m, w, DT_F32, tmp, n, k); /* rounds into an owned bf16 copy */
    free(tmp);
    return rc;
}

/* A norm that multiplies by 1 (w = 1 - cfg.norm_offset: Gemma's 0), its LayerNorm bias 0. */
static float *unit_norm(Model *m, int d, float **bias) {
    float *w = model_alloc(m, (size_t)d * sizeof(float));
    if (!w) return NULL;
    for (int i = 0; i < d; i++) w[i] = 1.0f - m->cfg.norm_offset;
    if (m->cfg.arch->norm == ARCH_NORM_LAYER && !(*bias = model_alloc(m, (size_t)d * sizeof(float)))) return NULL;
    return w;
}

int model_init_random(Model *m, const ModelConfig *cfg, const ModelLoadOptions *opts, uint64_t seed) {
    ModelLoadOptions def = {KW_F32, 0};
    if (!opts) opts = &def;
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (m->cfg.head_dim == 0 && m->cfg.n_heads > 0) m->cfg.head_dim = m->cfg.dim / m->cfg.n_heads;
    model_config_defaults(&m->cfg);
    if (model_config_check(&m->cfg, "random model") != 0) return -1;
    m->wtype = opts->writable ? KW_F32 : opts->wtype;
    m->writable = opts->writable;
    m->format = MODEL_FMT_LLAMA2C;
    m->stored_type = DT_F32;
    m->path = strdup("(random)");
    m->dir = strdup(".");
    const ModelConfig *c = &m->cfg;
    Rng r;
    rng_seed(&r, seed);
    int d = c->dim, kvd = c->n_kv_heads * c->head_dim, hid = c->hidden_dim, qd = c->n_heads * c->head_dim;
    float sd = 0.02f;
    int rc = rand_weight(m, &m->tok_emb, c->vocab_size, d, &r, sd);
    if (rc == 0 && !(m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers))) rc = -1;
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        LayerWeights *w = &m->layers[l];
        if (!(w->rms_att = unit_norm(m, d, &w->norm_att_b)) ||
            (model_has_ffn_norm(c) && !(w->rms_ffn = unit_norm(m, d, &w->norm_ffn_b)))) { rc = -1; break; }
        rc = rand_weight(m, &w->wq, qd, d, &r, sd) || rand_weight(m, &w->wk, kvd, d, &r, sd) ||
             rand_weight(m, &w->wv, kvd, d, &r, sd) || rand_weight(m, &w->wo, d, qd, &r, sd) ||
             (model_has_linear(c, LIN_GATE) && rand_weight(m, &w->w1, hid, d, &r, sd)) || rand_weight(m, &w->w3, hid, d, &r, sd) ||
             rand_weight(m, &w->w2, d, hid, &r, sd) ? -1 : 0;
        /* biases N(0, sd^2) and per-head norms 1 where the configuration has them */
        const int out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d};
        for (int s = 0; rc == 0 && s < LIN_COUNT; s++) {
            if (!(c->bias & LIN_BIT(s))) continue;
            if (!(w->bias[s] = model_alloc(m, (size_t)out[s] * sizeof(float)))) rc = -1;
            else for (int i = 0; i < out[s]; i++) w->bias[s][i] = sd * rng_normal(&r);
        }
        if (rc == 0 && c->qk_norm) {
            w->q_norm = model_alloc(m, (size_t)c->head_dim * sizeof(float));
            w->k_norm = model_alloc(m, (size_t)c->head_dim * sizeof(float));
            if (!w->q_norm || !w->k_norm) rc = -1;
            else for (int i = 0; i < c->head_dim; i++) w->q_norm[i] = w->k_norm[i] = 1.0f;
        }
    }
    if (rc == 0 && !(m->rms_final = unit_norm(m, d, &m->norm_final_b))) rc = -1;
    if (rc == 0 && !c->tied) rc = rand_weight(m, &m->wcls, c->vocab_size, d, &r, sd);
    if (rc == 0 && c->arch->head_bias && !(m->cls_b = model_alloc(m, (size_t)c->vocab_size * sizeof(float)))) rc = -1;
    if (rc == 0) rc = model_finish(m);
    if (rc != 0) model_free(m);
    return rc;
}
