#!/usr/bin/python3
"""Writes tests/fixtures/kernel/bf16_fixture.json and bf16_grads_*.safetensors: the
mixed-precision (bf16) references for tests/kernel/test_bf16_model.c (issue 20).
Deterministic. Usage, from the repository root:

    /usr/bin/python3 tests/kernel/make_bf16_fixture.py

Model, batch and LoRA start: those of tests/fixtures/train (stories260K, 2 x 32 tokens,
rank-4 LoRA on all seven targets, scaling 2, base frozen). Two references:

* "contract": muscle's --bf16 numerics: the matrices (and the tied embedding) rounded
  to bf16, norms fp32 values; every product - the linears, the LoRA paths, attention's
  Q K^T and P V - takes both operands rounded to bf16 (through float32, nearest-even)
  and sums them in float32 (torch's float32 matmul: exact products, fp32 sums in its own
  order); in the backward pass the incoming gradient is rounded to bf16 too
  (dX = bf16(dY) bf16(W), dW = bf16(dY)^T bf16(X)). Everything else (softmax, norms,
  rotary, loss, LoRA masters, AdamW) in float64.
* "contract_f64": the same with float64 sums - how far fp32 summation alone (order
  and precision, every rounding downstream of it flipping) moves the results: the
  noise floor of any bf16 implementation, measured on this model.
* "autocast": PyTorch's own mixed precision, torch.autocast("cpu", torch.bfloat16)
  on the float32 model with the weights rounded to bf16 (what a PyTorch user runs);
  its linear outputs are bf16 (rounded), so it is further from both.

For each: the mean loss and per-position nll (forward), the LoRA gradients (one step),
and 20 AdamW steps' losses (lr 1e-3, betas .9/.999, eps 1e-8, wd .01, as the training
fixture)."""
import json
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "ref"))
import llama_ref as R  # noqa: E402

torch.set_num_threads(1)
OUT = os.path.join(ROOT, "tests", "fixtures", "kernel")
TRAIN = os.path.join(ROOT, "tests", "fixtures", "train")
STEPS = 20
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.01


def rb(x):
    """x rounded to bf16 (through float32, nearest-even), as float64."""
    return x.detach().float().bfloat16().double()


SUMS = torch.float32  # the products' sums: float32 (the contract) or float64 (the f64 variant)


def dot(a, b):
    return (a.to(SUMS) @ b.to(SUMS)).double()


class BMM(torch.autograd.Function):
    """a @ b with both operands rounded to bf16, sums in SUMS; backward rounds the gradient."""

    @staticmethod
    def forward(ctx, a, b):
        ar, br = rb(a), rb(b)
        ctx.save_for_backward(ar, br)
        return dot(ar, br)

    @staticmethod
    def backward(ctx, g):
        ar, br = ctx.saved_tensors
        gr = rb(g)
        return dot(gr, br.transpose(-1, -2)), dot(ar.transpose(-1, -2), gr)


def mm(a, b):
    return BMM.apply(a, b)


def forward_contract(cfg, P, tokens, lora, scale):
    B, T = tokens.shape
    D, H, KH = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    hd, rep, eps = D // H, H // KH, cfg["norm_eps"]
    cos, sin = R.rope_tables(cfg, T, torch.float64)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    def lin(x, key):
        y = mm(x, P[key + ".weight"].t())
        if key in lora:
            A, Bm = lora[key]
            y = y + scale * mm(mm(x, A.t()), Bm.t())
        return y

    x = P["tok_embeddings.weight"][tokens]
    for l in range(cfg["n_layers"]):
        p = "layers.%d." % l
        h = R.rms_norm(x, P[p + "attention_norm.weight"], eps)
        q = lin(h, p + "attention.wq").view(B, T, H, hd)
        k = lin(h, p + "attention.wk").view(B, T, KH, hd)
        v = lin(h, p + "attention.wv").view(B, T, KH, hd)
        q = R.apply_rope(q, cos, sin, cfg["rope"])
        k = R.apply_rope(k, cos, sin, cfg["rope"])
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(mm(q, k.transpose(-1, -2)) / math.sqrt(hd) + mask, dim=-1)
        o = mm(att, v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + lin(o, p + "attention.wo")
        h = R.rms_norm(x, P[p + "ffn_norm.weight"], eps)
        g = torch.nn.functional.silu(lin(h, p + "feed_forward.w1")) * lin(h, p + "feed_forward.w3")
        x = x + lin(g, p + "feed_forward.w2")
    x = R.rms_norm(x, P["norm.weight"], eps)
    return mm(x, P["tok_embeddings.weight"].t())


def forward_autocast(cfg, P, tokens, lora, scale):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return R.forward(cfg, P, tokens, lora=lora, lora_scale=scale).float()


def nll_of(logits, ids):
    lp = torch.log_softmax(logits.double(), dim=-1)
    return -lp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]


