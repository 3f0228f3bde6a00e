/* model/model_load.c - format detection, weight handles, ownership. */
#include "load_internal.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* ownership                                                                  */

void *model_alloc(Model *m, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) { err_set("out of memory"); return NULL; }
        m->owned = o;
        m->cap_owned = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        err_set("out of memory allocating %zu bytes for the model", bytes);
        return NULL;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

int model_make_weight_copy(Model *m, KWeight *w, DType t, const void *data, int n, int k, int copy) {
    size_t count = (size_t)n * (size_t)k;
    if (m->wtype == KW_F32) {
        if (t == DT_F32 && !copy && ((uintptr_t)data % sizeof(float)) == 0) return kweight_init_f32(w, data, n, k);
        float *f = model_alloc(m, count * sizeof(float));
        if (!f) return -1;
        dtype_to_f32(t, data, f, count);
        return kweight_init_f32(w, f, n, k);
    }
    if (t == DT_BF16 && !copy && ((uintptr_t)data % 2) == 0) return kweight_init_bf16(w, data, n, k);
    uint16_t *h = model_alloc(m, count * sizeof(uint16_t));
    if (!h) return -1;
    if (t == DT_BF16) {
        memcpy(h, data, count * 2);
    } else if (t == DT_F32 && ((uintptr_t)data % sizeof(float)) == 0) {
        dtype_from_f32(DT_BF16, data, h, count);
    } else {
        float *tmp = malloc(count * sizeof(float));
        if (!tmp) return err_set("out of memory");
        dtype_to_f32(t, data, tmp, count);
        dtype_from_f32(DT_BF16, tmp, h, count);
        free(tmp);
    }
    return kweight_init_bf16(w, h, n, k);
}

int model_make_weight(Model *m, KWeight *w, DType t, const void *data, int n, int k) {
    return model_make_weight_copy(m, w, t, data, n, k, m->writable);
}

float *model_make_vector(Model *m, DType t, const void *data, size_t n) {
    float *f = model_alloc(m, n * sizeof(float));
    if (f) dtype_to_f32(t, data, f, n);
    return f;
}

/* ------------------------------------------------------------------------- */
/* memory                                                                     */

static uint64_t memory_limit; /* 0 = what the system has available */

void model_set_memory_limit(uint64_t bytes) { memory_limit = bytes; }

/* MemAvailable from /proc/meminfo in bytes (0 when unknown). */
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

int model_memory_check(const Model *m, const char *what) {
    uint64_t per = m->wtype == KW_BF16 ? 2 : 4;
    /* bf16 weights: the matrix engine keeps a second copy in its own layout, built on the
     * first large product (oneDNN's reordered weights or our GEMM's panels, the same size:
     * kernel/matmul.h, kweight_init_bf16), so count them twice */
    uint64_t copies = m->wtype == KW_BF16 ? 2 : 1;
    uint64_t need = model_param_count(m) * per * copies;
    if (m->writable) need *= 4; /* weights, gradients and two AdamW moments */
    uint64_t avail = mem_available();
    uint64_t limit = memory_limit ? memory_limit : avail;
    if (memory_limit && avail && avail < limit) limit = avail;
    if (limit && need > limit)
        return err_set("%s: the model needs about %.1f MB (%llu parameters x %llu bytes%s%s) but only %.1f MB %s: refused before loading",
                       what, (double)need / 1e6, (unsigned long long)model_param_count(m), (unsigned long long)per,
                       copies > 1 ? " x 2 for the matrix engine's copy" : "", m->writable ? " x 4 for training" : "",
                       (double)limit / 1e6, memory_limit ? "are allowed (--max-memory)" : "are available");
    return 0;
}

/* ------------------------------------------------------------------------- */
/* configuration                                                              */

