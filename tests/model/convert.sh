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
  expect_error "read-only output folder: clear error" "ro: cannot replace the folder: Permission denied" \
    $MUSCLE convert "$S260/stories260K.bin" "$TMP/ro" --force
fi
expect_error "convert: missing input" "nothing.bin" $MUSCLE convert "$TMP/nothing.bin" "$TMP/never"
check "convert: a failed convert creates no output folder, leaves nothing beside it" eval '[ ! -e "$TMP/never" ] && ! ls -A "$TMP" | grep -q "^\.never"'

# --- the output folder appears complete or not at all (docs/reliability.md) ------------------
# MUSCLE_TEST_KILL_AFTER_COMMITS=K: the process SIGKILLs itself right after its K-th finished
# file (core/file.h); convert writes 3 (model.safetensors, config.json, tokenizer.bin) into
# a hidden folder beside OUT, then renames that folder into place.
killed() { # killed K CMD...: runs CMD with the hook, sets rc (137 when it killed itself)
  local k="$1"; shift
  MUSCLE_TEST_KILL_AFTER_COMMITS="$k" "$@" 2>/dev/null & { wait $!; } 2>/dev/null; rc=$?
}
D="$TMP/atomic"; mkdir -p "$D"
$MUSCLE convert tests/fixtures/model/tiny2c.bin "$D/out" --tokenizer tests/fixtures/model/tokenizer.bin 2>/dev/null
cp -a "$D/out" "$TMP/prev"
expect_error "convert into an existing folder without --force: refused before any work" \
  "$D/out: the folder exists and is not empty \(--force replaces it as a whole\)" $MUSCLE convert "$S260/stories260K.bin" "$D/out"
check "refused convert: the folder is unchanged, nothing added beside it" eval 'diff -r "$D/out" "$TMP/prev" && [ "$(ls -A "$D")" = out ]'
for k in 1 2 3; do
  killed $k $MUSCLE convert "$S260/stories260K.bin" "$D/out" --force
  check "convert --force killed (SIGKILL) after its file $k of 3: exit 137, the previous folder is intact (diff -r)" \
    eval '[ $rc -eq 137 ] && diff -r "$D/out" "$TMP/prev"'
done
killed 3 $MUSCLE convert "$S260/stories260K.bin" "$D/new"
check "convert into a new folder killed after its last file, before the rename: no folder appears" eval '[ $rc -eq 137 ] && [ ! -e "$D/new" ]'
left=$(cd "$D" && ls -A | grep -c '^\.\(out\|new\)\.tmp-[0-9]*-......$')
check "the killed runs left only hidden temporary folders, one per name (each run removes those of dead runs)" \
  eval '[ "$left" -eq 2 ] && [ "$(ls -A "$D" | grep -v "^\.")" = out ]'
$MUSCLE convert "$S260/stories260K.bin" "$D/out" --force 2>/dev/null
check "convert --force then replaces the folder: same files as a fresh conversion (diff -r)" diff -r "$D/out" "$TMP/hf"
check "... and removes the leftovers of the killed runs into the same folder" eval '[ "$(cd "$D" && ls -A | grep -c "^\.out\.")" -eq 0 ]'
$MUSCLE convert "$S260/stories260K.bin" "$D/new" 2>/dev/null
check "convert into the new folder: written, its leftover removed, nothing else beside" \
  eval 'diff -r "$D/new" "$TMP/hf" && [ "$(ls -A "$D" | tr "\n" " ")" = "new out " ]'

# --- the model families (model/arch.h): convert writes the family's config.json and names ---
for fam in llama3 smollm2 mistral qwen2 qwen3; do
  F=tests/fixtures/model/families/$fam
  $MUSCLE convert "$F" "$TMP/f1-$fam" 2>/dev/null && $MUSCLE convert "$TMP/f1-$fam" "$TMP/f2-$fam" 2>/dev/null
  want=$(/usr/bin/python3 -c "import json;print(json.load(open('$F/config.json'))['model_type'])")
  check "convert $fam -> HF -> HF: bit-identical files, model_type $want, muscle info says $want" eval \
    'cmp -s "$TMP/f1-$fam/model.safetensors" "$TMP/f2-$fam/model.safetensors" && cmp -s "$TMP/f1-$fam/config.json" "$TMP/f2-$fam/config.json" \
     && grep -q "\"model_type\":.*\"$want\"" "$TMP/f1-$fam/config.json" && $MUSCLE info "$TMP/f1-$fam" 2>/dev/null | grep -q "^arch: *$want,"'
done
echo "1..$TAP_N"
