/* model/load_gguf.c - GGUF models of the architectures llama (Llama, Mistral, SmolLM),
 * qwen2 and qwen3, as llama.cpp's convert_hf_to_gguf.py writes them.
 *
 * Hyper-parameters from {arch}.* keys (embedding_length, feed_forward_length,
 * block_count, attention.head_count[_kv], attention.key_length (head size, Qwen3),
 * attention.layer_norm_rms_epsilon, attention.sliding_window, rope.freq_base,
 * rope.dimension_count, rope.scaling.type/factor, context_length); vocabulary from
 * tokenizer.ggml.*. Tensors: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v,
 * attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight, blk.N.attn_{q,k,v}.bias
 * (qwen2; any linear's bias when present), blk.N.attn_{q,k}_norm.weight (qwen3),
 * output_norm, output (absent = tied), rope_freqs.weight (Llama 3 rotary divisors).
 * A ggml tensor of ne = {in, out} is the PyTorch [out, in] matrix. llama.cpp's converter
 * permutes the q/k rows of Hugging Face llama checkpoints back to Meta's order (rotary on
 * interleaved pairs) but leaves qwen2/qwen3 in the Hugging Face order (its NEOX rotary):
 * the loader un-permutes those (arch.h gguf_qk_half), so the engine runs interleaved pairs.
 * phi2 (Phi-1/1.5/2): attention.layer_norm_epsilon, rope.dimension_count (the partial
 * rotary), blk.N.attn_norm.{weight,bias}, attn_{q,k,v,output} and ffn_{up,down} with
 * biases, output_norm.{weight,bias}, output.{weight,bias}; NEOX rotary like qwen2. The
 * fused attn_qkv of pre-transformers Phi checkpoints is not read (one line says so).
 * gemma: the llama names; llama.cpp's converter stores each norm as 1 + w, so those models
 * run with cfg.norm_offset 0 (the same products as (1 + w) from a Hugging Face folder).
 */
#include "load_internal.h"
#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static void gguf_ctx_free(void *p) {
    gguf_close(p);
    free(p);
}

static int get_int(const GgufFile *g, const char *key, int required, int def, int *out) {
    const GgufKv *kv = gguf_kv_find(g, key);
    if (!kv) {
        if (required) return err_set("%s: metadata key '%s' is missing", g->name, key);
        *out = def;
        return 0;
    }
    uint64_t u;
    uint32_t v32;
    int32_t i32;
    if (gguf_get_u32(g, key, &v32) == 0) u = v32;
    else if (gguf_get_i32(g, key, &i32) == 0 && i32 >= 0) u = (uint64_t)i32;
    else if (gguf_get_u64(g, key, &u) == 0) {}
    else return err_set("%s: metadata key '%s': expected a non-negative integer", g->name, key);
    if (u > 0x7fffffff) return err_set("%s: metadata key '%s' = %llu is too large", g->name, key, (unsigned long long)u);
    *out = (int)u;
    return 0;
}

static int get_float(const GgufFile *g, const char *key, float def, float *out) {
    if (!gguf_kv_find(g, key)) { *out = def; return 0; }
    if (gguf_get_f32(g, key, out) != 0) return err_set("%s: metadata key '%s': expected FLOAT32", g->name, key);
    return 0;
}

static DType dtype_of(uint32_t ggml_type) {
    switch (ggml_type) {
    case 1: return DT_F16;
    case 8: return DT_Q8_0;
    case 30: return DT_BF16;
    default: return DT_F32;
    }
}

/* TensorSource.find: a ggml tensor of ne = {in, out} is the PyTorch [out, in] matrix. */
static int gg_find(void *ctx, const char *name, SrcTensor *out) {
    const GgufFile *g = ctx;
    const GgufTensor *t = gguf_tensor_find(g, name);
    if (!t) return 1;
    if (!t->supported || !(t->ggml_type == 0 || t->ggml_type == 1 || t->ggml_type == 8 || t->ggml_type == 30))
        return err_set("%s: tensor '%s' has type %s: supported are F32, F16, BF16 and Q8_0", g->name, name, t->type_name);
    if (t->ndim > 2) return err_set("%s: tensor '%s' has %d dimensions: expected 1 or 2", g->name, name, t->ndim);
    out->dtype = dtype_of(t->ggml_type);
    out->data = t->data;
    out->ndim = t->ndim;
    out->shape[0] = (int64_t)(t->ndim == 2 ? t->ne[1] : t->ne[0]);
    out->shape[1] = t->ndim == 2 ? (int64_t)t->ne[0] : 0;
    out->row_bytes = t->ndim == 2 && t->ne[1] ? t->nbytes / t->ne[1] : t->nbytes;
    return 0;
}

