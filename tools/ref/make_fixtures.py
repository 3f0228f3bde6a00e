#!/usr/bin/python3
"""Writes the forward-pass fixtures into tests/fixtures/model/ (deterministic: running it
again reproduces the same bytes).  Usage, from the repository root:

    /usr/bin/python3 tools/ref/make_fixtures.py [--check]

--check regenerates into a temporary directory and compares with the committed files.

Models written (all random, seeded):
  tiny   dim 32, hidden 88, 2 layers, 4 heads, 2 kv heads (GQA, head_dim 8), vocab 295,
         seq_len 128, rope theta 500000, rms eps 1e-6, UNTIED classifier:
           tiny_hf/          HF folder, F32, model.safetensors
           tiny_hf_bf16/     HF folder, BF16
           tiny_hf_sharded/  HF folder, F16, 2 shards + model.safetensors.index.json
           tiny.gguf         GGUF v3, all F32
           tiny_f16.gguf     GGUF v3, F16 matrices, F32 norms
           tiny_q8_0.gguf    GGUF v3, Q8_0 matrices whose rows (ne[0]) are multiples of 32,
                             F16 for ffn_down (rows of 88), F32 norms
  tiny2c same shapes but rope theta 10000, eps 1e-5 and TIED classifier (the llama2.c
         format cannot store theta/eps/untied-ness-with-other-values):
           tiny2c.bin        llama2.c legacy format (+ tokenizer.bin beside it)
           tiny2c_hf/        HF folder, F32, tie_word_embeddings true (no lm_head.weight)
Each HF folder carries a llama2.c tokenizer.bin (no tokenizer.model: no protobuf here);
tokenizer.bin beside tiny2c.bin; GGUF files carry tokenizer.ggml.* metadata.

Fixtures: <name>.logprobs.json per model (see README.md in the output directory),
stories260K.logprobs.json and babyllama105.logprobs.json for the real models in ../shared.
"""
import json
import os
import re
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref as R  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHARED = os.path.join(ROOT, "..", "shared")
OUT_REL = "tests/fixtures/model"

# ----------------------------------------------------------------------------- synthetic vocabulary

CHARS = ["\u2581", "e", "t", "a", "o", "h", "n", "s", "i", "r", "d", "l", "w", "u", "c", "m"]
MERGES = ["\u2581t", "he", "\u2581a", "\u2581s", "\u2581w", "nd", "\u2581the", "in", "\u2581h", "er",
          "an", "\u2581and", "ou", "\u2581c", "as", "\u2581was", "it", "\u2581m", "ed", "\u2581he"]


def synthetic_vocab():
    """SentencePiece-like: <unk> <s> </s>, <0x00>..<0xFF>, merges (score -0, -1, ...), then
    single characters (lower scores), like llama2.c's tok512.  Returns (pieces, scores, types)
    with pieces in SentencePiece spelling (U+2581 for space); types are GGUF token types
    (1 normal, 2 unknown, 3 control, 6 byte)."""
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    scores = [0.0] * len(pieces)
    types = [2, 3, 3] + [6] * 256
    known = set(CHARS)
    for i, m in enumerate(MERGES):
        assert any(m[:k] in known and m[k:] in known for k in range(1, len(m))), m
        known.add(m)
        pieces.append(m)
        scores.append(-float(i))
        types.append(1)
    for j, c in enumerate(CHARS):
        pieces.append(c)
        scores.append(-float(len(MERGES) + j))
        types.append(1)
    return pieces, scores, types


def write_tokenizer_bin(path, pieces, scores):
    """llama2.c tokenizer.bin as written by llama2.c's tokenizer.py export()."""
    toks = []
    for i, p in enumerate(pieces):
        if i == 1:
            p = "\n<s>\n"
        elif i == 2:
            p = "\n</s>\n"
        toks.append(p.replace("\u2581", " ").encode("utf-8"))
    with open(path, "wb") as f:
        f.write(struct.pack("<I", max(len(t) for t in toks)))
        for t, s in zip(toks, scores):
            f.write(struct.pack("<fI", s, len(t)))
            f.write(t)


