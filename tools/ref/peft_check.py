#!/usr/bin/python3
"""Checks a PEFT LoRA folder written by muscle against PEFT's layout, and its effect
against the PyTorch reference: peft_check.py BASE_HF_FOLDER ADAPTER_FOLDER C_JSON
C_JSON = {"ids": [...], "logprobs": [null, ...]} computed by muscle with the adapter.
Layout: adapter_config.json keys and values; tensor names
base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.lora_{A,B}.weight with A [r, in]
and B [out, r]. Effect: the reference runs the base the Hugging Face way (half-split rotary
on permuted q/k rows) with y = W x + (alpha/r) B (A x), from the files as PEFT reads them."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import torch  # noqa: E402

base, adir, cjson = sys.argv[1:4]
cfg, P = llama_ref.load_hf(base)
conf = json.load(open(os.path.join(adir, "adapter_config.json")))
want = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none", "fan_in_fan_out": False}
for k, v in want.items():
    assert conf.get(k) == v, (k, conf.get(k))
for k in ["r", "lora_alpha", "target_modules", "lora_dropout", "use_rslora", "base_model_name_or_path"]:
    assert k in conf, "missing key " + k
r, alpha = conf["r"], conf["lora_alpha"]
scale = alpha / (r ** 0.5) if conf["use_rslora"] else alpha / r
T = llama_ref.read_safetensors(os.path.join(adir, "adapter_model.safetensors"))
ours = {"q_proj": ("self_attn", "attention.wq"), "k_proj": ("self_attn", "attention.wk"),
        "v_proj": ("self_attn", "attention.wv"), "o_proj": ("self_attn", "attention.wo"),
        "gate_proj": ("mlp", "feed_forward.w1"), "up_proj": ("mlp", "feed_forward.w3"),
        "down_proj": ("mlp", "feed_forward.w2")}
lora, seen = {}, set()
for l in range(cfg["n_layers"]):
    for mod in conf["target_modules"]:
        parent, key = ours[mod]
        pre = "base_model.model.model.layers.%d.%s.%s." % (l, parent, mod)
        A = torch.tensor(T[pre + "lora_A.weight"], dtype=torch.float64)
        B = torch.tensor(T[pre + "lora_B.weight"], dtype=torch.float64)
        W = P["layers.%d.%s.weight" % (l, key)]
        assert tuple(A.shape) == (r, W.shape[1]), (pre, A.shape)
        assert tuple(B.shape) == (W.shape[0], r), (pre, B.shape)
        lora["layers.%d.%s" % (l, key)] = (A, B)
        seen |= {pre + "lora_A.weight", pre + "lora_B.weight"}
assert seen == set(T.keys()), "unexpected tensors: %s" % sorted(set(T.keys()) - seen)[:5]
c = json.load(open(cjson))
ids = c["ids"]
with torch.no_grad():
    P64 = {k: v.double() for k, v in P.items()}
    logits = llama_ref.forward(cfg, P64, torch.tensor(ids), lora=lora, lora_scale=scale)[0]
    lp = torch.log_softmax(logits, dim=-1)
ref = llama_ref.token_logprobs(lp, ids)
d = max(abs(a - b) for a, b in zip(ref, c["logprobs"][1:]))
print("# PEFT layout ok (%d tensors); max |d log p| vs PyTorch = %.2e" % (len(T), d))
sys.exit(0 if d < 1e-4 else 1)
