#!/usr/bin/python3
"""Trains two small SentencePiece BPE models with Debian's python3-sentencepiece, to test the
parts of the .model format that the shared models do not use, plus a stress text for them.

Usage: /usr/bin/python3 train_nfkc_model.py CORPUS PREFIX
Writes
  PREFIX.model    nmt_nfkc normalizer (precompiled charsmap), byte_fallback, user-defined
                  pieces "<sep>" and "Natasha", control piece "<ctl>", sentencepiece defaults
                  for whitespace (add_dummy_prefix, remove_extra_whitespaces)
  PREFIX-b.model  nfkc_cf normalizer (case folding charsmap), no byte fallback (unknown runs ->
                  one <unk>), no dummy prefix, extra whitespace kept, unk_surface "[?]"
  PREFIX.txt      text to compare on: 3000 corpus lines, hand-written Unicode edge cases,
                  malformed UTF-8, and 3000 seeded random lines drawn from many scripts,
                  compatibility characters, combining marks and odd spaces
Training uses the first 200 kB of CORPUS with a fixed seed; it takes a few seconds.
"""
import os
import random
import sys

import sentencepiece as spm

EDGE = [
    "", " ", "   ", "  leading", "trailing  ", "multi   spaces  inside", "\ttab\tand\nnot",
    "ﬁne ﬂour ＡＢＣ ａｂｃ ① ½ ™ ℃ Å ｶﾀｶﾅ ﾊﾟ", "e\u0301 vs é, A\u030a vs Å", "\u3000ideographic\u3000space",
    "zero\u200bwidth\u200djoiner\ufeffbom", "ctrl\x01\x02\x7f chars", "emoji 😀🎉👍🏽 and ZWJ 👩\u200d💻",
    "日本語のテキスト、中文文本。한국어 텍스트", "Ελληνικά Русский العربية עברית हिन्दी",
    "<sep>Natasha<sep> said <ctl> to <s> and </s> <unk>", "Natasha's NATASHA natasha",
    "\u2028line sep\u2029para sep\x85nel", "ﾞﾟ halfwidth marks", "\U0001d400\U0001d41a math bold",
    "Ⅻ ⅻ ㎏ ㎞ ㍻ ㋿", "\ufffd replacement", "ǅ ǆ Ǆ titlecase", "ß ẞ ſt ﬅ", "İ ı",
]
BAD = [b"\xff\xfe bad", b"trunc \xc3", b"\xe2\x82 mid", b"surrogate \xed\xa0\x80 x",
       b"overlong \xc0\xaf \xe0\x80\xaf", b"\xf4\x90\x80\x80 too big", b"\x80\x80 lone cont"]
BLOCKS = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x5ff),
          (0x600, 0x6ff), (0x900, 0x97f), (0x1100, 0x11ff), (0x2000, 0x206f), (0x2100, 0x24ff),
          (0x3000, 0x30ff), (0x3130, 0x318f), (0x3200, 0x33ff), (0x4e00, 0x4e80), (0xac00, 0xac40),
          (0xf900, 0xfaff), (0xfb00, 0xfb4f), (0xfe00, 0xfe6f), (0xff00, 0xffef), (0x1d400, 0x1d4ff),
          (0x1f300, 0x1f6ff)]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    corpus, prefix = sys.argv[1:]
    text = open(corpus, "rb").read()
    train = prefix + ".train.txt"
    with open(train, "wb") as f:
        f.write(text[:200000])
    common = dict(input=train, model_type="bpe", vocab_size=400, character_coverage=1.0,
                  num_threads=1, minloglevel=2, seed_sentencepiece_size=10000)
    spm.SentencePieceTrainer.train(model_prefix=prefix, normalization_rule_name="nmt_nfkc",
                                   byte_fallback=True, user_defined_symbols=["<sep>", "Natasha"],
                                   control_symbols=["<ctl>"], **common)
    spm.SentencePieceTrainer.train(model_prefix=prefix + "-b", normalization_rule_name="nfkc_cf",
                                   byte_fallback=False, add_dummy_prefix=False,
                                   remove_extra_whitespaces=False, unk_surface="[?]", **common)
    os.remove(train)
    rnd = random.Random(1234)
    lines = [l for l in text.split(b"\n")[:3000]]
    lines += [e.encode("utf-8") for e in EDGE] + BAD
    for _ in range(3000):
        n = rnd.randint(0, 24)
        chars = []
        for _ in range(n):
            lo, hi = rnd.choice(BLOCKS)
            c = rnd.randint(lo, hi)
            if 0xd800 <= c < 0xe000 or c in (0x0a, 0x0d):
                c = 0x20
            chars.append(chr(c))
            if rnd.random() < 0.15:
                chars.append(" " * rnd.randint(1, 3))
        lines.append("".join(chars).encode("utf-8"))
    lines = [l.replace(b"\n", b" ").replace(b"\x00", b" ") for l in lines]
    with open(prefix + ".txt", "wb") as f:
        f.write(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    main()
