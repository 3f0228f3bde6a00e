/* model/load_llama2c.c - llama2.c checkpoints (the legacy "version 0" layout).
 *
 * Header: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len);
 * a negative vocab_size means the classifier is stored separately (untied).
 * Then float32 arrays, each for all layers in turn:
 *   token_embedding [vocab, d], rms_att [L, d], wq [L, d, d], wk [L, kvd, d],
 *   wv [L, kvd, d], wo [L, d, d], rms_ffn [L, d], w1 [L, hidden, d], w2 [L, d, hidden],
 *   w3 [L, hidden, d], rms_final [d], freq_cis_real [seq, hd/2], freq_cis_imag [seq, hd/2],
 *   wcls [vocab, d] when untied.
 * Rotary embeddings rotate interleaved pairs; theta 10000, epsilon 1e-5 (fixed by the format).
 */
#include "load_internal.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

int model_load_llama2c(Model *m, const char *path, const ModelLoadOptions *o) {
    (void)o;
    MappedFile *f = calloc(1, sizeof *f);
    if (!f) return err_set("out of memory");
    m->maps = f;
    if (file_map(f, path) != 0) return -1;
    m->n_maps = 1;
    if (f->size < 28) return err_set("%s: not a model file: %zu bytes is too short for a llama2.c header (28 bytes), and it is not GGUF or safetensors", path, f->size);
    int32_t h[7];
    memcpy(h, f->data, sizeof h);
    if (h[0] == 0x616b3432) return err_set("%s: llama2.c export version 1/2 files (magic 'ak42') are not supported; export with the legacy format (version 0)", path);
    ModelConfig *c = &m->cfg;
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->tied = h[5] > 0;
    c->vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
    c->seq_len = h[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->rope = ROPE_INTERLEAVED;
    c->bos_id = 1;
    c->eos_id = 2;
    model_config_defaults(c);
    m->format = MODEL_FMT_LLAMA2C;
    m->stored_type = DT_F32;
    if (model_config_check(c, path) != 0) return err_prefix("not a valid llama2.c header (nor GGUF/safetensors)");
    if (c->dim % c->n_heads != 0) return err_set("%s: dim %d is not a multiple of n_heads %d", path, c->dim, c->n_heads);

    if (model_memory_check(m, path) != 0) return -1;
    uint64_t d = (uint64_t)c->dim, L = (uint64_t)c->n_layers, hid = (uint64_t)c->hidden_dim;
    uint64_t kvd = (uint64_t)c->n_kv_heads * c->head_dim, V = (uint64_t)c->vocab_size;
    uint64_t floats = V * d + L * d + L * d * d + 2 * L * kvd * d + L * d * d + L * d + 3 * L * hid * d + d
                      + (uint64_t)c->seq_len * c->head_dim + (c->tied ? 0 : V * d);
    uint64_t want = 28 + floats * 4;
    if ((uint64_t)f->size != want)
        return err_set("%s: llama2.c file is %zu bytes but its header (dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq %d) needs exactly %llu: truncated or not this format",
                       path, f->size, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len, (unsigned long long)want);

    const float *p = (const float *)(f->data + 28);
    const float *emb = p; p += V * d;
    const float *rms_att = p; p += L * d;
    const float *wq = p; p += L * d * d;
    const float *wk = p; p += L * kvd * d;
    const float *wv = p; p += L * kvd * d;
    const float *wo = p; p += L * d * d;
    const float *rms_ffn = p; p += L * d;
    const float *w1 = p; p += L * hid * d;
    const float *w2 = p; p += L * d * hid;
    const float *w3 = p; p += L * hid * d;
    const float *rms_final = p; p += d;
    p += (uint64_t)c->seq_len * c->head_dim; /* freq_cis_real and _imag: recomputed instead */
    const float *wcls = c->tied ? emb : p;

    m->layers = model_alloc(m, L * sizeof *m->layers);
    if (!m->layers) return -1;
    int D = c->dim, H = c->hidden_dim, KV = (int)kvd;
    if (model_make_weight(m, &m->tok_emb, DT_F32, emb, c->vocab_size, D)) return -1;
    for (uint64_t l = 0; l < L; l++) {
        LayerWeights *w = &m->layers[l];
        if (!(w->rms_att = model_make_vector(m, DT_F32, rms_att + l * d, d))) return -1;
        if (!(w->rms_ffn = model_make_vector(m, DT_F32, rms_ffn + l * d, d))) return -1;
        if (model_make_weight(m, &w->wq, DT_F32, wq + l * d * d, D, D) ||
            model_make_weight(m, &w->wk, DT_F32, wk + l * kvd * d, KV, D) ||
            model_make_weight(m, &w->wv, DT_F32, wv + l * kvd * d, KV, D) ||
            model_make_weight(m, &w->wo, DT_F32, wo + l * d * d, D, D) ||
            model_make_weight(m, &w->w1, DT_F32, w1 + l * hid * d, H, D) ||
            model_make_weight(m, &w->w2, DT_F32, w2 + l * d * hid, D, H) ||
            model_make_weight(m, &w->w3, DT_F32, w3 + l * hid * d, H, D))
            return -1;
    }
    if (!(m->rms_final = model_make_vector(m, DT_F32, rms_final, d))) return -1;
    if (!c->tied && model_make_weight(m, &m->wcls, DT_F32, wcls, c->vocab_size, D)) return -1;
    return 0;
}
