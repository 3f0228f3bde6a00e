#!/usr/bin/env bash
# finetune --compat and muscle update end to end at a tiny scale: every method trains and
# records its settings; update runs all its steps, writes the report, resumes after a
# SIGTERM, refuses a run folder made with other settings; gate reads the report.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1="$SHARED/models/stories260K/stories260K.bin"
need "$V1" || { echo "1..$TAP_N"; exit 0; }
D="$SHARED/data/debian"
head -n 48 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
head -n 24 "$D/debian-section.test.jsonl" >"$TMP/sec.test.jsonl"
head -n 24 "$D/debian-sum.train.jsonl" >"$TMP/sum.train.jsonl"
head -n 8 "$D/debian-sum.test.jsonl" >"$TMP/sum.test.jsonl"
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)

# old and new adapters (v1 = v2 = stories260K here: two seeds stand in for two versions)
$MUSCLE finetune --model "$V1" --task "$TMP/sec.train.jsonl" --out "$TMP/a1" --seed 1 "${TR[@]}" 2>"$TMP/e" &&
$MUSCLE finetune --model "$V1" --task "$TMP/sec.train.jsonl" --out "$TMP/a2" --seed 2 "${TR[@]}" 2>>"$TMP/e"
check "old and new task adapters train" test -s "$TMP/a2/adapter_model.safetensors"

