#!/usr/bin/python3
"""Writes the small safetensors fixtures of tests/fixtures/io/ (a few KB).

Run with Debian's Python (it has torch):  /usr/bin/python3 tools/io/make_st_fixtures.py
python3-safetensors is not packaged for Debian bookworm, so the format is written here
by hand, following the reference implementation (huggingface/safetensors, tensor.rs):
  - tensors sorted by dtype, larger/"later" dtypes first (the reference's Dtype enum
    order, descending), then by name;
  - the header is compact JSON (no spaces), "__metadata__" first, padded with spaces
    to a multiple of 8 bytes;
  - data_offsets are relative to the first byte after the header, back to back.
Values come from torch (its own float16/bfloat16 rounding), and every fixture gets a
"<name>.expected.json" sidecar: for each tensor its dtype, shape and its values as
float32 (as torch converts them), which the C tests compare bit for bit.
"""
import json
import os
import struct
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "io")

# dtype name -> (torch dtype, rank in the reference's Dtype enum)
DTYPES = {
    "BOOL": (torch.bool, 0), "U8": (torch.uint8, 4), "I8": (torch.int8, 5),
    "I16": (torch.int16, 9), "F16": (torch.float16, 11), "BF16": (torch.bfloat16, 12),
    "I32": (torch.int32, 13), "F32": (torch.float32, 15), "F64": (torch.float64, 17),
    "I64": (torch.int64, 18),
}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: go through int16 bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def header_json(tensors, metadata):
    """tensors: dict name -> (dtype name, tensor). Returns (ordered list, header dict)."""
    order = sorted(tensors.items(), key=lambda kv: (-DTYPES[kv[1][0]][1], kv[0].encode()))
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = dict(sorted(metadata.items()))
    off = 0
    for name, (dt, t) in order:
        n = len(tensor_bytes(t))
        hdr[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    return order, hdr


def write_st(path, tensors, metadata=None, pad=True):
    order, hdr = header_json(tensors, metadata)
    h = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, (_, t) in order:
            f.write(tensor_bytes(t))
    expected = {}
    for name, (dt, t) in tensors.items():
        expected[name] = {"dtype": dt, "shape": list(t.shape),
                          "values": [float(v) for v in t.reshape(-1).to(torch.float32).tolist()]}
    with open(path + ".expected.json", "w") as f:
        json.dump({"metadata": metadata or {}, "tensors": expected}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return os.path.getsize(path)


def main():
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)
    g = torch.Generator().manual_seed(1234)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    # 1. every common dtype, a scalar, an empty tensor, a non-ASCII name, an opaque U8
    basic = {
        "embed.weight": ("F32", randn(4, 3)),
        "layer.0.f16": ("F16", (randn(2, 5) * 100).to(torch.float16)),
        "layer.0.bf16": ("BF16", randn(3, 2).to(torch.bfloat16)),
        "ids": ("I32", torch.tensor([-2, 0, 7, 123456], dtype=torch.int32)),
        "big": ("I64", torch.tensor([-(2 ** 40), 2 ** 33 + 1], dtype=torch.int64)),
        "dbl": ("F64", torch.tensor([0.1, -2.5], dtype=torch.float64)),
        "mask": ("U8", torch.tensor([1, 2, 255], dtype=torch.uint8)),
        "scalar": ("F32", torch.tensor(3.5)),
        "empty": ("F32", torch.zeros(0, 4)),
        "\u00e9mbed.\u00fc": ("F16", torch.tensor([65504.0, 6.0e-8], dtype=torch.float16)),
    }
    write_st(os.path.join(OUT, "basic.safetensors"), basic,
             {"format": "pt", "note": "fixture \"quoted\"\n\u00e9"})

    # 2. only dtypes the C writer can write: the C test rewrites it and compares bytes
    writer_ref = {
        "w.f32": ("F32", randn(2, 3)),
        "w.f16": ("F16", randn(5).to(torch.float16)),
        "w.bf16": ("BF16", randn(3).to(torch.bfloat16)),
        "a.bf16": ("BF16", randn(1, 1).to(torch.bfloat16)),
        "n.i32": ("I32", torch.tensor([1, -1], dtype=torch.int32)),
        "n.i64": ("I64", torch.tensor([5], dtype=torch.int64)),
        "n.f64": ("F64", torch.tensor([1.5, 2.25, -0.0], dtype=torch.float64)),
    }
    write_st(os.path.join(OUT, "writer_ref.safetensors"), writer_ref, {"format": "pt", "b": "2", "a": "1"})

    # 3. an old-style file without header padding: data at odd addresses
    unaligned = {
        "u.f32": ("F32", randn(7)),
        "u.f16": ("F16", randn(5).to(torch.float16)),
        "u.bf16": ("BF16", randn(3).to(torch.bfloat16)),
    }
    _, hdr = header_json(unaligned, None)
    while len(json.dumps(hdr, separators=(",", ":")).encode()) % 2 == 0:
        hdr = None
        unaligned["u.pad" + "x" * len(unaligned)] = ("F32", randn(1))
        _, hdr = header_json(unaligned, None)
    write_st(os.path.join(OUT, "unaligned.safetensors"), unaligned, None, pad=False)

    # 4. a sharded pair with its index, as transformers writes it
    shard1 = {
        "model.embed_tokens.weight": ("F32", randn(6, 4)),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", randn(4, 4).to(torch.bfloat16)),
    }
    shard2 = {
        "model.layers.0.mlp.down_proj.weight": ("F16", randn(4, 8).to(torch.float16)),
        "model.norm.weight": ("F32", randn(4)),
        "lm_head.weight": ("F32", randn(6, 4)),
    }
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    total = 0
    weight_map = {}
    for fname, tensors in zip(names, [shard1, shard2]):
        write_st(os.path.join(OUT, "sharded", fname), tensors, {"format": "pt"})
        total += sum(len(tensor_bytes(t)) for _, t in tensors.values())
        for k in tensors:
            weight_map[k] = fname
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
