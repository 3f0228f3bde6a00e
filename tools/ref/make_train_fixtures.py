#!/usr/bin/python3
"""Writes the training (backward pass) fixtures into tests/fixtures/train/ from
../shared/models/stories260K/stories260K.bin (read in place).  Deterministic.
Usage, from the repository root:

    /usr/bin/python3 tools/ref/make_train_fixtures.py [--check]

Everything is described in tests/fixtures/train/train_fixture.json and README.md.
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref as R  # noqa: E402
from make_fixtures import dump_json  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_REL = "tests/fixtures/train"
MODEL_REL = "../shared/models/stories260K/stories260K.bin"
TOK_REL = "../shared/models/stories260K/tok512.bin"

T = 32
# (prompt, answer): the masked loss counts only the answer's target positions
TEXTS = [
    ("Lily had a ball. Mom asked, \"What color?\"",
     " Lily said, \"It is red!\" She was very happy and played with the ball all day."),
    ("Tom saw a little cat in the garden. The cat was",
     " sad because it was lost. Tom gave the cat some milk and they became good friends."),
]
RANK, ALPHA = 4, 8
SCALING = ALPHA / RANK
LORA_SEED = 1234
LR, BETAS, EPS, WD, STEPS = 1e-3, (0.9, 0.999), 1e-8, 0.01, 10


def peft_name(l, module, ab):
    return "base_model.model.model.layers.%d.%s.lora_%s.weight" % (l, module, ab)


def make_batch(tok):
    ids, mask = [], []
    for prompt, answer in TEXTS:
        p = tok.encode(prompt)
        # encode() adds a dummy-prefix space: answer strings start with a space, drop the extra one
        a = tok.encode(answer[1:], bos=False)
        seq = (p + a)[:T]
        assert len(seq) == T, len(p + a)
        ids.append(seq)
        mask.append([0] * len(p) + [1] * (T - len(p)))
    return ids, mask


def nll(cfg, P, ids, lora=None):
    logits = R.forward(cfg, P, ids, lora=lora, lora_scale=SCALING)
    lp = torch.log_softmax(logits, dim=-1)
    return -lp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]          # [B, T-1]; target t = 1..T-1


def losses(cfg, P, ids, mask, lora=None):
    n = nll(cfg, P, ids, lora)
    m = mask[:, 1:].to(n.dtype)
    return n.mean(), (n * m).sum() / m.sum()


def lora_init(cfg, P):
    """A [r, in], B [out, r], both N(0,1)*0.02 from torch.Generator seeded LORA_SEED, drawn in
    order layer 0..L-1, module q,k,v,o,gate,up,down, A then B; rounded to float32."""
    g = torch.Generator().manual_seed(LORA_SEED)
    P0 = {}
    out = []
    for l in range(cfg["n_layers"]):
        for meta, module in R.LORA_TARGETS:
            W = "layers.%d.%s.weight" % (l, meta)
            o, i = P[W].shape
            A = (torch.randn(RANK, i, generator=g, dtype=torch.float64) * 0.02).float()
            B = (torch.randn(o, RANK, generator=g, dtype=torch.float64) * 0.02).float()
            out.append((l, meta, module, A, B))
    return out


def adamw_run(cfg, P, ids, params, lora_keys=None, dtype=torch.float64):
    """STEPS AdamW steps on `params` (list of leaf tensors) with the mean loss.
    Returns the STEPS losses before each step and the loss after the last step."""
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    hist = []
    for _ in range(STEPS + 1):
        opt.zero_grad()
        lora = None if lora_keys is None else {k: (params[2 * j], params[2 * j + 1]) for j, k in enumerate(lora_keys)}
        loss = nll(cfg, P, ids, lora).mean()
        hist.append(float(loss))
        if len(hist) > STEPS:
            break
        loss.backward()
        opt.step()
    return hist[:STEPS], hist[STEPS]


def main():
    check = "--check" in sys.argv
    out = tempfile.mkdtemp(prefix="muscle-tfx-") if check else os.path.join(ROOT, OUT_REL)
    os.makedirs(out, exist_ok=True)
    cfg, P64 = R.load_llama2c(os.path.join(ROOT, MODEL_REL))
    tok = R.Llama2cTokenizer(os.path.join(ROOT, TOK_REL), cfg["vocab_size"])
    ids_l, mask_l = make_batch(tok)
    ids = torch.tensor(ids_l, dtype=torch.long)
    mask = torch.tensor(mask_l, dtype=torch.long)
    names = R.param_names(cfg)
    res = {}

    # ---- losses + full gradients (float64), and float32 loss values
    for dt, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
        P = {k: v.to(dt).clone().requires_grad_(True) for k, v in P64.items()}
        lm, lk = losses(cfg, P, ids, mask)
        res["loss_mean_" + tag] = float(lm)
        res["loss_masked_" + tag] = float(lk)
        if dt == torch.float64:
            gm = torch.autograd.grad(lm, [P[n] for n in names])
            R.write_safetensors(os.path.join(out, "grads_full.safetensors"),
                                [(n, g.numpy()) for n, g in zip(names, gm)], "F32")
            res["grad_full_norm"] = float(torch.sqrt(sum((g * g).sum() for g in gm)))

    # ---- LoRA init, gradients (base frozen)
    init = lora_init(cfg, P64)
    R.write_safetensors(os.path.join(out, "lora_init.safetensors"),
                        [x for (l, meta, mod, A, B) in init
                         for x in ((peft_name(l, mod, "A"), A.numpy()), (peft_name(l, mod, "B"), B.numpy()))], "F32")
    lora_keys = ["layers.%d.%s" % (l, meta) for (l, meta, mod, A, B) in init]
    lora_names = [peft_name(l, mod, ab) for (l, meta, mod, A, B) in init for ab in "AB"]
    for dt, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
        P = {k: v.to(dt) for k, v in P64.items()}
        params = [t.to(dt).clone().requires_grad_(True) for (l, meta, mod, A, B) in init for t in (A, B)]
        lora = {k: (params[2 * j], params[2 * j + 1]) for j, k in enumerate(lora_keys)}
        lm, lk = losses(cfg, P, ids, mask, lora)
        res["lora_loss_mean_" + tag] = float(lm)
        res["lora_loss_masked_" + tag] = float(lk)
        if dt == torch.float64:
            g = torch.autograd.grad(lm, params, retain_graph=True)
            R.write_safetensors(os.path.join(out, "grads_lora.safetensors"),
                                [(n, x.numpy()) for n, x in zip(lora_names, g)], "F32")
            res["grad_lora_norm"] = float(torch.sqrt(sum((x * x).sum() for x in g)))
            g = torch.autograd.grad(lk, params)
            R.write_safetensors(os.path.join(out, "grads_lora_masked.safetensors"),
                                [(n, x.numpy()) for n, x in zip(lora_names, g)], "F32")
            res["grad_lora_masked_norm"] = float(torch.sqrt(sum((x * x).sum() for x in g)))

    # ---- AdamW: LoRA (base frozen) and full-parameter, float64 and float32
    for dt, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
        P = {k: v.to(dt) for k, v in P64.items()}
        params = [t.to(dt).clone().requires_grad_(True) for (l, meta, mod, A, B) in init for t in (A, B)]
        res["adamw_lora_losses_" + tag], res["adamw_lora_final_loss_" + tag] = adamw_run(
            cfg, P, ids, params, lora_keys, dt)
        if dt == torch.float64:
            R.write_safetensors(os.path.join(out, "lora_after_adamw.safetensors"),
                                [(n, x.detach().numpy()) for n, x in zip(lora_names, params)], "F32")
        Pf = {k: v.to(dt).clone().requires_grad_(True) for k, v in P64.items()}
        res["adamw_full_losses_" + tag], res["adamw_full_final_loss_" + tag] = adamw_run(
            cfg, Pf, ids, [Pf[n] for n in names], None, dt)

    for k in sorted(res):
        v = res[k]
        print("%-32s %s" % (k, ("%.10g" % v) if isinstance(v, float) else " ".join("%.6f" % x for x in v)))

    fx = {
        "model": MODEL_REL,
        "tokenizer": TOK_REL,
        "config": {k: cfg[k] for k in ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                       "seq_len", "rope_theta", "norm_eps", "tied", "rope"]},
        "layout": "llama2.c/Meta: q/k rows as stored in the .bin, rotary on interleaved pairs (x[2i], x[2i+1])",
        "batch": {
            "shape": [len(ids_l), T],
            "texts": [p + a for p, a in TEXTS],
            "ids": ids_l,
            "loss_mask": mask_l,
            "note": "ids = encode(prompt) + encode(answer) with tok512.bin (run.c algorithm), truncated to %d; "
                    "loss_mask[b][t] applies to the TARGET token t (predicted from ids[b][0..t-1]); "
                    "loss_mask[b][0] is unused (0); it is 1 on the answer tokens" % T,
        },
        "loss_definitions": {
            "mean": "mean over b and t = 1..T-1 of -log p(ids[b][t] | ids[b][<t])  (%d terms)" % (len(ids_l) * (T - 1)),
            "masked": "sum(mask * nll) / sum(mask) over the same terms, mask = loss_mask[b][t]",
        },
        "loss": {
            "mean_f64": res["loss_mean_f64"], "mean_f32": res["loss_mean_f32"],
            "masked_f64": res["loss_masked_f64"], "masked_f32": res["loss_masked_f32"],
        },
        "grads_full": {
            "file": "grads_full.safetensors",
            "dtype": "F32 (float64 gradients rounded)",
            "of": "mean loss, float64, all base tensors trainable",
            "names": names,
            "global_norm_f64": res["grad_full_norm"],
            "note": "tied classifier: tok_embeddings.weight gradient includes the embedding lookup and the "
                    "classifier use; llama2.c/Meta tensor names and shapes [out, in]",
        },
        "lora": {
            "rank": RANK, "alpha": ALPHA, "scaling": SCALING,
            "formula": "y = W x + scaling * B (A x); A [r, in], B [out, r]; no dropout; base frozen",
            "targets": {mod: meta for meta, mod in R.LORA_TARGETS},
            "init_file": "lora_init.safetensors",
            "init": "A and B both N(0,1)*0.02 (torch.Generator().manual_seed(%d), float64 draws rounded to "
                    "float32, order: layer 0..L-1, modules q,k,v,o,gate,up,down, A then B); the stored F32 "
                    "values are the exact starting point" % LORA_SEED,
            "names": lora_names,
            "row_order": "PEFT names, but q_proj/k_proj lora_B rows (and nothing else) are in the llama2.c/Meta "
                         "interleaved order of the .bin base; for a Hugging Face base apply HF permute to "
                         "those B rows (n_heads for q, n_kv_heads for k)",
            "loss_mean_f64": res["lora_loss_mean_f64"], "loss_mean_f32": res["lora_loss_mean_f32"],
            "loss_masked_f64": res["lora_loss_masked_f64"], "loss_masked_f32": res["lora_loss_masked_f32"],
            "grads_file": "grads_lora.safetensors",
            "grads_of": "mean loss (float64, rounded to F32)",
            "grads_global_norm_f64": res["grad_lora_norm"],
            "grads_masked_file": "grads_lora_masked.safetensors",
            "grads_masked_of": "masked loss (float64, rounded to F32)",
            "grads_masked_global_norm_f64": res["grad_lora_masked_norm"],
        },
        "adamw": {
            "optimizer": "torch.optim.AdamW (torch 1.13), one parameter group, no clipping, no schedule",
            "lr": LR, "betas": list(BETAS), "eps": EPS, "weight_decay": WD, "steps": STEPS,
            "update": "p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; "
                      "p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)",
            "batch": "the same batch every step, mean loss",
            "losses": "loss before each of the steps 1..10; final_loss = after step 10",
            "lora": {
                "trainable": "all lora_A/lora_B (from lora_init.safetensors), base frozen",
                "losses_f64": res["adamw_lora_losses_f64"], "final_loss_f64": res["adamw_lora_final_loss_f64"],
                "losses_f32": res["adamw_lora_losses_f32"], "final_loss_f32": res["adamw_lora_final_loss_f32"],
                "params_after_file": "lora_after_adamw.safetensors (float64 run, rounded to F32)",
            },
            "full": {
                "trainable": "every base tensor (weight decay applies to all of them, norms and the tied "
                             "embedding included)",
                "losses_f64": res["adamw_full_losses_f64"], "final_loss_f64": res["adamw_full_final_loss_f64"],
                "losses_f32": res["adamw_full_losses_f32"], "final_loss_f32": res["adamw_full_final_loss_f32"],
            },
            "f32_note": "f32 = the whole computation (forward, backward, optimizer state) in torch float32; "
                        "f64 = the same in float64",
        },
    }
    dump_json(os.path.join(out, "train_fixture.json"), fx)

    if check:
        diff = os.system("diff -r -x README.md %s %s" % (out, os.path.join(ROOT, OUT_REL)))
        shutil.rmtree(out)
        print("check:", "identical" if diff == 0 else "DIFFERENT")
        sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
