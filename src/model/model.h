/* model/model.h - a transformer of the Llama-like families: configuration, weights, loading.
 *
 * The family (model/arch.h: llama, mistral, qwen2, qwen3) is a description read once at
 * load, with its per-model values (biases, q/k norms, window, rotary scaling) resolved
 * into ModelConfig; forward and backward follow them.
 *
 * Formats, detected from the file's content (never its name):
 *   - llama2.c checkpoints (legacy 7-int header; shared or separate classifier);
 *   - Hugging Face folders: config.json + model.safetensors, or sharded shards with
 *     model.safetensors.index.json (F32, F16, BF16);
 *   - GGUF v2/v3 models of the architectures llama, qwen2, qwen3 (F32, F16, BF16, Q8_0).
 * Rotary layout: llama2.c, Meta and GGUF "llama" files rotate interleaved pairs (x[2i],
 * x[2i+1]); Hugging Face checkpoints (and GGUF qwen2/qwen3, which llama.cpp leaves in that
 * order) rotate half-split pairs (x[i], x[i + rope_dims/2]) with their q/k rows permuted
 * to match. The loaders put the rows of q and k (and of their biases and per-head norms)
 * back in Meta's order in a copy, so the engine always runs interleaved pairs (cfg.rope);
 * every other weight stays as stored (memory-mapped where the type allows).
 */
#ifndef MUSCLE_MODEL_MODEL_H
#define MUSCLE_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/file.h"
#include "kernel/matmul.h"
#include "model/arch.h"

typedef enum { ROPE_INTERLEAVED = 0, ROPE_HALF = 1 } RopeStyle;
typedef enum { MODEL_FMT_LLAMA2C = 0, MODEL_FMT_HF, MODEL_FMT_GGUF } ModelFormat;
/* Rotary frequency scaling (config.json rope_scaling; GGUF rope.scaling.* / rope_freqs). */
typedef enum {
    ROPE_SCALING_NONE = 0,
    ROPE_SCALING_LINEAR,  /* every frequency / factor */
    ROPE_SCALING_LLAMA3,  /* Llama 3.1: long wavelengths / factor, a smooth band between */
    ROPE_SCALING_TABLE    /* GGUF rope_freqs.weight: a divisor per pair (Model.rope_freq_div) */
} RopeScaling;

typedef struct {
    int dim;        /* d: residual width */
    int hidden_dim; /* SwiGLU width */
    int n_layers;
    int n_heads;
    int n_kv_heads; /* grouped-query attention: n_heads % n_kv_heads == 0 */
    int head_dim;   /* dim / n_heads, or config head_dim (Qwen3) */
    int vocab_size;
    int seq_len;    /* context length the model was trained for */
    float rope_theta;
    float norm_eps;
    int tied;       /* classifier shares the token embedding */
    RopeStyle rope;
    int bos_id, eos_id;
    /* the family and its per-model values (arch.h) */
    const ModelArch *arch; /* never NULL once loaded (static table) */
    unsigned bias;         /* LIN_BIT(slot): that linear adds a bias [out] */
    int qk_norm;           /* per-head RMSNorm of q and k (weights [head_dim]) before rotary */
    int sliding_window;    /* > 0: a query at position p sees keys at p - window + 1 .. p */
    int rope_dims;         /* rotated dimensions of each head (<= head_dim, even) */
    RopeScaling rope_scaling;
    float rope_factor;     /* LINEAR, LLAMA3 */
    float rope_low_freq, rope_high_freq; /* LLAMA3 low_freq_factor, high_freq_factor */
    int rope_orig_ctx;     /* LLAMA3 original_max_position_embeddings */
    unsigned linears;      /* LIN_BIT set of the linears each layer has (LIN_ALL; Phi: no gate) */
    float norm_offset;     /* RMSNorm multiplies by (norm_offset + w): arch's value for HF
                              folders (Gemma 1), 0 where the file stores 1 + w (GGUF gemma) */
} ModelConfig;

typedef struct {
    float *rms_att;        /* [d] */
    KWeight wq;            /* [n_heads*hd, d] */
    KWeight wk, wv;        /* [n_kv_heads*hd, d] */
    KWeight wo;            /* [d, n_heads*hd] */
    float *rms_ffn;        /* [d] (NULL with a parallel residual: one norm per layer) */
    KWeight w1, w3;        /* gate, up: [hidden, d] (w1 empty without a gate: cfg.linears) */
    KWeight w2;            /* down: [d, hidden] */
    float *bias[LIN_COUNT];/* [out] of linear LIN_*, NULL unless cfg.bias has it */
    float *q_norm, *k_norm;/* [hd] (cfg.qk_norm), else NULL */
    float *norm_att_b;     /* [d] LayerNorm bias (ARCH_NORM_LAYER), else NULL */
    float *norm_ffn_b;     /* [d] (ARCH_NORM_LAYER without a parallel residual), else NULL */
} LayerWeights;