int model_config_check(const ModelConfig *c, const char *what) {
#define CHECK(cond, ...) do { if (!(cond)) return err_set(__VA_ARGS__); } while (0)
    CHECK(c->dim > 0 && c->dim <= 65536, "%s: dim %d: expected 1..65536", what, c->dim);
    CHECK(c->hidden_dim > 0 && c->hidden_dim <= 262144, "%s: hidden_dim %d: expected 1..262144", what, c->hidden_dim);
    CHECK(c->n_layers > 0 && c->n_layers <= 1024, "%s: n_layers %d: expected 1..1024", what, c->n_layers);
    CHECK(c->n_heads > 0 && c->n_heads <= c->dim, "%s: n_heads %d: expected 1..dim", what, c->n_heads);
    CHECK(c->n_kv_heads > 0 && c->n_kv_heads <= c->n_heads, "%s: n_kv_heads %d: expected 1..n_heads (%d)", what, c->n_kv_heads, c->n_heads);
    CHECK(c->n_heads % c->n_kv_heads == 0, "%s: n_heads %d is not a multiple of n_kv_heads %d", what, c->n_heads, c->n_kv_heads);
    CHECK(c->head_dim > 0 && c->head_dim % 2 == 0 && c->head_dim <= 1024, "%s: head_dim %d: expected an even number up to 1024", what, c->head_dim);
    CHECK(c->vocab_size > 0 && c->vocab_size <= (1 << 22), "%s: vocab_size %d: expected 1..4194304", what, c->vocab_size);
    CHECK(c->seq_len > 0 && c->seq_len <= (1 << 22), "%s: seq_len %d: expected 1..4194304", what, c->seq_len);
    CHECK(c->rope_theta > 0, "%s: rope theta %g: expected > 0", what, (double)c->rope_theta);
    CHECK(c->norm_eps > 0 && c->norm_eps < 1, "%s: norm epsilon %g: expected in (0, 1)", what, (double)c->norm_eps);
    CHECK(c->rope_dims == 0 || (c->rope_dims >= 2 && c->rope_dims <= c->head_dim && c->rope_dims % 2 == 0),
          "%s: rotary dimensions %d: expected an even number from 2 to head_dim %d", what, c->rope_dims, c->head_dim);
    CHECK(c->sliding_window >= 0, "%s: sliding window %d: expected >= 0", what, c->sliding_window);
    CHECK(c->bias < (1u << LIN_COUNT), "%s: bias set 0x%x: expected linears 0..%d", what, c->bias, LIN_COUNT - 1);
    if (c->rope_scaling == ROPE_SCALING_LINEAR || c->rope_scaling == ROPE_SCALING_LLAMA3)
        CHECK(c->rope_factor >= 1 && isfinite(c->rope_factor), "%s: rope scaling factor %g: expected >= 1", what, (double)c->rope_factor);
    if (c->rope_scaling == ROPE_SCALING_LLAMA3)
        CHECK(c->rope_high_freq > c->rope_low_freq && c->rope_low_freq > 0 && c->rope_orig_ctx > 0,
              "%s: llama3 rope scaling: expected 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0", what);
#undef CHECK
    return 0;
}

/* ------------------------------------------------------------------------- */
/* loading                                                                    */

void model_config_defaults(ModelConfig *c) {
    if (!c->arch) c->arch = arch_llama();
    if (!c->rope_dims) c->rope_dims = c->head_dim;
    if (!c->linears) c->linears = LIN_ALL & ~c->arch->no_linears;
}

int model_finish(Model *m) {
    model_config_defaults(&m->cfg);
    if (m->cfg.tied) m->wcls = m->tok_emb;
    if (m->cfg.rope_scaling == ROPE_SCALING_TABLE && !m->rope_freq_div) return err_set("model: a rotary divisor table is expected");
    return 0;
}

const KWeight *model_linear(const Model *m, int l, LinearSlot slot) {
    const LayerWeights *w = &m->layers[l];
    switch (slot) {
    case LIN_Q: return &w->wq;
    case LIN_K: return &w->wk;
    case LIN_V: return &w->wv;
    case LIN_O: return &w->wo;
    case LIN_GATE: return &w->w1;
    case LIN_UP: return &w->w3;
    case LIN_DOWN: return &w->w2;
    default: return NULL;
    }
}

/* Pair i turns by pos * inv_freq[i]; computed in float as llama2.c and PyTorch do.
 * Llama 3 (transformers' _compute_llama3_parameters, llama.cpp's rope_freqs): wavelengths
 * 2 pi / f longer than orig / low_freq_factor are divided by factor, shorter than
 * orig / high_freq_factor kept, and those between blended:
 * f' = (1 - s) f / factor + s f, s = (orig / wavelen - low) / (high - low). */