# ----------------------------------------------------------------------------- random model

def random_model(cfg, seed):
    """float32 master weights (numpy), Meta/interleaved layout, names as llama_ref."""
    rng = np.random.default_rng(seed)
    D, F, V = cfg["dim"], cfg["hidden_dim"], cfg["vocab_size"]
    hd = D // cfg["n_heads"]
    kvd = cfg["n_kv_heads"] * hd

    def mat(o, i, gain=1.0):
        return (rng.standard_normal((o, i)) * gain / np.sqrt(i)).astype(np.float32)

    def normw():
        return (1.0 + 0.2 * rng.standard_normal(D)).astype(np.float32)

    P = {"tok_embeddings.weight": (0.05 * rng.standard_normal((V, D))).astype(np.float32)}
    for l in range(cfg["n_layers"]):
        p = "layers.%d." % l
        P[p + "attention_norm.weight"] = normw()
        P[p + "attention.wq.weight"] = mat(D, D, 2.0)
        P[p + "attention.wk.weight"] = mat(kvd, D, 2.0)
        P[p + "attention.wv.weight"] = mat(kvd, D)
        P[p + "attention.wo.weight"] = mat(D, D)
        P[p + "ffn_norm.weight"] = normw()
        P[p + "feed_forward.w1.weight"] = mat(F, D)
        P[p + "feed_forward.w2.weight"] = mat(D, F)
        P[p + "feed_forward.w3.weight"] = mat(F, D)
    P["norm.weight"] = normw()
    P["output.weight"] = mat(V, D, 3.0)
    return P


# ----------------------------------------------------------------------------- writers

def write_llama2c(path, cfg, P):
    D, F, L = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"]
    H, S = cfg["n_heads"], cfg["seq_len"]
    hd = D // H
    V = cfg["vocab_size"] if cfg["tied"] else -cfg["vocab_size"]
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", D, F, L, H, cfg["n_kv_heads"], V, S))

        def w(a):
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
        w(P["tok_embeddings.weight"])
        for part in ["attention_norm.weight", "attention.wq.weight", "attention.wk.weight",
                     "attention.wv.weight", "attention.wo.weight", "ffn_norm.weight",
                     "feed_forward.w1.weight", "feed_forward.w2.weight", "feed_forward.w3.weight"]:
            for l in range(L):
                w(P["layers.%d.%s" % (l, part)])
        w(P["norm.weight"])
        freqs = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float32)[: hd // 2] / hd))
        ang = np.outer(np.arange(S, dtype=np.float32), freqs.astype(np.float32)).astype(np.float32)
        w(np.cos(ang))
        w(np.sin(ang))
        if not cfg["tied"]:
            w(P["output.weight"])


def hf_config(cfg, dtype):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg["dim"],
        "intermediate_size": cfg["hidden_dim"],
        "num_hidden_layers": cfg["n_layers"],
        "num_attention_heads": cfg["n_heads"],
        "num_key_value_heads": cfg["n_kv_heads"],
        "head_dim": cfg["dim"] // cfg["n_heads"],
        "vocab_size": cfg["vocab_size"],
        "max_position_embeddings": cfg["seq_len"],
        "rms_norm_eps": cfg["norm_eps"],
        "rope_theta": cfg["rope_theta"],
        "rope_scaling": None,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": cfg["tied"],
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": None,
        "initializer_range": 0.02,
        "use_cache": True,
        "transformers_version": "4.40.0",
    }


