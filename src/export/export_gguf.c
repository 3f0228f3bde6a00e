/* export/export_gguf.c - GGUF LoRA adapters and GGUF models for llama.cpp (export.h). */
#include "export.h"

#include "core/error.h"
#include "io/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's tensor names of the linear layers, in LoraTarget order. */
static const char *const gguf_linear[LORA_N_TARGETS] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                        "ffn_gate", "ffn_up", "ffn_down"};

const char *export_gguf_arch(const Model *m) {
    (void)m; /* every family muscle loads today runs as llama.cpp's "llama" graph */
    return "llama";
}

int export_lora_gguf(const LoraAdapter *a, const Model *m, const char *path, const char *name) {
    if (lora_check(a, m) != 0) return err_prefix("%s", path);
    if (a->merged) return err_set("%s: the adapter is merged into the model; export it before merging", path);
    GgufWriter w;
    gguf_writer_init(&w);
    gguf_writer_set_string(&w, "general.architecture", export_gguf_arch(m));
    gguf_writer_set_string(&w, "general.type", "adapter");
    if (name) gguf_writer_set_string(&w, "general.name", name);
    gguf_writer_set_string(&w, "adapter.type", "lora");
    /* llama.cpp: scale = alpha / r with r = lora_b.ne[0] */
    gguf_writer_set_f32(&w, "adapter.lora.alpha", a->scaling * (float)a->rank);
    char (*names)[64] = calloc((size_t)m->cfg.n_layers * LORA_N_TARGETS * 2, sizeof *names);
    if (!names) {
        gguf_writer_free(&w);
        return err_set("%s: out of memory", path);
    }
    size_t k = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            const LoraMat *p = lora_mat(a, l, (LoraTarget)t);
            if (!p) continue;
            uint64_t ne_a[2] = {(uint64_t)p->in, (uint64_t)p->rank}, ne_b[2] = {(uint64_t)p->rank, (uint64_t)p->out};
            snprintf(names[k], sizeof names[k], "blk.%d.%s.weight.lora_a", l, gguf_linear[t]);
            gguf_writer_add_tensor(&w, names[k++], GGML_TYPE_F32, 2, ne_a, p->A);
            snprintf(names[k], sizeof names[k], "blk.%d.%s.weight.lora_b", l, gguf_linear[t]);
            gguf_writer_add_tensor(&w, names[k++], GGML_TYPE_F32, 2, ne_b, p->B);
        }
    int rc = k ? gguf_writer_write(&w, path) : err_set("%s: the adapter adapts no layer", path);
    gguf_writer_free(&w);
    free(names);
    return rc;
}

/* ------------------------------------------------------------------ models */

static uint32_t ggml_type_of(DType d) { return d == DT_F16 ? GGML_TYPE_F16 : d == DT_BF16 ? GGML_TYPE_BF16 : GGML_TYPE_F32; }

/* A matrix as floats: the weight's own fp32 data, or a widened copy of bf16 (kept in *owned). */
static const float *weight_f32(const KWeight *kw, float **owned, size_t *n_owned, size_t cap) {
    if (kw->type == KW_F32) return kw->f32;
    if (*n_owned >= cap) return NULL;
    size_t n = (size_t)kw->n * (size_t)kw->k;
    float *f = malloc(n * sizeof *f);
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)kw->bf16[i] << 16;
        memcpy(&f[i], &u, 4);
    }
    owned[(*n_owned)++] = f;
    return f;
}

static int add_tokenizer(GgufWriter *w, const Tokenizer *t, const char *path) {
    int n = tok_vocab_size(t);
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    uint64_t *lens = calloc((size_t)n, sizeof *lens);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    int rc = 0;
    if (!pieces || !lens || !scores || !types) rc = err_set("%s: out of memory", path);
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t len;
        pieces[i] = tok_piece(t, i, &len);
        lens[i] = len;
        scores[i] = tok_score(t, i);
        types[i] = tok_type(t, i) ? tok_type(t, i) : TOK_NORMAL;
    }
    if (rc == 0) {
        gguf_writer_set_string(w, "tokenizer.ggml.model", "llama");
        gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", pieces, lens, (uint64_t)n);
        gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n);
        gguf_writer_set_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
        if (tok_bos_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)tok_bos_id(t));
        if (tok_eos_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)tok_eos_id(t));
        if (tok_unk_id(t) >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)tok_unk_id(t));
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    }
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

