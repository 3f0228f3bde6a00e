/* export/export_gguf.c - GGUF LoRA adapters and GGUF models for llama.cpp (export.h).
 *
 * Table-driven from the family (model/arch.h): general.architecture and the key prefix
 * are arch->gguf_arch, tensor names arch->gguf_global / gguf_lin / gguf_norm, biases
 * "blk.N.<linear>.bias" for every linear cfg.bias has, per-head norms when cfg.qk_norm,
 * LayerNorm biases (ARCH_NORM_LAYER), only the linears and norms the family has (phi2: no
 * ffn_gate, no ffn_norm), the classifier bias (head_bias), norms as (norm_offset + w)
 * (gemma's 1 + w, gguf_norm_plus_one), the epsilon under gguf_eps_key. The vocabulary:
 * export_gguf_vocab.c.
 * q/k rows (and their biases, per-head norms and the rows of LoRA B) go out in the
 * Hugging Face half-split order for families whose GGUF keeps it (arch->gguf_qk_half:
 * qwen2, qwen3, phi2, gemma; partial rotary: within the rotated dims), the exact reverse
 * of what load_gguf.c undoes; else interleaved. */
#include "export.h"
#include "export_internal.h"

#include "core/error.h"
#include "io/gguf.h"
#include "model/load_internal.h" /* model_qk_permute: the loader's own permutation, reversed */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *export_gguf_arch(const Model *m) { return m->cfg.arch ? m->cfg.arch->gguf_arch : "llama"; }

static const ModelArch *arch_of(const Model *m) { return m->cfg.arch ? m->cfg.arch : arch_llama(); }

/* Heads whose rows go out permuted to the Hugging Face (half-split) order: q and k of the
 * families whose GGUF keeps that order (arch.h gguf_qk_half), what load_gguf.c undoes. */
static int qk_heads(const Model *m, int slot) {
    if (!arch_of(m)->gguf_qk_half) return 0;
    return slot == LIN_Q ? m->cfg.n_heads : slot == LIN_K ? m->cfg.n_kv_heads : 0;
}

/* A copy of rows [heads * hd] of row_bytes each, interleaved -> half-split; kept in owned. */
static const void *qk_half_copy(const Model *m, const void *src, int heads, size_t row_bytes, void **owned,
                                size_t *n_owned) {
    const ModelConfig *c = &m->cfg;
    void *p = malloc((size_t)heads * c->head_dim * row_bytes);
    if (!p) return NULL;
    model_qk_permute(p, src, heads, c->head_dim, c->rope_dims ? c->rope_dims : c->head_dim, row_bytes, 1);
    owned[(*n_owned)++] = p;
    return p;
}

int export_lora_gguf(const LoraAdapter *a, const Model *m, const char *path, const char *name) {
    if (lora_check(a, m) != 0) return err_prefix("%s", path);
    if (a->merged) return err_set("%s: the adapter is merged into the model; export it before merging", path);
    const ModelArch *ar = arch_of(m);
    GgufWriter w;
    gguf_writer_init(&w);
    gguf_writer_set_string(&w, "general.architecture", ar->gguf_arch);
    gguf_writer_set_string(&w, "general.type", "adapter");
    if (name) gguf_writer_set_string(&w, "general.name", name);
    gguf_writer_set_string(&w, "adapter.type", "lora");
    /* llama.cpp: scale = alpha / r with r = lora_b.ne[0] */
    gguf_writer_set_f32(&w, "adapter.lora.alpha", a->scaling * (float)a->rank);
    size_t cap = (size_t)m->cfg.n_layers * LORA_N_TARGETS * 2, n_owned = 0;
    char (*names)[96] = calloc(cap, sizeof *names);
    void **owned = calloc(cap, sizeof *owned);
    int rc = names && owned ? 0 : err_set("%s: out of memory", path);
    size_t k = 0;
    for (int l = 0; rc == 0 && l < m->cfg.n_layers; l++)
        for (int t = 0; rc == 0 && t < LORA_N_TARGETS; t++) {
            const LoraMat *p = lora_mat(a, l, (LoraTarget)t);
            if (!p) continue;
            uint64_t ne_a[2] = {(uint64_t)p->in, (uint64_t)p->rank}, ne_b[2] = {(uint64_t)p->rank, (uint64_t)p->out};
            /* B's rows are the weight's rows: q/k in the order the GGUF base holds them */
            const void *b = p->B;
            int heads = qk_heads(m, t);
            if (heads && !(b = qk_half_copy(m, p->B, heads, (size_t)p->rank * sizeof(float), owned, &n_owned))) {
                rc = err_set("%s: out of memory", path);
                break;
            }
            snprintf(names[k], sizeof names[k], "blk.%d.%s.weight.lora_a", l, ar->gguf_lin[t]);
            gguf_writer_add_tensor(&w, names[k++], GGML_TYPE_F32, 2, ne_a, p->A);
            snprintf(names[k], sizeof names[k], "blk.%d.%s.weight.lora_b", l, ar->gguf_lin[t]);
            gguf_writer_add_tensor(&w, names[k++], GGML_TYPE_F32, 2, ne_b, b);
        }
    if (rc == 0) rc = k ? gguf_writer_write(&w, path) : err_set("%s: the adapter adapts no layer", path);
    gguf_writer_free(&w);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(names);
    return rc;
}

