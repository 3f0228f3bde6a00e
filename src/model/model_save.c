/* model/model_save.c - writing a model as a Hugging Face Llama folder
 * (config.json + model.safetensors), the target of `muscle convert`.
 * q and k rows are permuted to the Hugging Face order (half-split rotary), so that
 * transformers reads the folder as the same model; muscle's loader undoes it. */
#include "model.h"
#include "core/error.h"
#include "io/safetensors.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* fp32 copy of a weight (malloc'd), q/k rows permuted Meta -> HF when heads > 0. */
static float *weight_f32(const KWeight *w, int heads, int hd) {
    size_t n = (size_t)w->n * w->k;
    float *f = malloc(n * sizeof *f);
    if (!f) { err_set("out of memory"); return NULL; }
    if (w->type == KW_F32) memcpy(f, w->f32, n * sizeof *f);
    else dtype_to_f32(DT_BF16, w->bf16, f, n);
    if (heads > 0) {
        float *p = malloc(n * sizeof *p);
        if (!p) { free(f); err_set("out of memory"); return NULL; }
        size_t row = (size_t)w->k;
        for (int h = 0; h < heads; h++)
            for (int s = 0; s < 2; s++)
                for (int i = 0; i < hd / 2; i++)
                    memcpy(p + ((size_t)h * hd + s * (hd / 2) + i) * row, f + ((size_t)h * hd + 2 * i + s) * row, row * sizeof *f);
        free(f);
        f = p;
    }
    return f;
}

int model_save_hf_config(const ModelConfig *c, const char *dir, DType dtype) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(j, "model_type", "llama");
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddNumberToObject(j, "hidden_size", c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->seq_len);
    cJSON_AddNumberToObject(j, "rms_norm_eps", (double)c->norm_eps);
    cJSON_AddNumberToObject(j, "rope_theta", (double)c->rope_theta);
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
    int nbuf = 0, cap = 8 + 7 * c->n_layers;
    float **bufs = calloc((size_t)cap, sizeof *bufs);
    int rc = bufs ? 0 : err_set("out of memory");
    char nm[160];
#define ADD_MAT(name, kw, heads)                                                              \
    do {                                                                                     \
        if (rc) break;                                                                       \
        float *f = weight_f32(kw, heads, c->head_dim);                                       \
        if (!f) { rc = -1; break; }                                                          \
        bufs[nbuf++] = f;                                                                    \
        int64_t shape[2] = {(kw)->n, (kw)->k};                                               \
        rc = st_writer_add_f32(&w, name, dtype, 2, shape, f);                                \
    } while (0)
#define ADD_VEC(name, v)                                                                     \
    do {                                                                                     \
        if (rc) break;                                                                       \
        int64_t shape[1] = {c->dim};                                                         \
        rc = st_writer_add_f32(&w, name, dtype, 1, shape, v);                                \
    } while (0)
    ADD_MAT("model.embed_tokens.weight", &m->tok_emb, 0);
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const LayerWeights *L = &m->layers[l];
#define N(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s), nm)
        ADD_VEC(N("input_layernorm.weight"), L->rms_att);
        ADD_VEC(N("post_attention_layernorm.weight"), L->rms_ffn);
        ADD_MAT(N("self_attn.q_proj.weight"), &L->wq, c->n_heads);
        ADD_MAT(N("self_attn.k_proj.weight"), &L->wk, c->n_kv_heads);
        ADD_MAT(N("self_attn.v_proj.weight"), &L->wv, 0);
        ADD_MAT(N("self_attn.o_proj.weight"), &L->wo, 0);
        ADD_MAT(N("mlp.gate_proj.weight"), &L->w1, 0);
        ADD_MAT(N("mlp.up_proj.weight"), &L->w3, 0);
        ADD_MAT(N("mlp.down_proj.weight"), &L->w2, 0);
#undef N
    }
    ADD_VEC("model.norm.weight", m->rms_final);
    if (!c->tied) ADD_MAT("lm_head.weight", &m->wcls, 0);
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
