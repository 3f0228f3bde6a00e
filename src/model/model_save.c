/* model/model_save.c - writing a model as a Hugging Face folder of its family
 * (config.json with its model_type and keys + model.safetensors with its tensor names,
 * model/arch.h), the target of `muscle convert`.
 * q and k rows (and their biases and per-head norms) are permuted to the Hugging Face
 * order (half-split rotary), so that transformers reads the folder as the same model;
 * muscle's loader undoes it. */
#include "load_internal.h"
#include "core/error.h"
#include "io/safetensors.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* fp32 copy of a weight (malloc'd), q/k rows permuted Meta -> HF when heads > 0. */
static float *weight_f32(const KWeight *w, int heads, int hd, int rd) {
    size_t n = (size_t)w->n * w->k;
    float *f = malloc(n * sizeof *f);
    if (!f) { err_set("out of memory"); return NULL; }
    if (w->type == KW_F32) memcpy(f, w->f32, n * sizeof *f);
    else dtype_to_f32(DT_BF16, w->bf16, f, n);
    if (heads > 0) {
        float *p = malloc(n * sizeof *p);
        if (!p) { free(f); err_set("out of memory"); return NULL; }
        model_qk_permute(p, f, heads, hd, rd, (size_t)w->k * sizeof *f, 1);
        free(f);
        f = p;
    }
    return f;
}

/* The family a folder is written as: a GGUF "llama" with a window is a Mistral. */
static const ModelArch *save_arch(const ModelConfig *c) {
    const ModelArch *a = c->arch ? c->arch : arch_llama();
    if (a == arch_llama() && c->sliding_window > 0) a = arch_from_model_type("mistral");
    return a;
}

int model_save_hf_config(const ModelConfig *c, const char *dir, DType dtype) {
    const ModelArch *a = save_arch(c);
    if (c->rope_scaling == ROPE_SCALING_TABLE)
        return err_set("convert: the rotary scaling is a GGUF divisor table (rope_freqs.weight): config.json cannot say it yet");
    if (c->bias & ~(a->bias | a->bias_attention_key | (a == arch_llama() ? LIN_MLP : 0)))
        return err_set("convert: %s has no config key for the biases of this model", a->model_type);
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(a->hf_class));
    cJSON_AddStringToObject(j, "model_type", a->model_type);
    cJSON_AddStringToObject(j, "hidden_act", a->hidden_act[0] ? a->hidden_act[0] : "silu");
    if (a->mlp == ARCH_MLP_GEGLU) cJSON_AddStringToObject(j, "hidden_activation", "gelu_pytorch_tanh");
    cJSON_AddNumberToObject(j, "hidden_size", c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->seq_len);
    cJSON_AddNumberToObject(j, a->eps_key ? a->eps_key : "rms_norm_eps", (double)c->norm_eps);
    cJSON_AddNumberToObject(j, "rope_theta", (double)c->rope_theta);
    if (c->rope_dims && c->rope_dims != c->head_dim)
        cJSON_AddNumberToObject(j, "partial_rotary_factor", (double)c->rope_dims / (double)c->head_dim);
    if (a->norm == ARCH_NORM_LAYER) cJSON_AddBoolToObject(j, "qk_layernorm", 0);
    if (c->rope_scaling == ROPE_SCALING_NONE) {
        cJSON_AddNullToObject(j, "rope_scaling");
    } else {
        cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", c->rope_scaling == ROPE_SCALING_LLAMA3 ? "llama3" : "linear");
        cJSON_AddNumberToObject(rs, "factor", (double)c->rope_factor);
        if (c->rope_scaling == ROPE_SCALING_LLAMA3) {
            cJSON_AddNumberToObject(rs, "low_freq_factor", (double)c->rope_low_freq);
            cJSON_AddNumberToObject(rs, "high_freq_factor", (double)c->rope_high_freq);
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_orig_ctx);
        }
    }
    if (a->bias_attention_key) cJSON_AddBoolToObject(j, "attention_bias", (c->bias & a->bias_attention_key) != 0);
    if (a == arch_llama()) cJSON_AddBoolToObject(j, "mlp_bias", (c->bias & LIN_MLP) != 0);
    if (a->window == ARCH_WINDOW_KEY) {
        if (c->sliding_window > 0) cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(j, "sliding_window");
    }
    if (a->window == ARCH_WINDOW_OPT_IN) cJSON_AddBoolToObject(j, "use_sliding_window", 0);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied);
    cJSON_AddNumberToObject(j, "bos_token_id", c->bos_id);
    cJSON_AddNumberToObject(j, "eos_token_id", c->eos_id);
    cJSON_AddStringToObject(j, "torch_dtype", dtype == DT_BF16 ? "bfloat16" : dtype == DT_F16 ? "float16" : "float32");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return err_set("out of memory");
    char *path = file_join(dir, "config.json");
    int rc = path ? file_write_all_atomic(path, text, strlen(text)) : err_set("out of memory");
    free(path);
    free(text);
    return rc;
}

int model_save_hf(const Model *m, const char *dir, DType dtype) {
    if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16) return err_set("convert: output type %s: expected F32, F16 or BF16", dtype_name(dtype));
    if (file_mkdirs(dir) != 0) return -1;
    const ModelConfig *c = &m->cfg;
    if (c->rope != ROPE_INTERLEAVED) return err_set("convert: model runs half-split rotary internally: not expected");
    StWriter w;
    st_writer_init(&w);
    const ModelArch *a = save_arch(c);
    int nbuf = 0, cap = 8 + 16 * c->n_layers;
    float **bufs = calloc((size_t)cap, sizeof *bufs);
    int rc = bufs ? 0 : err_set("out of memory");
    char nm[160];