/* ------------------------------------------------------------------ models */

static uint32_t ggml_type_of(DType d) { return d == DT_F16 ? GGML_TYPE_F16 : d == DT_BF16 ? GGML_TYPE_BF16 : GGML_TYPE_F32; }

/* A matrix as floats: the weight's own fp32 data, or a widened copy of bf16 (kept in owned). */
static const float *weight_f32(const KWeight *kw, void **owned, size_t *n_owned) {
    if (kw->type == KW_F32) return kw->f32;
    size_t n = (size_t)kw->n * (size_t)kw->k;
    float *f = malloc(n * sizeof *f);
    if (!f) return NULL;
    dtype_to_f32(DT_BF16, kw->bf16, f, n);
    owned[(*n_owned)++] = f;
    return f;
}

/* Llama 3 rotary scaling as llama.cpp's converter writes it: rope_freqs.weight, one divisor
 * per frequency (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors). */
static void llama3_rope_divisors(const ModelConfig *c, float *div) {
    int rd = c->rope_dims ? c->rope_dims : c->head_dim;
    double lo_wl = (double)c->rope_orig_ctx / c->rope_low_freq, hi_wl = (double)c->rope_orig_ctx / c->rope_high_freq;
    for (int i = 0; i < rd / 2; i++) {
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)rd);
        double wavelen = 2.0 * M_PI / f;
        if (wavelen < hi_wl) div[i] = 1.0f;
        else if (wavelen > lo_wl) div[i] = c->rope_factor;
        else {
            double sm = ((double)c->rope_orig_ctx / wavelen - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
            div[i] = (float)(1.0 / ((1.0 - sm) / c->rope_factor + sm));
        }
    }
}

/* The {arch}.* hyper-parameters, as convert_hf_to_gguf.py writes them. */
static void add_hparams(GgufWriter *w, const Model *m, char (*keys)[96]) {
    const ModelConfig *c = &m->cfg;
    const char *a = arch_of(m)->gguf_arch;
    int k = 0;
#define KEY(suffix) (snprintf(keys[k], 96, "%s.%s", a, suffix), keys[k++])
    gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)c->seq_len);
    gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
    gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->hidden_dim);
    gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(c->rope_dims ? c->rope_dims : c->head_dim));
    gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    if (c->head_dim * c->n_heads != c->dim) { /* a head size of its own (Qwen3) */
        gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
        gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    /* LayerNorm families (phi2) keep it under attention.layer_norm_epsilon */
    gguf_writer_set_f32(w, KEY(arch_of(m)->gguf_eps_key ? arch_of(m)->gguf_eps_key : "attention.layer_norm_rms_epsilon"),
                        c->norm_eps);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), c->rope_theta);
    if (c->sliding_window > 0) gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)c->sliding_window);
    if (c->rope_scaling == ROPE_SCALING_LINEAR) {
        gguf_writer_set_string(w, KEY("rope.scaling.type"), "linear");
        gguf_writer_set_f32(w, KEY("rope.scaling.factor"), c->rope_factor);
    }
    gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
