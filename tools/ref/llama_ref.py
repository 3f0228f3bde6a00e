#!/usr/bin/python3
"""Independent PyTorch reference of the Llama forward pass (float64 by default).

Used to produce test fixtures for muscle's C engine.  Run with Debian's Python
(/usr/bin/python3: torch 1.13, numpy).

Internal representation
-----------------------
A model is (cfg, params):
  cfg    dict: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
               rope_theta, norm_eps, rope ("interleaved" | "half"), tied (bool)
  params dict of torch tensors with Meta / llama2.c model.py names, each [out, in]:
      tok_embeddings.weight            [vocab, dim]
      layers.N.attention_norm.weight   [dim]
      layers.N.attention.wq.weight     [n_heads*head_dim, dim]
      layers.N.attention.wk.weight     [n_kv_heads*head_dim, dim]
      layers.N.attention.wv.weight     [n_kv_heads*head_dim, dim]
      layers.N.attention.wo.weight     [dim, n_heads*head_dim]
      layers.N.ffn_norm.weight         [dim]
      layers.N.feed_forward.w1.weight  [hidden, dim]   (gate)
      layers.N.feed_forward.w2.weight  [dim, hidden]   (down)
      layers.N.feed_forward.w3.weight  [hidden, dim]   (up)
      norm.weight                      [dim]
      output.weight                    [vocab, dim]    (absent when tied)
The q/k rows are kept exactly as stored in the file; cfg["rope"] says how they are
rotated:  "interleaved" (llama2.c, Meta, GGUF) rotates pairs (x[2i], x[2i+1]) of each
head, "half" (Hugging Face) rotates pairs (x[i], x[i + head_dim/2]); in both cases
pair i turns by pos * theta^(-2i/head_dim).

Loaders: load_llama2c (.bin legacy version 0), load_hf (folder: model.safetensors or
sharded with model.safetensors.index.json; F32/F16/BF16), load_gguf (v2/v3; F32, F16,
BF16, Q8_0).  All are hand-written (no safetensors / gguf package).  Weights are
returned dequantized to float64 exactly as stored.
"""
import json
import math
import os
import struct

import numpy as np
import torch

# ----------------------------------------------------------------------------- names

def layer_names(l):
    p = "layers.%d." % l
    return [p + "attention_norm.weight", p + "attention.wq.weight", p + "attention.wk.weight",
            p + "attention.wv.weight", p + "attention.wo.weight", p + "ffn_norm.weight",
            p + "feed_forward.w1.weight", p + "feed_forward.w2.weight", p + "feed_forward.w3.weight"]


def param_names(cfg):
    names = ["tok_embeddings.weight"]
    for l in range(cfg["n_layers"]):
        names += layer_names(l)
    names.append("norm.weight")
    if not cfg["tied"]:
        names.append("output.weight")
    return names


