#!/usr/bin/env bash
# `muscle export` of the non-llama families against a real llama.cpp (node-llama-cpp 3.22.1, as
# tests/export/llamacpp.sh): the qwen2 fixture (tests/fixtures/model/families/qwen2: q/k/v
# biases, linear rope scaling, GQA, tied embeddings; checked against PyTorch by
# tests/model/test_families.c) with its PEFT adapter (all seven targets). GGUF qwen2 keeps
# q/k rows in Hugging Face order, so this checks the permutation of weights, biases and
# LoRA B rows back to that order. The fixture has a toy vocabulary of 128 ids and no
# tokenizer; llama.cpp needs one, so the test writes a 128-piece SentencePiece-style
# vocabulary (<unk>, <s>, </s>, U+2581, the printable ASCII characters, bytes 0x00..0x1D;
# llama.cpp aborts on a SentencePiece vocabulary without U+2581) in llama2.c's
# tokenizer.bin format; token ids go to llama.cpp directly. Also llama3 (its rope_freqs table),
# smollm2 (tied), qwen3 (per-head q/k
# norms, a head size of its own), mistral (sliding window), phi (llama.cpp's phi2: LayerNorm
# with biases, attention and MLP in parallel, GELU MLP without a gate, partial rotary,
# biases everywhere and on the classifier) and gemma (norms stored as 1 + w, embeddings
# times sqrt(d), GeGLU, a head size of its own, one kv head, tied). Few tokens: fast.
# phi and gemma come closest to the tolerance (measured 4.8e-4 and 7.3e-4): ggml's CPU GELU
# rounds its input to f16 and reads a table of f16 results (GGML_GELU_FP16), muscle
# computes it in fp32. For those two llama.cpp must also equal the PyTorch reference run
# with ggml's GELU table (ggml_gelu_reference.py) within 5e-5: the exported layout is exact
# and the table is all that separates the two engines.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
if ! tests/export/node/install 2>"$TMP/npm.log"; then
  sed 's/^/# /' "$TMP/npm.log" | tail -5
  echo "ok 1 # SKIP node-llama-cpp could not be installed (npm registry unreachable?)"; echo "1..1"; exit 0
fi
$PY - "$TMP/tok128.bin" <<'PYEOF'
import struct, sys
pieces = [b"<unk>", b"<s>", b"</s>", "\u2581".encode()] + [bytes([c]) for c in range(0x21, 0x7F)] + [b"<0x%02X>" % i for i in range(30)]
assert len(pieces) == 128
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<i", max(map(len, pieces))))
    for p in pieces:
        f.write(struct.pack("<fi", 0.0, len(p)) + p)
PYEOF
# FAMILY:GGUF_ARCH:POSITIONS compared (0 = all):GELU (1: also against ggml's GELU table). llama.cpp's "llama" graph has no sliding
# window (its converter writes none for Mistral; muscle writes llama.attention.sliding_window,
# which that graph ignores): a Mistral agrees only while the context fits the window (the
# fixture's is 6 tokens), so only those positions are compared there.
for FA in llama3:llama:0:0 smollm2:llama:0:0 qwen2:qwen2:0:0 qwen3:qwen3:0:0 mistral:llama:6:0 phi:phi2:0:1 gemma:gemma:0:1; do
IFS=: read -r FAM ARCH NPOS GELU <<<"$FA"
F=tests/fixtures/model/families/$FAM
MODEL=(--model "$F" --tokenizer "$TMP/tok128.bin")
check "export gguf: the $FAM fixture" $MUSCLE export gguf "${MODEL[@]}" --out "$TMP/q.gguf" --quiet
check "export gguf-lora: its adapter ($FAM)" $MUSCLE export gguf-lora "${MODEL[@]}" --adapter "$F/adapter" --out "$TMP/ql.gguf" --quiet
check "the GGUF says $ARCH" $PY -c 'import sys; d=open(sys.argv[1],"rb").read(4096); assert sys.argv[2].encode() in d' "$TMP/q.gguf" "$ARCH"

TEXT="Hi, Bob: 42 cats ran."
compare() {
  local name="$1" lora="$2"; shift 2
  $MUSCLE score "${MODEL[@]}" "$@" --text "$TEXT" >"$TMP/m.json" 2>"$TMP/err" || { cat "$TMP/err"; not_ok "$name"; return; }
  local ids; ids=$($PY -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' "$TMP/m.json")
  (cd tests/export/node && timeout 600 node llamacpp_logprobs.mjs "$TMP/q.gguf" "$lora" "$ids") >"$TMP/l.json" 2>"$TMP/nerr" \
    || { sed 's/^/# /' "$TMP/nerr" | tail -5; not_ok "$name (llama.cpp failed)"; return; }
  check "$name" $PY - "$TMP/m.json" "$TMP/l.json" "$NPOS" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))["logprobs"][1:]; l = json.load(open(sys.argv[2]))["logprobs"][1:]
assert len(m) == len(l) and len(m) >= 10, (len(m), len(l))
npos = int(sys.argv[3])
if npos:
    far = max(abs(a - b) for a, b in zip(m[npos:], l[npos:]))
    print(f"# beyond the window (not compared: llama.cpp's llama graph has none): max difference {far:.2e}")
    m, l = m[:npos], l[:npos]
d = max(abs(a - b) for a, b in zip(m, l))
print(f"# {len(m)} positions, max |muscle - llama.cpp| = {d:.2e} (log-probs from {min(m):.3f} to {max(m):.3f})")
assert d < 1e-3, d
PYEOF
  [ "$GELU" = 1 ] || return
  local adflag=(); [ "$lora" != - ] && adflag=(--adapter)
  $PY tests/export/ggml_gelu_reference.py "$F" "$ids" "${adflag[@]}" >"$TMP/r.json" \
    || { not_ok "$name: the PyTorch reference failed"; return; }
  check "$name: llama.cpp = PyTorch with ggml's f16 GELU table within 5e-5" $PY - "$TMP/m.json" "$TMP/l.json" "$TMP/r.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))["logprobs"][1:]; l = json.load(open(sys.argv[2]))["logprobs"][1:]; r = json.load(open(sys.argv[3]))
d = lambda a, b: max(abs(x - y) for x, y in zip(a, b))
g, e = r["ggml"][1:], r["exact"][1:]
print(f"# llama.cpp - torch(ggml GELU) {d(l, g):.2e}; muscle - torch(exact GELU) {d(m, e):.2e}; llama.cpp - torch(exact) {d(l, e):.2e}")
assert d(l, g) < 5e-5 and d(m, e) < 5e-5, (d(l, g), d(m, e))
PYEOF
}
compare "llama.cpp $FAM: the base model, the same log-probs" -
compare "llama.cpp $FAM + GGUF LoRA = muscle + PEFT adapter" "$TMP/ql.gguf" --adapter "$F/adapter"
# the test can fail: the adapter must matter far beyond the tolerance
$MUSCLE score "${MODEL[@]}" --text "$TEXT" >"$TMP/b.json"
$MUSCLE score "${MODEL[@]}" --adapter "$F/adapter" --text "$TEXT" >"$TMP/a.json"
check "the $FAM adapter changes the log-probs by far more than the tolerance" $PY -c '
import json, sys
a = json.load(open(sys.argv[1]))["logprobs"][1:]; b = json.load(open(sys.argv[2]))["logprobs"][1:]
d = max(abs(x - y) for x, y in zip(a, b)); print("# adapter effect", d); assert d > 0.01' "$TMP/b.json" "$TMP/a.json"
done
echo "1..$TAP_N"