typedef struct {
    ModelConfig cfg;
    ModelFormat format;
    DType stored_type;     /* type of the (largest) matrices in the file */
    KWeightType wtype;     /* type the engine computes with: F32 or BF16 */
    int writable;          /* every weight is an owned fp32 copy (full training) */
    KWeight tok_emb;       /* [vocab, d]; also the classifier when tied */
    LayerWeights *layers;  /* [n_layers] */
    float *rms_final;      /* [d] */
    float *norm_final_b;   /* [d] LayerNorm bias (ARCH_NORM_LAYER), else NULL */
    KWeight wcls;          /* [vocab, d] (a copy of tok_emb's handle when tied) */
    float *cls_b;          /* [vocab] classifier bias (arch head_bias), else NULL */
    float *rope_freq_div;  /* [rope_dims/2] ROPE_SCALING_TABLE divisors, else NULL */
    /* ownership */
    MappedFile *maps; int n_maps;
    void **owned; int n_owned, cap_owned;
    struct Tokenizer *tokenizer; /* embedded in the file (GGUF), owned by the model */
    void *format_ctx;      /* format-specific state (open GGUF/safetensors), freed with the model */
    void (*format_free)(void *);
    char *path;
    char *dir;             /* folder of the model (where a tokenizer is looked for) */
} Model;

typedef struct {
    KWeightType wtype;     /* compute with F32 (default) or BF16 weights */
    int writable;          /* own fp32 copies of every weight (for full training) */
} ModelLoadOptions;

/* A model with random weights (N(0, 0.02^2) matrices and biases, unit norms), owned, of
 * the family cfg.arch (NULL: Llama) with the biases and q/k norms cfg asks for. cfg.head_dim
 * 0 = dim / n_heads. Format reported as llama2.c (interleaved rotary) unless cfg.rope says. */
int model_init_random(Model *m, const ModelConfig *cfg, const ModelLoadOptions *opts, uint64_t seed);
/* Loads a model from a file or a Hugging Face folder. NULL opts = defaults. */
int model_load(Model *m, const char *path, const ModelLoadOptions *opts);
void model_free(Model *m);
/* Writes a Hugging Face folder of the model's family (config.json with its model_type
 * and keys + model.safetensors in F32, F16 or BF16 with its tensor names), q/k rows in
 * the Hugging Face order. Files are written atomically. A GGUF "llama" with a sliding
 * window is written as a Mistral; a GGUF rope_freqs table (Llama 3) is refused. */
int model_save_hf(const Model *m, const char *dir, DType dtype);
int model_save_hf_config(const ModelConfig *c, const char *dir, DType dtype);
/* Reads and checks DIR/config.json (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config)
 * into c (load_hf.c):
 * at most HF_CONFIG_MAX_BYTES, checked like every outside JSON (io/json.h), then each
 * field. hf_config_parse does the same on n bytes of text; `path` names it in messages. */
#define HF_CONFIG_MAX_BYTES (16u << 20)
int hf_config_read(ModelConfig *c, const char *dir);
int hf_config_parse(ModelConfig *c, const char *text, size_t n, const char *path);
const char *model_format_name(ModelFormat f);
/* Parameter count (embedding counted once when tied). */
uint64_t model_param_count(const Model *m);
/* Validates a config: positive sizes, divisibility, sane limits. `what` names the source. */
int model_config_check(const ModelConfig *c, const char *what);
/* Defaults of the Llama family for fields a format does not store (arch, rope_dims). */
void model_config_defaults(ModelConfig *c);

/* Memory: a model whose weights would not fit in the available memory (MemAvailable),
 * or in the limit set here (bytes; 0 = none), is refused before anything is allocated,
 * with the numbers in the message. The loaders call model_memory_check once the
 * configuration is known. bf16 weights count twice: the matrix engine's copy in its own
 * layout (oneDNN's reordered weights or our panels) is as large. (LoRA training adds a
 * third, oneDNN's copy for the backward product dy.W, and full training with --bf16 the
 * bf16 view; neither is known when a model is loaded.) */
void model_set_memory_limit(uint64_t bytes);
int model_memory_check(const Model *m, const char *what);

/* Whether the layers have linear `slot` (Phi has no gate). */
static inline int model_has_linear(const ModelConfig *c, LinearSlot slot) { return (c->linears & LIN_BIT(slot)) != 0; }
/* Whether the layers have a second norm before the MLP (not with a parallel residual). */
static inline int model_has_ffn_norm(const ModelConfig *c) { return !c->arch->parallel_residual; }

/* Weight handle of linear `slot` of layer l (wq .. w2). */
const KWeight *model_linear(const Model *m, int l, LinearSlot slot);
/* The rotary inverse frequencies [rope_dims/2] of the model (theta, scaling, table). */
void model_rope_inv_freq(const Model *m, float *inv_freq);

#endif
