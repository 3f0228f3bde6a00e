#!/usr/bin/env bash
# muscle update --ce-weights W1,W2,... (update_epochs.c): a mixture preset's student of every
# seed is trained once per weight W of the cross-entropy on the gold answers (times every
# count of --compat-epochs and a of --mixture-weights), and the candidate chosen on
# --task-val by the rule of --compat-epochs, checked against an independent computation
# from the validation files (tests/update/choice_rule.py); each candidate trained with its
# own W; a list of one sets W with no choice (mixture-choice and mixture-distill, which
# differ only in W, then train the same student); the manifest's note; the refusals before
# any step.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
. tests/update/lib.sh

# the "new" base is v1 itself: a tiny model, the mechanics are what is tested
COMMON=(--old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl"
        --task-val "$TMP/va.jsonl" --task-test "$TMP/te.jsonl" --seeds 2 --epochs 1 --lr 3e-3 --batch 8 --seq-len 96 --bootstrap 0)
U=(update "${COMMON[@]}" --out "$TMP/run" --methods ce,mixture-distill --ce-weights 0,0.5 --compat-epochs 1,2)
$MUSCLE "${U[@]}" >"$TMP/u1.out" 2>"$TMP/u1.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u1.err" | sed 's/^/# /'
check "update --ce-weights 0,0.5 --compat-epochs 1,2 runs to the report" test $rc -eq 0 -a -s "$TMP/run/report.json"
grep "chosen on validation" "$TMP/u1.err" | sed 's/^/# /'
check "the steps are counted: the last is [N/N]" bash -c "grep -o '\[[0-9]*/[0-9]*\]' '$TMP/u1.err' | tail -1 | grep -qE '\[([0-9]+)/\1\]'"
check "a candidate per seed, W and count for the mixture preset; counts alone for ce" bash -c "for k in 1 2; do for e in 1 2; do
  for w in 0 0.5; do test -s '$TMP/run/adapters/'mixture-distill-s\$k-e\$e-w\$w/adapter_model.safetensors -a \
    -s '$TMP/run/preds/'mixture-distill-s\$k-e\$e-w\$w.val.jsonl || exit 1; done
  test -s '$TMP/run/adapters/'ce-s\$k-e\$e/adapter_model.safetensors || exit 1; done; done
  ! ls '$TMP/run/adapters' | grep -q '^ce-s.-.*-w'"
check "each candidate was trained with its own W (the loss's settings)" $PY - "$TMP/run" <<'PYEOF'
import json, sys
d = sys.argv[1]
for k in (1, 2):
    for e in (1, 2):
        for w in ("0", "0.5"):
            t = json.load(open("%s/adapters/mixture-distill-s%d-e%d-w%s/training.json" % (d, k, e, w)))
            assert "/ce%s/kd1" % w in t["settings"]["compat"], t["settings"]["compat"]
PYEOF
check "the two weights give different students" bash -c "! cmp -s '$TMP/run/adapters/mixture-distill-s1-e1-w0/adapter_model.safetensors' '$TMP/run/adapters/mixture-distill-s1-e1-w0.5/adapter_model.safetensors'"
check "the choice is the rule's, from the validation files, and the chosen candidate is the method's adapter" \
  $PY tests/update/choice_rule.py "$TMP/run" mixture-distill 1,2 - 0,0.5 2
check "the manifest says what was chosen" $PY - "$TMP/run/manifest.json" <<'PYEOF'
import json, re, sys
ms = {m["name"]: m["settings"] for m in json.load(open(sys.argv[1]))["tasks"][0]["methods"]}
s = ms["mixture-distill"]
assert re.search(r"compatibility epochs and cross-entropy weight chosen on validation among 1,2 and 0,0\.5: "
                 r"seed 1 [12] epochs W 0(\.5)?, seed 2 [12] epochs W 0(\.5)?$", s), s
assert "cross-entropy weight" not in ms["ce"], ms["ce"]
PYEOF

