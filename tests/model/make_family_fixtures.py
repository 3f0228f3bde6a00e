#!/usr/bin/python3
"""PyTorch reference of the model families (Llama 3.x, SmolLM2, Mistral, Qwen2, Qwen3, and the
non-Llama blocks Phi and Gemma) and the fixtures of tests/model/test_families.c.

Written from the published modeling definitions (transformers' modeling_llama.py,
modeling_mistral.py, modeling_qwen2.py, modeling_qwen3.py and modeling_rope_utils.py:
_compute_default/linear/llama3_parameters), in float64:
  x = embed[ids]
  per layer:  h = rmsnorm(x) * input_layernorm
              q = h Wq^T (+ bq), k = h Wk^T (+ bk), v = h Wv^T (+ bv)      [B, T, heads, hd]
              Qwen3: q = rmsnorm_hd(q) * q_norm, k = rmsnorm_hd(k) * k_norm  (over head_dim)
              q, k rotated: x * cos + rotate_half(x) * sin  (half-split pairs i, i + hd/2)
              att = softmax(q k^T / sqrt(hd) + causal mask [+ keys i - j >= sliding_window hidden])
              x = x + (att v) Wo^T
              x = x + down(silu(gate(rmsnorm(x) * post_attention_layernorm)) * up(...))
  logits = (rmsnorm(x) * norm) lm_head^T   (lm_head = embed when tied)
Phi (modeling_phi.py): h = LayerNorm(x) (weight, bias); x = x + dense(attention(h)) + fc2(gelu_new(fc1(h)))
  (attention and MLP in parallel on the same h); q, k, v, dense, fc1, fc2 and lm_head with
  biases; rotary on the first int(partial_rotary_factor * hd) dims of each head (rotate_half
  within them, frequencies over that dim); logits = final_layernorm(x) lm_head^T + b.
Gemma (modeling_gemma.py): x = embed[ids] * sqrt(hidden) (in the activations' dtype);
  rmsnorm(x) * (1 + w) everywhere; MLP down(gelu_tanh(gate h) * up h); head_dim of its own;
  multi-query attention (one kv head); tied.
Rotary inverse frequencies: base^(-2i/hd); linear: / factor; llama3: wavelengths longer
than orig/low_freq_factor / factor, shorter than orig/high_freq_factor kept, blended between.

Writes tests/fixtures/model/families/<name>/ : config.json (the family's real keys),
model.safetensors (F32, Hugging Face names and q/k order), adapter/ (a PEFT LoRA adapter,
rank 4, all seven modules, A and B random), expected.json (ids, per-position log-probs of
the next token, last row's full log-softmax, greedy ids, losses) and grads.safetensors
(d mean-loss / d every base tensor, HF names; d loss / d every lora_A / lora_B with the
base frozen, PEFT names). Deterministic: run `/usr/bin/python3 tests/model/make_family_fixtures.py`.
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "model", "families")

V, D, HID, L, H, KVH = 128, 32, 48, 2, 4, 2
B, T = 2, 20
GREEDY_PROMPT, GREEDY_STEPS = 6, 10

LLAMA_LIN = [("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"), ("self_attn.o_proj", "o"),
             ("mlp.gate_proj", "gate"), ("mlp.up_proj", "up"), ("mlp.down_proj", "down")]
PHI_LIN = [("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"), ("self_attn.dense", "o"),
           ("mlp.fc1", "up"), ("mlp.fc2", "down")]


def lins(cfg):
    return PHI_LIN if cfg["model_type"] == "phi" else LLAMA_LIN

FAMILIES = {
    # Llama 3.1/3.2: llama3 rotary scaling, eos list, GQA, untied
    "llama3": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
               "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": [2, 3, 4], "head_dim": D // H,
               "hidden_act": "silu", "hidden_size": D, "initializer_range": 0.02, "intermediate_size": HID,
               "max_position_embeddings": 128, "mlp_bias": False, "num_attention_heads": H,
               "num_hidden_layers": L, "num_key_value_heads": KVH, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
               "rope_scaling": {"factor": 4.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                "original_max_position_embeddings": 16, "rope_type": "llama3"},
               "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
               "transformers_version": "4.45.0", "use_cache": True, "vocab_size": V},
    # SmolLM2-135M's keys: Llama blocks, tied; stored (as some third-party copies are) only as lm_head.weight
    "smollm2": {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu", "hidden_size": D,
                "initializer_range": 0.041666666666666664, "intermediate_size": HID, "is_llama_config": True,
                "max_position_embeddings": 128, "mlp_bias": False, "model_type": "llama",
                "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": KVH,
                "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": False, "rope_scaling": None,
                "rope_theta": 100000, "tie_word_embeddings": True, "torch_dtype": "float32",
                "transformers_version": "4.42.3", "use_cache": True, "vocab_size": V},
    # Mistral 7B v0.1's keys, sliding window 6 (shorter than the 20 tokens)
    "mistral": {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
                "hidden_act": "silu", "hidden_size": D, "initializer_range": 0.02, "intermediate_size": HID,
                "max_position_embeddings": 128, "model_type": "mistral", "num_attention_heads": H,
                "num_hidden_layers": L, "num_key_value_heads": KVH, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
                "sliding_window": 6, "tie_word_embeddings": False, "torch_dtype": "float32",
                "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": V},
    # Qwen2.5's keys (q/k/v biases), with linear rotary scaling
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 0,
              "eos_token_id": 1, "hidden_act": "silu", "hidden_size": D, "initializer_range": 0.02,
              "intermediate_size": HID, "max_position_embeddings": 128, "max_window_layers": 21,
              "model_type": "qwen2", "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": KVH,
              "rms_norm_eps": 1e-06, "rope_scaling": {"type": "linear", "factor": 2.0}, "rope_theta": 1000000.0,
              "sliding_window": 8, "tie_word_embeddings": True, "torch_dtype": "float32",
              "transformers_version": "4.43.1", "use_cache": True, "use_sliding_window": False, "vocab_size": V},
    # Qwen3's keys: per-head q/k RMSNorm, head_dim 16 != hidden/heads
    "qwen3": {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
              "bos_token_id": 0, "eos_token_id": 1, "head_dim": 16, "hidden_act": "silu", "hidden_size": D,
              "initializer_range": 0.02, "intermediate_size": HID, "max_position_embeddings": 128,
              "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": H,
              "num_hidden_layers": L, "num_key_value_heads": KVH, "rms_norm_eps": 1e-06, "rope_scaling": None,
              "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": False,
              "torch_dtype": "float32", "transformers_version": "4.51.0", "use_cache": True,
              "use_sliding_window": False, "vocab_size": V},
    # Phi-2's keys (microsoft/phi-2 config.json): LayerNorm, parallel block, gelu_new, partial rotary
    "phi": {"architectures": ["PhiForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
            "eos_token_id": 2, "hidden_act": "gelu_new", "hidden_size": D, "initializer_range": 0.02,
            "intermediate_size": HID, "layer_norm_eps": 1e-05, "max_position_embeddings": 128, "model_type": "phi",
            "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": H,
            "partial_rotary_factor": 0.5, "qk_layernorm": False, "resid_pdrop": 0.1, "rope_scaling": None,
            "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
            "transformers_version": "4.37.0", "use_cache": True, "vocab_size": V},
    # Gemma 7B's keys (google/gemma-7b config.json): head_dim 16 != hidden/heads, one kv head, tied
    "gemma": {"architectures": ["GemmaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
              "bos_token_id": 2, "eos_token_id": 1, "head_dim": 16, "hidden_act": "gelu_pytorch_tanh",
              "hidden_activation": "gelu_pytorch_tanh", "hidden_size": D, "initializer_range": 0.02,
              "intermediate_size": HID, "max_position_embeddings": 128, "model_type": "gemma",
              "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": 1, "pad_token_id": 0,
              "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 10000.0, "torch_dtype": "float32",
              "transformers_version": "4.38.0", "use_cache": True, "vocab_size": V},
}


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def has_bias(cfg):
    if cfg["model_type"] == "phi":
        return {"q", "k", "v", "o", "up", "down"}
    if cfg["model_type"] == "qwen2":
        return {"q", "k", "v"}
    return {"q", "k", "v", "o"} if cfg.get("attention_bias") else set()


def window(cfg):
    if cfg["model_type"] == "mistral":
        return cfg.get("sliding_window") or 0
    return 0


def rot_dims(cfg):
    return int(head_dim(cfg) * cfg.get("partial_rotary_factor", 1.0))


def inv_freq(cfg):
    hd = rot_dims(cfg)
    base = float(cfg["rope_theta"])
    f = 1.0 / (base ** (torch.arange(0, hd, 2).double() / hd))
    rs = cfg.get("rope_scaling")
    if not rs:
        return f
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        return f / rs["factor"]
    assert kind == "llama3"
    factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    wl = 2 * math.pi / f
    out = torch.where(wl > lo_wl, f / factor, f)
    smooth = (old / wl - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wl < hi_wl) & ~(wl > lo_wl)
    return torch.where(medium, smoothed, out)


def shapes(cfg):
    hd = head_dim(cfg)
    qd, kvd = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    d, hid = cfg["hidden_size"], cfg["intermediate_size"]
    return {"q": (qd, d), "k": (kvd, d), "v": (kvd, d), "o": (d, qd), "gate": (hid, d), "up": (hid, d), "down": (d, hid)}


def make_params(cfg, g):
    P = {}
    d, hd = cfg["hidden_size"], head_dim(cfg)
    sh = shapes(cfg)
    mt = cfg["model_type"]
    P["model.embed_tokens.weight"] = torch.randn(V, d, generator=g) * 0.5
    one = 0.0 if mt == "gemma" else 1.0  # Gemma's norms multiply by (1 + w)
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        P[p + "input_layernorm.weight"] = one + 0.2 * torch.randn(d, generator=g)
        if mt == "phi":
            P[p + "input_layernorm.bias"] = 0.2 * torch.randn(d, generator=g)
        else:
            P[p + "post_attention_layernorm.weight"] = one + 0.2 * torch.randn(d, generator=g)
        if cfg["model_type"] == "qwen3":
            P[p + "self_attn.q_norm.weight"] = 1 + 0.2 * torch.randn(hd, generator=g)
            P[p + "self_attn.k_norm.weight"] = 1 + 0.2 * torch.randn(hd, generator=g)
        for mod, t in lins(cfg):
            o, i = sh[t]
            P[p + mod + ".weight"] = torch.randn(o, i, generator=g) / math.sqrt(i)
            if t in has_bias(cfg):
                P[p + mod + ".bias"] = 0.3 * torch.randn(o, generator=g)
    if mt == "phi":
        P["model.final_layernorm.weight"] = 1 + 0.2 * torch.randn(d, generator=g)
        P["model.final_layernorm.bias"] = 0.2 * torch.randn(d, generator=g)
    else:
        P["model.norm.weight"] = one + 0.2 * torch.randn(d, generator=g)
    if not cfg.get("tie_word_embeddings", mt == "gemma"):
        P["lm_head.weight"] = torch.randn(V, d, generator=g) / math.sqrt(d)
    if mt == "phi":
        P["lm_head.bias"] = 0.3 * torch.randn(V, generator=g)
    return P


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):  # transformers' gelu_new / gelu_pytorch_tanh
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, P, ids, lora=None, scale=0.0):
    """logits [B, T, V]; lora: {"model.layers.N.self_attn.q_proj": (A, B)} (PEFT's lora_A, lora_B)."""
    Bn, Tn = ids.shape
    d, hd = cfg["hidden_size"], head_dim(cfg)
    nh, kvh = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    mt = cfg["model_type"]
    eps = cfg["layer_norm_eps"] if mt == "phi" else cfg["rms_norm_eps"]
    rd = rot_dims(cfg)
    f = inv_freq(cfg)
    ang = torch.arange(Tn).double()[:, None] * f[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]          # [1, 1, T, rd]
    i = torch.arange(Tn)[:, None]
    j = torch.arange(Tn)[None, :]
    hidden = j > i
    W = window(cfg)
    if W:
        hidden = hidden | (i - j >= W)
    mask = torch.zeros(Tn, Tn).masked_fill(hidden, float("-inf"))

    def lin(x, name):
        y = x @ P[name + ".weight"].t()
        if name + ".bias" in P:
            y = y + P[name + ".bias"]
        if lora is not None and name in lora:
            A, Bm = lora[name]
            y = y + scale * ((x @ A.t()) @ Bm.t())
        return y

    def norm(x, name):
        if mt == "phi":
            return layernorm(x, P[name + ".weight"], P[name + ".bias"], eps)
        if mt == "gemma":
            return rms(x, 1.0 + P[name + ".weight"], eps)
        return rms(x, P[name + ".weight"], eps)

    def rotary(x):  # the first rd dims of each head, rotate_half within them
        xr, xp = x[..., :rd], x[..., rd:]
        return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)

    x = P["model.embed_tokens.weight"][ids]
    if mt == "gemma":  # the normalizer in the activations' dtype (float32 in the fixtures)
        x = x * torch.tensor(d ** 0.5, dtype=torch.float32).double()
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = norm(x, p + "input_layernorm")
        q = lin(h, p + "self_attn.q_proj").view(Bn, Tn, nh, hd)
        k = lin(h, p + "self_attn.k_proj").view(Bn, Tn, kvh, hd)
        v = lin(h, p + "self_attn.v_proj").view(Bn, Tn, kvh, hd)
        if cfg["model_type"] == "qwen3":
            q = rms(q, P[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, P[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = rotary(q), rotary(k)
        k = k.repeat_interleave(nh // kvh, dim=1)
        v = v.repeat_interleave(nh // kvh, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(Bn, Tn, nh * hd)
        if mt == "phi":  # attention and MLP in parallel on the same h
            x = x + lin(o, p + "self_attn.dense") + lin(gelu_tanh(lin(h, p + "mlp.fc1")), p + "mlp.fc2")
            continue
        x = x + lin(o, p + "self_attn.o_proj")
        h = norm(x, p + "post_attention_layernorm")
        g_ = lin(h, p + "mlp.gate_proj")
        act = gelu_tanh if mt == "gemma" else torch.nn.functional.silu
        x = x + lin(act(g_) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = norm(x, "model.final_layernorm" if mt == "phi" else "model.norm")
    head = P["lm_head.weight"] if "lm_head.weight" in P else P["model.embed_tokens.weight"]
    y = x @ head.t()
    return y + P["lm_head.bias"] if "lm_head.bias" in P else y


def mean_loss(logits, ids):
    lp = torch.log_softmax(logits[:, :-1], dim=-1)
    nll = -lp.gather(-1, ids[:, 1:, None])[..., 0]
    return nll.mean(), lp


# ---------------------------------------------------------------- safetensors (F32)

def write_safetensors(path, tensors, meta=None):
    header, off, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    for fam_i, (name, cfg) in enumerate(FAMILIES.items()):
        g = torch.Generator().manual_seed(1000 + fam_i)
        P = make_params(cfg, g)
        store = dict(P)
        if name == "smollm2":  # tied, stored only under the classifier's name
            store = {("lm_head.weight" if k == "model.embed_tokens.weight" else k): v for k, v in P.items()}
        d = os.path.join(OUT, name)
        os.makedirs(os.path.join(d, "adapter"), exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(d, "model.safetensors"), store, {"format": "pt"})
        # round the weights to float32 first: the reference runs on exactly the stored values
        P = {k: v.to(torch.float32).double() for k, v in P.items()}
        ids = torch.randint(0, V, (B, T), generator=g)
        # base: loss, per-position log-probs, gradients
        Pg = {k: v.clone().requires_grad_(True) for k, v in P.items()}
        loss, lp = mean_loss(forward(cfg, Pg, ids), ids)
        loss.backward()
        grads = {k: v.grad for k, v in Pg.items()}
        if name == "smollm2":
            grads = {("lm_head.weight" if k == "model.embed_tokens.weight" else k): v for k, v in grads.items()}
        next_lp = lp.gather(-1, ids[:, 1:, None])[..., 0]
        last_row = torch.log_softmax(forward(cfg, P, ids)[0, -1], dim=-1)
        # greedy decoding from the first GREEDY_PROMPT ids of row 0
        seq = ids[0, :GREEDY_PROMPT].tolist()
        for _ in range(GREEDY_STEPS):
            logits = forward(cfg, P, torch.tensor([seq]))
            seq.append(int(logits[0, -1].argmax()))
        # LoRA (PEFT names), rank 4, alpha 8, every module, base frozen
        r, alpha = 4, 8.0
        sh = shapes(cfg)
        lora, ad_store = {}, {}
        for l in range(cfg["num_hidden_layers"]):
            for mod, t in lins(cfg):
                o, i_ = sh[t]
                A = (torch.rand(r, i_, generator=g) * 2 - 1) / math.sqrt(i_)
                Bm = torch.randn(o, r, generator=g) * 0.1
                A, Bm = A.to(torch.float32).double(), Bm.to(torch.float32).double()
                key = "model.layers.%d.%s" % (l, mod)
                lora[key] = (A.clone().requires_grad_(True), Bm.clone().requires_grad_(True))
                ad_store["base_model.model.%s.lora_A.weight" % key] = A
                ad_store["base_model.model.%s.lora_B.weight" % key] = Bm
        write_safetensors(os.path.join(d, "adapter", "adapter_model.safetensors"), ad_store)
        with open(os.path.join(d, "adapter", "adapter_config.json"), "w") as f:
            json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
                       "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "base_model_name_or_path": name,
                       "target_modules": [m.split(".")[1] for m, _ in lins(cfg)]}, f, indent=2)
            f.write("\n")
        lloss, _ = mean_loss(forward(cfg, P, ids, lora, alpha / r), ids)
        lloss.backward()
        for key, (A, Bm) in lora.items():
            grads["base_model.model.%s.lora_A.weight" % key] = A.grad
            grads["base_model.model.%s.lora_B.weight" % key] = Bm.grad
        write_safetensors(os.path.join(d, "grads.safetensors"), grads)
        exp = {"family": name, "ids": ids.tolist(), "loss": float(loss), "lora_loss": float(lloss),
               "next_logprobs": [[float(v) for v in row] for row in next_lp],
               "last_row_logprobs": [float(v) for v in last_row],
               "greedy_prompt": GREEDY_PROMPT, "greedy_ids": seq,
               "lora": {"rank": r, "alpha": alpha}}
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(exp, f)
            f.write("\n")
        print("%s: loss %.6f lora loss %.6f greedy %s" % (name, float(loss), float(lloss), seq[GREEDY_PROMPT:]))


if __name__ == "__main__":
    main()