#define ADD_MAT(name, kw, heads)                                                              \
    do {                                                                                     \
        if (rc) break;                                                                       \
        float *f = weight_f32(kw, heads, c->head_dim, c->rope_dims);                         \
        if (!f) { rc = -1; break; }                                                          \
        bufs[nbuf++] = f;                                                                    \
        int64_t shape[2] = {(kw)->n, (kw)->k};                                               \
        rc = st_writer_add_f32(&w, name, dtype, 2, shape, f);                                \
    } while (0)
#define ADD_VEC(name, v, n, heads)                                                            \
    do {                                                                                     \
        if (rc) break;                                                                       \
        const float *src = (v);                                                              \
        if (heads) { /* q/k elements in the Hugging Face order, like their rows */           \
            float *f = malloc((size_t)(n) * sizeof *f);                                      \
            if (!f) { rc = err_set("out of memory"); break; }                                \
            bufs[nbuf++] = f;                                                                \
            model_qk_permute(f, src, (n) / c->head_dim, c->head_dim, c->rope_dims, sizeof *f, 1); \
            src = f;                                                                         \
        }                                                                                    \
        int64_t shape[1] = {(n)};                                                            \
        rc = st_writer_add_f32(&w, name, dtype, 1, shape, src);                              \
    } while (0)
    /* a norm of a model that holds (1 + w) (GGUF gemma: norm_offset 0) is written as the
     * family's w (Hugging Face Gemma: the file's w, computed with 1 + w) */
    float shift = a->norm_offset - c->norm_offset;
#define ADD_NORM(name, v)                                                                     \
    do {                                                                                     \
        if (rc) break;                                                                       \
        if (shift == 0.0f) { ADD_VEC(name, v, c->dim, 0); break; }                           \
        float *f = malloc((size_t)c->dim * sizeof *f);                                       \
        if (!f) { rc = err_set("out of memory"); break; }                                    \
        bufs[nbuf++] = f;                                                                    \
        for (int i_ = 0; i_ < c->dim; i_++) f[i_] = (v)[i_] - shift;                         \
        ADD_VEC(name, f, c->dim, 0);                                                         \
    } while (0)
    char gn[GT_COUNT][96];
    for (int g = 0; g < GT_COUNT; g++) snprintf(gn[g], sizeof gn[g], "%s.weight", a->hf_global[g]);
    ADD_MAT(gn[GT_EMBED], &m->tok_emb, 0);
    const int heads[LIN_COUNT] = {c->n_heads, c->n_kv_heads, 0, 0, 0, 0, 0};
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const LayerWeights *L = &m->layers[l];
#define N(part, suffix) (snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, part, suffix), nm)
        ADD_NORM(N(a->hf_norm[NORM_ATTN], "weight"), L->rms_att);
        if (L->norm_att_b) ADD_VEC(N(a->hf_norm[NORM_ATTN], "bias"), L->norm_att_b, c->dim, 0);
        if (model_has_ffn_norm(c)) ADD_NORM(N(a->hf_norm[NORM_FFN], "weight"), L->rms_ffn);
        if (L->norm_ffn_b) ADD_VEC(N(a->hf_norm[NORM_FFN], "bias"), L->norm_ffn_b, c->dim, 0);
        if (c->qk_norm) {
            ADD_VEC(N(a->hf_norm[NORM_Q], "weight"), L->q_norm, c->head_dim, 1);
            ADD_VEC(N(a->hf_norm[NORM_K], "weight"), L->k_norm, c->head_dim, 1);
        }
        for (int s = 0; s < LIN_COUNT && !rc; s++) {
            if (!model_has_linear(c, (LinearSlot)s)) continue;
            const KWeight *kw = model_linear(m, l, (LinearSlot)s);
            ADD_MAT(N(a->hf_lin[s], "weight"), kw, heads[s]);
            if (L->bias[s]) ADD_VEC(N(a->hf_lin[s], "bias"), L->bias[s], kw->n, heads[s]);
        }
#undef N
    }
    ADD_NORM(gn[GT_NORM], m->rms_final);
    char gb[96];
    if (m->norm_final_b) ADD_VEC((snprintf(gb, sizeof gb, "%s.bias", a->hf_global[GT_NORM]), gb), m->norm_final_b, c->dim, 0);
    if (!c->tied) ADD_MAT(gn[GT_HEAD], &m->wcls, 0);
    if (m->cls_b) ADD_VEC((snprintf(gb, sizeof gb, "%s.bias", a->hf_global[GT_HEAD]), gb), m->cls_b, c->vocab_size, 0);
#undef ADD_NORM
#undef ADD_MAT
#undef ADD_VEC
    if (!rc) rc = st_writer_meta_set(&w, "format", "pt");
    char *path = file_join(dir, "model.safetensors");
    if (!rc) rc = path ? st_writer_write(&w, path) : err_set("out of memory");
    free(path);
    st_writer_free(&w);
    for (int i = 0; i < nbuf; i++) free(bufs[i]);
    free(bufs);
    if (!rc) rc = model_save_hf_config(c, dir, dtype);
    return rc;
}
