#!/usr/bin/env python3
"""A tiny Llama-family Hugging Face folder (config.json + model.safetensors, fp32, tied
embeddings) whose vocabulary is VOCAB ids, so that a real tokenizer can be paired with it
(tests/export/llamacpp_tokenizer.sh: only the GGUF vocabulary is under test; the weights are
small deterministic values). Standard library only.
usage: make_tiny_model.py OUT_DIR VOCAB [MODEL_TYPE]"""
import json, os, struct, sys
from array import array

out, vocab = sys.argv[1], int(sys.argv[2])
mtype = sys.argv[3] if len(sys.argv) > 3 else "llama"
d, hid, layers, heads = 8, 16, 1, 2
os.makedirs(out, exist_ok=True)
cfg = {"architectures": ["LlamaForCausalLM" if mtype == "llama" else "Qwen2ForCausalLM"], "model_type": mtype,
       "hidden_size": d, "intermediate_size": hid, "num_hidden_layers": layers, "num_attention_heads": heads,
       "num_key_value_heads": heads, "vocab_size": vocab, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
       "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "silu", "torch_dtype": "float32"}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
state = [1]
def values(n):
    a = array("f")
    for _ in range(n):  # a small LCG: the same file on every run
        state[0] = (state[0] * 1103515245 + 12345) % (1 << 31)
        a.append((state[0] / (1 << 31) - 0.5) * 0.2)
    return a
tensors = [("model.embed_tokens.weight", [vocab, d]), ("model.norm.weight", [d])]
for l in range(layers):
    p = f"model.layers.{l}."
    tensors += [(p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d])]
    tensors += [(p + f"self_attn.{m}_proj.weight", [d, d]) for m in "qkvo"]
    tensors += [(p + "mlp.gate_proj.weight", [hid, d]), (p + "mlp.up_proj.weight", [hid, d]), (p + "mlp.down_proj.weight", [d, hid])]
header, blobs, off = {}, [], 0
for name, shape in tensors:
    n = 1
    for s in shape: n *= s
    data = array("f", [1.0] * n) if name.endswith("norm.weight") else values(n)
    b = data.tobytes()
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs: f.write(b)
