#!/usr/bin/env bash
# muscle update --compat-epochs E1,E2,... (update_epochs.c): every trained method's adapter of
# every seed is trained for each count, the count chosen on --task-val by the rule of an
# interpolation's a; checked against an independent computation from the validation
# prediction files; the chosen candidate is the method's adapter (same bytes) and what the
# test phase evaluated; the sweep files, the manifest's note, a rerun that only rewrites the
# report, and the refusals before any step.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
. tests/update/lib.sh

U=(update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl"
   --task-val "$TMP/va.jsonl" --task-test "$TMP/te.jsonl" --out "$TMP/run" --methods ce,choice,interp-choice
   --seeds 2 --epochs 1 --compat-epochs 1,2 --lr 3e-3 --batch 8 --seq-len 96 --bootstrap 0)
$MUSCLE "${U[@]}" >"$TMP/u1.out" 2>"$TMP/u1.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u1.err" | sed 's/^/# /'
check "update --compat-epochs 1,2 runs to the report" test $rc -eq 0 -a -s "$TMP/run/report.json"
grep "chosen on validation" "$TMP/u1.err" | sed 's/^/# /'
check "the steps are counted: the last is [N/N]" bash -c "grep -o '\[[0-9]*/[0-9]*\]' '$TMP/u1.err' | tail -1 | grep -qE '\[([0-9]+)/\1\]'"
check "a candidate per method, seed and count" bash -c "for m in ce choice; do for k in 1 2; do for e in 1 2; do
  test -s '$TMP/run/adapters/'\$m-s\$k-e\$e/adapter_model.safetensors -a -s '$TMP/run/preds/'\$m-s\$k-e\$e.val.jsonl || exit 1; done; done; done"
check "the choice is the rule's, from the validation files, and the chosen candidate is the method's adapter" $PY - "$TMP/run" <<'PYEOF'
import filecmp, json, sys
d = sys.argv[1]
def rd(f): return {r["id"]: bool(r["correct"]) for r in map(json.loads, open(d + "/preds/" + f))}
def stats(old, new):
    o, n = rd(old), rd(new); assert o.keys() == n.keys()
    return sum(n.values()) / len(n), sum(o[i] and not n[i] for i in o) / len(n)
for m in ("ce", "choice"):
    for k in (1, 2):
        sw = json.load(open(d + "/preds/%s-s%d.epochs.json" % (m, k)))
        m2a, m2n = stats("old.val.jsonl", "new-s%d.val.jsonl" % k)
        best = None
        for e, p in zip((1, 2), sw["points"]):
            va, vn = stats("old.val.jsonl", "%s-s%d-e%d.val.jsonl" % (m, k, e))
            assert p["epochs"] == e and abs(p["val_acc"] - va) < 1e-12 and abs(p["val_nfr"] - vn) < 1e-12, (p, va, vn)
            if va >= m2a - 0.005 - 1e-12 and (best is None or vn < best[1] - 1e-12): best = (e, vn)
        want = best[0] if best else 1
        print("# %s seed %d: chosen %g (independent %d); M2 val acc %.3f, points %s" % (m, k, sw["chosen_epochs"], want, m2a,
              [(p["epochs"], round(p["val_acc"], 3), round(p["val_nfr"], 3)) for p in sw["points"]]))
        assert sw["chosen_epochs"] == want and abs(sw["m2"]["val_acc"] - m2a) < 1e-12 and sw["seed"] == k
        for f in ("adapter_model.safetensors", "adapter_config.json", "training.json"):
            assert filecmp.cmp("%s/adapters/%s-s%d/%s" % (d, m, k, f), "%s/adapters/%s-s%d-e%d/%s" % (d, m, k, want, f), shallow=False), f
        ev = json.load(open(d + "/preds/%s-s%d.eval.json" % (m, k)))
        assert ev["adapter"].endswith("/adapters/%s-s%d" % (m, k)), ev.get("adapter")
PYEOF
check "the two counts train for different lengths (the candidates differ)" bash -c "! cmp -s '$TMP/run/adapters/choice-s1-e1/adapter_model.safetensors' '$TMP/run/adapters/choice-s1-e2/adapter_model.safetensors'"
check "the manifest says what was chosen, the weight-space method does not" $PY - "$TMP/run/manifest.json" <<'PYEOF'
import json, sys
ms = {m["name"]: m["settings"] for m in json.load(open(sys.argv[1]))["tasks"][0]["methods"]}
for m in ("ce", "choice"):
    assert "compatibility epochs chosen on validation among 1,2: seed 1 " in ms[m] and ", seed 2 " in ms[m], ms[m]
assert "epochs chosen" not in ms["interp-choice"], ms["interp-choice"]
PYEOF
$MUSCLE "${U[@]}" >"$TMP/u2.out" 2>"$TMP/u2.err"
check "a finished run only rewrites the report, identically" cmp "$TMP/u1.out" "$TMP/u2.out"
check "... every step but the report done before" bash -c "! grep '^muscle update: \[' '$TMP/u2.err' | grep -v 'done before\|\] report\$' | grep -q ."

R=(update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl" --task-test "$TMP/te.jsonl"
   --out "$TMP/r2" --methods ce --quiet)
expect_error "a list without --task-val is refused" "chosen on a validation split: give --task-val" $MUSCLE "${R[@]}" --compat-epochs 1,3
expect_error "counts that do not increase are refused" "must increase \\('1' after 3\\)" $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --compat-epochs 3,1
expect_error "an empty count is refused" "expected a number or an increasing" $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --compat-epochs 1,,2
expect_error "a zero count is refused" "'0': expected a number in \\(0, 1e6\\]" $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --compat-epochs 1,0
expect_error "at most 8 counts" "at most 8 epoch counts" $MUSCLE "${R[@]}" --task-val "$TMP/va.jsonl" --compat-epochs 1,2,3,4,5,6,7,8,9
expect_error "a run folder made with one count is not resumed with a list" '"compat_epochs" differs' \
  $MUSCLE update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl" \
   --task-val "$TMP/va.jsonl" --task-test "$TMP/te.jsonl" --out "$TMP/run" --methods ce,choice,interp-choice \
   --seeds 2 --epochs 1 --compat-epochs 1,3 --lr 3e-3 --batch 8 --seq-len 96 --bootstrap 0 --quiet
expect_error "a mixture teacher's run folder with a comma is refused, naming it" "--out '$TMP/r,2': method 'mixture-choice' needs a folder without a comma" \
  $MUSCLE update --old-model "$V1" --old-adapter "$TMP/a1" --new-model "$V1" --task-train "$TMP/tr.jsonl" \
   --task-val "$TMP/va.jsonl" --task-test "$TMP/te.jsonl" --out "$TMP/r,2" --methods ce,mixture-choice --quiet
check "nothing was written for the refused runs" bash -c "test ! -e '$TMP/r2/update.json' && test ! -e '$TMP/r,2'"
echo "1..$TAP_N"