COMPAT=(--model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" --task "$TMP/sec.train.jsonl" "${TR[@]}")
for ml in student-wrong:token old-correct:token none:token token-likelihood:token sequence-likelihood:token \
          focal:token elodi:token student-wrong:choice sequence-likelihood:choice focal:choice elodi:choice; do
  m=${ml%%:*}; lvl=${ml##*:}
  {
    out="$TMP/c-$m-$lvl"
    $MUSCLE finetune "${COMPAT[@]}" --compat $m --level $lvl --out "$out" --ce-weight 0.25 2>"$TMP/err"; rc=$?
    [ $rc -ne 0 ] && sed 's/^/# /' "$TMP/err" | tail -3
    check "finetune --compat $m --level $lvl trains and records its settings" /usr/bin/python3 -c "
import json, struct, sys
b = open('$out/adapter_model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
meta = json.loads(b[8:8 + n])['__metadata__']; c = json.loads(meta['muscle.compat'])
assert c['method'] == '$m' and c['level'] == '$lvl' and c['ce_weight'] == 0.25, c
t = json.loads(meta['muscle.training']); assert t['steps'] >= 1"
  }
done
# top-k teacher cache and answer-only distillation, transfer set
$MUSCLE finetune "${COMPAT[@]}" --compat student-wrong --teacher-topk 16 --distill-tokens answer \
    --transfer "$TMP/sec.test.jsonl" --out "$TMP/c-topk" 2>"$TMP/err"
check "top-k teacher cache, answer tokens, transfer set" test -s "$TMP/c-topk/adapter_model.safetensors"
$MUSCLE finetune --model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" \
    --task "$TMP/sum.train.jsonl" --compat focal --out "$TMP/c-gen" "${TR[@]}" 2>"$TMP/err"
check "generation task: token-level compat training" test -s "$TMP/c-gen/adapter_model.safetensors"

# errors
expect_error "--compat without the old model" "old-model" $MUSCLE finetune --model "$V1" --adapter-init "$TMP/a2" \
    --task "$TMP/sec.train.jsonl" --compat student-wrong --out "$TMP/x1"
expect_error "--compat without --adapter-init" "adapter-init" $MUSCLE finetune --model "$V1" --old-model "$V1" \
    --old-adapter "$TMP/a1" --task "$TMP/sec.train.jsonl" --compat none --out "$TMP/x2"
expect_error "unknown --compat method" "student-wrong, old-correct" $MUSCLE finetune "${COMPAT[@]}" --compat nonsense --out "$TMP/x3"
expect_error "choice level on a generation task" "choice-level distillation is for multiple choice" $MUSCLE finetune \
    --model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" --task "$TMP/sum.train.jsonl" \
    --compat none --level choice --out "$TMP/x4" --quiet
expect_error "a missing old adapter is named" "old-adapter" $MUSCLE finetune --model "$V1" --adapter-init "$TMP/a2" \
    --old-model "$V1" --old-adapter "$TMP/nope" --task "$TMP/sec.train.jsonl" --compat none --out "$TMP/x5" --quiet

# muscle update: interrupted, resumed, then the report and the gate
U=(update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/sec.train.jsonl"
   --task-test "$TMP/sec.test.jsonl" --out "$TMP/run" --methods muscle,choice,ce --seeds 2 --epochs 1 --batch 8
   --seq-len 96 --bootstrap 200 --quiet)
$MUSCLE "${U[@]}" >"$TMP/u1.out" 2>"$TMP/u1.err" &
pid=$!
for _ in $(seq 1 600); do [ -e "$TMP/run/adapters/new-s2" ] && break; sleep 0.1; done
kill -TERM "$pid" 2>/dev/null; wait "$pid"; rc=$?
check "update stops on SIGTERM with a resumable run (exit $rc)" test "$rc" -ne 0 -a ! -e "$TMP/run/report.json" -a -s "$TMP/run/adapters/new-s1/adapter_model.safetensors"
$MUSCLE "${U[@]}" >"$TMP/u2.out" 2>"$TMP/u2.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u2.err" | sed 's/^/# /'
check "the same command resumes and finishes" test $rc -eq 0 -a -s "$TMP/run/report.json" -a -s "$TMP/run/report.html" -a -s "$TMP/run/report.md"
check "the results table is printed with every model" bash -c "grep -q '^M1 ' '$TMP/u2.out' && grep -q '^M2 ' '$TMP/u2.out' && grep -q '^muscle' '$TMP/u2.out' && grep -q '^choice' '$TMP/u2.out' && grep -q 'noise floor' '$TMP/u2.out'"
check "report.json: 2 seeds per model, a noise floor, every method" /usr/bin/python3 -c "
import json; r = json.load(open('$TMP/run/report.json')); t = r['tasks'][0]
names = [m['name'] for m in t['models']]; assert names == ['M2', 'muscle', 'choice', 'ce'], names
assert all(m['seeds'] == 2 for m in t['models'])
assert t['noise_floor'] is not None"
check "every step's output is there (2 new adapters, 6 compat adapters, 9 prediction files)" bash -c "
[ \$(ls -d '$TMP'/run/adapters/*-s? | wc -l) -eq 8 ] && [ \$(ls '$TMP'/run/preds/*.jsonl | wc -l) -eq 9 ]"
$MUSCLE "${U[@]}" >"$TMP/u3.out" 2>"$TMP/u3.err"
check "a finished run only rewrites the report, identically" cmp "$TMP/u2.out" "$TMP/u3.out"
expect_error "a run folder with other settings is refused, naming the setting" '"epochs" differs' \
    $MUSCLE update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/sec.train.jsonl" \
    --task-test "$TMP/sec.test.jsonl" --out "$TMP/run" --methods muscle,choice,ce --seeds 2 --epochs 2 --batch 8 \
    --seq-len 96 --bootstrap 200 --quiet
expect_error "an unknown method is refused" "unknown method 'nope'" $MUSCLE update --old-model "$V1" --old-adapter "$TMP/a1" \
    --new-model "$V1" --task-train "$TMP/sec.train.jsonl" --task-test "$TMP/sec.test.jsonl" --out "$TMP/run2" --methods muscle,nope
$MUSCLE gate --max-nfr 100% "$TMP/run/report.json" >/dev/null; rc=$?
check "gate passes a generous limit" test $rc -eq 0
$MUSCLE gate --max-nfr 0 --min-acc-gain 50% "$TMP/run/report.json" >/dev/null; rc=$?
check "gate fails an impossible limit" test $rc -eq 1
echo "1..$TAP_N"