int export_model_gguf(const Model *m, const Tokenizer *t, const char *path, DType dtype, const char *name) {
    const ModelConfig *c = &m->cfg;
    if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16)
        return err_set("%s: type %s: expected f32, f16 or bf16", path, dtype_name(dtype));
    if (c->rope != ROPE_INTERLEAVED)
        return err_set("%s: the model's rotary layout is not the interleaved one GGUF llama models use", path);
    GgufWriter w;
    gguf_writer_init(&w);
    gguf_writer_set_string(&w, "general.architecture", export_gguf_arch(m));
    gguf_writer_set_string(&w, "general.type", "model");
    if (name) gguf_writer_set_string(&w, "general.name", name);
    gguf_writer_set_u32(&w, "general.file_type", dtype == DT_F32 ? 0 : dtype == DT_F16 ? 1 : 32);
    gguf_writer_set_u32(&w, "llama.context_length", (uint32_t)c->seq_len);
    gguf_writer_set_u32(&w, "llama.embedding_length", (uint32_t)c->dim);
    gguf_writer_set_u32(&w, "llama.block_count", (uint32_t)c->n_layers);
    gguf_writer_set_u32(&w, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    gguf_writer_set_u32(&w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    gguf_writer_set_u32(&w, "llama.attention.head_count", (uint32_t)c->n_heads);
    gguf_writer_set_u32(&w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    gguf_writer_set_f32(&w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    gguf_writer_set_f32(&w, "llama.rope.freq_base", c->rope_theta);
    gguf_writer_set_u32(&w, "llama.vocab_size", (uint32_t)c->vocab_size);
    int rc = 0;
    if (t) {
        if (tok_vocab_size(t) != c->vocab_size)
            rc = err_set("%s: the tokenizer has %d pieces, the model %d", path, tok_vocab_size(t), c->vocab_size);
        else rc = add_tokenizer(&w, t, path);
    }
    size_t cap = (size_t)c->n_layers * 7 + 2, n_owned = 0;
    float **owned = calloc(cap, sizeof *owned);
    char (*names)[64] = calloc(cap, sizeof *names);
    if (!owned || !names) rc = err_set("%s: out of memory", path);
    size_t k = 0;
#define MAT(nm, kw, ty)                                                                                   \
    do {                                                                                                  \
        const float *src = weight_f32(&(kw), owned, &n_owned, cap);                                       \
        if (!src) { rc = err_set("%s: out of memory", path); break; }                                     \
        uint64_t ne[2] = {(uint64_t)(kw).k, (uint64_t)(kw).n};                                            \
        snprintf(names[k], sizeof names[k], "%s", nm);                                                    \
        gguf_writer_add_tensor_f32(&w, names[k++], ty, 2, ne, src);                                       \
    } while (0)
#define VEC(nm, ptr, len)                                                                                 \
    do {                                                                                                  \
        uint64_t ne[1] = {(uint64_t)(len)};                                                               \
        gguf_writer_add_tensor(&w, nm, GGML_TYPE_F32, 1, ne, ptr);                                        \
    } while (0)
    uint32_t ty = ggml_type_of(dtype);
    if (rc == 0) {
        MAT("token_embd.weight", m->tok_emb, ty);
        VEC("output_norm.weight", m->rms_final, c->dim);
        if (!c->tied) MAT("output.weight", m->wcls, ty);
    }
    /* per layer: the names live in a static-size table (the writer keeps the pointer) */
    char (*lnames)[64] = rc == 0 ? calloc((size_t)c->n_layers * 9, sizeof *lnames) : NULL;
    if (rc == 0 && !lnames) rc = err_set("%s: out of memory", path);
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        char (*ln)[64] = &lnames[(size_t)l * 9];
        snprintf(ln[0], 64, "blk.%d.attn_norm.weight", l);
        snprintf(ln[1], 64, "blk.%d.ffn_norm.weight", l);
        VEC(ln[0], L->rms_att, c->dim);
        VEC(ln[1], L->rms_ffn, c->dim);
        const KWeight *mats[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w3, &L->w2};
        for (int t2 = 0; t2 < 7 && rc == 0; t2++) {
            snprintf(ln[2 + t2], 64, "blk.%d.%s.weight", l, gguf_linear[t2]);
            const float *src = weight_f32(mats[t2], owned, &n_owned, cap);
            if (!src) {
                rc = err_set("%s: out of memory", path);
                break;
            }
            uint64_t ne[2] = {(uint64_t)mats[t2]->k, (uint64_t)mats[t2]->n};
            gguf_writer_add_tensor_f32(&w, ln[2 + t2], ty, 2, ne, src);
        }
    }
#undef MAT
#undef VEC
    if (rc == 0) rc = gguf_writer_write(&w, path);
    gguf_writer_free(&w);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(names);
    free(lnames);
    return rc;
}
