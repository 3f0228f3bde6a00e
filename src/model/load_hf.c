/* model/load_hf.c - Hugging Face Llama folders: config.json + safetensors.
 *
 * config.json (LlamaConfig): hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads (default: the head count), vocab_size,
 * max_position_embeddings, rms_norm_eps (default 1e-6), rope_theta (default 10000),
 * tie_word_embeddings (default false), bos_token_id, eos_token_id.
 * Tensors: model.embed_tokens.weight [V, d]; model.layers.N.{input_layernorm,
 * post_attention_layernorm}.weight [d]; model.layers.N.self_attn.{q,k,v,o}_proj.weight;
 * model.layers.N.mlp.{gate,up,down}_proj.weight; model.norm.weight; lm_head.weight.
 * Rotary embeddings rotate half-split pairs there, with the rows of q and k stored
 * permuted to match (transformers' convert_llama_weights_to_hf.py `permute`). The loader
 * puts those rows back in Meta's order (a copy of wq and wk; everything else stays
 * mapped) so that every format runs the same interleaved computation: a llama2.c model
 * converted to safetensors and loaded again gives bit-identical results.
 */
#include "model.h"
#include "core/error.h"
#include "io/json.h"
#include "io/safetensors.h"

#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int json_int(const cJSON *root, const char *key, int def, int required, int *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return err_set("%s: field '%s' is missing", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e9)
        return err_set("%s: field '%s': expected a non-negative integer", path, key);
    *out = (int)v->valuedouble;
    return 0;
}

/* A finite number that stays finite (and > 0 when positive is set) as a float. */
static int json_float(const cJSON *root, const char *key, double def, int positive, double *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > FLT_MAX)
        return err_set("%s: field '%s': expected a number within the range of a float", path, key);
    if (positive && !((float)v->valuedouble > 0)) return err_set("%s: field '%s': expected a positive number", path, key);
    *out = v->valuedouble;
    return 0;
}