#undef KEY
}
#define N_HPARAM_KEYS 20

int export_model_gguf(const Model *m, const Tokenizer *t, const char *path, DType dtype, const char *name) {
    const ModelConfig *c = &m->cfg;
    const ModelArch *ar = arch_of(m);
    if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16)
        return err_set("%s: type %s: expected f32, f16 or bf16", path, dtype_name(dtype));
    if (c->rope != ROPE_INTERLEAVED)
        return err_set("%s: the model's rotary layout is not the interleaved one muscle's loaders give", path);
    if (c->norm_offset != 0.0f && !ar->gguf_norm_plus_one)
        return err_set("%s: the %s family's norms multiply by (%g + w), which its GGUF form cannot hold", path,
                       ar->model_type, (double)c->norm_offset);
    GgufWriter w;
    gguf_writer_init(&w);
    char keys[N_HPARAM_KEYS][96];
    gguf_writer_set_string(&w, "general.architecture", ar->gguf_arch);
    gguf_writer_set_string(&w, "general.type", "model");
    if (name) gguf_writer_set_string(&w, "general.name", name);
    gguf_writer_set_u32(&w, "general.file_type", dtype == DT_F32 ? 0 : dtype == DT_F16 ? 1 : 32);
    add_hparams(&w, m, keys);
    int rc = 0;
    if (t) rc = export_gguf_vocab(&w, t, c->vocab_size, path);
    /* names and buffers live until the write (the writer keeps the pointers) */
    /* tensors: per layer every norm (+ 2 LayerNorm biases), every linear and its bias; the
     * global weights and biases, rope_freqs. Each may own two copies (widened, permuted) */
    const int per_layer = NORM_COUNT + 2 + 2 * LIN_COUNT;
    size_t cap = 2 * ((size_t)c->n_layers * per_layer + 2 * GT_COUNT + 1), n_owned = 0, k = 0;
    void **owned = calloc(cap, sizeof *owned);
    char (*names)[96] = calloc(cap, sizeof *names);
    if (rc == 0 && (!owned || !names)) rc = err_set("%s: out of memory", path);
    uint32_t ty = ggml_type_of(dtype);
    /* a matrix [n, k] (heads > 0: q/k rows to the half-split order) */
#define MAT(kw, heads)                                                                                    \
    do {                                                                                                  \
        const float *src = weight_f32(kw, owned, &n_owned);                                               \
        if (src && (heads)) src = qk_half_copy(m, src, heads, (size_t)(kw)->k * sizeof(float), owned, &n_owned); \
        if (!src) { rc = err_set("%s: out of memory", path); break; }                                     \
        uint64_t ne[2] = {(uint64_t)(kw)->k, (uint64_t)(kw)->n};                                          \
        gguf_writer_add_tensor_f32(&w, names[k++], ty, 2, ne, src);                                       \
    } while (0)
#define VEC(ptr, len, heads)                                                                              \
    do {                                                                                                  \
        const void *src = (ptr);                                                                          \
        if ((heads) && !(src = qk_half_copy(m, src, heads, sizeof(float), owned, &n_owned))) {            \
            rc = err_set("%s: out of memory", path);                                                      \
            break;                                                                                        \
        }                                                                                                 \
        uint64_t ne[1] = {(uint64_t)(len)};                                                               \
        gguf_writer_add_tensor(&w, names[k++], GGML_TYPE_F32, 1, ne, src);                                \
    } while (0)
    /* a norm vector: the (norm_offset + w) it multiplies by, what llama.cpp's converter stores
     * for gemma (gguf_norm_plus_one, checked above); else the weight as it is */
#define NORM(ptr, len, heads)                                                                             \
    do {                                                                                                  \
        const float *nsrc = (ptr);                                                                        \
        if (c->norm_offset != 0.0f) {                                                                     \
            float *p1 = malloc((size_t)(len) * sizeof *p1);                                               \
            if (!p1) { rc = err_set("%s: out of memory", path); break; }                                  \
            owned[n_owned++] = p1;                                                                        \
            for (int i_ = 0; i_ < (len); i_++) p1[i_] = c->norm_offset + nsrc[i_];                        \
            nsrc = p1;                                                                                    \
        }                                                                                                 \
        VEC(nsrc, len, heads);                                                                            \
    } while (0)
