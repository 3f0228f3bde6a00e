/* model/load_hf.c - Hugging Face folders: config.json + safetensors (sharded too).
 *
 * config.json: model_type (llama when absent; mistral, qwen2, qwen3: model/arch.h),
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 * num_key_value_heads (default: the head count), head_dim (default hidden_size / heads), vocab_size, max_position_embeddings, rms_norm_eps (default 1e-6),
 * rope_theta (default 10000), rope_scaling (null, or rope_type/type "default", "linear"
 * with factor, "llama3" with factor, low_freq_factor, high_freq_factor,
 * original_max_position_embeddings), partial_rotary_factor (default 1), attention_bias
 * and mlp_bias (Llama; attention_bias for Qwen3), sliding_window (Mistral; Qwen2/3 only
 * with use_sliding_window, which is refused), tie_word_embeddings (family default),
 * hidden_act (silu; phi: gelu_new; gemma: gelu_pytorch_tanh or gelu, both the tanh
 * approximation as transformers' Gemma runs them; hidden_activation too), layer_norm_eps
 * (phi, instead of rms_norm_eps), qk_layernorm (phi: false), bos_token_id, eos_token_id
 * (a number or a list: the first).
 * Tensors by the family's names (arch.h), with or without the "model." prefix of the
 * base model, as transformers accepts; a tied model may store its embedding only as
 * lm_head.weight. Rotary embeddings rotate half-split pairs there, with the rows of q and
 * k stored permuted to match (transformers' convert_llama_weights_to_hf.py `permute`).
 * The loader puts those rows (and their biases and per-head norms) back in Meta's order,
 * in a copy, so every format runs the same interleaved computation: a llama2.c model
 * converted to safetensors and loaded again gives bit-identical results.
 */
#include "load_internal.h"
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

/* A token id: a number, or a list of them (Llama 3.1's eos_token_id): the first. */
static int json_token_id(const cJSON *root, const char *key, int def, int *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v && cJSON_IsArray(v)) {
        const cJSON *first = cJSON_GetArrayItem(v, 0);
        if (!first || !cJSON_IsNumber(first) || first->valuedouble != floor(first->valuedouble) || first->valuedouble < 0 ||
            first->valuedouble > 1e9)
            return err_set("%s: field '%s': expected a token id or a non-empty list of them", path, key);
        *out = (int)first->valuedouble;
        return 0;
    }
    return json_int(root, key, def, 0, out, path);
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

static int json_bool(const cJSON *root, const char *key, int def, int *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) return err_set("%s: field '%s': expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* rope_scaling: null, or {"rope_type" (or "type"): "default" | "linear" | "llama3", ...}. */
static int parse_rope_scaling(ModelConfig *c, const cJSON *root, const char *path) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    c->rope_scaling = ROPE_SCALING_NONE;
    if (!rs || cJSON_IsNull(rs)) return 0;
    if (!cJSON_IsObject(rs)) return err_set("%s: field 'rope_scaling': expected an object or null", path);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    const char *key = "rope_scaling.rope_type";
    if (!ty) { ty = cJSON_GetObjectItemCaseSensitive(rs, "type"); key = "rope_scaling.type"; }
    if (!ty || !cJSON_IsString(ty)) return err_set("%s: field 'rope_scaling.rope_type': expected a string", path);
    const char *t = ty->valuestring;
    if (strcmp(t, "default") == 0) return 0;
    int llama3 = strcmp(t, "llama3") == 0;
    if (!llama3 && strcmp(t, "linear") != 0)
        return err_set("%s: field '%s': '%.64s' is not supported (expected default, linear or llama3)", path, key, t);
    double f = 0, lo = 1, hi = 4;
    int orig = 8192;
    if (json_float(rs, "factor", 0, 1, &f, path)) return -1;
    if (f <= 0) return err_set("%s: field 'rope_scaling.factor' is missing", path);
    if (f < 1) return err_set("%s: field 'rope_scaling.factor' %g: expected >= 1", path, f);
    if (llama3) {
        if (json_float(rs, "low_freq_factor", 1, 1, &lo, path) || json_float(rs, "high_freq_factor", 4, 1, &hi, path) ||
            json_int(rs, "original_max_position_embeddings", 8192, 0, &orig, path))
            return -1;
        if (!(hi > lo)) return err_set("%s: field 'rope_scaling.high_freq_factor' %g: expected more than low_freq_factor %g", path, hi, lo);
        if (orig < 1) return err_set("%s: field 'rope_scaling.original_max_position_embeddings': expected >= 1", path);
    }
    c->rope_scaling = llama3 ? ROPE_SCALING_LLAMA3 : ROPE_SCALING_LINEAR;
    c->rope_factor = (float)f;
    c->rope_low_freq = (float)lo;
    c->rope_high_freq = (float)hi;
    c->rope_orig_ctx = orig;
    return 0;
}

