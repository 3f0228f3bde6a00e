#!/usr/bin/env bash
# finetune --compat --level sequence end to end at a tiny scale (docs/compat.md, "sequence
# level"): it trains with each mask and records its settings, a resumed run with other
# settings is refused, a run killed and resumed ends with the same bits, and multiple
# choice, the methods without a sequence level and stray decoding options are refused.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1="$SHARED/models/stories260K/stories260K.bin"
need "$V1" || { echo "1..$TAP_N"; exit 0; }
D="$SHARED/data/debian"
head -n 24 "$D/debian-sum.train.jsonl" >"$TMP/sum.train.jsonl"
head -n 6 "$D/debian-sum.test.jsonl" >"$TMP/sum.tf.jsonl"
head -n 16 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
$MUSCLE finetune --model "$V1" --task "$TMP/sum.train.jsonl" --out "$TMP/a1" --seed 1 "${TR[@]}" 2>"$TMP/e" &&
$MUSCLE finetune --model "$V1" --task "$TMP/sum.train.jsonl" --out "$TMP/a2" --seed 2 "${TR[@]}" 2>>"$TMP/e"
check "old and new task adapters train" test -s "$TMP/a2/adapter_model.safetensors"

C=(--model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" --task "$TMP/sum.train.jsonl"
   --level sequence --max-tokens 16 --batch 4 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
CT=(--model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" --task "$TMP/sum.train.jsonl"
    --batch 4 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
meta() { # meta DIR PYTHON-ASSERTIONS on c (muscle.compat) and t (muscle.training)
  /usr/bin/python3 -c "
import json, struct
b = open('$1/adapter_model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
meta = json.loads(b[8:8 + n])['__metadata__']; c = json.loads(meta['muscle.compat']); t = json.loads(meta['muscle.training'])
$2"
}
for m in student-wrong old-correct none; do
  $MUSCLE finetune "${C[@]}" --compat $m --ce-weight 0.5 --epochs 2 --transfer "$TMP/sum.tf.jsonl" --out "$TMP/c-$m" 2>"$TMP/err"
  [ -s "$TMP/err" ] && sed 's/^/# /' "$TMP/err" | tail -3
  check "finetune --compat $m --level sequence trains and records its settings" meta "$TMP/c-$m" "
assert c['method'] == '$m' and c['level'] == 'sequence' and c['ce_weight'] == 0.5 and c['kd_weight'] == 1, c
assert c['max_tokens'] == 16 and c['no_repeat_ngram'] == 0, c
assert t['settings']['compat'].startswith('$m/sequence/') and t['settings']['compat_decoding'] == 'max16/nr0', t
assert t['steps'] >= 2"
done
check "student-wrong regenerates the student's outputs at the second epoch (seqkd_masks.jsonl)" /usr/bin/python3 -c "
import json; L = [json.loads(l) for l in open('$TMP/c-student-wrong/seqkd_masks.jsonl')]
assert [l['epoch'] for l in L][:1] == [1], L
assert len(L[0]['mask']) == 19 + 6 and set(L[0]['mask']) <= set('01'), L"

# resume: other settings are refused, naming them
$MUSCLE finetune "${C[@]}" --compat student-wrong --ce-weight 0.5 --epochs 3 --save-every 1 --out "$TMP/r" 2>"$TMP/err"
check "a 3-epoch run with checkpoints" test -s "$TMP/r/adapter_model.safetensors"
expect_error "resume with another method is refused" "setting 'compat'" $MUSCLE finetune "${C[@]}" --compat old-correct \
    --ce-weight 0.5 --epochs 3 --out "$TMP/r" --resume
expect_error "resume with another --ce-weight is refused" "setting 'compat'" $MUSCLE finetune "${C[@]}" --compat student-wrong \
    --ce-weight 0.25 --epochs 3 --out "$TMP/r" --resume
expect_error "resume with another --max-tokens is refused" "setting 'compat_decoding'" $MUSCLE finetune "${C[@]}" \
    --compat student-wrong --ce-weight 0.5 --epochs 3 --out "$TMP/r" --resume --max-tokens 12
expect_error "resume at the token level is refused" "setting 'compat'" $MUSCLE finetune "${CT[@]}" \
    --compat student-wrong --ce-weight 0.5 --epochs 3 --out "$TMP/r" --resume
# killed in the third epoch (after the student's outputs of epoch 2 were made), then resumed: same bits
$MUSCLE finetune "${C[@]}" --compat student-wrong --ce-weight 0.5 --epochs 3 --save-every 1 --out "$TMP/k" 2>/dev/null &
pid=$!
for _ in $(seq 1 1000); do grep -q '"epoch":2' "$TMP/k/seqkd_masks.jsonl" 2>/dev/null && break; sleep 0.01; done
kill -TERM "$pid" 2>/dev/null; wait "$pid"
$MUSCLE finetune "${C[@]}" --compat student-wrong --ce-weight 0.5 --epochs 3 --save-every 1 --out "$TMP/k" --resume 2>"$TMP/err"
check "a run killed and resumed ends with the same adapter as the uninterrupted one" cmp "$TMP/k/adapter_model.safetensors" "$TMP/r/adapter_model.safetensors"

# errors
expect_error "the sequence level on a multiple-choice task" "multiple-choice task: sequence-level distillation is for generation" \
    $MUSCLE finetune --model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" \
    --task "$TMP/sec.train.jsonl" --compat none --level sequence --out "$TMP/x1" --quiet
for m in focal elodi token-likelihood sequence-likelihood; do
  expect_error "--compat $m has no sequence level" "$m has no sequence level" $MUSCLE finetune "${C[@]}" --compat $m --out "$TMP/x2"
done
expect_error "--max-tokens without --level sequence" "go with --level sequence" $MUSCLE finetune "${CT[@]}" \
    --compat none --max-tokens 16 --out "$TMP/x3"
expect_error "--distill-tokens answer at the sequence level" "distill-tokens answer goes with the token level" \
    $MUSCLE finetune "${C[@]}" --compat none --distill-tokens answer --out "$TMP/x4"
echo "1..$TAP_N"