static int load_vocab(Model *m, const GgufFile *g) {
    const GgufStr *strs;
    uint64_t n;
    if (!gguf_kv_find(g, "tokenizer.ggml.tokens")) return 0; /* no embedded tokenizer */
    if (gguf_get_str_array(g, "tokenizer.ggml.tokens", &strs, &n) != 0) return -1;
    const GgufKv *mk = gguf_kv_find(g, "tokenizer.ggml.model");
    const char *model_kind = NULL;
    if (mk && gguf_get_string(g, "tokenizer.ggml.model", &model_kind, NULL) == 0 && strcmp(model_kind, "llama") != 0 &&
        strcmp(model_kind, "gpt2") != 0)
        return 0; /* neither SentencePiece nor byte-level BPE: a tokenizer must be named */
    int gpt2 = model_kind && !strcmp(model_kind, "gpt2");
    if (n == 0 || n > (1u << 22)) return err_set("%s: tokenizer.ggml.tokens has %llu entries", g->name, (unsigned long long)n);
    const char **pieces = malloc(n * sizeof *pieces);
    uint32_t *lens = malloc(n * sizeof *lens);
    float *scores = NULL;
    int32_t *types = NULL;
    uint64_t ns = 0, nt = 0;
    int rc = 0;
    if (!pieces || !lens) { rc = err_set("out of memory"); goto done; }
    for (uint64_t i = 0; i < n; i++) {
        if (strs[i].len > 0xffff) { rc = err_set("%s: tokenizer.ggml.tokens[%llu] is %llu bytes long", g->name, (unsigned long long)i, (unsigned long long)strs[i].len); goto done; }
        pieces[i] = strs[i].ptr;
        lens[i] = (uint32_t)strs[i].len;
    }
    if (gguf_kv_find(g, "tokenizer.ggml.scores")) {
        if (gguf_get_f32_array(g, "tokenizer.ggml.scores", &scores, &ns) != 0) { rc = -1; goto done; }
        if (ns != n) { rc = err_set("%s: tokenizer.ggml.scores has %llu entries, tokens has %llu", g->name, (unsigned long long)ns, (unsigned long long)n); goto done; }
    }
    if (gguf_kv_find(g, "tokenizer.ggml.token_type")) {
        if (gguf_get_i32_array(g, "tokenizer.ggml.token_type", &types, &nt) != 0) { rc = -1; goto done; }
        if (nt != n) { rc = err_set("%s: tokenizer.ggml.token_type has %llu entries, tokens has %llu", g->name, (unsigned long long)nt, (unsigned long long)n); goto done; }
    }
    int bos, eos, unk, space = 1;
    if (get_int(g, "tokenizer.ggml.bos_token_id", 0, gpt2 ? -1 : 1, &bos) ||
        get_int(g, "tokenizer.ggml.eos_token_id", 0, gpt2 ? -1 : 2, &eos) ||
        get_int(g, "tokenizer.ggml.unknown_token_id", 0, -1, &unk)) { rc = -1; goto done; }
    if (gguf_kv_find(g, "tokenizer.ggml.add_space_prefix") && gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &space) != 0) { rc = -1; goto done; }
    Tokenizer *t;
    if (gpt2) { /* byte-level BPE: merges and the pre-tokenizer name too */
        const GgufStr *ms = NULL;
        uint64_t nm = 0;
        const char *pre = NULL;
        if (gguf_get_str_array(g, "tokenizer.ggml.merges", &ms, &nm) != 0 || nm > (1u << 24)) { rc = err_set("%s: tokenizer.ggml.merges: expected an array of \"left right\" strings", g->name); goto done; }
        if (gguf_kv_find(g, "tokenizer.ggml.pre") && gguf_get_string(g, "tokenizer.ggml.pre", &pre, NULL) != 0) { rc = -1; goto done; }
        const char **m = malloc((nm + 1) * sizeof *m);
        uint32_t *ml = malloc((nm + 1) * sizeof *ml);
        if (!m || !ml) { free(m); free(ml); rc = err_set("out of memory"); goto done; }
        for (uint64_t i = 0; i < nm; i++) { m[i] = ms[i].ptr; ml[i] = (uint32_t)ms[i].len; }
        t = tok_init_bpe_from_vocab((int)n, pieces, lens, types, (int)nm, m, ml, pre, bos < (int)n ? bos : -1, eos < (int)n ? eos : -1);
        free(m);
        free(ml);
    } else {
        t = tok_init_from_vocab((int)n, pieces, lens, scores, types, bos < (int)n ? bos : -1, eos < (int)n ? eos : -1,
                                unk < (int)n ? unk : -1);
        if (t) tok_set_whitespace(t, space, 0);
    }
    if (!t) { rc = err_prefix("%s: tokenizer metadata", g->name); goto done; }
    m->tokenizer = t;
    m->cfg.bos_id = bos;
    m->cfg.eos_id = eos;
