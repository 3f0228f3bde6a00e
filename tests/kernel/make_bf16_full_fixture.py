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
* the noise floor of any bf16 implementation: how far the contract moves under changes an
  fp32 implementation cannot avoid - float64 sums instead of float32 ("contract_f64"), and
  the masters moved by one fp32 ulp at random (ULP_TRIALS seeded draws: the fp32 rounding
  of the norms, rotary and residual stream is of that size). Each flips bf16 roundings of
  activations downstream, and this small model's forward amplifies a flip: one ulp moves a
  position's nll by up to ~0.1 while float64 sums alone happen to move it by 1e-6 on this
  batch. The floor of each quantity is the largest distance over those variants (nll:
  max|d|, loss: |d|, gradients: per tensor max|d| / max|ref|, curve: max over steps |d|);
  only the floors are stored, in "floor".
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
ULP_TRIALS = 4
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


def ulp_perturbed(P0, seed):
    """The masters moved by about one fp32 ulp (relative 2^-24 x N(0, 1)), then stored fp32."""
    g = torch.Generator().manual_seed(seed)
    return {k: (v * (1 + torch.randn(v.shape, generator=g, dtype=torch.float64) * 2.0 ** -24)).float().double()
            for k, v in P0.items()}


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
    variants = [("contract", P0, torch.float64, torch.float32), ("contract_f64", P0, torch.float64, torch.float64)]
    variants += [("contract_ulp%d" % i, ulp_perturbed(P0, 100 + i), torch.float64, torch.float32) for i in range(ULP_TRIALS)]
    variants += [("autocast", P0, torch.float32, torch.float32)]
    for kind, P, dt, sums in variants:
        K.SUMS = sums
        out[kind] = run(kind, cfg, P, names, ids, dt)
        loss, nll, grads, hist = out[kind]
        print("%-14s loss %.7f  steps %s" % (kind, loss, " ".join("%.4f" % h for h in hist)))
        if kind not in ("contract", "autocast"):
            continue
        fn = "bf16_full_grads_%s.safetensors" % kind
        R.write_safetensors(os.path.join(OUT, fn), [(nm, g.numpy()) for nm, g in zip(names, grads)], "F32")
        res[kind] = {"loss_mean": loss, "nll": nll, "adamw_losses": hist, "grads_file": fn}
    # the noise floor: the largest distance of a variant from the contract
    c = out["contract"]
    noise = [out[k] for k, _, _, _ in variants if k not in ("contract", "autocast")]
    fl = {"variants": [k for k, _, _, _ in variants if k not in ("contract", "autocast")],
          "loss": max(abs(v[0] - c[0]) for v in noise),
          "nll": max(max(abs(a - b) for a, b in zip(v[1], c[1])) for v in noise),
          "grads": {nm: max(rel(v[2][i], c[2][i]) for v in noise) for i, nm in enumerate(names)},
          "curve": max(max(abs(a - b) for a, b in zip(v[3], c[3])) for v in noise)}
    fl["grads_worst"] = max(fl["grads"].values())
    res["floor"] = fl
    print("noise floor: loss %.2e, nll %.2e, gradients (worst tensor) %.2e, curve %.2e" %
          (fl["loss"], fl["nll"], fl["grads_worst"], fl["curve"]))
    print("autocast vs contract gradients: worst %.2e" %
          max(rel(a, b) for a, b in zip(out["autocast"][2], c[2])))
    with open(os.path.join(OUT, "bf16_full.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
