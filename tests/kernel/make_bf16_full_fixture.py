#!/usr/bin/python3
"""Writes tests/fixtures/kernel/bf16_full.json and bf16_full_grads_*.safetensors: the
mixed-precision references of FULL-parameter training for tests/kernel/test_bf16_full.c
(issue 20: `muscle pretrain --bf16`, train/mixed.h). Deterministic. Usage, from the
repository root:

    /usr/bin/python3 tests/kernel/make_bf16_full_fixture.py

Model and batch: those of tests/fixtures/train (stories260K, 2 x 32 tokens, the mean
loss), every base tensor trainable. Three runs, as make_bf16_fixture.py's:

* "contract": muscle's --bf16 full training: fp32 master weights (here float64), every
  product - the linears, the tied classifier, attention's Q K^T and P V - on the masters
  rounded to bf16 and the activations rounded to bf16 (through float32, nearest-even),
  float32 sums; backward dX = bf16(dY) bf16(W), dW = bf16(dY)^T bf16(X) (the rounding
  passes gradients straight through to the masters, as autocast's casts do); the
  embedding lookup reads the unrounded masters; norms, softmax, rotary, the loss and
  AdamW in float64.
* "contract_f64": the same with float64 sums: its distance from "contract" is the noise
  floor of any bf16 implementation (fp32 summation order flips bf16 roundings downstream).
  Only the floors are stored (gradients: per tensor max|d| / max|ref|, the worst tensor).
* "autocast": PyTorch's own mixed precision: float32 master parameters, the forward under
  torch.autocast("cpu", torch.bfloat16) (bf16 linear outputs), float32 gradients and AdamW.

For each: the mean loss and per-position nll, the gradients of every tensor (one step,
llama2.c names as tests/fixtures/train/grads_full.safetensors), and 20 AdamW steps' losses
(lr 1e-3, betas .9/.999, eps 1e-8, weight decay .01 on every tensor, as the training fixture)."""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "ref"))
sys.path.insert(0, HERE)
import llama_ref as R  # noqa: E402
import make_bf16_fixture as K  # noqa: E402  (the contract's rounding products and forward)

torch.set_num_threads(1)
OUT = os.path.join(ROOT, "tests", "fixtures", "kernel")
TRAIN = os.path.join(ROOT, "tests", "fixtures", "train")
STEPS = 20
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.01


def forward(kind, cfg, P, ids):
    if kind == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return R.forward(cfg, P, ids).float()
    return K.forward_contract(cfg, P, ids, {}, 0.0)


def run(kind, cfg, P0, names, ids, dt):
    params = [P0[n].to(dt).clone().requires_grad_(True) for n in names]
    P = dict(zip(names, params))
    n = K.nll_of(forward(kind, cfg, P, ids), ids)
    loss = n.mean()
    grads = torch.autograd.grad(loss, params)
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    hist = []
    for _ in range(STEPS):
        opt.zero_grad()
        ls = K.nll_of(forward(kind, cfg, P, ids), ids).mean()
        hist.append(float(ls))
        ls.backward()
        opt.step()
    return float(loss), n.detach().numpy().ravel().tolist(), [g.detach().double() for g in grads], hist


def rel(a, b):
    den = b.abs().max().item()
    num = (a - b).abs().max().item()
    return num / den if den > 0 else num


def main():
    fx = json.load(open(os.path.join(TRAIN, "train_fixture.json")))
    cfg, P64 = R.load_llama2c(os.path.join(ROOT, fx["model"]))
    ids = torch.tensor(fx["batch"]["ids"], dtype=torch.long)
    names = fx["grads_full"]["names"]
    P0 = {k: P64[k].float().double() for k in names}  # the fp32 masters as stored
    res = {"note": __doc__.split("\n\n")[0], "steps": STEPS, "lr": LR, "betas": list(BETAS), "eps": EPS,
           "weight_decay": WD, "names": names}
    out = {}
    for kind, dt in [("contract", torch.float64), ("contract_f64", torch.float64), ("autocast", torch.float32)]:
        K.SUMS = torch.float64 if kind == "contract_f64" else torch.float32
        out[kind] = run(kind, cfg, P0, names, ids, dt)
        loss, nll, grads, hist = out[kind]
        res[kind] = {"loss_mean": loss, "nll": nll, "adamw_losses": hist}
        if kind != "contract_f64":
            fn = "bf16_full_grads_%s.safetensors" % kind
            R.write_safetensors(os.path.join(OUT, fn), [(nm, g.numpy()) for nm, g in zip(names, grads)], "F32")
            res[kind]["grads_file"] = fn
        print("%-12s loss %.7f  steps %s" % (kind, loss, " ".join("%.4f" % h for h in hist)))
    # the noise floor of the gradients: contract (fp32 sums) against float64 sums, per tensor
    per = {nm: rel(a, b) for nm, a, b in zip(names, out["contract"][2], out["contract_f64"][2])}
    res["contract_f64"]["grads_floor"] = per
    res["contract_f64"]["grads_floor_worst"] = max(per.values())
    print("gradient noise floor: worst %.2e (%s)" % (max(per.values()), max(per, key=per.get)))
    print("autocast vs contract gradients: worst %.2e" %
          max(rel(a, b) for a, b in zip(out["autocast"][2], out["contract"][2])))
    with open(os.path.join(OUT, "bf16_full.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