/* hidden_act (and Gemma's hidden_activation, which wins when set): one of the family's
 * activations (arch.h hidden_act; "silu" for the Llama blocks). */
static int check_activation(const cJSON *root, const ModelArch *a, const char *path) {
    const char *keys[2] = {"hidden_activation", "hidden_act"};
    for (int k = 0; k < 2; k++) {
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!act || cJSON_IsNull(act)) continue;
        if (k == 0 && a->mlp != ARCH_MLP_GEGLU) continue; /* a Gemma key */
        int ok = 0;
        char want[160] = "";
        for (int i = 0; i < 3; i++) {
            const char *v = a->hidden_act[i] ? a->hidden_act[i] : (i == 0 ? "silu" : NULL);
            if (!v) break;
            ok |= cJSON_IsString(act) && strcmp(act->valuestring, v) == 0;
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s\"%s\"", i ? " or " : "", v);
        }
        if (k == 0 && !(cJSON_IsString(act) && strcmp(act->valuestring, "gelu_pytorch_tanh") == 0))
            return err_set("%s: field 'hidden_activation': expected \"gelu_pytorch_tanh\"", path);
        if (!ok) return err_set("%s: field '%s': expected %s", path, keys[k], want);
        if (k == 0) return 0; /* hidden_activation decides (transformers' Gemma) */
    }
    return 0;
}

