#!/usr/bin/env bash
# Issue 20, "Accuracy": does `muscle update --bf16` (mixed precision in every adapter's
# training and in evaluation) change the NFR tables only within their intervals? Runs the
# same update twice on the demo pair's multiple-choice task (demo/: the `make demo`
# recipe, docs/results.md "Pair 2"), once in fp32 and once with --bf16, same seeds, at
# nice 10 and 1 thread each (both runs side by side), then compares the two report.md
# tables: per model accuracy, NFR, PFR and relative NFR change, each bf16 value against
# the fp32 run's 95% interval.
#
#   scripts/experiments/bf16_update.sh ROOT [SEEDS] [METHODS]     (default 2, ce,choice,muscle)
#   scripts/experiments/bf16_update.sh ROOT --compare             (the table only)
# Writes ROOT/fp32/ and ROOT/bf16/ (update runs; resumable) and prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${1:?usage: bf16_update.sh ROOT [SEEDS] [METHODS] | ROOT --compare}"
MUSCLE="${MUSCLE:-build/muscle}"
if [ "${2:-}" != --compare ]; then
  SEEDS="${2:-2}"; METHODS="${3:-ce,choice,muscle}"
  mkdir -p "$ROOT"
  pids=()
  for p in fp32 bf16; do
    extra=(); [ "$p" = bf16 ] && extra=(--bf16)
    OMP_NUM_THREADS=1 nice -n 10 "$MUSCLE" update --old-model demo/models/v1 --old-adapter demo/adapters/section-v1 \
      --new-model demo/models/v2 --task-train demo/data/section.train.jsonl --task-test demo/data/section.test.jsonl \
      --out "$ROOT/$p" --methods "$METHODS" --seeds "$SEEDS" --epochs 2 --compat-epochs 1 --lr 3e-3 --batch 8 \
      --seq-len 256 --limit 300 "${extra[@]}" --quiet >"$ROOT/$p.out" 2>"$ROOT/$p.err" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
fi
/usr/bin/python3 - "$ROOT/fp32/report.md" "$ROOT/bf16/report.md" <<'PY'
import re, sys
def table(path):
    rows, head = {}, None
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if head is None:
            if line.startswith("|") and "rel. NFR change %" in cells: head = cells
            continue
        if not line.startswith("|"): break
        if set(cells[0]) <= set("-: "): continue
        rows[re.sub(r" \(chosen\)", "", cells[0])] = dict(zip(head, cells))
    return rows
def parse(v):  # "65.00 [60.66, 69.22]" -> (65.0, 60.66, 69.22); "-" -> None
    m = re.match(r"([-+]?[\d.]+)(?: \[([-+]?[\d.]+), ([-+]?[\d.]+)\])?", v)
    if not m: return None
    x = float(m.group(1))
    return (x, float(m.group(2)), float(m.group(3))) if m.group(2) else (x, None, None)
f, b = table(sys.argv[1]), table(sys.argv[2])
cols = ["accuracy %", "NFR %", "PFR %", "rel. NFR change %"]
print("| model | " + " | ".join(f"{c} fp32 | {c} bf16" for c in cols) + " |")
print("|---|" + "---:|---:|" * len(cols))
inside = total = 0
for name, rf in f.items():
    rb = b.get(name)
    if not rb: continue
    out = []
    for c in cols:
        pf, pb = parse(rf.get(c, "-")), parse(rb.get(c, "-"))
        if not pf or not pb:
            out += [rf.get(c, "-"), rb.get(c, "-")]
            continue
        mark = ""
        if pf[1] is not None:
            total += 1
            ok = pf[1] <= pb[0] <= pf[2]
            inside += ok
            mark = " (in)" if ok else " **(out)**"
        out += [rf[c], rb[c].split(" [")[0] + mark]
    print(f"| {name} | " + " | ".join(out) + " |")
print(f"\n{inside} of {total} bf16 values lie inside the fp32 run's 95% interval.")
PY