def run(kind, cfg, P, ids, init, keys, scale, dt):
    fwd = forward_autocast if kind == "autocast" else forward_contract
    params = [t.to(dt).clone().requires_grad_(True) for pair in init for t in pair]
    lora = {k: (params[2 * j], params[2 * j + 1]) for j, k in enumerate(keys)}
    n = nll_of(fwd(cfg, P, ids, lora, scale), ids)
    loss = n.mean()
    grads = torch.autograd.grad(loss, params)
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    hist = []
    for _ in range(STEPS):
        opt.zero_grad()
        lora = {k: (params[2 * j], params[2 * j + 1]) for j, k in enumerate(keys)}
        ls = nll_of(fwd(cfg, P, ids, lora, scale), ids).mean()
        hist.append(float(ls))
        ls.backward()
        opt.step()
    return float(loss), n.detach().numpy().ravel().tolist(), grads, hist


def main():
    os.makedirs(OUT, exist_ok=True)
    fx = json.load(open(os.path.join(TRAIN, "train_fixture.json")))
    cfg, P64 = R.load_llama2c(os.path.join(ROOT, fx["model"]))
    ids = torch.tensor(fx["batch"]["ids"], dtype=torch.long)
    lt = R.read_safetensors(os.path.join(TRAIN, "lora_init.safetensors"))
    names = fx["lora"]["names"]
    scale = fx["lora"]["scaling"]
    # PEFT name -> llama2.c key, in the fixture's order (A, B per target)
    mod2meta = {mod: meta for meta, mod in R.LORA_TARGETS}
    keys, init = [], []
    for j in range(0, len(names), 2):
        parts = names[j].split(".")
        l, mod = int(parts[4]), parts[5] + "." + parts[6]
        keys.append("layers.%d.%s" % (l, mod2meta[mod]))
        init.append((torch.tensor(np.array(lt[names[j]], dtype=np.float64)),
                     torch.tensor(np.array(lt[names[j + 1]], dtype=np.float64))))
    # the --bf16 model: matrices and the embedding rounded to bf16, norm weights as stored
    Pb = {k: (rb(v) if v.dim() == 2 else v.double()) for k, v in P64.items()}
    res = {"note": __doc__.split("\n\n")[0], "steps": STEPS, "lr": LR, "betas": list(BETAS), "eps": EPS,
           "weight_decay": WD}
    global SUMS
    for kind, P, dt in [("contract", Pb, torch.float64), ("contract_f64", Pb, torch.float64),
                        ("autocast", {k: v.float() for k, v in Pb.items()}, torch.float32)]:
        SUMS = torch.float64 if kind == "contract_f64" else torch.float32
        loss, nll, grads, hist = run(kind, cfg, P, ids, init, keys, scale, dt)
        R.write_safetensors(os.path.join(OUT, "bf16_grads_%s.safetensors" % kind),
                            [(nm, g.double().numpy()) for nm, g in zip(names, grads)], "F32")
        res[kind] = {"loss_mean": loss, "nll": nll, "grads_file": "bf16_grads_%s.safetensors" % kind,
                     "adamw_losses": hist}
        print("%-9s loss %.7f  steps %s" % (kind, loss, " ".join("%.4f" % h for h in hist)))
    with open(os.path.join(OUT, "bf16_fixture.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
