#!/usr/bin/env bash
# Issue 18: choose the number of compatibility epochs on the VALIDATION split, then report
# the test split under that choice - so a recipe with more epochs is not picked by looking
# at the test split.
#
#   scripts/experiments/choose_compat_epochs.sh ROOT PAIR TASK E1,E2,...
#
# Reads the run folders weightspace_grid.sh wrote for one cell with TRANSFER=1000, one per
# epoch count: ROOT/runs/PAIR-TASK-tr1000 for E = 1 (update's default) and
# ROOT/runs/PAIR-TASK-tr1000-ceE for the others (same pair, data, seeds and methods). It
#   1. evaluates on the run's validation split (update.json's task_val; once, kept beside the test predictions as
#      preds/NAME.val.jsonl): M1, M2 of every seed, and every method's adapter of every seed
#      in every folder (M1 and M2 are the same bits in every folder: trained with the same
#      seeds and recipe; the first folder's are used);
#      (a method not in every folder is left out);
#   2. chooses E per method and seed by the rule `update` uses for an interpolation's a
#      (update_weight.c): the lowest validation NFR against M1 among the E whose validation
#      accuracy is at least M2's (same seed) - 0.5 points; ties and "none qualifies" go to
#      the smallest E. Every method gets the same rule, the ce control included;
#   3. writes ROOT/runs/PAIR-TASK-tr1000-cevalE1_E2 with the chosen test predictions, a
#      manifest, choice.json (every candidate's validation and test accuracy and NFR) and
#      `muscle report` on it (report.md: the test tables under the validation choice).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${1:?usage: choose_compat_epochs.sh ROOT PAIR TASK E1,E2,...}"; P="${2:?PAIR}"; T="${3:?TASK}"; ES="${4:?E1,E2,...}"
MUSCLE="${MUSCLE:-build/muscle}"; PY=/usr/bin/python3
folder() { if [ "$1" = 1 ]; then echo "$ROOT/runs/$P-$T-tr1000"; else echo "$ROOT/runs/$P-$T-tr1000-ce$1"; fi; }
# V1, A1, V2 and the validation split from the first folder's update.json (paths as the grid wrote them)
read -r V1 A1 V2 VAL < <($PY - "$(folder "${ES%%,*}")/update.json" <<'PYEOF'
import json, sys
u = json.load(open(sys.argv[1]))
s = u.get("spec", u)
print(s["old_model"], s["old_adapter"], s["new_model"], s["task_val"])
PYEOF
)
val_eval() { # MODEL ADAPTER OUT
  [ -s "$3" ] && return 0
  $MUSCLE eval --model "$1" --adapter "$2" --task "$VAL" --out "$3.tmp" --quiet >/dev/null && mv "$3.tmp" "$3"
}
FIRST="$(folder "${ES%%,*}")"
val_eval "$V1" "$A1" "$FIRST/preds/old.val.jsonl"
SEEDS=$(ls "$FIRST/preds" | sed -n 's/^new-s\([0-9]*\)\.jsonl$/\1/p' | sort -n)
for k in $SEEDS; do val_eval "$V2" "$FIRST/adapters/new-s$k" "$FIRST/preds/new-s$k.val.jsonl"; done
for E in ${ES//,/ }; do
  F="$(folder "$E")"
  [ -s "$F/manifest.json" ] || { echo "choose_compat_epochs.sh: $F: no finished run folder" >&2; exit 2; }
  for ad in "$F"/adapters/*-s*; do
    n=$(basename "$ad"); case "$n" in new-s*|soup-*) continue ;; esac
    val_eval "$V2" "$ad" "$F/preds/$n.val.jsonl"
  done
done
OUT="$ROOT/runs/$P-$T-tr1000-ceval${ES//,/_}"
rm -rf "$OUT.tmp"; mkdir -p "$OUT.tmp/preds"
DIRS=(); for E in ${ES//,/ }; do DIRS+=("$E=$(folder "$E")"); done
$PY - "$OUT.tmp" "$FIRST" "${DIRS[@]}" <<'PYEOF'
import json, os, shutil, sys
out, first, cands = sys.argv[1], sys.argv[2], [(int(a.split("=", 1)[0]), a.split("=", 1)[1]) for a in sys.argv[3:]]
TOL = 0.005
def rd(p):
    return {r["id"]: bool(r["correct"]) for r in map(json.loads, open(p))}
def stats(old, new):
    o, n = rd(old), rd(new)
    assert o.keys() == n.keys(), (old, new)
    acc = sum(n.values()) / len(n)
    nfr = sum(1 for i in o if o[i] and not n[i]) / len(n)
    return acc, nfr
man = json.load(open(first + "/manifest.json"))
task = man["tasks"][0]
for f in ["old.jsonl"] + [os.path.basename(p) for p in task["new"]["preds"]]:
    shutil.copy(first + "/preds/" + f, out + "/preds/" + f)
choice = {"rule": "per method and seed: the lowest validation NFR among the epoch counts whose validation "
                  "accuracy is >= M2's (same seed) - 0.5 pts; ties and none -> the smallest", "methods": []}
kept = []
for m in task["methods"]:
    name, chosen_preds, rows = m["name"], [], []
    if not all(os.path.exists(d + "/preds/" + os.path.basename(sp)) for _, d in cands for sp in m["preds"]):
        print("%s: not in every folder, left out" % name, file=sys.stderr)
        continue
    kept.append(m)
    for sp in m["preds"]:
        base = os.path.basename(sp)[:-len(".jsonl")]          # NAME-sK
        k = base.rsplit("-s", 1)[1]
        m2va, m2vn = stats(first + "/preds/old.val.jsonl", first + "/preds/new-s%s.val.jsonl" % k)
        best, pts = None, []
        for e, d in sorted(cands):
            va, vn = stats(first + "/preds/old.val.jsonl", d + "/preds/" + base + ".val.jsonl")
            ta, tn = stats(first + "/preds/old.jsonl", d + "/preds/" + base + ".jsonl")
            pts.append({"epochs": e, "val_acc": va, "val_nfr": vn, "test_acc": ta, "test_nfr": tn})
            if va >= m2va - TOL - 1e-12 and (best is None or vn < best[1] - 1e-12):
                best = (e, vn, d)
        if best is None:
            e, d = sorted(cands)[0]; best = (e, None, d)
        shutil.copy(best[2] + "/preds/" + base + ".jsonl", out + "/preds/" + base + ".jsonl")
        chosen_preds.append("preds/" + base + ".jsonl")
        rows.append({"seed": int(k), "chosen_epochs": best[0], "m2_val_acc": m2va, "m2_val_nfr": m2vn, "points": pts})
        print("%s seed %s: %d epochs chosen on validation (%s)" % (name, k, best[0], ", ".join(
            "E=%d val acc %.2f NFR %.2f" % (p["epochs"], 100 * p["val_acc"], 100 * p["val_nfr"]) for p in pts)), file=sys.stderr)
    m["preds"] = chosen_preds
    m["settings"] += " (compat epochs chosen on validation per seed: %s)" % ",".join(str(r["chosen_epochs"]) for r in rows)
    choice["methods"].append({"name": name, "seeds": rows})
task["methods"] = kept
man["title"] += " (compatibility epochs chosen on validation among %s)" % ",".join(str(e) for e, _ in sorted(cands))
json.dump(man, open(out + "/manifest.json", "w"), indent=1)
json.dump(choice, open(out + "/choice.json", "w"), indent=1)
PYEOF
$MUSCLE report "$OUT.tmp/manifest.json" --out "$OUT.tmp" >/dev/null
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "choose_compat_epochs.sh: $OUT/report.md" >&2