#define GNAME(slot, suffix) snprintf(names[k], sizeof names[k], "%s.%s", ar->gguf_global[slot], suffix)
#define LNAME(part, suffix) snprintf(names[k], sizeof names[k], "blk.%d.%s.%s", l, part, suffix)
    const int layer_norm = ar->norm == ARCH_NORM_LAYER; /* + a bias per norm (phi2) */
    if (rc == 0) {
        GNAME(GT_EMBED, "weight");
        MAT(&m->tok_emb, 0);
    }
    if (rc == 0) {
        GNAME(GT_NORM, "weight");
        NORM(m->rms_final, c->dim, 0);
    }
    if (rc == 0 && layer_norm) {
        GNAME(GT_NORM, "bias");
        VEC(m->norm_final_b, c->dim, 0);
    }
    /* llama.cpp's phi2 requires output.weight beside output.bias: a tied classifier with a
     * bias of its own goes out as a copy of the embedding (muscle reads it back untied) */
    if (rc == 0 && (!c->tied || ar->head_bias)) {
        GNAME(GT_HEAD, "weight");
        MAT(c->tied ? &m->tok_emb : &m->wcls, 0);
    }
    if (rc == 0 && ar->head_bias) {
        GNAME(GT_HEAD, "bias");
        VEC(m->cls_b, c->vocab_size, 0);
    }
    if (rc == 0 && (c->rope_scaling == ROPE_SCALING_LLAMA3 || c->rope_scaling == ROPE_SCALING_TABLE)) {
        int half = (c->rope_dims ? c->rope_dims : c->head_dim) / 2;
        float *div = malloc((size_t)half * sizeof *div);
        if (!div) rc = err_set("%s: out of memory", path);
        else {
            owned[n_owned++] = div;
            if (c->rope_scaling == ROPE_SCALING_TABLE) memcpy(div, m->rope_freq_div, (size_t)half * sizeof *div);
            else llama3_rope_divisors(c, div);
            snprintf(names[k], sizeof names[k], "rope_freqs.weight");
            VEC(div, half, 0);
        }
    }
    const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int out[LIN_COUNT] = {qd, kvd, kvd, c->dim, c->hidden_dim, c->hidden_dim, c->dim};
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        LNAME(ar->gguf_norm[NORM_ATTN], "weight");
        NORM(L->rms_att, c->dim, 0);
        if (rc == 0 && layer_norm) {
            LNAME(ar->gguf_norm[NORM_ATTN], "bias");
            VEC(L->norm_att_b, c->dim, 0);
        }
        if (rc == 0 && model_has_ffn_norm(c)) { /* none with a parallel residual (phi2) */
            LNAME(ar->gguf_norm[NORM_FFN], "weight");
            NORM(L->rms_ffn, c->dim, 0);
            if (rc == 0 && layer_norm) {
                LNAME(ar->gguf_norm[NORM_FFN], "bias");
                VEC(L->norm_ffn_b, c->dim, 0);
            }
        }
        if (rc == 0 && c->qk_norm) { /* per-head: the elements of one head, permuted like its rows */
            LNAME(ar->gguf_norm[NORM_Q], "weight");
            NORM(L->q_norm, hd, ar->gguf_qk_half);
            if (rc) break;
            LNAME(ar->gguf_norm[NORM_K], "weight");
            NORM(L->k_norm, hd, ar->gguf_qk_half);
        }
        for (int s = 0; rc == 0 && s < LIN_COUNT; s++) {
            if (!model_has_linear(c, (LinearSlot)s)) continue; /* phi2: no ffn_gate */
            LNAME(ar->gguf_lin[s], "weight");
            MAT(model_linear(m, l, (LinearSlot)s), qk_heads(m, s));
            if (rc == 0 && (c->bias & LIN_BIT(s))) {
                LNAME(ar->gguf_lin[s], "bias");
                VEC(L->bias[s], out[s], qk_heads(m, s));
            }
        }
    }
#undef MAT
#undef VEC
#undef NORM
#undef GNAME
#undef LNAME
    if (rc == 0) rc = gguf_writer_write(&w, path);
    gguf_writer_free(&w);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(names);
    return rc;
}
