# tests/update/lib.sh - sourced by the tests of update's choices on validation
# (epochs.sh, mixw.sh) after tests/cli/lib.sh: small debian-section slices (48 training, 32
# validation, 24 test lines in $TMP/tr, va, te.jsonl) and the old task adapter $TMP/a1 on
# stories260K ($V1); exits the test (skipped) when the shared files are not there.
PY=/usr/bin/python3
V1="$SHARED/models/stories260K/stories260K.bin"
D="$SHARED/data/debian"
need "$V1" && need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
head -n 48 "$D/debian-section.train.jsonl" >"$TMP/tr.jsonl"
head -n 32 "$D/debian-section.validation.jsonl" >"$TMP/va.jsonl"
head -n 24 "$D/debian-section.test.jsonl" >"$TMP/te.jsonl"
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
$MUSCLE finetune --model "$V1" --task "$TMP/tr.jsonl" --out "$TMP/a1" --seed 1 "${TR[@]}" 2>"$TMP/e"
check "the old task adapter trains" test -s "$TMP/a1/adapter_model.safetensors"