# Meta name -> Hugging Face name (per layer part)
HF_LAYER = {
    "attention_norm.weight": "input_layernorm.weight",
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
}
# Meta name -> GGUF name (per layer part)
GGUF_LAYER = {
    "attention_norm.weight": "attn_norm.weight",
    "attention.wq.weight": "attn_q.weight",
    "attention.wk.weight": "attn_k.weight",
    "attention.wv.weight": "attn_v.weight",
    "attention.wo.weight": "attn_output.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "feed_forward.w1.weight": "ffn_gate.weight",
    "feed_forward.w2.weight": "ffn_down.weight",
    "feed_forward.w3.weight": "ffn_up.weight",
}
GLOBAL_HF = {"tok_embeddings.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
GLOBAL_GGUF = {"tok_embeddings.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
               "output.weight": "output.weight"}


def _map_name(name, glob, layer):
    if name in glob:
        return glob[name]
    _, l, rest = name.split(".", 2)
    pre = "model.layers.%s." % l if glob is GLOBAL_HF else "blk.%s." % l
    return pre + layer[rest]


def hf_name(name):
    return _map_name(name, GLOBAL_HF, HF_LAYER)


def gguf_name(name):
    return _map_name(name, GLOBAL_GGUF, GGUF_LAYER)


def _inverse(fn, cfg):
    return {fn(n): n for n in param_names(dict(cfg, tied=False))}


# ----------------------------------------------------------------------------- rotary layouts

def hf_permute(w, n_heads):
    """Meta/interleaved q or k rows -> Hugging Face half-split rows
    (convert_llama_weights_to_hf.py `permute`).  w: [n_heads*head_dim, in]."""
    out, inn = w.shape
    return w.reshape(n_heads, out // n_heads // 2, 2, inn).transpose(1, 2).reshape(out, inn)


def hf_unpermute(w, n_heads):
    """Inverse of hf_permute: Hugging Face rows -> Meta/interleaved rows."""
    out, inn = w.shape
    return w.reshape(n_heads, 2, out // n_heads // 2, inn).transpose(1, 2).reshape(out, inn)


def to_layout(cfg, params, rope):
    """Return params with q/k rows permuted so that they must be rotated with `rope`."""
    if cfg["rope"] == rope:
        return dict(params)
    f = hf_permute if rope == "half" else hf_unpermute
    out = dict(params)
    for l in range(cfg["n_layers"]):
        out["layers.%d.attention.wq.weight" % l] = f(params["layers.%d.attention.wq.weight" % l], cfg["n_heads"])
        out["layers.%d.attention.wk.weight" % l] = f(params["layers.%d.attention.wk.weight" % l], cfg["n_kv_heads"])
    return out


# ----------------------------------------------------------------------------- forward

def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope_tables(cfg, T, dtype):
    hd = cfg["dim"] // cfg["n_heads"]
    i = torch.arange(hd // 2, dtype=torch.float64)
    freq = cfg["rope_theta"] ** (-2.0 * i / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]      # [T, hd/2]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin, layout):
    """x: [B, T, H, hd]; cos/sin: [T, hd/2]."""
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    if layout == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        ra, rb = a * c - b * s, a * s + b * c
        return torch.stack((ra, rb), dim=-1).flatten(-2)
    elif layout == "half":
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        return torch.cat((a * c - b * s, a * s + b * c), dim=-1)
    raise ValueError(layout)


# LoRA targets: Meta name suffix -> PEFT module path
LORA_TARGETS = [("attention.wq", "self_attn.q_proj"), ("attention.wk", "self_attn.k_proj"),
                ("attention.wv", "self_attn.v_proj"), ("attention.wo", "self_attn.o_proj"),
                ("feed_forward.w1", "mlp.gate_proj"), ("feed_forward.w3", "mlp.up_proj"),
                ("feed_forward.w2", "mlp.down_proj")]


def forward(cfg, P, tokens, lora=None, lora_scale=0.0, dtype=None):
    """Logits [B, T, vocab] for tokens (LongTensor [B, T] or [T]).
    lora: optional dict {"layers.N.attention.wq": (A [r, in], B [out, r]), ...};
    the adapted linear is y = W x + lora_scale * B (A x).  Differentiable."""
    if tokens.dim() == 1:
        tokens = tokens[None]
    B, T = tokens.shape
    D, H, KH = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = D // H
    rep = H // KH
    eps = cfg["norm_eps"]
    dt = dtype or P["tok_embeddings.weight"].dtype
    cos, sin = rope_tables(cfg, T, dt)
    mask = torch.full((T, T), float("-inf"), dtype=dt).triu(1)

    def lin(x, key):
        y = x @ P[key + ".weight"].t()
        if lora is not None and key in lora:
            A, Bm = lora[key]
            y = y + lora_scale * ((x @ A.t()) @ Bm.t())
        return y

    x = P["tok_embeddings.weight"][tokens]
    for l in range(cfg["n_layers"]):
        p = "layers.%d." % l
        h = rms_norm(x, P[p + "attention_norm.weight"], eps)
        q = lin(h, p + "attention.wq").view(B, T, H, hd)
        k = lin(h, p + "attention.wk").view(B, T, KH, hd)
        v = lin(h, p + "attention.wv").view(B, T, KH, hd)
        q = apply_rope(q, cos, sin, cfg["rope"])
        k = apply_rope(k, cos, sin, cfg["rope"])
        # query head h uses kv head h // rep
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))                     # [B, H, T, hd]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + lin(o, p + "attention.wo")
        h = rms_norm(x, P[p + "ffn_norm.weight"], eps)
        g = torch.nn.functional.silu(lin(h, p + "feed_forward.w1")) * lin(h, p + "feed_forward.w3")
        x = x + lin(g, p + "feed_forward.w2")
    x = rms_norm(x, P["norm.weight"], eps)
    W = P["tok_embeddings.weight"] if cfg["tied"] else P["output.weight"]
    return x @ W.t()


def log_probs(cfg, P, ids):
    """float64 log-softmax rows [T, vocab] for one sequence (list of ints)."""
    with torch.no_grad():
        P64 = {k: v.double() for k, v in P.items()}
        logits = forward(cfg, P64, torch.tensor(ids, dtype=torch.long))[0]
        return torch.log_softmax(logits, dim=-1)


def token_logprobs(lp, ids):
    """log p(ids[t] | ids[<t]) for t >= 1, from rows lp [T, vocab]."""
    return [float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]


def greedy(cfg, P, prompt, n_new):
    """Argmax decoding (full recomputation each step).  Returns (new ids, min top1-top2 logit margin)."""
    ids = list(prompt)
    margin = float("inf")
    with torch.no_grad():
        P64 = {k: v.double() for k, v in P.items()}
        for _ in range(n_new):
            logits = forward(cfg, P64, torch.tensor(ids, dtype=torch.long))[0, -1]
            top = torch.topk(logits, 2)
            margin = min(margin, float(top.values[0] - top.values[1]))
            ids.append(int(top.indices[0]))
    return ids[len(prompt):], margin


# ----------------------------------------------------------------------------- dtype helpers

def f32_to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (no NaNs expected)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_bf16(a):
    return bf16_bits_to_f32(f32_to_bf16_bits(a)).reshape(np.shape(a))


def round_f16(a):
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


QK8_0 = 32


def quantize_q8_0(a):
    """ggml quantize_row_q8_0_ref on rows of a float32 [rows, n] array (n % 32 == 0).
    Returns bytes: per block of 32 values, fp16 scale d then 32 int8."""
    x = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    x0 = (x * idv[:, None]).astype(np.float32)
    q = (np.sign(x0) * np.floor(np.abs(x0) + np.float32(0.5))).astype(np.int8)      # roundf
    blocks = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def dequantize_q8_0(buf, n):
    blocks = np.frombuffer(buf, dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))], count=n // QK8_0)
    return (blocks["d"].astype(np.float32)[:, None] * blocks["qs"].astype(np.float32)).reshape(-1)


