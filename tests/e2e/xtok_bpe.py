#!/usr/bin/env python3
"""Writes a tiny byte-level BPE tokenizer.json (GPT-2 byte stand-ins, ByteLevel
pre-tokenizer and decoder) with merges learned greedily from a text file: a tokenizer of
another kind and size than the demo's 512-piece SentencePiece one, for the cross-tokenizer
tests (tests/e2e/update_xtok.sh). Usage: xtok_bpe.py CORPUS N_MERGES OUT.json"""
import collections, json, re, sys

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))

corpus, n_merges, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b2u = bytes_to_unicode()
text = open(corpus, encoding="utf-8", errors="replace").read()[:120000]
# words as GPT-2's regex splits them (a simplified ASCII form is enough to learn merges)
words = collections.Counter(re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text))
seqs = {w: [b2u[b] for b in w.encode("utf-8")] for w in words}
vocab = {b2u[b]: b for b in range(256)}
merges = []
for _ in range(n_merges):
    pairs = collections.Counter()
    for w, c in words.items():
        s = seqs[w]
        for a, b in zip(s, s[1:]):
            pairs[(a, b)] += c
    if not pairs:
        break
    (a, b), _c = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
    merges.append(a + " " + b)
    vocab[a + b] = len(vocab)
    for w in seqs:
        s, o, i = seqs[w], [], 0
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                o.append(a + b)
                i += 2
            else:
                o.append(s[i])
                i += 1
        seqs[w] = o
bos = len(vocab)
tok = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": bos, "content": "<|bos|>", "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}},
                                                                 {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                       "special_tokens": {"<|bos|>": {"id": "<|bos|>", "ids": [bos], "tokens": ["<|bos|>"]}}},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": {**vocab, "<|bos|>": bos}, "merges": merges},
}
json.dump(tok, open(out, "w"), ensure_ascii=False)
