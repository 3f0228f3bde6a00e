/* model/load_tensors.c - the one loop that reads a model's tensors by its family's names
 * (load_internal.h), for Hugging Face folders and GGUF files alike. */
#include "load_internal.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void model_qk_permute(void *dst, const void *src, int heads, int hd, int rd, size_t row_bytes, int to_half) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (int h = 0; h < heads; h++)
        for (int r = 0; r < hd; r++) {
            int half_r = r < rd ? (r % 2) * (rd / 2) + r / 2 : r; /* interleaved r = 2i + s -> s*rd/2 + i */
            size_t inter = (size_t)h * hd + r, half = (size_t)h * hd + half_r;
            memcpy(d + (to_half ? half : inter) * row_bytes, s + (to_half ? inter : half) * row_bytes, row_bytes);
        }
}

typedef struct {
    Model *m;
    const TensorSource *src;
    char name[192];
} Loader;

/* Finds tensor `name` of shape [n, k] (k = 0: a vector of n). 1 when absent and optional. */
static int find(Loader *L, SrcTensor *t, int n, int k, int optional) {
    int rc = L->src->find(L->src->ctx, L->name, t);
    if (rc < 0) return -1;
    if (rc > 0) return optional ? 1 : err_set("%s: tensor '%s' is missing", L->src->path, L->name);
    int ok = k ? (t->ndim == 2 && t->shape[0] == n && t->shape[1] == k) : (t->ndim == 1 && t->shape[0] == n);
    if (!ok) {
        if (k) return err_set("%s: tensor '%s' has shape [%lld%s%lld]: expected [%d, %d]", L->src->path, L->name,
                              (long long)(t->ndim ? t->shape[0] : 0), t->ndim > 1 ? ", " : "",
                              (long long)(t->ndim > 1 ? t->shape[1] : 0), n, k);
        return err_set("%s: tensor '%s' has %d dimensions [%lld...]: expected a vector of %d", L->src->path, L->name, t->ndim,
                       (long long)(t->ndim ? t->shape[0] : 0), n);
    }
    return 0;
}

static void note_type(Model *m, DType t) {
    if (m->stored_type == DT_COUNT || m->stored_type == DT_F32) m->stored_type = t;
}

/* A matrix [n, k]; q/k rows (heads > 0) un-permuted into a copy when stored half-split. */
static int mat(Loader *L, KWeight *w, int n, int k, int heads) {
    SrcTensor t;
    if (find(L, &t, n, k, 0)) return -1;
    note_type(L->m, t.dtype);
    if (!heads || !L->src->qk_half) return model_make_weight(L->m, w, t.dtype, t.data, n, k);
    const ModelConfig *c = &L->m->cfg;
    uint8_t *tmp = malloc((size_t)n * t.row_bytes);
    if (!tmp) return err_set("out of memory");
    model_qk_permute(tmp, t.data, heads, c->head_dim, c->rope_dims, t.row_bytes, 0);
    int rc = model_make_weight_copy(L->m, w, t.dtype, tmp, n, k, 1);
    free(tmp);
    return rc;
}

/* An fp32 vector of n; heads > 0: q/k elements un-permuted like their rows. */
static float *vec(Loader *L, int n, int heads) {
    SrcTensor t;
    if (find(L, &t, n, 0, 0)) return NULL;
    float *f = model_make_vector(L->m, t.dtype, t.data, (size_t)n);
    if (f && heads && L->src->qk_half) {
        float *tmp = malloc((size_t)n * sizeof *tmp);
        if (!tmp) { err_set("out of memory"); return NULL; }
        model_qk_permute(tmp, f, heads, L->m->cfg.head_dim, L->m->cfg.rope_dims, sizeof(float), 0);
        memcpy(f, tmp, (size_t)n * sizeof *f);
        free(tmp);
    }
    return f;
}

static const char *global_name_of(Loader *L, GlobalSlot g, const char *suffix) {
    const ModelArch *a = L->m->cfg.arch;
    snprintf(L->name, sizeof L->name, "%s.%s", L->src->gguf ? a->gguf_global[g] : a->hf_global[g], suffix);
    return L->name;
}

static const char *global_name(Loader *L, GlobalSlot g) { return global_name_of(L, g, "weight"); }