done:
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

/* "{arch}.suffix" */
static const char *akey(char *buf, size_t cap, const char *arch, const char *suffix) {
    snprintf(buf, cap, "%s.%s", arch, suffix);
    return buf;
}

/* Rotary scaling: {arch}.rope.scaling.type "none" / "linear" (+ factor); Llama 3's is the
 * table rope_freqs.weight (a divisor per frequency), as llama.cpp's converter writes it. */
static int load_rope_scaling(Model *m, const GgufFile *g, const char *arch) {
    ModelConfig *c = &m->cfg;
    char k[128];
    if (gguf_kv_find(g, akey(k, sizeof k, arch, "rope.scaling.type"))) {
        const char *st = NULL;
        if (gguf_get_string(g, k, &st, NULL) != 0) return err_set("%s: metadata key '%s': expected a string", g->name, k);
        if (strcmp(st, "linear") == 0) {
            c->rope_scaling = ROPE_SCALING_LINEAR;
            if (get_float(g, akey(k, sizeof k, arch, "rope.scaling.factor"), 1.0f, &c->rope_factor)) return -1;
            if (!(c->rope_factor >= 1.0f)) return err_set("%s: metadata key '%s' %g: expected >= 1", g->name, k, (double)c->rope_factor);
        } else if (strcmp(st, "none") != 0) {
            return err_set("%s: metadata key '%s': '%s' is not supported (expected none or linear)", g->name, k, st);
        }
    }
    const GgufTensor *t = gguf_tensor_find(g, "rope_freqs.weight");
    if (!t) return 0;
    if (c->rope_scaling != ROPE_SCALING_NONE) return err_set("%s: both %s.rope.scaling.type and rope_freqs.weight are set", g->name, arch);
    int n = c->rope_dims / 2;
    if (t->ndim != 1 || t->ne[0] != (uint64_t)n || t->ggml_type != 0)
        return err_set("%s: tensor 'rope_freqs.weight': expected F32 [%d] (one divisor per rotary frequency)", g->name, n);
    if (!(m->rope_freq_div = model_make_vector(m, DT_F32, t->data, (size_t)n))) return -1;
    for (int i = 0; i < n; i++)
        if (!(m->rope_freq_div[i] > 0) || m->rope_freq_div[i] > 1e30f)
            return err_set("%s: tensor 'rope_freqs.weight'[%d] = %g: expected a positive divisor", g->name, i, (double)m->rope_freq_div[i]);
    c->rope_scaling = ROPE_SCALING_TABLE;
    return 0;
}

