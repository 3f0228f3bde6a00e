/* model/arch.c - the table of model families (arch.h). */
#include "arch.h"

#include <string.h>

#define LLAMA_HF_NAMES                                                                              \
    .hf_global = {"model.embed_tokens", "model.norm", "lm_head"},                                   \
    .hf_lin = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",      \
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"},                                    \
    .hf_norm = {"input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm"}
#define LLAMA_GGUF_NAMES                                                                            \
    .gguf_global = {"token_embd", "output_norm", "output"},                                         \
    .gguf_lin = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},    \
    .gguf_norm = {"attn_norm", "ffn_norm", "attn_q_norm", "attn_k_norm"}

static const ModelArch ARCHS[] = {
    {.model_type = "llama", .hf_class = "LlamaForCausalLM", .gguf_arch = "llama",
     .bias_attention_key = LIN_ATTN, .max_pos_default = 2048,
     LLAMA_HF_NAMES, LLAMA_GGUF_NAMES},
    {.model_type = "mistral", .hf_class = "MistralForCausalLM", .gguf_arch = "llama",
     .window = ARCH_WINDOW_KEY, .window_default = 4096, .max_pos_default = 4096 * 32,
     LLAMA_HF_NAMES, LLAMA_GGUF_NAMES},
    {.model_type = "qwen2", .hf_class = "Qwen2ForCausalLM", .gguf_arch = "qwen2",
     .bias = LIN_QKV, .window = ARCH_WINDOW_OPT_IN, .window_default = 4096, .max_pos_default = 32768,
     .gguf_qk_half = 1, LLAMA_HF_NAMES, LLAMA_GGUF_NAMES},
    {.model_type = "qwen3", .hf_class = "Qwen3ForCausalLM", .gguf_arch = "qwen3",
     .bias_attention_key = LIN_ATTN, .qk_norm = 1, .window = ARCH_WINDOW_OPT_IN, .window_default = 4096,
     .max_pos_default = 32768, .gguf_qk_half = 1, LLAMA_HF_NAMES, LLAMA_GGUF_NAMES},
    /* Phi-1/1.5/2 (transformers' modeling_phi.py; llama.cpp's phi2): one LayerNorm with bias
     * feeds attention and MLP in parallel, fc2(gelu_tanh(fc1 x)), every linear and lm_head
     * with a bias, partial rotary (half-split within the rotated dims) */
    {.model_type = "phi", .hf_class = "PhiForCausalLM", .gguf_arch = "phi2",
     .norm = ARCH_NORM_LAYER, .mlp = ARCH_MLP_GELU, .parallel_residual = 1,
     .bias = LIN_ALL & ~LIN_BIT(LIN_GATE), .no_linears = LIN_BIT(LIN_GATE), .head_bias = 1,
     .max_pos_default = 2048, .gguf_qk_half = 1, .eps_key = "layer_norm_eps",
     .gguf_eps_key = "attention.layer_norm_epsilon", .hidden_act = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast"},
     .hf_global = {"model.embed_tokens", "model.final_layernorm", "lm_head"},
     .hf_lin = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense", NULL, "mlp.fc1", "mlp.fc2"},
     .hf_norm = {"input_layernorm", NULL, NULL, NULL},
     .gguf_global = {"token_embd", "output_norm", "output"},
     .gguf_lin = {"attn_q", "attn_k", "attn_v", "attn_output", NULL, "ffn_up", "ffn_down"},
     .gguf_norm = {"attn_norm", NULL, NULL, NULL}},
    /* Gemma v1 (modeling_gemma.py; llama.cpp's gemma, which stores the norms as 1 + w):
     * RMSNorm times (1 + w), embeddings times sqrt(d), down(gelu_tanh(gate x) * up x), tied */
    {.model_type = "gemma", .hf_class = "GemmaForCausalLM", .gguf_arch = "gemma",
     .norm_offset = 1.0f, .mlp = ARCH_MLP_GEGLU, .embed_scale_sqrt_d = 1, .bias_attention_key = LIN_ATTN,
     .tied_default = 1, .max_pos_default = 8192, .gguf_qk_half = 1, .gguf_norm_plus_one = 1,
     .hidden_act = {"gelu_pytorch_tanh", "gelu"}, LLAMA_HF_NAMES, LLAMA_GGUF_NAMES},
};
#define N_ARCHS (int)(sizeof ARCHS / sizeof ARCHS[0])

const ModelArch *arch_from_model_type(const char *model_type) {
    for (int i = 0; i < N_ARCHS; i++)
        if (strcmp(ARCHS[i].model_type, model_type) == 0) return &ARCHS[i];
    return NULL;
}

const ModelArch *arch_from_gguf(const char *gguf_arch) {
    for (int i = 0; i < N_ARCHS; i++) /* the first entry of an architecture name (llama, not mistral) */
        if (strcmp(ARCHS[i].gguf_arch, gguf_arch) == 0) return &ARCHS[i];
    return NULL;
}

const ModelArch *arch_llama(void) { return &ARCHS[0]; }

const char *arch_model_types(void) { return "llama, mistral, qwen2, qwen3, phi, gemma"; }

const char *arch_module_name(const ModelArch *a, LinearSlot s) {
    const char *p = a->hf_lin[s], *dot;
    if (!p) return "";
    dot = strrchr(p, '.');
    return dot ? dot + 1 : p;
}