void model_rope_inv_freq(const Model *m, float *inv) {
    const ModelConfig *c = &m->cfg;
    int rd = c->rope_dims ? c->rope_dims : c->head_dim, half = rd / 2;
    for (int i = 0; i < half; i++) {
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)rd);
        switch (c->rope_scaling) {
        case ROPE_SCALING_NONE: break;
        case ROPE_SCALING_LINEAR: f /= c->rope_factor; break;
        case ROPE_SCALING_TABLE: f /= m->rope_freq_div[i]; break;
        case ROPE_SCALING_LLAMA3: {
            float wavelen = 2.0f * (float)M_PI / f;
            float lo_wl = (float)c->rope_orig_ctx / c->rope_low_freq, hi_wl = (float)c->rope_orig_ctx / c->rope_high_freq;
            if (wavelen > lo_wl) {
                f /= c->rope_factor;
            } else if (wavelen >= hi_wl) {
                float sm = ((float)c->rope_orig_ctx / wavelen - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
                f = (1.0f - sm) * f / c->rope_factor + sm * f;
            }
            break;
        }
        }
        inv[i] = f;
    }
}

int model_load(Model *m, const char *path, const ModelLoadOptions *opts) {
    ModelLoadOptions def = {KW_F32, 0};
    if (!opts) opts = &def;
    memset(m, 0, sizeof *m);
    m->wtype = opts->writable ? KW_F32 : opts->wtype;
    m->path = strdup(path);
    m->writable = opts->writable;
    int rc;
    if (file_is_dir(path)) {
        m->dir = strdup(path);
        rc = model_load_hf(m, path, opts);
    } else {
        m->dir = file_dirname(path);
        MappedFile f;
        if (file_map(&f, path) != 0) { model_free(m); return -1; }
        int is_gguf = f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0;
        int is_st = 0;
        if (!is_gguf && f.size >= 10) {
            uint64_t hl = 0;
            memcpy(&hl, f.data, 8);
            is_st = hl > 1 && hl <= f.size - 8 && f.data[8] == '{';
        }
        file_unmap(&f);
        if (is_gguf) {
            rc = model_load_gguf(m, path, opts);
        } else if (is_st) {
            /* a bare .safetensors file: its config.json must sit beside it */
            rc = model_load_hf(m, m->dir, opts);
        } else {
            rc = model_load_llama2c(m, path, opts);
        }
    }
    if (rc == 0) rc = model_config_check(&m->cfg, path);
    if (rc == 0) rc = model_finish(m);
    if (rc != 0) model_free(m);
    return rc;
}

void model_free(Model *m) {
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            LayerWeights *w = &m->layers[l];
            kweight_free(&w->wq); kweight_free(&w->wk); kweight_free(&w->wv); kweight_free(&w->wo);
            kweight_free(&w->w1); kweight_free(&w->w2); kweight_free(&w->w3);
        }
    }
    if (!m->cfg.tied) kweight_free(&m->wcls);
    kweight_free(&m->tok_emb);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (int i = 0; i < m->n_maps; i++) file_unmap(&m->maps[i]);
    free(m->maps);
    if (m->tokenizer) tok_free(m->tokenizer);
    if (m->format_free) m->format_free(m->format_ctx);
    free(m->path);
    free(m->dir);
    memset(m, 0, sizeof *m);
}

const char *model_format_name(ModelFormat f) {
    switch (f) {
    case MODEL_FMT_LLAMA2C: return "llama2.c";
    case MODEL_FMT_HF: return "huggingface-safetensors";
    case MODEL_FMT_GGUF: return "gguf";
    }
    return "?";
}

uint64_t model_param_count(const Model *m) {
    const ModelConfig *c = &m->cfg;
    uint64_t d = (uint64_t)c->dim, kv = (uint64_t)c->n_kv_heads * c->head_dim, q = (uint64_t)c->n_heads * c->head_dim;
    uint64_t hid = (uint64_t)c->hidden_dim, per = 0;
    uint64_t out[LIN_COUNT] = {q, kv, kv, d, hid, hid, d}, in[LIN_COUNT] = {d, d, d, q, d, d, hid};
    const ModelArch *a = c->arch ? c->arch : arch_llama();
    unsigned lin = c->linears ? c->linears : LIN_ALL & ~a->no_linears;
    int layer_norm = a->norm == ARCH_NORM_LAYER, norms = a->parallel_residual ? 1 : 2;
    per += (uint64_t)norms * d * (layer_norm ? 2 : 1);
    for (int s = 0; s < LIN_COUNT; s++) {
        if (lin & LIN_BIT(s)) per += out[s] * in[s];
        if (c->bias & LIN_BIT(s)) per += out[s];
    }
    if (c->qk_norm) per += 2 * (uint64_t)c->head_dim;
    uint64_t n = (uint64_t)c->vocab_size * d * (c->tied ? 1 : 2) + per * (uint64_t)c->n_layers + d * (layer_norm ? 2 : 1);
    if (a->head_bias) n += (uint64_t)c->vocab_size;
    return n;
}

