#!/usr/bin/env bash
# muscle update --mixture-weights A1,A2,... (update_epochs.c): a mixture preset's student of
# every seed is trained once per a (times every count of --compat-epochs), and the pair
# chosen on --task-val by the students' own accuracy and NFR, with the rule of
# --compat-epochs; checked against an independent computation from the validation prediction
# files; each candidate trained with its own a; the chosen candidate is the method's adapter;
# the other methods are untouched; the sweep files, the manifest's note; the refusals before
# any step.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
. tests/update/lib.sh

# the "new" base is v1 itself: a tiny model, the mechanics are what is tested
COMMON=(--old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl"
        --task-val "$TMP/va.jsonl" --task-test "$TMP/te.jsonl" --seeds 2 --epochs 1 --lr 3e-3 --batch 8 --seq-len 96 --bootstrap 0)
U=(update "${COMMON[@]}" --out "$TMP/run" --methods ce,mixture-distill --mixture-weights 0.2,0.6)
$MUSCLE "${U[@]}" >"$TMP/u1.out" 2>"$TMP/u1.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u1.err" | sed 's/^/# /'
check "update --mixture-weights 0.2,0.6 runs to the report" test $rc -eq 0 -a -s "$TMP/run/report.json"
grep "chosen on validation" "$TMP/u1.err" | sed 's/^/# /'
check "the steps are counted: the last is [N/N]" bash -c "grep -o '\[[0-9]*/[0-9]*\]' '$TMP/u1.err' | tail -1 | grep -qE '\[([0-9]+)/\1\]'"
check "a candidate per seed and a for the mixture preset, none for ce" bash -c "for k in 1 2; do for a in 0.2 0.6; do
  test -s '$TMP/run/adapters/'mixture-distill-s\$k-a\$a/adapter_model.safetensors -a -s '$TMP/run/preds/'mixture-distill-s\$k-a\$a.val.jsonl || exit 1; done
  test -s '$TMP/run/adapters/'ce-s\$k/adapter_model.safetensors || exit 1; done
  ! ls '$TMP/run/adapters' | grep -q '^ce-s.-' && test ! -e '$TMP/run/preds/ce-s1.epochs.json'"
check "each candidate was trained with its own a (not chosen on the teacher)" $PY - "$TMP/run" <<'PYEOF'
import json, sys
d = sys.argv[1]
for k in (1, 2):
    for a in ("0.2", "0.6"):
        t = json.load(open("%s/adapters/mixture-distill-s%d-a%s/training.json" % (d, k, a)))
        assert t["settings"]["compat_mixture"].startswith("a%s/" % a), t["settings"]["compat_mixture"]
PYEOF
check "the two weights give different students" bash -c "! cmp -s '$TMP/run/adapters/mixture-distill-s1-a0.2/adapter_model.safetensors' '$TMP/run/adapters/mixture-distill-s1-a0.6/adapter_model.safetensors'"
check "the choice is the rule's, from the validation files, and the chosen candidate is the method's adapter" \
  $PY tests/update/choice_rule.py "$TMP/run" mixture-distill 1 0.2,0.6 - 2
check "the manifest says what was chosen; ce has no note" $PY - "$TMP/run/manifest.json" <<'PYEOF'
import json, sys
ms = {m["name"]: m["settings"] for m in json.load(open(sys.argv[1]))["tasks"][0]["methods"]}
assert "mixture weight chosen on validation (its students) among 0.2,0.6: seed 1 0." in ms["mixture-distill"], ms["mixture-distill"]
assert ", seed 2 0." in ms["mixture-distill"] and "chosen" not in ms["ce"], ms
PYEOF

# with a count list: the pairs (a, E), a outer
U2=(update "${COMMON[@]}" --out "$TMP/run2" --methods mixture-distill --mixture-weights 0.3,0.7 --compat-epochs 1,2 --quiet)
$MUSCLE "${U2[@]}" >"$TMP/u2.out" 2>"$TMP/u2.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u2.err" | sed 's/^/# /'
check "with --compat-epochs 1,2 as well: four candidates a seed, the rule over all four" \
  bash -c "test $rc -eq 0 && ls '$TMP/run2/adapters' | grep -c '^mixture-distill-s[12]-e[12]-a0\.[37]\$' | grep -qx 8 && $PY tests/update/choice_rule.py '$TMP/run2' mixture-distill 1,2 0.3,0.7 - 2"
check "... and the manifest names both lists" grep -q "compatibility epochs and mixture weight chosen on validation among 1,2 and 0.3,0.7: seed 1 [12] epochs a 0\\.[37], seed 2" "$TMP/run2/manifest.json"

R=(update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl" --task-test "$TMP/te.jsonl"
   --out "$TMP/r2" --seeds 2 --quiet)
expect_error "a list without --task-val is refused" "the weight is chosen on a validation split: give --task-val" \
  $MUSCLE "${R[@]}" --methods mixture-distill --mixture-weights 0.2,0.4
expect_error "a list without a mixture preset is refused, naming them" "no method of the run distils a mixture over the choices.*mixture-distill" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods ce,choice --mixture-weights 0.2,0.4
expect_error "weights that do not increase are refused" "must increase \\('0.2' after 0.4\\)" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --mixture-weights 0.4,0.2
expect_error "a weight of 1 is refused" "--mixture-weights '1': expected a number in \\(0, 1\\)" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --mixture-weights 0.5,1
expect_error "at most 10 weights" "at most 10 mixture weights" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --mixture-weights 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95,0.99
expect_error "a run folder made with one list is not resumed with another" '"mixture_weights" differs' \
  $MUSCLE update "${COMMON[@]}" --out "$TMP/run" --methods ce,mixture-distill --mixture-weights 0.2,0.5 --quiet
check "nothing was written for the refused runs" test ! -e "$TMP/r2/update.json"
echo "1..$TAP_N"
