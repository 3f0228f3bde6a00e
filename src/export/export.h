/* export/export.h - models and adapters for other engines (docs/export.md).
 *
 *   export_lora_gguf   a LoRA adapter as a GGUF LoRA adapter for llama.cpp (general.type
 *                      "adapter", adapter.type "lora", adapter.lora.alpha; tensors
 *                      blk.N.<name>.weight.lora_a / .lora_b, F32), as llama.cpp's
 *                      convert_lora_to_gguf.py writes them and llama-adapter.cpp reads them.
 *   export_model_gguf  a base model (+ its tokenizer) as a llama.cpp GGUF model of its
 *                      family (model/arch.h: general.architecture = gguf_arch, its keys,
 *                      tensor names, biases and q/k norms; docs/export.md).
 *   export_merged_hf   base + adapter folded into the weights, as a Hugging Face folder.
 *
 * Layouts. A ggml tensor's ne[0] is its fastest dimension: a weight W [out, in] (row-major)
 * has ne = {in, out}; lora_a = A [r, in] has ne = {in, r} and lora_b = B [out, r] ne = {r, out}
 * (llama.cpp checks W.ne[0] == a.ne[0], W.ne[1] == b.ne[1], a.ne[1] == b.ne[0]). GGUF llama
 * models hold q and k in Meta's interleaved rotary order, the order muscle computes in, so the
 * rows of the q and k B matrices go out as muscle holds them (convert_lora_to_gguf.py permutes
 * PEFT's Hugging Face-order lora_b of q and k into that same order). Families whose GGUF keeps
 * the Hugging Face order (arch->gguf_qk_half: qwen2, qwen3, phi2, gemma) get q/k rows, biases, per-head
 * norms and LoRA B rows permuted back to it (the reverse of load_gguf.c).
 * Scale: llama.cpp applies scale * alpha / r (r = lora_b.ne[0]); the adapter's own scaling
 * (alpha / r, or alpha / sqrt(r) with rsLoRA) is written as alpha = scaling * r.
 */
#ifndef MUSCLE_EXPORT_EXPORT_H
#define MUSCLE_EXPORT_EXPORT_H

#include "core/dtype.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* The GGUF architecture name of a model's family ("llama", "qwen2", "qwen3", "phi2", "gemma"). */
const char *export_gguf_arch(const Model *m);

/* Writes the adapter (fitted to m: lora_check) to path, atomically. `name` -> general.name. */
int export_lora_gguf(const LoraAdapter *a, const Model *m, const char *path, const char *name);

/* Writes the model and its tokenizer (t may be NULL: no vocabulary, llama.cpp will refuse
 * it) as a GGUF file of its family (phi2 and gemma included: LayerNorm biases, (1 + w) norms);
 * the vocabulary as llama.cpp's converter writes it, SentencePiece kind or byte-level BPE
 * ("gpt2", refused when llama.cpp has no name for its pre-tokenizer); matrices as `dtype`
 * (DT_F32, DT_F16 or DT_BF16), vectors F32. */
int export_model_gguf(const Model *m, const Tokenizer *t, const char *path, DType dtype, const char *name);

/* Folds a into m (lora_merge at fp32: W + scaling * B A, then one cast to dtype on writing)
 * and writes m as a Hugging Face folder (model_save_hf); m must be writable (loaded with
 * ModelLoadOptions.writable). a is left merged into m. */
int export_merged_hf(Model *m, LoraAdapter *a, const char *dir, DType dtype);

#endif