def write_hf(folder, cfg, P, dtype, shards, vocab):
    """HF Llama folder: q/k rows permuted to the half-split layout."""
    os.makedirs(folder, exist_ok=True)
    Ph = R.to_layout(dict(cfg, rope="interleaved"), {k: torch.from_numpy(v) for k, v in P.items()}, "half")
    names = R.param_names(cfg)
    items = [(R.hf_name(n), Ph[n].numpy()) for n in names]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(cfg, dtype), f, indent=2)
        f.write("\n")
    meta = {"format": "pt"}
    if shards == 1:
        R.write_safetensors(os.path.join(folder, "model.safetensors"), items, dtype, meta)
    else:
        # shard 1: embeddings + first half of the layers; shard 2: the rest
        cut = 1 + len(R.layer_names(0)) * (cfg["n_layers"] // 2)
        parts = [items[:cut], items[cut:]]
        wm, total = {}, 0
        for i, part in enumerate(parts):
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
            total += R.write_safetensors(os.path.join(folder, fn), part, dtype, meta)
            for n, _ in part:
                wm[n] = fn
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
            f.write("\n")
    write_tokenizer_bin(os.path.join(folder, "tokenizer.bin"), vocab[0], vocab[1])


def _gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _gguf_kv(key, typ, val):
    out = _gguf_str(key) + struct.pack("<I", typ)
    fmt = {4: "<I", 5: "<i", 6: "<f", 7: "<?"}
    if typ == 8:
        return out + _gguf_str(val)
    if typ == 9:
        at, arr = val
        out += struct.pack("<IQ", at, len(arr))
        for v in arr:
            out += _gguf_str(v) if at == 8 else struct.pack(fmt[at], v)
        return out
    return out + struct.pack(fmt[typ], val)


def write_gguf(path, cfg, P, mode, vocab, name):
    """mode: "F32", "F16" (F16 matrices, F32 norms) or "Q8_0" (Q8_0 where ne[0] % 32 == 0,
    else F16; F32 norms).  Layout: Meta/interleaved rows (what llama.cpp's converter
    produces)."""
    ftype = {"F32": 0, "F16": 1, "Q8_0": 7}[mode]
    pieces, scores, types = vocab
    kvs = [
        ("general.architecture", 8, "llama"),
        ("general.name", 8, name),
        ("llama.context_length", 4, cfg["seq_len"]),
        ("llama.embedding_length", 4, cfg["dim"]),
        ("llama.block_count", 4, cfg["n_layers"]),
        ("llama.feed_forward_length", 4, cfg["hidden_dim"]),
        ("llama.rope.dimension_count", 4, cfg["dim"] // cfg["n_heads"]),
        ("llama.attention.head_count", 4, cfg["n_heads"]),
        ("llama.attention.head_count_kv", 4, cfg["n_kv_heads"]),
        ("llama.attention.layer_norm_rms_epsilon", 6, cfg["norm_eps"]),
        ("llama.rope.freq_base", 6, cfg["rope_theta"]),
        ("general.file_type", 4, ftype),
    ]
    if mode == "Q8_0":
        kvs.append(("general.quantization_version", 4, 2))
    kvs += [
        ("tokenizer.ggml.model", 8, "llama"),
        ("tokenizer.ggml.tokens", 9, (8, pieces)),
        ("tokenizer.ggml.scores", 9, (6, scores)),
        ("tokenizer.ggml.token_type", 9, (5, types)),
        ("tokenizer.ggml.bos_token_id", 4, 1),
        ("tokenizer.ggml.eos_token_id", 4, 2),
        ("tokenizer.ggml.unknown_token_id", 4, 0),
        ("tokenizer.ggml.add_bos_token", 7, True),
    ]
    # tensor order as llama.cpp's converter: token_embd, blocks, output_norm, output
    tensors = []
    for n in R.param_names(cfg):
        a = np.ascontiguousarray(P[n], dtype=np.float32)
        ne = list(reversed(a.shape))
        if a.ndim == 1 or mode == "F32":
            t, b = R.GGML_F32, a.astype("<f4").tobytes()
        elif mode == "Q8_0" and ne[0] % 32 == 0:
            t, b = R.GGML_Q8_0, R.quantize_q8_0(a)
        else:
            t, b = R.GGML_F16, a.astype("<f2").tobytes()
        tensors.append((R.gguf_name(n), ne, t, b))
    align = 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        head += _gguf_kv(k, t, v)
    off = 0
    data = b""
    for n, ne, t, b in tensors:
        head += _gguf_str(n) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        head += struct.pack("<IQ", t, off)
        pad = (-len(b)) % align
        data += b + b"\0" * pad
        off += len(b) + pad
    head += b"\0" * ((-len(head)) % align)
    with open(path, "wb") as f:
        f.write(head + data)


# ----------------------------------------------------------------------------- fixtures JSON

def r10(x):
    return float("%.10g" % x)


def dump_json(path, obj):
    s = json.dumps(obj, indent=1, ensure_ascii=False)
    # one line per list of numbers
    s = re.sub(r"\[\s*([-0-9.eE+,\s]*?)\s*\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", s)
    with open(path, "w") as f:
        f.write(s + "\n")


def seq_entry(cfg, P, ids, text=None):
    lp = R.log_probs(cfg, P, ids)
    T = len(ids)
    pos = sorted(set([0, (T - 1) // 2, T - 1]))
    tl = R.token_logprobs(lp, ids)
    e = {}
    if text is not None:
        e["text"] = text
    e["ids"] = list(ids)
    e["token_logprobs"] = [r10(x) for x in tl]
    e["sum_logprob"] = r10(sum(tl))
    e["rows_positions"] = pos
    e["logprobs_rows"] = [[r10(x) for x in lp[p].tolist()] for p in pos]
    return e, lp


def cfg_json(cfg):
    return {k: cfg[k] for k in ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                "seq_len", "rope_theta", "norm_eps", "tied", "rope"]}


FIXTURE_NOTE = ("token_logprobs[t-1] = log p(ids[t] | ids[<t]) for t = 1..len(ids)-1; logprobs_rows[k] = "
                "log_softmax of the logits at position rows_positions[k] (the distribution of the token "
                "FOLLOWING ids[0..p]); float64 reference (tools/ref/llama_ref.py) computed from the weights "
                "as stored in the file (after F16/BF16/Q8_0 rounding); numbers rounded to 10 significant digits")


def main():
    check = "--check" in sys.argv
    out = tempfile.mkdtemp(prefix="muscle-fx-") if check else os.path.join(ROOT, OUT_REL)
    os.makedirs(out, exist_ok=True)
    vocab = synthetic_vocab()
    V = len(vocab[0])
    base = dict(dim=32, hidden_dim=88, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=V, seq_len=128)
    cfg_tiny = dict(base, rope_theta=500000.0, norm_eps=1e-6, tied=False)
    cfg_2c = dict(base, rope_theta=10000.0, norm_eps=1e-5, tied=True)
    Pm = random_model(cfg_tiny, seed=20240711)
    P2c = {k: v for k, v in Pm.items() if k != "output.weight"}

    # ---- write the model files
    for d in ["tiny_hf", "tiny_hf_bf16", "tiny_hf_sharded", "tiny2c_hf"]:
        shutil.rmtree(os.path.join(out, d), ignore_errors=True)
    write_hf(os.path.join(out, "tiny_hf"), cfg_tiny, Pm, "F32", 1, vocab)
    write_hf(os.path.join(out, "tiny_hf_bf16"), cfg_tiny, Pm, "BF16", 1, vocab)
    write_hf(os.path.join(out, "tiny_hf_sharded"), cfg_tiny, Pm, "F16", 2, vocab)
    write_hf(os.path.join(out, "tiny2c_hf"), cfg_2c, P2c, "F32", 1, vocab)
    write_gguf(os.path.join(out, "tiny.gguf"), cfg_tiny, Pm, "F32", vocab, "muscle tiny F32")
    write_gguf(os.path.join(out, "tiny_f16.gguf"), cfg_tiny, Pm, "F16", vocab, "muscle tiny F16")
    write_gguf(os.path.join(out, "tiny_q8_0.gguf"), cfg_tiny, Pm, "Q8_0", vocab, "muscle tiny Q8_0")
    write_llama2c(os.path.join(out, "tiny2c.bin"), cfg_2c, P2c)
    write_tokenizer_bin(os.path.join(out, "tokenizer.bin"), vocab[0], vocab[1])

    # ---- sequences (seeded random ids, first token BOS) + one tokenized text
    rng = np.random.default_rng(7)
    seqs = [[1] + [int(x) for x in rng.integers(3, V, size=n - 1)] for n in (1, 17, 40)]
    tok = R.Llama2cTokenizer(os.path.join(out, "tokenizer.bin"), V)
    text = "the cat was in the sand and he sat, wet"
    text_ids = tok.encode(text)
    assert tok.decode(text_ids[1:]) == text, tok.decode(text_ids[1:])

    models = [  # name, path, format, dtype, expected config
        ("tiny_hf", "tiny_hf", "hf", "F32", cfg_tiny),
        ("tiny_hf_bf16", "tiny_hf_bf16", "hf", "BF16", cfg_tiny),
        ("tiny_hf_sharded", "tiny_hf_sharded", "hf", "F16", cfg_tiny),
        ("tiny", "tiny.gguf", "gguf", "F32", cfg_tiny),
        ("tiny_f16", "tiny_f16.gguf", "gguf", "F16", cfg_tiny),
        ("tiny_q8_0", "tiny_q8_0.gguf", "gguf", "Q8_0", cfg_tiny),
        ("tiny2c", "tiny2c.bin", "llama2c", "F32", cfg_2c),
        ("tiny2c_hf", "tiny2c_hf", "hf", "F32", cfg_2c),
    ]
    results = {}
    for name, rel, fmt, dt, want in models:
        cfg, P = R.load_any(os.path.join(out, rel))
        for k in want:
            assert cfg[k] == want[k] or (isinstance(want[k], float) and abs(cfg[k] - want[k]) <= 1e-6 * abs(want[k])), (name, k, cfg[k], want[k])
        entries, lps = [], []
        for ids in seqs + [text_ids]:
            e, lp = seq_entry(cfg, P, ids, text if ids is text_ids else None)
            entries.append(e)
            lps.append(lp)
        results[name] = lps
        tokpath = (OUT_REL + "/" + rel + "/tokenizer.bin") if fmt == "hf" else (
            OUT_REL + "/tokenizer.bin" if fmt == "llama2c" else None)
        fx = {
            "model": OUT_REL + "/" + rel,
            "format": fmt,
            "dtype": dt,
            "tokenizer": tokpath,
            "config": cfg_json(cfg),
            "note": FIXTURE_NOTE + "; paths relative to the repository root",
            "sequences": entries,
        }
        dump_json(os.path.join(out, name + ".logprobs.json"), fx)

    # ---- sanity: differences between formats
    def maxdiff(a, b):
        return max(float((x - y).abs().max()) for x, y in zip(results[a], results[b]))
    print("max |logprob difference| between formats (all rows of all sequences):")
    for a, b in [("tiny_hf", "tiny"), ("tiny2c", "tiny2c_hf"), ("tiny_hf", "tiny_hf_bf16"),
                 ("tiny_hf", "tiny_hf_sharded"), ("tiny_hf", "tiny_f16"), ("tiny_f16", "tiny_hf_sharded"),
                 ("tiny", "tiny_q8_0"), ("tiny", "tiny2c")]:
        print("  %-16s vs %-16s %.3g" % (a, b, maxdiff(a, b)))
    assert maxdiff("tiny_hf", "tiny") < 1e-6 and maxdiff("tiny2c", "tiny2c_hf") < 1e-6
    # entropy of the tiny model's predictions (to show they are not degenerate)
    lp = results["tiny"][2]
    ent = float(-(lp.exp() * lp).sum(-1).mean())
    print("tiny: mean entropy %.3f nats (uniform %.3f)" % (ent, np.log(V)))

    # ---- real models from ../shared (read in place)
    real_models(out)
    tiny_random_gguf(out)

    if check:
        diff = os.system("diff -r -x README.md %s %s" % (out, os.path.join(ROOT, OUT_REL)))
        shutil.rmtree(out)
        print("check:", "identical" if diff == 0 else "DIFFERENT")
        sys.exit(1 if diff else 0)


REAL = [
    # name, model, tokenizer, vocab, sentences, greedy reference text file
    ("stories260K", "models/stories260K/stories260K.bin", "models/stories260K/tok512.bin", 512,
     ["Once upon a time, there was a little dog named Max. Max liked to run in the big green park.",
      "Tom had a red ball. He gave it to his friend Sue, and they played together all day. They were happy."],
     "models/stories260K/greedy_256_from_bos.txt"),
    ("babyllama105", "models/babyllama105/model.bin", "models/babyllama105/tok105.bin", 105,
     ["Once upon a time, there was a little dog named Max.",
      "Tom had a red ball. He gave it to his friend Sue."],
     "models/babyllama105/greedy_from_bos.txt"),
]


def real_models(out):
    for name, mpath, tpath, V, sentences, greedy_ref in REAL:
        full = os.path.join(SHARED, mpath)
        if not os.path.exists(full):
            print("skipping %s: %s missing" % (name, full))
            continue
        cfg, P = R.load_llama2c(full)
        tok = R.Llama2cTokenizer(os.path.join(SHARED, tpath), V)
        entries = []
        for s in sentences:
            ids = tok.encode(s)
            assert tok.decode(ids[1:]) == s
            e, _ = seq_entry(cfg, P, ids, s)
            entries.append(e)
        n_greedy = 40
        gids, margin = R.greedy(cfg, P, [1], n_greedy)
        gtext = tok.decode(gids)
        with open(os.path.join(SHARED, greedy_ref), encoding="utf-8") as f:
            reftext = f.read()
        agree = reftext.startswith(gtext)
        print("%s greedy (%d tokens) %s the reference output: %r (min top1-top2 logit margin %.3g)"
              % (name, n_greedy, "AGREES with" if agree else "DISAGREES with", gtext, margin))
        assert agree
        fx = {
            "model": "../shared/" + mpath,
            "format": "llama2c",
            "dtype": "F32",
            "tokenizer": "../shared/" + tpath,
            "config": cfg_json(cfg),
            "note": FIXTURE_NOTE + "; ids from the llama2.c encoder (run.c algorithm: BOS, dummy-prefix "
                    "space, merges by score) applied to 'text' with the tokenizer above; paths relative to the "
                    "repository root",
            "sequences": entries,
            "greedy_ids_from_bos": gids,
            "greedy_text_from_bos": gtext,
            "greedy_note": "argmax of float64 logits, %d tokens generated after BOS (id 1, not included); "
                           "smallest top1-top2 logit gap on the way: %.4g; decoded text agrees with the "
                           "beginning of ../shared/%s" % (n_greedy, margin, greedy_ref),
        }
        dump_json(os.path.join(out, name + ".logprobs.json"), fx)


def tiny_random_gguf(out):
    """../shared/models/tiny-random-gguf (F16, dim 8, 1 layer, vocab 32000): token_logprobs and the
    top-10 of each row only (full 32000-wide rows would be too big)."""
    rel = "models/tiny-random-gguf/llama-2-tiny-random.gguf"
    full = os.path.join(SHARED, rel)
    if not os.path.exists(full):
        print("skipping tiny-random-gguf: %s missing" % full)
        return
    cfg, P = R.load_gguf(full)
    rng = np.random.default_rng(11)
    entries = []
    for n in (8, 20):
        ids = [1] + [int(x) for x in rng.integers(3, cfg["vocab_size"], size=n - 1)]
        e, lp = seq_entry(cfg, P, ids)
        e["logprobs_rows"] = None
        e["top10_rows"] = []
        for p in e["rows_positions"]:
            v, i = torch.topk(lp[p], 10)
            e["top10_rows"].append({"ids": i.tolist(), "logprobs": [r10(x) for x in v.tolist()]})
        entries.append(e)
    fx = {
        "model": "../shared/" + rel,
        "format": "gguf",
        "dtype": "F16",
        "tokenizer": None,
        "config": cfg_json(cfg),
        "note": FIXTURE_NOTE + "; random ids (seeded); logprobs_rows omitted (vocab 32000): top10_rows[k] "
                "gives the 10 most likely ids at rows_positions[k] with their log-probs; paths relative to "
                "the repository root",
        "sequences": entries,
    }
    dump_json(os.path.join(out, "tiny-random-gguf.logprobs.json"), fx)


if __name__ == "__main__":
    main()