int model_load_gguf(Model *m, const char *path, const ModelLoadOptions *o) {
    (void)o;
    GgufFile *g = calloc(1, sizeof *g);
    if (!g) return err_set("out of memory");
    if (gguf_open(g, path) != 0) { free(g); return -1; }
    m->format_ctx = g;
    m->format_free = gguf_ctx_free;
    m->format = MODEL_FMT_GGUF;
    const char *arch = NULL;
    if (gguf_get_string(g, "general.architecture", &arch, NULL) != 0) return err_set("%s: metadata key 'general.architecture' is missing or not a string", path);
    ModelConfig *c = &m->cfg;
    if (!(c->arch = arch_from_gguf(arch)))
        return err_set("%s: general.architecture is '%.64s': supported are llama, qwen2, qwen3, phi2 and gemma", path, arch);
    int rope_dims = 0, key_len = 0, window = 0;
    char k[10][128];
    if (get_int(g, akey(k[0], 128, arch, "embedding_length"), 1, 0, &c->dim) || get_int(g, akey(k[1], 128, arch, "feed_forward_length"), 1, 0, &c->hidden_dim) ||
        get_int(g, akey(k[2], 128, arch, "block_count"), 1, 0, &c->n_layers) || get_int(g, akey(k[3], 128, arch, "attention.head_count"), 1, 0, &c->n_heads) ||
        get_int(g, akey(k[4], 128, arch, "attention.head_count_kv"), 0, 0, &c->n_kv_heads) || get_int(g, akey(k[5], 128, arch, "context_length"), 0, 2048, &c->seq_len) ||
        get_int(g, akey(k[6], 128, arch, "rope.dimension_count"), 0, 0, &rope_dims) ||
        get_int(g, akey(k[7], 128, arch, "attention.key_length"), 0, 0, &key_len) ||
        get_int(g, akey(k[8], 128, arch, "attention.sliding_window"), 0, 0, &window) ||
        get_float(g, akey(k[9], 128, arch, c->arch->gguf_eps_key ? c->arch->gguf_eps_key : "attention.layer_norm_rms_epsilon"), 1e-5f, &c->norm_eps) ||
        get_float(g, akey(k[0], 128, arch, "rope.freq_base"), 10000.0f, &c->rope_theta))
        return -1;
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (c->n_heads <= 0 || (!key_len && c->dim % c->n_heads)) return err_set("%s: embedding_length %d is not a multiple of head_count %d", path, c->dim, c->n_heads);
    c->head_dim = key_len ? key_len : c->dim / c->n_heads;
    c->rope_dims = rope_dims ? rope_dims : c->head_dim;
    if (c->rope_dims > c->head_dim || c->rope_dims % 2)
        return err_set("%s: %s.rope.dimension_count %d: expected an even number up to the head size %d", path, arch, rope_dims, c->head_dim);
    c->rope = ROPE_INTERLEAVED;
    c->qk_norm = c->arch->qk_norm;
    c->linears = LIN_ALL & ~c->arch->no_linears;
    c->norm_offset = c->arch->gguf_norm_plus_one ? 0.0f : c->arch->norm_offset; /* the file holds 1 + w */
    c->sliding_window = window < c->seq_len ? window : 0;
    c->bos_id = 1;
    c->eos_id = 2;
    const GgufTensor *emb = gguf_tensor_find(g, "token_embd.weight");
    if (!emb) return err_set("%s: tensor 'token_embd.weight' is missing", path);
    if (emb->ndim != 2 || emb->ne[1] == 0 || emb->ne[1] > (1u << 22)) return err_set("%s: tensor 'token_embd.weight' has a bad shape", path);
    c->vocab_size = (int)emb->ne[1];
    c->tied = gguf_tensor_find(g, "output.weight") == NULL;
    /* biases: those the family always has, and any llama.cpp wrote (attention_bias) */
    c->bias = c->arch->bias;
    for (int s = 0; s < LIN_COUNT; s++) {
        if (!model_has_linear(c, (LinearSlot)s)) continue;
        char nm[96];
        snprintf(nm, sizeof nm, "blk.0.%s.bias", c->arch->gguf_lin[s]);
        if (gguf_tensor_find(g, nm)) c->bias |= LIN_BIT(s);
    }
    if (gguf_tensor_find(g, "blk.0.attn_qkv.weight") && !gguf_tensor_find(g, "blk.0.attn_q.weight"))
        return err_set("%s: fused attn_qkv tensors (an older %s conversion) are not supported: convert the Hugging Face checkpoint again", path, arch);
    if (model_config_check(c, path) != 0) return -1;
    if (load_rope_scaling(m, g, arch) != 0) return -1;
    if (model_memory_check(m, path) != 0) return -1;
    TensorSource src = {g, path, 1, c->arch->gguf_qk_half, gg_find};
    if (model_load_tensors(m, &src) != 0) return -1;
    return load_vocab(m, g);
}
