#!/usr/bin/python3
"""Builds a Hugging Face tokenizer.json of the Llama kind from a SentencePiece BPE .model,
the way transformers' LlamaConverter (convert_slow_tokenizer.py) does, with only the
sentencepiece module (no transformers / tokenizers / protobuf needed):

  vocab   piece -> id for every piece
  merges  SentencePieceExtractor: for every piece, every split into two pieces that are both
          in the vocabulary, ordered by the merged piece's score (descending; ties keep
          vocabulary order, then the halves' ids), so BPE applied by merge rank reproduces
          sentencepiece's score-ordered merges
  model   BPE, unk_token, fuse_unk true, byte_fallback true
  added_tokens  <unk>, <s>, </s> (special, normalized false)
  default ("legacy") : normalizer Sequence[Prepend("▁"), Replace(" " -> "▁")], no pre-tokenizer,
                       merges as "left right" strings
  --metaspace        : no normalizer, pre_tokenizer Metaspace(replacement "▁",
                       prepend_scheme "first", split false), merges as [left, right] pairs
                       (the newer transformers output)

Usage: /usr/bin/python3 make_llama_json.py MODEL OUT_JSON [--metaspace]
"""
import json
import sys

import sentencepiece as spm


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    metaspace = "--metaspace" in sys.argv
    sp = spm.SentencePieceProcessor(model_file=args[0])
    n = sp.GetPieceSize()
    vocab = {sp.IdToPiece(i): i for i in range(n)}
    vocab_scores = {sp.IdToPiece(i): sp.GetScore(i) for i in range(n)}
    merges = []
    for merge, score in vocab_scores.items():
        local = []
        for k in range(1, len(merge)):
            left, right = merge[:k], merge[k:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)  # stable
    merges = [[m[0], m[1]] if metaspace else m[0] + " " + m[1] for m in merges]

    def added(i):
        return {"id": i, "content": sp.IdToPiece(i), "single_word": False, "lstrip": False,
                "rstrip": False, "normalized": False, "special": True}

    specials = [i for i in (sp.unk_id(), sp.bos_id(), sp.eos_id()) if i >= 0]
    bos = sp.IdToPiece(sp.bos_id())
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(i) for i in specials],
        "normalizer": None if metaspace else {
            "type": "Sequence",
            "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                          "split": False} if metaspace else None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [sp.bos_id()], "tokens": [bos]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": sp.IdToPiece(sp.unk_id()),
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                  "byte_fallback": True, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    with open(args[1], "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
