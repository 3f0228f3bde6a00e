#!/usr/bin/python3
"""Reference ids and decodes from Debian's python3-sentencepiece, one corpus line at a time.

Usage: /usr/bin/python3 sp_reference.py MODEL CORPUS OUT [--default-unk-surface] [--whole]

OUT gets one line per line of CORPUS (split on b'\\n'; a final newline ends the last line):
    <ids separated by spaces> TAB <hex of the UTF-8 of DecodeIds(ids)>
The line's raw bytes are handed to sentencepiece (EncodeAsIds accepts bytes), so the C side
and this side see exactly the same input.

--whole: the whole file is ONE text (newlines included): one reference line.
--default-unk-surface: decode as if the model did not store trainer_spec.unk_surface (field
44), i.e. with sentencepiece's default " \\u2047 ". A llama2.c tokenizer.bin cannot carry that
field, so this is the reference for a .bin exported from the same model.
Needs only the sentencepiece module (no google.protobuf): field 44 is dropped from the
serialized ModelProto with a minimal wire-format rewrite below.
"""
import sys

import sentencepiece as spm


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _enc_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def _fields(b):
    """Yields (field, raw bytes of the whole field including its tag, payload or None)."""
    i = 0
    while i < len(b):
        start = i
        tag, i = _varint(b, i)
        f, wt = tag >> 3, tag & 7
        payload = None
        if wt == 0:
            _, i = _varint(b, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            n, i = _varint(b, i)
            payload = b[i:i + n]
            i += n
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield f, b[start:i], payload


def drop_unk_surface(model_bytes):
    out = bytearray()
    for f, raw, payload in _fields(model_bytes):
        if f == 2:  # trainer_spec: rebuild without field 44
            spec = b"".join(r for ff, r, _ in _fields(payload) if ff != 44)
            out += bytes([(2 << 3) | 2]) + _enc_varint(len(spec)) + spec
        else:
            out += raw
    return bytes(out)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 3:
        sys.exit(__doc__)
    model, corpus, out = args
    data = open(model, "rb").read()
    if "--default-unk-surface" in sys.argv:
        data = drop_unk_surface(data)
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(data)
    text = open(corpus, "rb").read()
    lines = text.split(b"\n")
    if text.endswith(b"\n"):
        lines.pop()
    if "--whole" in sys.argv:
        lines = [text]
    with open(out, "w") as f:
        for line in lines:
            ids = sp.EncodeAsIds(line)
            dec = sp.DecodeIds(ids).encode("utf-8", "surrogateescape")
            f.write(" ".join(map(str, ids)) + "\t" + dec.hex() + "\n")


if __name__ == "__main__":
    main()
