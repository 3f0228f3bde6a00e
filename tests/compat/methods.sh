#!/usr/bin/env bash
# The methods of issue 18 through finetune --compat and muscle update at a tiny scale:
# ensemble and mixture teachers (K new adapters; the mixture's weight chosen on the held-out
# split and recorded), instance weighting and flip-targeted distillation at the choice and
# sequence levels; the levels a method lacks and the options it lacks are refused in one line.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1="$SHARED/models/stories260K/stories260K.bin"
need "$V1" || { echo "1..$TAP_N"; exit 0; }
D="$SHARED/data/debian"
head -n 40 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
head -n 16 "$D/debian-section.test.jsonl" >"$TMP/sec.test.jsonl"
head -n 16 "$D/debian-sum.train.jsonl" >"$TMP/sum.train.jsonl"
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
for s in 1 2 3; do
  $MUSCLE finetune --model "$V1" --task "$TMP/sec.train.jsonl" --out "$TMP/a$s" --seed $s "${TR[@]}" 2>>"$TMP/e"
done
$MUSCLE finetune --model "$V1" --task "$TMP/sum.train.jsonl" --out "$TMP/g1" --seed 1 "${TR[@]}" 2>>"$TMP/e"
$MUSCLE finetune --model "$V1" --task "$TMP/sum.train.jsonl" --out "$TMP/g2" --seed 2 "${TR[@]}" 2>>"$TMP/e"
check "task adapters train" test -s "$TMP/g2/adapter_model.safetensors"

meta() { # meta DIR PYTHON-EXPR-on-c: the adapter's muscle.compat settings
  /usr/bin/python3 -c "
import json, struct
b = open('$1/adapter_model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
c = json.loads(json.loads(b[8:8 + n])['__metadata__']['muscle.compat'])
assert $2, c"
}
C=(finetune --model "$V1" --adapter-init "$TMP/a2" --old-model "$V1" --old-adapter "$TMP/a1" --task "$TMP/sec.train.jsonl"
   --epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96)
for lv in token choice; do
  $MUSCLE "${C[@]}" --compat ensemble --level $lv --ensemble-adapters "$TMP/a2,$TMP/a3" --ce-weight 0.5 --out "$TMP/ens-$lv" --quiet 2>"$TMP/err"
  check "ensemble of 2 new adapters, $lv level" meta "$TMP/ens-$lv" "c['method'] == 'ensemble' and c['level'] == '$lv'"
done
$MUSCLE "${C[@]}" --compat mixture --level choice --ensemble-adapters "$TMP/a2,$TMP/a3" --ce-weight 0.5 --out "$TMP/mix" 2>"$TMP/err_mix" >/dev/null
grep "mixture weight on" "$TMP/err_mix" | sed 's/^/# /'
check "mixture: a chosen on the held-out split, the sweep shown" grep -q "mixture weight on 8 held-out instances.*(chosen)" "$TMP/err_mix"
check "mixture: the chosen a recorded in the adapter" meta "$TMP/mix" "c['method'] == 'mixture' and c['mixture_a'] in (0.1, 0.2, 0.3, 0.4, 0.5)"
$MUSCLE "${C[@]}" --compat mixture --mixture-weight 0.3 --out "$TMP/mix-tok" --quiet 2>"$TMP/err"
check "mixture at the token level with a given a" meta "$TMP/mix-tok" "c['mixture_a'] == 0.3 and c['level'] == 'token'"
for m in weighted flip; do
  $MUSCLE "${C[@]}" --compat $m --level choice --ce-weight 0.5 --out "$TMP/$m-choice" --quiet 2>"$TMP/err"
  check "$m at the choice level" meta "$TMP/$m-choice" "c['method'] == '$m'"
  $MUSCLE finetune --model "$V1" --adapter-init "$TMP/g2" --old-model "$V1" --old-adapter "$TMP/g1" --task "$TMP/sum.train.jsonl" \
      --epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --compat $m --level sequence --ce-weight 0.5 --max-tokens 8 \
      --out "$TMP/$m-seq" --quiet 2>"$TMP/err"
  check "$m at the sequence level" meta "$TMP/$m-seq" "c['method'] == '$m' and c['level'] == 'sequence'"
done
expect_error "a level the method lacks: the others named" "flip has no token level: use .*ensemble or mixture" \
    $MUSCLE "${C[@]}" --compat flip --out "$TMP/x1"
expect_error "--ensemble-adapters without an ensemble method" "go with --compat ensemble or mixture" \
    $MUSCLE "${C[@]}" --compat student-wrong --ensemble-adapters "$TMP/a3" --out "$TMP/x2"
expect_error "a missing ensemble adapter: its path named" "--ensemble-adapters $TMP/nowhere: .*adapter_config.json: cannot open" \
    $MUSCLE "${C[@]}" --compat ensemble --level choice --ensemble-adapters "$TMP/a2,$TMP/nowhere" --out "$TMP/x4" --quiet
expect_error "mixture on generation needs its weight" "give --mixture-weight" \
    $MUSCLE finetune --model "$V1" --adapter-init "$TMP/g2" --old-model "$V1" --old-adapter "$TMP/g1" --task "$TMP/sum.train.jsonl" \
    --epochs 1 --seq-len 96 --compat mixture --out "$TMP/x3" --quiet
expect_error "an unknown method: the table's names" "expected student-wrong.*weighted or flip" $MUSCLE "${C[@]}" --compat nope --out "$TMP/x4"

# muscle update: 2 seeds, the ensemble and mixture presets read both new adapters
$MUSCLE update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/sec.train.jsonl" \
    --task-test "$TMP/sec.test.jsonl" --out "$TMP/run" --seeds 2 --epochs 1 --seq-len 96 --methods mixture-choice,flip-choice --quiet 2>"$TMP/err_u"
rc=$?; [ $rc -ne 0 ] && tail -5 "$TMP/err_u" | sed 's/^/# /'
check "update with the new presets runs to its report" test $rc -eq 0 -a -s "$TMP/run/report.json"
check "update: the mixture's a recorded for each seed" meta "$TMP/run/adapters/mixture-choice-s2" "c['mixture_a'] in (0.1, 0.2, 0.3, 0.4, 0.5)"
check "update: the mixture's teacher was both seeds' new adapters" /usr/bin/python3 -c "
import json; e = json.load(open('$TMP/run/adapters/mixture-choice-s1/training.json'))['settings']['compat_ensemble'].split(',')
assert len(e) == 2 and e[0].endswith('adapters/new-s1') and e[1].endswith('adapters/new-s2'), e"
$MUSCLE update --help >"$TMP/h"
check "update --help lists every preset from the table" grep -q "flip-seqkd .*--compat flip --level sequence --ce-weight 0.5 (generation)" "$TMP/h"
expect_error "update: an unknown preset, the table's names" "presets: muscle, .*flip-seqkd, ce, interp, soup; interp-METHOD, soup-METHOD; all" \
    $MUSCLE update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/sec.train.jsonl" \
    --task-test "$TMP/sec.test.jsonl" --out "$TMP/run2" --methods nope
echo "1..$TAP_N"
