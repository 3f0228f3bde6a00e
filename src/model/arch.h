/* model/arch.h - the architecture description: what a family's blocks are made of.
 *
 * A model family is one entry of a table (arch.c), read once at load: which norm, which
 * linears carry biases, per-head q/k norms, the MLP kind, how the rotary embedding is
 * scaled, whether attention and MLP run in parallel, the embedding scale, and the names
 * its tensors and modules have in Hugging Face folders, GGUF files and PEFT adapters.
 * The forward and backward passes (forward.c, backward.c) follow the description and the
 * per-model values resolved into ModelConfig (model.h); no family has a pass of its own.
 *
 * Families: llama (Llama 1/2/3.x, SmolLM/SmolLM2, TinyLlama), mistral (sliding window),
 * qwen2 (Qwen2/2.5: q/k/v biases), qwen3 (per-head q/k RMSNorm, head_dim of its own),
 * phi (Phi-1/1.5/2: LayerNorm with bias, attention and MLP in parallel on one normed
 * input, GELU MLP fc1/fc2 without a gate, partial rotary, biases everywhere, lm_head bias),
 * gemma (Gemma v1: RMSNorm times (1 + w), embeddings times sqrt(d), GeGLU, head_dim of
 * its own, multi-query attention, tied).
 */
#ifndef MUSCLE_MODEL_ARCH_H
#define MUSCLE_MODEL_ARCH_H

/* The linear layers of a block, in LoRA target order (lora.h LoraTarget is the same). */
typedef enum { LIN_Q = 0, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, LIN_COUNT } LinearSlot;
#define LIN_BIT(s) (1u << (s))
#define LIN_QKV (LIN_BIT(LIN_Q) | LIN_BIT(LIN_K) | LIN_BIT(LIN_V))
#define LIN_ATTN (LIN_QKV | LIN_BIT(LIN_O))
#define LIN_MLP (LIN_BIT(LIN_GATE) | LIN_BIT(LIN_UP) | LIN_BIT(LIN_DOWN))
#define LIN_ALL ((1u << LIN_COUNT) - 1)

/* The per-layer norm vectors: before attention, before the MLP, per-head q and k. */
typedef enum { NORM_ATTN = 0, NORM_FFN, NORM_Q, NORM_K, NORM_COUNT } NormSlot;

typedef enum { ARCH_NORM_RMS = 0,                      /* x / rms(x) * (norm_offset + w) */
               ARCH_NORM_LAYER } ArchNorm;             /* (x - mean) / std * w + b (Phi) */
typedef enum { ARCH_MLP_SWIGLU = 0,                    /* down(silu(gate x) * up x) */
               ARCH_MLP_GELU,                          /* down(gelu_tanh(up x)): fc2(gelu(fc1 x)) (Phi) */
               ARCH_MLP_GEGLU } ArchMlp;               /* down(gelu_tanh(gate x) * up x) (Gemma) */
typedef enum { ARCH_WINDOW_NONE = 0,                   /* no sliding window */
               ARCH_WINDOW_KEY,                        /* `sliding_window` when set (Mistral) */
               ARCH_WINDOW_OPT_IN } ArchWindow;        /* only with use_sliding_window (Qwen) */

/* The global tensors. */
typedef enum { GT_EMBED = 0, GT_NORM, GT_HEAD, GT_COUNT } GlobalSlot;

typedef struct ModelArch {
    const char *model_type;   /* config.json "model_type" */
    const char *hf_class;     /* config.json "architectures"[0] written by convert */
    const char *gguf_arch;    /* GGUF general.architecture and key prefix */
    ArchNorm norm;
    float norm_offset;        /* the norm multiplies by (norm_offset + w): 0 (Gemma: 1) */
    ArchMlp mlp;
    int parallel_residual;    /* attention and MLP on the same normed input (Phi): 0 */
    int embed_scale_sqrt_d;   /* embeddings times sqrt(d) (Gemma): 0 */
    unsigned bias;            /* LIN_BIT set of linears that always have a bias */
    unsigned bias_attention_key; /* linears `attention_bias: true` adds (Llama, Qwen3) */
    int qk_norm;              /* per-head RMSNorm of q and k before rotary (Qwen3) */
    ArchWindow window;
    int window_default;       /* sliding_window when the key is absent (ARCH_WINDOW_KEY) */
    int tied_default;         /* tie_word_embeddings when absent */
    int max_pos_default;      /* max_position_embeddings when absent */
    int gguf_qk_half;         /* llama.cpp's converter leaves q/k rows in HF (half-split) order */
    unsigned no_linears;      /* LIN_BIT set of linears the family does not have (Phi: gate) */
    int head_bias;            /* the classifier adds a bias (Phi's lm_head) */
    int gguf_norm_plus_one;   /* llama.cpp's converter stores (1 + w) for the norms (Gemma) */
    const char *eps_key;      /* config.json key of the norm epsilon: "rms_norm_eps" when NULL */
    const char *gguf_eps_key; /* GGUF key: "attention.layer_norm_rms_epsilon" when NULL */
    const char *hidden_act[3];/* accepted config.json hidden_act values: "silu" when none */
    /* names: Hugging Face (after "model." / "model.layers.N.") and GGUF (after "blk.N.") */
    const char *hf_global[GT_COUNT];  /* full names without ".weight" */
    const char *hf_lin[LIN_COUNT];    /* module paths inside a layer: PEFT target names too */
    const char *hf_norm[NORM_COUNT];
    const char *gguf_global[GT_COUNT];
    const char *gguf_lin[LIN_COUNT];
    const char *gguf_norm[NORM_COUNT];
} ModelArch;

/* The family of a config.json model_type, or NULL. */
const ModelArch *arch_from_model_type(const char *model_type);
/* The family of a GGUF general.architecture, or NULL. */
const ModelArch *arch_from_gguf(const char *gguf_arch);
/* The Llama family (llama2.c files, random models). */
const ModelArch *arch_llama(void);
/* "llama, mistral, qwen2, qwen3, phi, gemma": the supported model_types, for messages. */
const char *arch_model_types(void);
/* The module's own name (after the last '.'): "q_proj" (PEFT target_modules); "" for a
 * linear the family does not have. */
const char *arch_module_name(const ModelArch *a, LinearSlot s);

#endif
