#!/usr/bin/env bash
# muscle convert: llama2.c / GGUF -> Hugging Face folder; loaded again gives bit-identical
# log-probabilities, and PyTorch reading the folder the Hugging Face way (half-split rotary
# on the permuted q/k rows) agrees with muscle to 1e-4.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K"
TEXT="Once upon a time, there was a little girl named Lily. She loved to play."
need "$S260/stories260K.bin" || { echo "1..$TAP_N"; exit 0; }
$MUSCLE convert "$S260/stories260K.bin" "$TMP/hf" 2>"$TMP/err"
check "convert llama2.c -> HF folder" test -s "$TMP/hf/model.safetensors" -a -s "$TMP/hf/config.json" -a -s "$TMP/hf/tokenizer.bin"
$MUSCLE score --model "$S260/stories260K.bin" --text "$TEXT" >"$TMP/a.json"
$MUSCLE score --model "$TMP/hf" --text "$TEXT" >"$TMP/b.json"
check "llama2.c -> safetensors -> loaded again: bit-identical log-probs" cmp -s "$TMP/a.json" "$TMP/b.json"
ids=$(/usr/bin/python3 -c "import json;print(' '.join(map(str,json.load(open('$TMP/a.json'))['tokens'])))")
/usr/bin/python3 tools/ref/score_ref.py "$TMP/hf" $ids >"$TMP/ref.json"
check "PyTorch (HF layout, rotate_half) on the converted folder agrees to 1e-4" /usr/bin/python3 -c "
import json; a=json.load(open('$TMP/b.json'))['logprobs'][1:]; r=json.load(open('$TMP/ref.json'))['logprobs'][1:]
d=max(abs(x-y) for x,y in zip(a,r)); print('# max diff', d); assert len(a)==len(r) and d<1e-4"
$MUSCLE convert tests/fixtures/model/tiny.gguf "$TMP/hf2" --tokenizer tests/fixtures/model/tokenizer.bin 2>/dev/null
$MUSCLE score --model tests/fixtures/model/tiny.gguf --text "the cat was in the sand" >"$TMP/c.json"
$MUSCLE score --model "$TMP/hf2" --text "the cat was in the sand" >"$TMP/d.json"
check "GGUF -> safetensors -> loaded again: bit-identical log-probs" cmp -s "$TMP/c.json" "$TMP/d.json"
$MUSCLE convert "$S260/stories260K.bin" "$TMP/hf16" --dtype bf16 2>/dev/null
$MUSCLE score --model "$TMP/hf16" --text "$TEXT" >"$TMP/e.json"
check "bf16 folder loads; its log-probs stay within 0.1 of fp32" /usr/bin/python3 -c "
import json; a=json.load(open('$TMP/a.json'))['logprobs'][1:]; b=json.load(open('$TMP/e.json'))['logprobs'][1:]
d=max(abs(x-y) for x,y in zip(a,b)); print('# max diff', d); assert 0 < d < 0.1"
mkdir -p "$TMP/ro"; echo old >"$TMP/ro/config.json"; chmod 555 "$TMP/ro"
if [ "$(id -u)" -ne 0 ]; then
  expect_error "read-only output folder: clear error" "ro" $MUSCLE convert "$S260/stories260K.bin" "$TMP/ro"
fi
expect_error "convert: missing input" "nothing.bin" $MUSCLE convert "$TMP/nothing.bin" "$TMP/out"
echo "1..$TAP_N"