# ----------------------------------------------------------------------------- llama2.c

def load_llama2c(path):
    """llama2.c legacy (version 0) checkpoint; rope theta 10000, eps 1e-5 (what run.c uses)."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, L, H, KH, V, S = struct.unpack_from("<7i", data, 0)
    tied = V > 0
    V = abs(V)
    hd = dim // H
    kvd = KH * hd
    a = np.frombuffer(data, dtype="<f4", offset=28)
    pos = [0]

    def take(*shape):
        n = int(np.prod(shape))
        t = a[pos[0]:pos[0] + n].reshape(shape)
        pos[0] += n
        return torch.from_numpy(t.astype(np.float64))

    P = {"tok_embeddings.weight": take(V, dim)}
    per = {}
    per["attention_norm.weight"] = take(L, dim)
    per["attention.wq.weight"] = take(L, dim, dim)
    per["attention.wk.weight"] = take(L, kvd, dim)
    per["attention.wv.weight"] = take(L, kvd, dim)
    per["attention.wo.weight"] = take(L, dim, dim)
    per["ffn_norm.weight"] = take(L, dim)
    per["feed_forward.w1.weight"] = take(L, hidden, dim)
    per["feed_forward.w2.weight"] = take(L, dim, hidden)
    per["feed_forward.w3.weight"] = take(L, hidden, dim)
    for k, v in per.items():
        for l in range(L):
            P["layers.%d.%s" % (l, k)] = v[l].clone()
    P["norm.weight"] = take(dim)
    take(S, hd // 2)  # freq_cis_real (unused: recomputed)
    take(S, hd // 2)  # freq_cis_imag
    if not tied:
        P["output.weight"] = take(V, dim)
    if pos[0] != a.size:
        raise ValueError("%s: %d trailing floats" % (path, a.size - pos[0]))
    cfg = dict(dim=dim, hidden_dim=hidden, n_layers=L, n_heads=H, n_kv_heads=KH, vocab_size=V,
               seq_len=S, rope_theta=10000.0, norm_eps=1e-5, rope="interleaved", tied=tied)
    return cfg, P


# ----------------------------------------------------------------------------- safetensors

ST_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "F64": ("<f8", 8)}


def read_safetensors(path):
    """-> {name: float32/float64 numpy array} (BF16 widened exactly)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack_from("<Q", data, 0)[0]
    hdr = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        npdt, _ = ST_DTYPES[info["dtype"]]
        arr = np.frombuffer(data[base + b:base + e], dtype=npdt)
        if info["dtype"] == "BF16":
            arr = bf16_bits_to_f32(arr)
        out[name] = arr.reshape(info["shape"])
    return out


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: list of (name, float array); stored in the given order, all in `dtype`."""
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    blobs = []
    off = 0
    for name, arr in tensors:
        arr = np.asarray(arr)
        if dtype == "F32":
            b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        elif dtype == "F16":
            b = np.ascontiguousarray(arr, dtype=np.float32).astype("<f2").tobytes()
        elif dtype == "BF16":
            b = f32_to_bf16_bits(np.asarray(arr, dtype=np.float32)).astype("<u2").tobytes()
        elif dtype == "F64":
            b = np.ascontiguousarray(arr, dtype="<f8").tobytes()
        else:
            raise ValueError(dtype)
        hdr[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


# ----------------------------------------------------------------------------- Hugging Face

def load_hf(folder):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    idx = os.path.join(folder, "model.safetensors.index.json")
    raw = {}
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        for fn in sorted(set(wm.values())):
            raw.update(read_safetensors(os.path.join(folder, fn)))
    else:
        raw = read_safetensors(os.path.join(folder, "model.safetensors"))
    H = c["num_attention_heads"]
    cfg = dict(dim=c["hidden_size"], hidden_dim=c["intermediate_size"], n_layers=c["num_hidden_layers"],
               n_heads=H, n_kv_heads=c.get("num_key_value_heads", H), vocab_size=c["vocab_size"],
               seq_len=c["max_position_embeddings"], rope_theta=float(c.get("rope_theta", 10000.0)),
               norm_eps=float(c["rms_norm_eps"]), rope="half",
               tied=bool(c.get("tie_word_embeddings", False)) or "lm_head.weight" not in raw)
    inv = _inverse(hf_name, cfg)
    P = {}
    for k, v in raw.items():
        if k not in inv:
            raise KeyError("unexpected tensor " + k)
        P[inv[k]] = torch.from_numpy(np.asarray(v, dtype=np.float64))
    if cfg["tied"]:
        P.pop("output.weight", None)
    return cfg, P


# ----------------------------------------------------------------------------- GGUF

GGUF_T = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30


def read_gguf(path):
    """-> (kv dict, {name: (ggml_type, ne list, float32 array shaped [ne[-1], ..., ne[0]])})."""
    with open(path, "rb") as f:
        d = f.read()
    if d[:4] != b"GGUF":
        raise ValueError("not GGUF")
    p = [4]

    def rd(fmt):
        v = struct.unpack_from(fmt, d, p[0])[0]
        p[0] += struct.calcsize(fmt)
        return v

    def rstr():
        n = rd("<Q")
        s = d[p[0]:p[0] + n].decode("utf-8")
        p[0] += n
        return s

    def rval(t):
        if t == 8:
            return rstr()
        if t == 9:
            at = rd("<I")
            n = rd("<Q")
            return [rval(at) for _ in range(n)]
        return rd(GGUF_T[t])

    version = rd("<I")
    if version not in (2, 3):
        raise ValueError("GGUF version %d" % version)
    nt, nkv = rd("<Q"), rd("<Q")
    kv = {}
    for _ in range(nkv):
        k = rstr()
        kv[k] = rval(rd("<I"))
    infos = []
    for _ in range(nt):
        name = rstr()
        nd = rd("<I")
        ne = [rd("<Q") for _ in range(nd)]
        infos.append((name, ne, rd("<I"), rd("<Q")))
    align = kv.get("general.alignment", 32)
    base = (p[0] + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        o = base + off
        if t == GGML_F32:
            a = np.frombuffer(d, "<f4", n, o)
        elif t == GGML_F16:
            a = np.frombuffer(d, "<f2", n, o).astype(np.float32)
        elif t == GGML_BF16:
            a = bf16_bits_to_f32(np.frombuffer(d, "<u2", n, o))
        elif t == GGML_Q8_0:
            a = dequantize_q8_0(d[o:o + n // QK8_0 * 34], n)
        else:
            raise ValueError("ggml type %d unsupported" % t)
        tensors[name] = (t, ne, a.reshape(list(reversed(ne))))
    return kv, tensors


def load_gguf(path):
    kv, T = read_gguf(path)
    arch = kv["general.architecture"]
    H = kv[arch + ".attention.head_count"]
    cfg = dict(dim=kv[arch + ".embedding_length"], hidden_dim=kv[arch + ".feed_forward_length"],
               n_layers=kv[arch + ".block_count"], n_heads=H,
               n_kv_heads=kv.get(arch + ".attention.head_count_kv", H),
               vocab_size=T["token_embd.weight"][1][1], seq_len=kv[arch + ".context_length"],
               rope_theta=float(kv.get(arch + ".rope.freq_base", 10000.0)),
               norm_eps=float(kv[arch + ".attention.layer_norm_rms_epsilon"]),
               rope="interleaved", tied="output.weight" not in T)
    inv = _inverse(gguf_name, cfg)
    P = {inv[k]: torch.from_numpy(v[2].astype(np.float64)) for k, v in T.items()}
    return cfg, P


def load_any(path):
    if os.path.isdir(path):
        return load_hf(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    return load_gguf(path) if magic == b"GGUF" else load_llama2c(path)


# ----------------------------------------------------------------------------- llama2.c tokenizer

class Llama2cTokenizer:
    """tokenizer.bin of llama2.c: int32 max_token_length, then per token float32 score,
    int32 byte length, bytes.  encode/decode mirror run.c."""

    def __init__(self, path, vocab_size):
        with open(path, "rb") as f:
            d = f.read()
        self.max_len = struct.unpack_from("<i", d, 0)[0]
        p = 4
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            s, n = struct.unpack_from("<fi", d, p)
            p += 8
            self.pieces.append(d[p:p + n])
            self.scores.append(s)
            p += n
        self.lookup = {}
        for i, b in enumerate(self.pieces):
            self.lookup.setdefault(b, i)

    def encode(self, text, bos=True, eos=False):
        ids = []
        if bos:
            ids.append(1)
        toks = []
        if text:
            toks.append(self.lookup[b" "])  # dummy prefix, merged like any other token
        for ch in text:
            cb = ch.encode("utf-8")
            if cb in self.lookup:
                toks.append(self.lookup[cb])
            else:
                toks += [b + 3 for b in cb]
        while True:
            best, bi, bid = -1e10, -1, -1
            for i in range(len(toks) - 1):
                m = self.pieces[toks[i]] + self.pieces[toks[i + 1]]
                j = self.lookup.get(m)
                if j is not None and self.scores[j] > best:
                    best, bi, bid = self.scores[j], i, j
            if bi < 0:
                break
            toks[bi:bi + 2] = [bid]
        ids += toks
        if eos:
            ids.append(2)
        return ids

    def decode_piece(self, prev, tok):
        b = self.pieces[tok]
        if prev == 1 and b[:1] == b" ":
            b = b[1:]
        if len(b) == 6 and b[:3] == b"<0x" and b[5:] == b">":
            try:
                return bytes([int(b[3:5], 16)])
            except ValueError:
                pass
        return b

    def decode(self, ids, prev=1):
        out = b""
        for t in ids:
            out += self.decode_piece(prev, t)
            prev = t
        return out.decode("utf-8", "replace")


if __name__ == "__main__":
    import sys
    cfg, P = load_any(sys.argv[1])
    print(json.dumps(cfg))
    ids = [1] + [int(x) for x in sys.argv[2:]]
    lp = log_probs(cfg, P, ids)
    print(token_logprobs(lp, ids))
