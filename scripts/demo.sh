#!/usr/bin/env bash
# `make demo`: a whole base-model update on the scenario that ships in demo/ (demo/README.md):
# the old task models (v1 + A1) of a multiple-choice task (Debian package description ->
# archive section) and a summarisation task (description -> one-line synopsis), the new
# base v2; `muscle update` trains the new adapters and the compatibility adapters,
# evaluates and compares everything; one report covers both tasks.
# Output: build/demo/ (DEMO_OUT to change it); the results tables on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
M="${MUSCLE:-build/muscle}"
OUT="${DEMO_OUT:-build/demo}"
for f in demo/models/v1/model.safetensors demo/models/v2/model.safetensors demo/adapters/section-v1/adapter_model.safetensors \
         demo/adapters/sum-v1/adapter_model.safetensors demo/data/section.train.jsonl demo/data/sum.test.jsonl; do
  [ -r "$f" ] || { echo "demo: missing $f (the demo scenario ships in demo/)" >&2; exit 1; }
done
mkdir -p "$OUT"
t0=$(date +%s)
echo "== muscle update: debian-section (multiple choice), v1 -> v2" >&2
$M update --old-model demo/models/v1 --old-adapter demo/adapters/section-v1 --new-model demo/models/v2 \
    --task-train demo/data/section.train.jsonl --task-test demo/data/section.test.jsonl --out "$OUT/section" \
    --methods muscle,choice --epochs 2 --compat-epochs 1 --lr 3e-3 --batch 8 --seq-len 256 --limit 300 --quiet >/dev/null
echo "== muscle update: debian-sum (summarisation, ROUGE-1), v1 -> v2" >&2
$M update --old-model demo/models/v1 --old-adapter demo/adapters/sum-v1 --new-model demo/models/v2 \
    --task-train demo/data/sum.train.jsonl --task-test demo/data/sum.test.jsonl --out "$OUT/sum" \
    --methods muscle,seqkd --epochs 2 --compat-epochs 0.5 --lr 3e-3 --batch 8 --seq-len 256 --max-tokens 24 --limit 100 --quiet >/dev/null
# one report for both tasks (the two runs' prediction files; written whole, then renamed)
cat >"$OUT/manifest.json.tmp" <<'EOF'
{
 "title": "muscle demo: Debian description tasks, base model v1 -> v2",
 "tasks": [
  {"name": "debian-section", "kind": "mc", "old": "section/preds/old.jsonl",
   "new": {"name": "M2", "preds": ["section/preds/new-s1.jsonl"]},
   "methods": [
    {"name": "muscle", "settings": "--compat student-wrong", "preds": ["section/preds/muscle-s1.jsonl"]},
    {"name": "choice", "settings": "--compat student-wrong --level choice --ce-weight 0.5", "preds": ["section/preds/choice-s1.jsonl"]}]},
  {"name": "debian-sum", "kind": "gen", "old": "sum/preds/old.jsonl",
   "new": {"name": "M2", "preds": ["sum/preds/new-s1.jsonl"]},
   "methods": [
    {"name": "muscle", "settings": "--compat student-wrong", "preds": ["sum/preds/muscle-s1.jsonl"]},
    {"name": "seqkd", "settings": "--compat student-wrong --level sequence --ce-weight 0.5", "preds": ["sum/preds/seqkd-s1.jsonl"]}],
   "mixture": [{"a": 0, "preds": "sum/preds/mixgen-a0.0.jsonl"}, {"a": 0.3, "preds": "sum/preds/mixgen-a0.3.jsonl"},
    {"a": 0.5, "preds": "sum/preds/mixgen-a0.5.jsonl"}]}
 ]
}
EOF
mv "$OUT/manifest.json.tmp" "$OUT/manifest.json"
$M report "$OUT/manifest.json" --out "$OUT"
# every file the demo wrote decodes as strict UTF-8, and every JSON / JSONL file parses
# (NaN and Infinity refused): the guarantee of docs/reliability.md, checked on the real outputs
/usr/bin/python3 - "$OUT" <<'PY' || { echo "demo: an output is not valid UTF-8 or JSON (above)" >&2; exit 1; }
import json, os, sys
def bad_const(c): raise ValueError(f"{c} is not JSON")
n = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(root, f)
        if not f.endswith((".json", ".jsonl", ".html", ".md", ".csv", ".txt")): continue
        text = open(p, "rb").read().decode("utf-8")  # strict: raises on any invalid sequence
        if f.endswith(".json"): json.loads(text, parse_constant=bad_const)
        if f.endswith(".jsonl"):
            for line in text.splitlines():
                if line.strip(): json.loads(line, parse_constant=bad_const)
        n += 1
print(f"demo: {n} output files decode as strict UTF-8 (JSON parsed, no NaN)", file=sys.stderr)
PY
echo
echo "demo: report: $OUT/report.html (also report.md, report.json); $(( $(date +%s) - t0 )) s"
