#!/usr/bin/env bash
# `muscle export` of a non-llama family against a real llama.cpp (node-llama-cpp 3.21.1, as
# tests/export/llamacpp.sh): the qwen2 fixture (tests/fixtures/model/families/qwen2: q/k/v
# biases, linear rope scaling, GQA, tied embeddings; checked against PyTorch by
# tests/model/test_families.c) with its PEFT adapter (all seven targets). GGUF qwen2 keeps
# q/k rows in Hugging Face order, so this checks the permutation of weights, biases and
# LoRA B rows back to that order. The fixture has a toy vocabulary of 128 ids and no
# tokenizer; llama.cpp needs one, so the test writes a 128-piece SentencePiece-style
# vocabulary (<unk>, <s>, </s>, bytes 0x00..0x7C) in llama2.c's tokenizer.bin format;
# token ids go to llama.cpp directly, so only the ids matter. Few tokens: fast.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
if ! tests/export/node/install 2>"$TMP/npm.log"; then
  sed 's/^/# /' "$TMP/npm.log" | tail -5
  echo "ok 1 # SKIP node-llama-cpp could not be installed (npm registry unreachable?)"; echo "1..1"; exit 0
fi
F=tests/fixtures/model/families/qwen2
$PY - "$TMP/tok128.bin" <<'PYEOF'
import struct, sys
pieces = [b"<unk>", b"<s>", b"</s>", "\u2581".encode()] + [b"<0x%02X>" % i for i in range(124)]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<i", max(map(len, pieces))))
    for p in pieces:
        f.write(struct.pack("<fi", 0.0, len(p)) + p)
PYEOF
MODEL=(--model "$F" --tokenizer "$TMP/tok128.bin")
check "export gguf: the qwen2 fixture" $MUSCLE export gguf "${MODEL[@]}" --out "$TMP/q.gguf" --quiet
check "export gguf-lora: its adapter" $MUSCLE export gguf-lora "${MODEL[@]}" --adapter "$F/adapter" --out "$TMP/ql.gguf" --quiet
check "the GGUF says qwen2" $PY -c 'import sys; d=open(sys.argv[1],"rb").read(4096); assert b"qwen2" in d and b"blk.0.attn_q.bias" in open(sys.argv[1],"rb").read(200000)' "$TMP/q.gguf"

TEXT="Hi, Bob: 42 cats ran."
compare() {
  local name="$1" lora="$2"; shift 2
  $MUSCLE score "${MODEL[@]}" "$@" --text "$TEXT" >"$TMP/m.json" 2>"$TMP/err" || { cat "$TMP/err"; not_ok "$name"; return; }
  local ids; ids=$($PY -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' "$TMP/m.json")
  (cd tests/export/node && timeout 600 node llamacpp_logprobs.mjs "$TMP/q.gguf" "$lora" "$ids") >"$TMP/l.json" 2>"$TMP/nerr" \
    || { sed 's/^/# /' "$TMP/nerr" | tail -5; not_ok "$name (llama.cpp failed)"; return; }
  check "$name" $PY - "$TMP/m.json" "$TMP/l.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))["logprobs"][1:]; l = json.load(open(sys.argv[2]))["logprobs"][1:]
assert len(m) == len(l) and len(m) >= 10, (len(m), len(l))
d = max(abs(a - b) for a, b in zip(m, l))
print(f"# {len(m)} positions, max |muscle - llama.cpp| = {d:.2e} (log-probs from {min(m):.3f} to {max(m):.3f})")
assert d < 1e-3, d
PYEOF
}
compare "llama.cpp qwen2: the base model, the same log-probs" -
compare "llama.cpp qwen2 + GGUF LoRA = muscle + PEFT adapter" "$TMP/ql.gguf" --adapter "$F/adapter"
# the test can fail: the adapter must matter far beyond the tolerance
$MUSCLE score "${MODEL[@]}" --text "$TEXT" >"$TMP/b.json"
$MUSCLE score "${MODEL[@]}" --adapter "$F/adapter" --text "$TEXT" >"$TMP/a.json"
check "the qwen2 adapter changes the log-probs by far more than the tolerance" $PY -c '
import json, sys
a = json.load(open(sys.argv[1]))["logprobs"][1:]; b = json.load(open(sys.argv[2]))["logprobs"][1:]
d = max(abs(x - y) for x, y in zip(a, b)); print("# adapter effect", d); assert d > 0.01' "$TMP/b.json" "$TMP/a.json"
echo "1..$TAP_N"