int hf_config_parse(ModelConfig *c, const char *text, size_t n, const char *path) {
    cJSON *root = io_json_parse_object((const uint8_t *)text, n, path, NULL);
    if (!root) return -1;
    int rc = io_json_unique_keys(root, path);
    if (rc) goto done;
    memset(c, 0, sizeof *c);
    const ModelArch *a = arch_llama();
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !cJSON_IsNull(mt)) {
        if (!cJSON_IsString(mt)) { rc = err_set("%s: field 'model_type': expected a string", path); goto done; }
        if (!(a = arch_from_model_type(mt->valuestring))) {
            rc = err_set("%s: field 'model_type': '%.64s%s' is not supported (expected one of %s)", path, mt->valuestring,
                         strlen(mt->valuestring) > 64 ? "..." : "", arch_model_types());
            goto done;
        }
    }
    c->arch = a;
    if (check_activation(root, a, path) != 0) { rc = -1; goto done; }
    double eps, theta, partial;
    int tie = 0, hd = 0, attn_bias = 0, mlp_bias = 0, window = 0, use_window = 0;
    if (json_int(root, "hidden_size", 0, 1, &c->dim, path) || json_int(root, "intermediate_size", 0, 1, &c->hidden_dim, path) ||
        json_int(root, "num_hidden_layers", 0, 1, &c->n_layers, path) || json_int(root, "num_attention_heads", 0, 1, &c->n_heads, path) ||
        json_int(root, "num_key_value_heads", 0, 0, &c->n_kv_heads, path) || json_int(root, "vocab_size", 0, 1, &c->vocab_size, path) ||
        json_int(root, "max_position_embeddings", a->max_pos_default, 0, &c->seq_len, path) ||
        json_token_id(root, "bos_token_id", 1, &c->bos_id, path) || json_token_id(root, "eos_token_id", 2, &c->eos_id, path) ||
        json_int(root, "head_dim", 0, 0, &hd, path) || json_float(root, a->eps_key ? a->eps_key : "rms_norm_eps", 1e-6, 1, &eps, path) ||
        json_float(root, "rope_theta", 10000.0, 1, &theta, path) ||
        json_float(root, "partial_rotary_factor", 1.0, 1, &partial, path) ||
        json_bool(root, "tie_word_embeddings", a->tied_default, &tie, path) ||
        json_bool(root, "attention_bias", 0, &attn_bias, path) || json_bool(root, "mlp_bias", 0, &mlp_bias, path) ||
        json_bool(root, "use_sliding_window", 0, &use_window, path) ||
        json_int(root, "sliding_window", a->window_default, 0, &window, path) || parse_rope_scaling(c, root, path)) {
        rc = -1;
        goto done;
    }
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (c->n_heads <= 0 || (!hd && c->dim % c->n_heads)) { rc = err_set("%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->dim, c->n_heads); goto done; }
    c->head_dim = c->dim / c->n_heads;
    if (hd) c->head_dim = hd; /* its own size (Qwen3, Mistral Nemo): q is [heads*head_dim, hidden] */
    if (partial > 1) { rc = err_set("%s: field 'partial_rotary_factor' %g: expected at most 1", path, partial); goto done; }
    c->rope_dims = (int)(c->head_dim * partial + 1e-9); /* transformers: int(head_dim * factor) */
    if (partial < 1 && c->head_dim > 0 && (c->rope_dims < 2 || c->rope_dims % 2)) { rc = err_set("%s: field 'partial_rotary_factor' %g leaves %d rotated dimensions of %d: expected an even number >= 2", path, partial, c->rope_dims, c->head_dim); goto done; }
    c->bias = a->bias | (attn_bias ? a->bias_attention_key : 0) | (mlp_bias && a == arch_llama() ? LIN_MLP : 0);
    if (attn_bias && !a->bias_attention_key) { rc = err_set("%s: field 'attention_bias': not a %s config key (its biases are fixed)", path, a->model_type); goto done; }
    c->qk_norm = a->qk_norm;
    c->linears = LIN_ALL & ~a->no_linears;
    c->norm_offset = a->norm_offset;
    int qk_ln = 0;
    if (json_bool(root, "qk_layernorm", 0, &qk_ln, path)) { rc = -1; goto done; }
    if (qk_ln) { rc = err_set("%s: field 'qk_layernorm' is true: Phi's LayerNorm of q and k is not supported", path); goto done; }
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (a->window == ARCH_WINDOW_KEY) c->sliding_window = sw && cJSON_IsNull(sw) ? 0 : window; /* null: no window */
    if (a->window == ARCH_WINDOW_OPT_IN && use_window) {
        rc = err_set("%s: field 'use_sliding_window' is true: %s's per-layer sliding window (max_window_layers) is not supported", path, a->model_type);
        goto done;
    }
    if (c->sliding_window >= c->seq_len) c->sliding_window = 0; /* as long as the context: no effect */
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

/* TensorSource.find over the folder's shards: the name, then without the "model." prefix
 * (a base-model checkpoint, which transformers loads into the causal LM too). */
static int st_find(void *ctx, const char *name, SrcTensor *out) {
    const StSet *s = ctx;
    const StTensor *t = st_set_tensor_find(s, name, NULL);
    if (!t && strncmp(name, "model.", 6) == 0) t = st_set_tensor_find(s, name + 6, NULL);
    if (!t) return 1;
    if (!t->supported || (t->dtype != DT_F32 && t->dtype != DT_F16 && t->dtype != DT_BF16))
        return err_set("%s: tensor '%s' has type %s: expected F32, F16 or BF16", s->path, t->name, t->dtype_name);
    out->dtype = t->dtype;
    out->data = t->data;
    out->ndim = t->ndim;
    out->shape[0] = t->ndim > 0 ? t->shape[0] : 0;
    out->shape[1] = t->ndim > 1 ? t->shape[1] : 0;
    out->row_bytes = (size_t)(t->ndim > 1 ? t->shape[1] : 1) * (t->dtype == DT_F32 ? 4 : 2);
    return 0;
}

int model_load_hf(Model *m, const char *dir, const ModelLoadOptions *o) {
    (void)o;
    if (hf_config_read(&m->cfg, dir) != 0) return -1;
    m->format = MODEL_FMT_HF;
    if (model_memory_check(m, dir) != 0) return -1;
    StSet *s = calloc(1, sizeof *s);
    if (!s) return err_set("out of memory");
    if (st_set_open(s, dir) != 0) { free(s); return -1; }
    m->format_ctx = s;
    m->format_free = set_free;
    /* no classifier stored: tied, as transformers does */
    SrcTensor probe;
    char head[128];
    snprintf(head, sizeof head, "%s.weight", m->cfg.arch->hf_global[GT_HEAD]);
    int hr = st_find(s, head, &probe);
    if (hr < 0) return -1;
    if (hr > 0) m->cfg.tied = 1;
    TensorSource src = {s, s->path, 0, 1, st_find};
    return model_load_tensors(m, &src);
}
