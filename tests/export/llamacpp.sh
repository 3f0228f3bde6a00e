#!/usr/bin/env bash
# `muscle export` against a real llama.cpp: node-llama-cpp 3.22.1 (pinned in tests/export/node,
# installed by tests/export/node/install) with its prebuilt linux-x64 llama.cpp.
# stories260K (a real llama2.c model) and a PEFT adapter with nonzero random A and B on all
# seven targets: muscle exports the base as GGUF and the adapter as a GGUF LoRA adapter;
# llama.cpp loads both and its per-token log-probabilities must equal `muscle score` with the
# PEFT adapter within 1e-3 (measured: at most 1.2e-4). Also the rsLoRA scale, and the merged folder.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
S="$SHARED/models/stories260K"
need "$S/stories260K.bin" || { echo "1..$TAP_N"; exit 1; }
if ! tests/export/node/install 2>"$TMP/npm.log"; then
  sed 's/^/# /' "$TMP/npm.log" | tail -5
  echo "ok 1 # SKIP node-llama-cpp could not be installed (npm registry unreachable?)"; echo "1..1"; exit 0
fi
MODEL=(--model "$S/stories260K.bin" --tokenizer "$S/tok512.bin")
DIMS="64 172 5 8 4"
$PY tests/export/make_adapter.py "$TMP/peft" $DIMS
$PY tests/export/make_adapter.py "$TMP/peft-rs" $DIMS --rslora
check "export gguf: the base model with its vocabulary" $MUSCLE export gguf "${MODEL[@]}" --out "$TMP/base.gguf" --quiet
check "export gguf-lora: the adapter" $MUSCLE export gguf-lora "${MODEL[@]}" --adapter "$TMP/peft" --out "$TMP/lora.gguf" --quiet
check "export gguf-lora: the rsLoRA adapter" $MUSCLE export gguf-lora "${MODEL[@]}" --adapter "$TMP/peft-rs" --out "$TMP/lora-rs.gguf" --quiet

# compare NAME MUSCLE_SCORE_ARGS... -- LLAMA_MODEL LLAMA_LORA TEXT
compare() {
  local name="$1" text="$2" gguf="$3" lora="$4"; shift 4
  $MUSCLE score "$@" --text "$text" >"$TMP/m.json" 2>"$TMP/err" || { cat "$TMP/err"; not_ok "$name"; return; }
  local ids; ids=$($PY -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' "$TMP/m.json")
  (cd tests/export/node && timeout 600 node llamacpp_logprobs.mjs "$gguf" "$lora" "$ids") >"$TMP/l.json" 2>"$TMP/nerr" \
    || { sed 's/^/# /' "$TMP/nerr" | tail -5; not_ok "$name (llama.cpp failed)"; return; }
  check "$name" $PY - "$TMP/m.json" "$TMP/l.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))["logprobs"][1:]; l = json.load(open(sys.argv[2]))["logprobs"][1:]
assert len(m) == len(l) and len(m) >= 10, (len(m), len(l))
d = max(abs(a - b) for a, b in zip(m, l))
spread = max(m) - min(m)
print(f"# {len(m)} positions, max |muscle - llama.cpp| = {d:.2e} (log-probs from {min(m):.3f} to {max(m):.3f})")
assert d < 1e-3 and spread > 1, (d, spread)
PYEOF
}
T1="Once upon a time, there was a little girl named Lily. She loved to play outside."
T2="Lily zebra quantum the cat purple seventeen house run."
compare "llama.cpp: the base model, the same log-probs" "$T2" "$TMP/base.gguf" - "${MODEL[@]}"
compare "llama.cpp + GGUF LoRA = muscle + PEFT adapter (story)" "$T1" "$TMP/base.gguf" "$TMP/lora.gguf" "${MODEL[@]}" --adapter "$TMP/peft"
compare "llama.cpp + GGUF LoRA = muscle + PEFT adapter (odd text)" "$T2" "$TMP/base.gguf" "$TMP/lora.gguf" "${MODEL[@]}" --adapter "$TMP/peft"
compare "llama.cpp + GGUF LoRA = muscle + PEFT adapter (rsLoRA scale)" "$T1" "$TMP/base.gguf" "$TMP/lora-rs.gguf" "${MODEL[@]}" --adapter "$TMP/peft-rs"
# the test can fail: the adapter must matter (the base alone is far from the adapted model)
$MUSCLE score "${MODEL[@]}" --text "$T1" >"$TMP/base.json"
$MUSCLE score "${MODEL[@]}" --adapter "$TMP/peft" --text "$T1" >"$TMP/ad.json"
check "the adapter changes the log-probs by far more than the tolerance" $PY -c '
import json, sys
a = json.load(open(sys.argv[1]))["logprobs"][1:]; b = json.load(open(sys.argv[2]))["logprobs"][1:]
d = max(abs(x - y) for x, y in zip(a, b)); print("# adapter effect", d); assert d > 0.5' "$TMP/base.json" "$TMP/ad.json"

# merged: the folder loads in muscle and gives the adapter's log-probs
check "export merged (f32)" $MUSCLE export merged "${MODEL[@]}" --adapter "$TMP/peft" --out "$TMP/merged" --quiet
check "export merged: config.json, model.safetensors, tokenizer" test -s "$TMP/merged/config.json" -a -s "$TMP/merged/model.safetensors" -a -s "$TMP/merged/tokenizer.bin"
$MUSCLE score --model "$TMP/merged" --text "$T1" >"$TMP/mg.json"
check "merged f32 = base + adapter (within 1e-4)" $PY -c '
import json, sys
a = json.load(open(sys.argv[1]))["logprobs"][1:]; b = json.load(open(sys.argv[2]))["logprobs"][1:]
d = max(abs(x - y) for x, y in zip(a, b)); print("# merged vs adapter", d); assert d < 1e-4' "$TMP/ad.json" "$TMP/mg.json"
check "export merged (bf16)" $MUSCLE export merged "${MODEL[@]}" --adapter "$TMP/peft" --out "$TMP/merged-bf16" --dtype bf16 --quiet
$MUSCLE score --model "$TMP/merged-bf16" --text "$T1" >"$TMP/mb.json"
check "merged bf16 loads and gives the adapter's log-probs up to bf16 rounding" $PY -c '
import json, sys
a = json.load(open(sys.argv[1]))["logprobs"][1:]; b = json.load(open(sys.argv[2]))["logprobs"][1:]
d = max(abs(x - y) for x, y in zip(a, b)); print("# merged bf16 vs adapter", d); assert 0 < d < 0.5' "$TMP/ad.json" "$TMP/mb.json"
expect_error "merged: an existing folder is refused without --force" "exists" $MUSCLE export merged "${MODEL[@]}" --adapter "$TMP/peft" --out "$TMP/merged"
expect_error "gguf-lora: an adapter of another model is refused" "" $MUSCLE export gguf-lora --model "$SHARED/models/babyllama105/model.bin" --adapter "$TMP/peft" --out "$TMP/x.gguf"
check "no file left by the refused export" test ! -e "$TMP/x.gguf"
echo "1..$TAP_N"
