#!/usr/bin/python3
"""PyTorch (1.13, CPU) baseline for muscle's benchmarks.  Use Debian's /usr/bin/python3 and
run under the shared benchmark lock:

    flock /tmp/muscle-bench.lock /usr/bin/python3 bench/torch/bench_torch.py --json

Random-weight Llama models (tied classifier, n_kv_heads = n_heads, like llama2.c's
stories15M / stories110M):
  15M : dim 288, 6 layers, 6 heads, hidden 768, vocab 32000
  110M: dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000
Tasks (torch.set_num_threads(2) unless --threads):
  score      all positions' log-probs (log_softmax over the vocabulary included),
             batch 4 x 256, inference_mode; tokens/s = 1024 / time per batch
  decode     greedy decoding with a KV cache from a 1-token prompt, 128 new tokens, batch 1,
             inference_mode; tokens/s = 128 / time of the 128 steps
  lora8_qkvo LoRA rank 8 (alpha 16) on q,k,v,o; forward + backward + AdamW step on the LoRA
             params only, batch 4 x 256 (mean cross-entropy); tokens/s = 1024 / time per step
  lora16_all LoRA rank 16 (alpha 32) on q,k,v,o,gate,up,down; same
  full       full-parameter training, same
dtypes: fp32, bf16 (model.to(torch.bfloat16): weights, activations, LoRA params and
optimizer state all bf16), amp (mixed precision: the fp32 model, its forward under
torch.autocast("cpu", torch.bfloat16); fp32 master weights, gradients and optimizer state).
Each measurement runs in its own subprocess so that peak_rss_mb (getrusage ru_maxrss) is
per measurement.  Output: one JSON line per measurement with --json
({"impl":"pytorch","shape","dtype","task","tokens_per_s","peak_rss_mb", ...extra fields:
tokens_per_s_best (from the fastest iteration), sec_per_iter, loadavg_1min_before/after
(the machine is shared: a load above the thread count means the numbers are disturbed)}),
else a table.
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

SHAPES = {
    "15M": dict(dim=288, n_layers=6, n_heads=6, hidden=768, vocab=32000, seq_len=1024),
    "110M": dict(dim=768, n_layers=12, n_heads=12, hidden=2048, vocab=32000, seq_len=1024),
}
TASKS = ["score", "decode", "lora8_qkvo", "lora16_all", "full"]
DTYPES = ["fp32", "bf16", "amp"]


def build(torch, shape, seed=0):
    nn = torch.nn
    F = torch.nn.functional
    c = SHAPES[shape]
    D, H, FF, V, L = c["dim"], c["n_heads"], c["hidden"], c["vocab"], c["n_layers"]
    hd = D // H

    class LoRALinear(nn.Module):
        def __init__(self, base, r, alpha):
            super().__init__()
            self.base = base
            self.A = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
            self.B = nn.Parameter(torch.zeros(base.out_features, r))
            self.s = alpha / r

        def forward(self, x):
            return self.base(x) + self.s * F.linear(F.linear(x, self.A), self.B)

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(D))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention_norm = RMSNorm()
            self.wq = nn.Linear(D, D, bias=False)
            self.wk = nn.Linear(D, D, bias=False)
            self.wv = nn.Linear(D, D, bias=False)
            self.wo = nn.Linear(D, D, bias=False)
            self.ffn_norm = RMSNorm()
            self.w1 = nn.Linear(D, FF, bias=False)
            self.w2 = nn.Linear(FF, D, bias=False)
            self.w3 = nn.Linear(D, FF, bias=False)

        def forward(self, x, cos, sin, mask, cache=None, pos=0):
            B, T, _ = x.shape
            h = self.attention_norm(x)
            q = self.wq(h).view(B, T, H, hd).transpose(1, 2)
            k = self.wk(h).view(B, T, H, hd).transpose(1, 2)
            v = self.wv(h).view(B, T, H, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            if cache is not None:
                kc, vc = cache
                kc[:, :, pos:pos + T] = k
                vc[:, :, pos:pos + T] = v
                k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            if mask is not None:
                att = att + mask
            o = (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
            x = x + self.wo(o)
            h = self.ffn_norm(x)
            return x + self.w2(F.silu(self.w1(h)) * self.w3(h))

    def rope(x, cos, sin):  # half-split rotary, x [B, H, T, hd]
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(V, D)
            self.layers = nn.ModuleList([Block() for _ in range(L)])
            self.norm = RMSNorm()
            freq = 10000.0 ** (-torch.arange(0, hd, 2).float() / hd)
            ang = torch.arange(c["seq_len"]).float()[:, None] * freq[None]
            self.register_buffer("cos", torch.cos(ang), persistent=False)
            self.register_buffer("sin", torch.sin(ang), persistent=False)

        def forward(self, ids, caches=None, pos=0):
            B, T = ids.shape
            x = self.tok(ids)
            cos, sin = self.cos[pos:pos + T].to(x.dtype), self.sin[pos:pos + T].to(x.dtype)
            mask = None
            if T > 1:
                mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
            for i, layer in enumerate(self.layers):
                x = layer(x, cos, sin, mask, None if caches is None else caches[i], pos)
            return F.linear(self.norm(x), self.tok.weight)      # tied classifier

        def add_lora(self, r, targets):
            for p in self.parameters():
                p.requires_grad_(False)
            for layer in self.layers:
                for t in targets:
                    setattr(layer, t, LoRALinear(getattr(layer, t), r, 2 * r))

    torch.manual_seed(seed)
    m = Llama()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    return m


def run_child(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    F = torch.nn.functional
    c = SHAPES[a.shape]
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    m = build(torch, a.shape)
    B, T = a.batch, a.seq
    V = c["vocab"]
    ids = torch.randint(3, V, (B, T + 1))      # training: inputs ids[:, :T], targets ids[:, 1:]
    if a.task in ("lora8_qkvo", "lora16_all"):
        if a.task == "lora8_qkvo":
            m.add_lora(8, ["wq", "wk", "wv", "wo"])
        else:
            m.add_lora(16, ["wq", "wk", "wv", "wo", "w1", "w2", "w3"])
    m = m.to(dt)
    extra = {}

    if a.task == "score":
        m.eval()

        def step():
            with torch.inference_mode():
                lp = torch.log_softmax(m(ids[:, :T]), dim=-1)
                return lp[0, 0, 0].item()
        ntok = B * T
        extra.update(batch=B, seq=T)
    elif a.task == "decode":
        m.eval()
        n_new = a.new_tokens
        H = c["n_heads"]
        hd = c["dim"] // H

        def step():
            with torch.inference_mode():
                caches = [(torch.zeros(1, H, n_new, hd, dtype=dt), torch.zeros(1, H, n_new, hd, dtype=dt))
                          for _ in range(c["n_layers"])]
                tok = torch.tensor([[1]])
                for pos in range(n_new):
                    logits = m(tok, caches, pos)
                    tok = logits[:, -1].argmax(-1, keepdim=True)
                return int(tok)
        ntok = n_new
        extra.update(batch=1, prompt=1, new_tokens=n_new)
    else:
        m.train()
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
        extra.update(batch=B, seq=T, trainable_params=sum(p.numel() for p in params))

        def step():
            opt.zero_grad(set_to_none=True)
            if a.dtype == "amp":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = m(ids[:, :-1]).float()
            else:
                logits = m(ids[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            return float(loss)
        ntok = B * T

    load0 = os.getloadavg()[0]
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    tot = sum(times)
    rec = {"impl": "pytorch", "shape": a.shape, "dtype": a.dtype, "task": a.task,
           "tokens_per_s": round(ntok * len(times) / tot, 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
           "tokens_per_s_best": round(ntok / min(times), 2),
           "sec_per_iter": [round(t, 4) for t in times], "threads": a.threads,
           "loadavg_1min_before": round(load0, 2), "loadavg_1min_after": round(os.getloadavg()[0], 2),
           "torch": torch.__version__}
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=list(SHAPES) + ["all"], default="all")
    ap.add_argument("--dtype", choices=DTYPES + ["all"], default="all")
    ap.add_argument("--task", choices=TASKS + ["all"], default="all")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="one JSON line per measurement")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return run_child(a)
    shapes = list(SHAPES) if a.shape == "all" else [a.shape]
    dtypes = ["fp32", "bf16"] if a.dtype == "all" else [a.dtype]
    tasks = TASKS if a.task == "all" else [a.task]
    if not a.json:
        print("%-5s %-5s %-11s %12s %12s" % ("shape", "dtype", "task", "tokens/s", "peak RSS MB"))
    for s in shapes:
        for d in dtypes:
            for t in tasks:
                cmd = [sys.executable, os.path.abspath(__file__), "--child", "--shape", s, "--dtype", d,
                       "--task", t, "--warmup", str(a.warmup), "--iters", str(a.iters), "--batch", str(a.batch),
                       "--seq", str(a.seq), "--new-tokens", str(a.new_tokens), "--threads", str(a.threads)]
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
                if p.returncode != 0:
                    rec = {"impl": "pytorch", "shape": s, "dtype": d, "task": t, "error": p.stderr.strip()[-500:]}
                else:
                    rec = json.loads(p.stdout.strip().splitlines()[-1])
                if a.json:
                    print(json.dumps(rec), flush=True)
                elif "error" in rec:
                    print("%-5s %-5s %-11s  ERROR %s" % (s, d, t, rec["error"].splitlines()[-1]), flush=True)
                else:
                    print("%-5s %-5s %-11s %12.1f %12.1f" % (s, d, t, rec["tokens_per_s"], rec["peak_rss_mb"]), flush=True)


if __name__ == "__main__":
    main()