static const char *layer_name(Loader *L, int l, const char *part, const char *suffix) {
    snprintf(L->name, sizeof L->name, L->src->gguf ? "blk.%d.%s.%s" : "model.layers.%d.%s.%s", l, part, suffix);
    return L->name;
}

int model_load_tensors(Model *m, const TensorSource *src) {
    Loader L = {m, src, {0}};
    ModelConfig *c = &m->cfg;
    model_config_defaults(c);
    const ModelArch *a = c->arch;
    int d = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, hid = c->hidden_dim;
    m->stored_type = DT_COUNT;
    /* the embedding; a tied model may store it only as the classifier (transformers ties either way) */
    SrcTensor t;
    global_name(&L, GT_EMBED);
    int rc = find(&L, &t, c->vocab_size, d, 1);
    if (rc < 0) return -1;
    if (rc > 0) {
        global_name(&L, GT_HEAD);
        SrcTensor h;
        int hr = find(&L, &h, c->vocab_size, d, 1);
        if (hr < 0) return -1;
        if (hr > 0) return err_set("%s: tensor '%s' is missing", src->path, global_name(&L, GT_EMBED));
        c->tied = 1;
    }
    if (mat(&L, &m->tok_emb, c->vocab_size, d, 0)) return -1;
    m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers);
    if (!m->layers) return -1;
    /* per layer: rows [out] and columns [in] of each linear, heads permuted (q, k) */
    const int out[LIN_COUNT] = {qd, kvd, kvd, d, hid, hid, d}, in[LIN_COUNT] = {d, d, d, qd, d, d, hid};
    const int heads[LIN_COUNT] = {c->n_heads, c->n_kv_heads, 0, 0, 0, 0, 0};
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *w = &m->layers[l];
        KWeight *lin[LIN_COUNT] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w1, &w->w3, &w->w2};
        const char *const *nn = src->gguf ? a->gguf_norm : a->hf_norm, *const *ln = src->gguf ? a->gguf_lin : a->hf_lin;
        int layer_norm = a->norm == ARCH_NORM_LAYER;
        if (!(w->rms_att = vec(&L, d, (layer_name(&L, l, nn[NORM_ATTN], "weight"), 0)))) return -1;
        if (layer_norm && !(w->norm_att_b = vec(&L, d, (layer_name(&L, l, nn[NORM_ATTN], "bias"), 0)))) return -1;
        if (model_has_ffn_norm(c)) {
            if (!(w->rms_ffn = vec(&L, d, (layer_name(&L, l, nn[NORM_FFN], "weight"), 0)))) return -1;
            if (layer_norm && !(w->norm_ffn_b = vec(&L, d, (layer_name(&L, l, nn[NORM_FFN], "bias"), 0)))) return -1;
        }
        if (c->qk_norm) {
            if (!(w->q_norm = vec(&L, hd, (layer_name(&L, l, nn[NORM_Q], "weight"), 1)))) return -1;
            if (!(w->k_norm = vec(&L, hd, (layer_name(&L, l, nn[NORM_K], "weight"), 1)))) return -1;
        }
        for (int s = 0; s < LIN_COUNT; s++) {
            if (!model_has_linear(c, (LinearSlot)s)) continue;
            layer_name(&L, l, ln[s], "weight");
            if (mat(&L, lin[s], out[s], in[s], heads[s])) return -1;
            if (c->bias & LIN_BIT(s)) {
                layer_name(&L, l, ln[s], "bias");
                if (!(w->bias[s] = vec(&L, out[s], heads[s]))) return -1;
            }
        }
    }
    global_name(&L, GT_NORM);
    if (!(m->rms_final = vec(&L, d, 0))) return -1;
    if (a->norm == ARCH_NORM_LAYER && !(m->norm_final_b = vec(&L, d, (global_name_of(&L, GT_NORM, "bias"), 0)))) return -1;
    if (!c->tied) {
        global_name(&L, GT_HEAD);
        if (mat(&L, &m->wcls, c->vocab_size, d, 0)) return -1;
    }
    if (a->head_bias && !(m->cls_b = vec(&L, c->vocab_size, (global_name_of(&L, GT_HEAD, "bias"), 0)))) return -1;
    return 0;
}
