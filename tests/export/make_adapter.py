#!/usr/bin/env python3
"""Writes a PEFT LoRA folder with seeded random, nonzero A and B for a model's shapes.

usage: make_adapter.py OUT_DIR DIM HIDDEN N_LAYERS N_HEADS N_KV_HEADS [--rslora]
(A trained adapter starts with B = 0; nonzero B makes every target change the logits, so
a wrong layout or scale anywhere shows in the comparison.)
"""
import json
import os
import random
import struct
import sys

out, dim, hidden, layers, heads, kv = sys.argv[1], *map(int, sys.argv[2:7])
rslora = "--rslora" in sys.argv
r, alpha = 4, 8.0
hd = dim // heads
shapes = {"q_proj": (heads * hd, dim), "k_proj": (kv * hd, dim), "v_proj": (kv * hd, dim), "o_proj": (dim, heads * hd),
          "gate_proj": (hidden, dim), "up_proj": (hidden, dim), "down_proj": (dim, hidden)}
rng = random.Random(1234)
tensors = {}
for l in range(layers):
    for name, (o, i) in shapes.items():
        part = "self_attn" if name in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
        base = f"base_model.model.model.layers.{l}.{part}.{name}"
        tensors[f"{base}.lora_A.weight"] = ([r, i], [rng.uniform(-0.25, 0.25) for _ in range(r * i)])
        tensors[f"{base}.lora_B.weight"] = ([o, r], [rng.uniform(-0.25, 0.25) for _ in range(o * r)])
header, off, blobs = {}, 0, []
for k in sorted(tensors):
    shape, vals = tensors[k]
    b = struct.pack(f"<{len(vals)}f", *vals)
    header[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    off += len(b)
    blobs.append(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "adapter_model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
       "target_modules": list(shapes), "bias": "none", "fan_in_fan_out": False, "use_rslora": rslora,
       "base_model_name_or_path": "stories260K"}
with open(os.path.join(out, "adapter_config.json"), "w") as f:
    json.dump(cfg, f, indent=2)
