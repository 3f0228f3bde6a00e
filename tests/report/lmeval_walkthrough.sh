#!/usr/bin/env bash
# docs/lm-eval.md section 2, run as written: its ```sh blocks, in a folder holding two lm-eval
# sample folders (the fixture runs m1 and m2 of tests/fixtures/lmeval as lm-eval-v1/-v2);
# then what the walk-through promises: report.html with texts (checked in headless
# Chromium: the flip tables hold the questions and the answers' texts, and the inline script
# ran), flips.csv, the gate's verdicts.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
ROOT=$PWD
W="$TMP/work"; mkdir -p "$W"
cp -r tests/fixtures/lmeval/m1 "$W/lm-eval-v1"; cp -r tests/fixtures/lmeval/m2 "$W/lm-eval-v2"
$PY - docs/lm-eval.md "$TMP/walk.sh" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
sec = text.split("## 2.")[1].split("## 3.")[0]
blocks = re.findall(r"```sh\n(.*?)```", sec, re.S)
assert len(blocks) >= 4, len(blocks)
open(sys.argv[2], "w").write("set -e\n" + "\n".join(blocks))
PYEOF
check "docs/lm-eval.md: the walk-through has its command blocks" test -s "$TMP/walk.sh"
(cd "$W" && MUSCLE="$ROOT/$MUSCLE" bash -c "muscle() { \"\$MUSCLE\" \"\$@\"; }; $(cat "$TMP/walk.sh")") >"$TMP/out" 2>"$TMP/err"
rc=$?
check "the walk-through runs (exit 0)" test $rc -eq 0
[ $rc -ne 0 ] && sed 's/^/# /' "$TMP/err" | tail -5
check "compare printed McNemar's test" grep -q '^McNemar, old vs new' "$TMP/out"
check "report: report.html, report.json, flips.csv" test -s "$W/report/report.html" -a -s "$W/report/report.json" -a -s "$W/report/flips.csv"
check "gate --max-nfr 30%: PASS for both tasks" test "$(grep -c '^PASS  ' "$TMP/out")" -eq 2
check "gate --max-nfr 10%: FAIL, and the pipeline sees exit 1" grep -q '^gate: do not ship (exit 1)' "$TMP/out"
check "flips.csv: a row per flip, with the question text and answer texts" $PY - "$W/report/flips.csv" "$W/report/report.json" <<'PYEOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
rep = json.load(open(sys.argv[2]))
n = sum(len(m["seed1"]["flips"]["instances"]) for t in rep["tasks"] for m in t["models"])
assert len(rows) == n > 0, (len(rows), n)
arc = [r for r in rows if r["task"] == "arc_easy"]
assert all(r["text"].startswith("Question: ") and r["right_answer"] and r["m1_answer"] and r["model_answer"] for r in arc)
assert all(float(r["m1_margin"]) > 0 > float(r["model_margin"]) for r in arc if r["kind"] == "negative")
print(f"# {len(rows)} flips, {len(arc)} on arc_easy")
PYEOF
if ! command -v chromium >/dev/null 2>&1; then
  not_ok "chromium present (scripts/deps.sh test installs it)"
else
  export HOME="$TMP/home"; mkdir -p "$HOME"
  CHROME=(chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking
          --disable-component-update --disable-sync --user-data-dir="$TMP/chrome" --hide-scrollbars --window-size=1280,2400)
  timeout 120 "${CHROME[@]}" --dump-dom "file://$W/report/report.html" >"$TMP/dom.html" 2>/dev/null
  check "chromium: the rendered flip tables show the questions, answer texts and the script's row counts" $PY - "$TMP/dom.html" <<'PYEOF'
import sys, re
d = open(sys.argv[1], encoding="utf-8").read()
tables = re.findall(r'<table class="flips sortable" id="([^"]+)"', d)
assert len(tables) == 2, tables
assert "Which of these is a source of light energy?" in d or "What is the main gas" in d
counts = re.findall(r'<span class="note flip-count" data-table="[^"]+">(\d+) of (\d+) shown</span>', d)
assert len(counts) == 2 and all(a == b and int(a) > 0 for a, b in counts), counts   # the inline script ran
assert "<script src" not in d
print("# flip tables", tables, "rows", counts)
PYEOF
  timeout 120 "${CHROME[@]}" --screenshot="$TMP/shot.png" "file://$W/report/report.html" >/dev/null 2>&1
  check "chromium: a screenshot" test -s "$TMP/shot.png"
fi
echo "1..$TAP_N"
