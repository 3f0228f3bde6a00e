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

const char *arch_model_types(void) { return "llama, mistral, qwen2, qwen3"; }

const char *arch_module_name(const ModelArch *a, LinearSlot s) {
    const char *p = a->hf_lin[s], *dot = strrchr(p, '.');
    return dot ? dot + 1 : p;
}