# with --mixture-weights as well, no count list: -aA-wW, a outer
U2=(update "${COMMON[@]}" --out "$TMP/run2" --methods mixture-distill --mixture-weights 0.2,0.6 --ce-weights 0,0.5 --quiet)
$MUSCLE "${U2[@]}" >"$TMP/u2.out" 2>"$TMP/u2.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u2.err" | sed 's/^/# /'
check "with --mixture-weights 0.2,0.6: four candidates a seed (a, W), the rule over all four" \
  bash -c "test $rc -eq 0 && ls '$TMP/run2/adapters' | grep -c '^mixture-distill-s[12]-a0\.[26]-w0\(\.5\)\?\$' | grep -qx 8 && $PY tests/update/choice_rule.py '$TMP/run2' mixture-distill 1 0.2,0.6 0,0.5 2"
check "... and the manifest names both lists" grep -q "mixture weight and cross-entropy weight chosen on validation among 0.2,0.6 and 0,0.5: seed 1 a 0\\.[26] W 0\\(\\.5\\)\\?, seed 2" "$TMP/run2/manifest.json"

# a list of one: W set, no choice; the two presets that differ only in W train the same student
U3=(update "${COMMON[@]}" --out "$TMP/run3" --methods mixture-choice,mixture-distill --ce-weights 0.25 --mixture-weights 0.3 --quiet)
$MUSCLE "${U3[@]}" >"$TMP/u3.out" 2>"$TMP/u3.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u3.err" | sed 's/^/# /'
check "--ce-weights 0.25: both presets trained with W = 0.25, no candidates" bash -c "test $rc -eq 0 &&
  grep -q '/ce0.25/kd1' '$TMP/run3/adapters/mixture-choice-s1/training.json' && grep -q '/ce0.25/kd1' '$TMP/run3/adapters/mixture-distill-s2/training.json' &&
  ! ls '$TMP/run3/adapters' | grep -q -- '-w' && test ! -e '$TMP/run3/preds/mixture-distill-s1.epochs.json'"
check "... mixture-choice and mixture-distill are then the same student, bit for bit" \
  cmp "$TMP/run3/adapters/mixture-choice-s2/adapter_model.safetensors" "$TMP/run3/adapters/mixture-distill-s2/adapter_model.safetensors"
check "... and the manifest says W" grep -q "cross-entropy weight 0.25 (--ce-weights)" "$TMP/run3/manifest.json"
check "... and a, a list of one as well" grep -q "mixture weight 0.3 (--mixture-weights); cross-entropy weight 0.25 (--ce-weights)" "$TMP/run3/manifest.json"

R=(update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl" --task-test "$TMP/te.jsonl"
   --out "$TMP/r2" --seeds 2 --quiet)
expect_error "a list without --task-val is refused" "--ce-weights 0,0.5: the cross-entropy weight is chosen on a validation split: give --task-val" \
  $MUSCLE "${R[@]}" --methods mixture-distill --ce-weights 0,0.5
expect_error "a list without a mixture preset is refused, naming them" "--ce-weights 0,0.5: no method of the run distils a mixture over the choices.*mixture-distill" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods ce,choice --ce-weights 0,0.5
expect_error "weights that do not increase are refused" "must increase \\('0' after 0.5\\)" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --ce-weights 0.5,0
expect_error "a weight above 1 is refused" "--ce-weights '1.5': expected a number in \\[0, 1\\]" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --ce-weights 0.5,1.5
expect_error "a negative weight is refused" "--ce-weights '-0.1': expected a number in \\[0, 1\\]" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --ce-weights=-0.1,0.5
expect_error "at most 10 weights" "at most 10 cross-entropy weights" \
  $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --methods mixture-distill --ce-weights 0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1
expect_error "a run folder made with one list is not resumed with another" '"ce_weights" differs' \
  $MUSCLE update "${COMMON[@]}" --out "$TMP/run" --methods ce,mixture-distill --ce-weights 0,0.25 --compat-epochs 1,2 --quiet
check "nothing was written for the refused runs" test ! -e "$TMP/r2/update.json"
echo "1..$TAP_N"
