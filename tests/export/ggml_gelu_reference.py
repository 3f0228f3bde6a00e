#!/usr/bin/env python3
"""Per-token log-probabilities of a family fixture (tests/fixtures/model/families/<f>) from the
PyTorch reference of tests/model/make_family_fixtures.py, twice: with the exact tanh GELU
(what muscle computes) and with ggml's CPU GELU, which rounds its input to f16 and reads an
f16 table of results (GGML_GELU_FP16 in ggml-cpu/vec.h; GeGLU the same, times the up half;
0 below -10, x above 10). tests/export/llamacpp_families.sh uses it to show that what
separates llama.cpp from muscle on phi / gemma is that table and nothing else.
usage: ggml_gelu_reference.py FIXTURE_DIR IDS(comma-separated) [--adapter]
prints JSON {"exact": [null, lp1, ...], "ggml": [null, lp1, ...]}"""
import json, os, struct, sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
import make_family_fixtures as F  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(e["shape"]).double()
    return out


EXACT = F.gelu_tanh


def ggml_gelu(x):
    table = EXACT(x.to(torch.float16).to(torch.float32)).to(torch.float16).double()
    return torch.where(x <= -10, torch.zeros_like(x), torch.where(x >= 10, x, table))


fix, ids = sys.argv[1], [int(v) for v in sys.argv[2].split(",")]
cfg = json.load(open(os.path.join(fix, "config.json")))
P = read_safetensors(os.path.join(fix, "model.safetensors"))
if "model.embed_tokens.weight" not in P:
    P["model.embed_tokens.weight"] = P["lm_head.weight"]
lora, scale = None, 0.0
if "--adapter" in sys.argv:
    ac = json.load(open(os.path.join(fix, "adapter", "adapter_config.json")))
    A = read_safetensors(os.path.join(fix, "adapter", "adapter_model.safetensors"))
    scale = ac["lora_alpha"] / ac["r"]
    lora = {k[len("base_model.model."):-len(".lora_A.weight")]: (v, A[k.replace("lora_A", "lora_B")])
            for k, v in A.items() if ".lora_A." in k}
out = {}
for name, act in (("exact", EXACT), ("ggml", ggml_gelu)):
    F.gelu_tanh = act
    with torch.no_grad():
        lp = torch.log_softmax(F.forward(cfg, P, torch.tensor([ids]), lora, scale)[0], dim=-1)
    out[name] = [None] + [float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)]
print(json.dumps(out))
