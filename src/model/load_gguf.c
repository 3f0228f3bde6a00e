/* model/load_gguf.c - GGUF "llama" models.
 *
 * Hyper-parameters from llama.* keys (embedding_length, feed_forward_length,
 * block_count, attention.head_count[_kv], attention.layer_norm_rms_epsilon,
 * rope.freq_base, context_length); vocabulary from tokenizer.ggml.*.
 * Tensors: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 * ffn_gate, ffn_up, ffn_down}, output_norm, output (absent = tied). A ggml tensor of
 * ne = {in, out} is the PyTorch [out, in] matrix. llama.cpp's converter permutes the q/k
 * rows of Hugging Face checkpoints back to Meta's order, so GGUF models rotate
 * interleaved pairs (ROPE_INTERLEAVED).
 */
#include "model.h"
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

/* A tensor of PyTorch shape [n, k] (k = 0: vector of n). */
static const GgufTensor *want(const GgufFile *g, const char *name, int n, int k) {
    const GgufTensor *t = gguf_tensor_find(g, name);
    if (!t) { err_set("%s: tensor '%s' is missing", g->name, name); return NULL; }
    if (!t->supported || !(t->ggml_type == 0 || t->ggml_type == 1 || t->ggml_type == 8 || t->ggml_type == 30)) {
        err_set("%s: tensor '%s' has type %s: supported are F32, F16, BF16 and Q8_0", g->name, name, t->type_name);
        return NULL;
    }
    int ok = k ? (t->ndim == 2 && t->ne[0] == (uint64_t)k && t->ne[1] == (uint64_t)n) : (t->ndim == 1 && t->ne[0] == (uint64_t)n);
    if (!ok) {
        err_set("%s: tensor '%s' has ne [%llu, %llu] (%d dims): expected [%d, %d]", g->name, name, (unsigned long long)t->ne[0],
                (unsigned long long)t->ne[1], t->ndim, k ? k : n, k ? n : 1);
        return NULL;
    }
    return t;
}

static DType dtype_of(const GgufTensor *t) {
    switch (t->ggml_type) {
    case 1: return DT_F16;
    case 8: return DT_Q8_0;
    case 30: return DT_BF16;
    default: return DT_F32;
    }
}

static int mat(Model *m, const GgufFile *g, KWeight *w, const char *name, int n, int k) {
    const GgufTensor *t = want(g, name, n, k);
    if (!t) return -1;
    if (m->stored_type == DT_COUNT || m->stored_type == DT_F32) m->stored_type = dtype_of(t);
    return model_make_weight(m, w, dtype_of(t), t->data, n, k);
}

static float *vec(Model *m, const GgufFile *g, const char *name, int n) {
    const GgufTensor *t = want(g, name, n, 0);
    return t ? model_make_vector(m, dtype_of(t), t->data, (size_t)n) : NULL;
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

int model_load_gguf(Model *m, const char *path, const ModelLoadOptions *o) {
    (void)o;
    GgufFile *g = calloc(1, sizeof *g);
    if (!g) return err_set("out of memory");
    if (gguf_open(g, path) != 0) { free(g); return -1; }
    m->format_ctx = g;
    m->format_free = gguf_ctx_free;
    m->format = MODEL_FMT_GGUF;
    m->stored_type = DT_COUNT;
    const char *arch = NULL;
    if (gguf_get_string(g, "general.architecture", &arch, NULL) != 0) return err_set("%s: metadata key 'general.architecture' is missing or not a string", path);
    if (strcmp(arch, "llama") != 0) return err_set("%s: general.architecture is '%s': only 'llama' is supported", path, arch);
    ModelConfig *c = &m->cfg;
    int rope_dims = 0;
    if (get_int(g, "llama.embedding_length", 1, 0, &c->dim) || get_int(g, "llama.feed_forward_length", 1, 0, &c->hidden_dim) ||
        get_int(g, "llama.block_count", 1, 0, &c->n_layers) || get_int(g, "llama.attention.head_count", 1, 0, &c->n_heads) ||
        get_int(g, "llama.attention.head_count_kv", 0, 0, &c->n_kv_heads) || get_int(g, "llama.context_length", 0, 2048, &c->seq_len) ||
        get_int(g, "llama.rope.dimension_count", 0, 0, &rope_dims) ||
        get_float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps) ||
        get_float(g, "llama.rope.freq_base", 10000.0f, &c->rope_theta))
        return -1;
    if (gguf_kv_find(g, "llama.rope.scaling.type")) {
        const char *st = NULL;
        if (gguf_get_string(g, "llama.rope.scaling.type", &st, NULL) == 0 && strcmp(st, "none") != 0)
            return err_set("%s: llama.rope.scaling.type '%s': scaled rotary embeddings are not supported", path, st);
    }
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (c->n_heads <= 0 || c->dim % c->n_heads) return err_set("%s: embedding_length %d is not a multiple of head_count %d", path, c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (rope_dims && rope_dims != c->head_dim) return err_set("%s: llama.rope.dimension_count %d differs from the head size %d: partial rotary is not supported", path, rope_dims, c->head_dim);
    c->rope = ROPE_INTERLEAVED;
    c->bos_id = 1;
    c->eos_id = 2;
    const GgufTensor *emb = gguf_tensor_find(g, "token_embd.weight");
    if (!emb) return err_set("%s: tensor 'token_embd.weight' is missing", path);
    if (emb->ndim != 2 || emb->ne[1] == 0 || emb->ne[1] > (1u << 22)) return err_set("%s: tensor 'token_embd.weight' has a bad shape", path);
    c->vocab_size = (int)emb->ne[1];
    c->tied = gguf_tensor_find(g, "output.weight") == NULL;
    if (model_config_check(c, path) != 0) return -1;
    if (model_memory_check(m, path) != 0) return -1;
    int d = c->dim, kvd = c->n_kv_heads * c->head_dim, hid = c->hidden_dim;
    if (mat(m, g, &m->tok_emb, "token_embd.weight", c->vocab_size, d)) return -1;
    m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers);
    if (!m->layers) return -1;
    char nm[96];
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *w = &m->layers[l];
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d.%s", l, s), nm)
        if (!(w->rms_att = vec(m, g, NAME("attn_norm.weight"), d))) return -1;
        if (!(w->rms_ffn = vec(m, g, NAME("ffn_norm.weight"), d))) return -1;
        if (mat(m, g, &w->wq, NAME("attn_q.weight"), d, d) || mat(m, g, &w->wk, NAME("attn_k.weight"), kvd, d) ||
            mat(m, g, &w->wv, NAME("attn_v.weight"), kvd, d) || mat(m, g, &w->wo, NAME("attn_output.weight"), d, d) ||
            mat(m, g, &w->w1, NAME("ffn_gate.weight"), hid, d) || mat(m, g, &w->w3, NAME("ffn_up.weight"), hid, d) ||
            mat(m, g, &w->w2, NAME("ffn_down.weight"), d, hid))
            return -1;
#undef NAME
    }
    if (!(m->rms_final = vec(m, g, "output_norm.weight", d))) return -1;
    if (!c->tied && mat(m, g, &m->wcls, "output.weight", c->vocab_size, d)) return -1;
    return load_vocab(m, g);
}