int hf_config_parse(ModelConfig *c, const char *text, size_t n, const char *path) {
    cJSON *root = io_json_parse_object((const uint8_t *)text, n, path, NULL);
    if (!root) return -1;
    int rc = io_json_unique_keys(root, path);
    if (rc) goto done;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && cJSON_IsString(mt) && strcmp(mt->valuestring, "llama") != 0) {
        rc = err_set("%s: model_type '%.64s%s': only 'llama' is supported", path, mt->valuestring, strlen(mt->valuestring) > 64 ? "..." : "");
        goto done;
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) {
        rc = err_set("%s: field 'rope_scaling' is set: scaled rotary embeddings are not supported", path);
        goto done;
    }
    memset(c, 0, sizeof *c);
    double eps, theta;
    int tie = 0, hd = 0;
    const cJSON *tw = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tw && !cJSON_IsBool(tw)) { rc = err_set("%s: field 'tie_word_embeddings': expected true or false", path); goto done; }
    tie = tw && cJSON_IsTrue(tw);
    if (json_int(root, "hidden_size", 0, 1, &c->dim, path) || json_int(root, "intermediate_size", 0, 1, &c->hidden_dim, path) ||
        json_int(root, "num_hidden_layers", 0, 1, &c->n_layers, path) || json_int(root, "num_attention_heads", 0, 1, &c->n_heads, path) ||
        json_int(root, "num_key_value_heads", 0, 0, &c->n_kv_heads, path) || json_int(root, "vocab_size", 0, 1, &c->vocab_size, path) ||
        json_int(root, "max_position_embeddings", 2048, 0, &c->seq_len, path) || json_int(root, "bos_token_id", 1, 0, &c->bos_id, path) ||
        json_int(root, "eos_token_id", 2, 0, &c->eos_id, path) || json_int(root, "head_dim", 0, 0, &hd, path) ||
        json_float(root, "rms_norm_eps", 1e-6, 1, &eps, path) || json_float(root, "rope_theta", 10000.0, 1, &theta, path)) {
        rc = -1;
        goto done;
    }
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (c->n_heads <= 0 || c->dim % c->n_heads) { rc = err_set("%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->dim, c->n_heads); goto done; }
    c->head_dim = c->dim / c->n_heads;
    if (hd && hd != c->head_dim) { rc = err_set("%s: head_dim %d differs from hidden_size/num_attention_heads (%d): not supported", path, hd, c->head_dim); goto done; }
    c->norm_eps = (float)eps;
    c->rope_theta = (float)theta;
    c->tied = tie;
    c->rope = ROPE_INTERLEAVED; /* after the loader un-permutes q and k */
    rc = model_config_check(c, path);
done:
    cJSON_Delete(root);
    return rc;
}

/* Reads and checks config.json into m->cfg. */
int hf_config_read(ModelConfig *c, const char *dir) {
    char *path = file_join(dir, "config.json");
    if (!path) return err_set("out of memory");
    size_t n;
    char *text = file_read_all(path, &n, HF_CONFIG_MAX_BYTES);
    int rc = text ? hf_config_parse(c, text, n, path) : -1;
    free(text);
    free(path);
    return rc;
}

static void set_free(void *p) {
    st_set_close(p);
    free(p);
}

/* Finds a tensor, checks its shape [n, k] (k = 0: a vector of n) and type. */
static const StTensor *want(const StSet *s, const char *name, int n, int k) {
    const StTensor *t = st_set_tensor_find(s, name, NULL);
    if (!t) { err_set("%s: tensor '%s' is missing", s->path, name); return NULL; }
    if (!t->supported || (t->dtype != DT_F32 && t->dtype != DT_F16 && t->dtype != DT_BF16)) {
        err_set("%s: tensor '%s' has type %s: expected F32, F16 or BF16", s->path, name, t->dtype_name);
        return NULL;
    }
    int ok = k ? (t->ndim == 2 && t->shape[0] == n && t->shape[1] == k) : (t->ndim == 1 && t->shape[0] == n);
    if (!ok) {
        if (k) err_set("%s: tensor '%s' has shape [%lld%s%lld]: expected [%d, %d]", s->path, name, (long long)(t->ndim ? t->shape[0] : 0),
                       t->ndim > 1 ? ", " : "", (long long)(t->ndim > 1 ? t->shape[1] : 0), n, k);
        else err_set("%s: tensor '%s' has %d dimensions / %lld elements: expected a vector of %d", s->path, name, t->ndim,
                     (long long)t->numel, n);
        return NULL;
    }
    return t;
}

static int mat(Model *m, const StSet *s, KWeight *w, const char *name, int n, int k) {
    const StTensor *t = want(s, name, n, k);
    if (!t) return -1;
    if (m->stored_type == DT_COUNT) m->stored_type = t->dtype;
    return model_make_weight(m, w, t->dtype, t->data, n, k);
}

/* HF row (h, s*hd/2 + i) holds Meta row (h, 2i + s): undo it for a [heads*hd, k] matrix. */
static int mat_unpermute(Model *m, const StSet *s, KWeight *w, const char *name, int heads, int hd, int k) {
    int n = heads * hd;
    const StTensor *t = want(s, name, n, k);
    if (!t) return -1;
    if (m->stored_type == DT_COUNT) m->stored_type = t->dtype;
    size_t es = t->dtype == DT_F32 ? 4 : 2, row = (size_t)k * es;
    uint8_t *tmp = malloc((size_t)n * row);
    if (!tmp) return err_set("out of memory");
    for (int h = 0; h < heads; h++)
        for (int sidx = 0; sidx < 2; sidx++)
            for (int i = 0; i < hd / 2; i++)
                memcpy(tmp + ((size_t)h * hd + 2 * i + sidx) * row, t->data + ((size_t)h * hd + sidx * (hd / 2) + i) * row, row);
    int rc = model_make_weight_copy(m, w, t->dtype, tmp, n, k, 1);
    free(tmp);
    return rc;
}

static float *vec(Model *m, const StSet *s, const char *name, int n) {
    const StTensor *t = want(s, name, n, 0);
    return t ? model_make_vector(m, t->dtype, t->data, (size_t)n) : NULL;
}

int model_load_hf(Model *m, const char *dir, const ModelLoadOptions *o) {
    (void)o;
    if (hf_config_read(&m->cfg, dir) != 0) return -1;
    m->format = MODEL_FMT_HF;
    m->stored_type = DT_COUNT;
    if (model_memory_check(m, dir) != 0) return -1;
    StSet *s = calloc(1, sizeof *s);
    if (!s) return err_set("out of memory");
    if (st_set_open(s, dir) != 0) { free(s); return -1; }
    m->format_ctx = s;
    m->format_free = set_free;
    const ModelConfig *c = &m->cfg;
    int d = c->dim, kvd = c->n_kv_heads * c->head_dim, hid = c->hidden_dim;
    if (!c->tied && !st_set_tensor_find(s, "lm_head.weight", NULL)) m->cfg.tied = 1; /* as transformers does */
    if (mat(m, s, &m->tok_emb, "model.embed_tokens.weight", c->vocab_size, d)) return -1;
    m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers);
    if (!m->layers) return -1;
    char nm[160];
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *w = &m->layers[l];
#define NAME(suffix) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix), nm)
        if (!(w->rms_att = vec(m, s, NAME("input_layernorm.weight"), d))) return -1;
        if (!(w->rms_ffn = vec(m, s, NAME("post_attention_layernorm.weight"), d))) return -1;
        if (mat_unpermute(m, s, &w->wq, NAME("self_attn.q_proj.weight"), c->n_heads, c->head_dim, d) ||
            mat_unpermute(m, s, &w->wk, NAME("self_attn.k_proj.weight"), c->n_kv_heads, c->head_dim, d) ||
            mat(m, s, &w->wv, NAME("self_attn.v_proj.weight"), kvd, d) ||
            mat(m, s, &w->wo, NAME("self_attn.o_proj.weight"), d, d) ||
            mat(m, s, &w->w1, NAME("mlp.gate_proj.weight"), hid, d) ||
            mat(m, s, &w->w3, NAME("mlp.up_proj.weight"), hid, d) ||
            mat(m, s, &w->w2, NAME("mlp.down_proj.weight"), d, hid))
            return -1;
#undef NAME
    }
    if (!(m->rms_final = vec(m, s, "model.norm.weight", d))) return -1;
    if (!m->cfg.tied && mat(m, s, &m->wcls, "lm_head.weight", c->vocab_size, d)) return -1;
    return 0;
}
