/* model/lora_peft.h - LoRA adapters on disk in Hugging Face PEFT's layout.
 *
 * A folder with adapter_config.json (peft_type "LORA", task_type "CAUSAL_LM", r,
 * lora_alpha, target_modules, lora_dropout, bias "none", fan_in_fan_out false,
 * use_rslora, base_model_name_or_path) and adapter_model.safetensors with tensors
 *   base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
 *   base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
 * A: [r, in], B: [out, r], as PEFT stores them. PEFT adapters refer to the Hugging Face
 * layout of the base, whose q and k rows are permuted for half-split rotary; muscle runs
 * every model in Meta's interleaved layout, so the rows of the q and k B matrices are
 * permuted on the way out and back on the way in. Settings muscle records beyond PEFT's
 * (how the adapter was trained) go to the safetensors __metadata__ ("muscle.*" keys),
 * where PEFT ignores them.
 */
#ifndef MUSCLE_MODEL_LORA_PEFT_H
#define MUSCLE_MODEL_LORA_PEFT_H

#include "lora.h"

/* Key/value strings stored in the safetensors __metadata__ (may be NULL/0). */
typedef struct {
    const char *key, *value;
} LoraMeta;

/* Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (F32), atomically.
 * `base_name` goes to base_model_name_or_path. */
int lora_save_peft(const LoraAdapter *a, const ModelConfig *c, const char *dir, const char *base_name,
                   const LoraMeta *meta, int n_meta);
/* What adapter_config.json says (the fields muscle uses; others are ignored). */
typedef struct {
    int rank;          /* r: 1 .. LORA_PEFT_MAX_RANK */
    float alpha;       /* lora_alpha: > 0, finite */
    int rslora;        /* use_rslora */
    unsigned targets;  /* target_modules as LORA_BIT()s, never empty */
} LoraPeftConfig;
#define LORA_PEFT_MAX_RANK 65536
#define LORA_PEFT_CONFIG_MAX_BYTES (1u << 20)
/* lora_alpha above this is refused: alpha/r scales the update, and no trained adapter
 * scales it by a million (1e30 turns every logit into inf/NaN) */
#define LORA_PEFT_MAX_ALPHA 1e6

/* Checks n bytes of adapter_config.json (io/json.h's checks, then every field muscle
 * uses); `path` names it in messages. On error pc is zeroed. */
int lora_peft_config_parse(LoraPeftConfig *pc, const char *text, size_t n, const char *path);
/* Reads a PEFT LoRA folder for a model of config c (shapes checked). */
int lora_load_peft(LoraAdapter *a, const ModelConfig *c, const char *dir);
/* adapter_config.json's base_model_name_or_path (malloc'd), NULL when absent or empty. */
char *lora_peft_base_name(const char *dir);
/* A __metadata__ value of a saved adapter (malloc'd), NULL when absent. */
char *lora_peft_meta(const char *dir, const char *key);

#endif
