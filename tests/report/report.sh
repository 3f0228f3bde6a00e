#!/usr/bin/env bash
# `muscle report` and `muscle gate` end to end on the hand-written prediction files of
# tests/fixtures/report/ (a multiple-choice task with 2 seeds and 2 methods, a generation task),
# and report.html rendered by a real browser (Debian's chromium, headless; required: a missing
# chromium is a failure, scripts/deps.sh test installs it).
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
FIX=tests/fixtures/report

# a run folder of its own: the manifest's paths are relative to it
mkdir -p "$TMP/run"
cp "$FIX"/*.jsonl "$FIX/manifest.json" "$TMP/run/"
OUT="$TMP/run/report"

# 1. the report
$MUSCLE report "$TMP/run/manifest.json" --out "$OUT" >"$TMP/table" 2>"$TMP/err"
check "report: exit 0, nothing on stderr" test $? -eq 0 -a ! -s "$TMP/err"
check "report: writes report.json, report.md, report.html, flips.csv" test -s "$OUT/report.json" -a -s "$OUT/report.md" -a -s "$OUT/report.html" -a -f "$OUT/flips.csv"
check "report: no temporary files left beside them (the folder lock aside)" test "$(ls -A "$OUT" | grep -vx .muscle.lock | wc -l)" -eq 4
check "table: M2 row (2 seeds, accuracy 70%, NFR 10%)" grep -qE '^M2 +2 +70\.00 \[[0-9.]+, [0-9.]+\] +10\.00 \[' "$TMP/table"
check "table: the chosen method, rel. NFR change -50%, dacc +5 points" grep -qE '^muscle \(chosen\) +2 +75\.00 .* -50\.0 .* \+5\.00 \[' "$TMP/table"
check "table: a method with fewer seeds than M2 is marked" grep -qE '^muscle \+ \(chosen\) +1 +44\.00' "$TMP/table"
check "table: the noise floor between M2 seeds" grep -q '^noise floor: NFR 20.00 \[.*1->2 20.00, 2->1 20.00' "$TMP/table"
check "table: distill (NFR 0 but 10 points less accurate) is not chosen" grep -q '^chosen: muscle, the lowest NFR .* (1 of 2 qualify)' "$TMP/table"
check "markdown: the results table" grep -qE '^\| muscle \(chosen\) +\| 2 +\| 75\.00' "$OUT/report.md"

check "report.json: the numbers (independent computation from the files)" $PY - "$TMP/run" "$OUT/report.json" <<'EOF'
import json, sys, os
d = sys.argv[1]
rd = lambda f: {json.dumps(r["id"]): r for r in (json.loads(l) for l in open(os.path.join(d, f)) if l.strip())}
m1 = rd("m1.jsonl"); m2 = [rd("m2-s1.jsonl"), rd("m2-s2.jsonl")]; mu = [rd("muscle-s1.jsonl"), rd("muscle-s2.jsonl")]
n = len(m1)
nfr = lambda a, b: sum(a[k]["correct"] and not b[k]["correct"] for k in a) / n
acc = lambda b: sum(b[k]["correct"] for k in b) / n
mean = lambda v: sum(v) / len(v)
j = json.load(open(sys.argv[2]))
assert j["format"] == "muscle-report" and j["version"] == 1 and j["bootstrap"] == 1000 and j["seed"] == 42
t = j["tasks"][0]; ms = {m["name"]: m for m in t["models"]}
close = lambda a, b: abs(a - b) < 1e-12
assert close(ms["M2"]["stats"]["nfr"]["value"], mean([nfr(m1, s) for s in m2]))
assert close(ms["M2"]["stats"]["acc_new"]["value"], mean([acc(s) for s in m2]))
assert close(ms["muscle"]["stats"]["nfr"]["value"], mean([nfr(m1, s) for s in mu]))
dnfr = mean([nfr(m1, c) - nfr(m1, b) for b, c in zip(m2, mu)])
assert close(ms["muscle"]["delta"]["dnfr"]["value"], dnfr)
assert close(ms["muscle"]["delta"]["rel_dnfr_pct"]["value"], 100 * dnfr / mean([nfr(m1, s) for s in m2]))
assert close(ms["muscle"]["delta"]["dacc"]["value"], mean([acc(c) - acc(b) for b, c in zip(m2, mu)]))
noise = mean([nfr(m2[0], m2[1]), nfr(m2[1], m2[0])])
assert close(t["noise_floor"]["stats"]["nfr"]["value"], noise)
assert t["chosen"] == "muscle"
for m in t["models"]:
    for k in ("acc_new", "nfr", "pfr"):
        s = m["stats"][k]; assert s["lo"] <= s["value"] <= s["hi"], (m["name"], k, s)
flips = ms["M2"]["seed1"]["flips"]["instances"]
assert [(f["id"], f["kind"]) for f in flips] == [("q4", "negative"), ("q6", "positive"), ("q7", "positive"), ("q9", "inconsistent")]
assert flips[0]["old"]["prediction"] == 1 and flips[0]["new"]["prediction"] == 2
g = j["tasks"][1]; gm = {m["name"]: m for m in g["models"]}
assert close(gm["M2"]["stats"]["score_new"]["value"], 0.39) and close(gm["M2"]["stats"]["score_nfr"]["value"], 0.3)
assert gm["muscle"]["paired_seeds"] == 1 and abs(gm["muscle"]["delta"]["dscore"]["value"] - 0.06) < 1e-12
EOF

$MUSCLE report "$TMP/run/manifest.json" --out "$TMP/out2" --json >"$TMP/stdout.json"
check "--json prints report.json, byte for byte" cmp -s "$TMP/stdout.json" "$TMP/out2/report.json"
check "same seed, same report" cmp -s "$OUT/report.json" "$TMP/out2/report.json"
$MUSCLE report "$TMP/run/manifest.json" --out "$TMP/out3" --seed 7 --bootstrap 200 --max-acc-drop 15% --json >"$TMP/s7.json"
check "--seed, --bootstrap, --max-acc-drop (percent) reach the report" $PY -c '
import json, sys; j = json.load(open(sys.argv[1]))
assert j["seed"] == 7 and j["bootstrap"] == 200 and abs(j["max_acc_drop"] - 0.15) < 1e-12
assert j["tasks"][0]["chosen"] == "distill"   # 10 points below M2 is now allowed, and its NFR is 0
' "$TMP/s7.json"

# 2. errors
expect_error "missing manifest: names the file" 'nope.json: cannot open' $MUSCLE report "$TMP/nope.json" --out "$TMP/x"
sed 's/"kind": "mc"/"kind": "classification"/' "$TMP/run/manifest.json" >"$TMP/run/bad.json"
expect_error "bad manifest: names the file and the field" 'bad.json: tasks\[0\]\.kind: expected "mc"' \
  $MUSCLE report "$TMP/run/bad.json" --out "$TMP/x"
sed 's/"m2-s2.jsonl"/"m2-s9.jsonl"/' "$TMP/run/manifest.json" >"$TMP/run/bad2.json"
expect_error "missing prediction file: names it, the task, the model and the seed" \
  "task 'choice', model 'M2', seed 2: .*m2-s9.jsonl: cannot open" $MUSCLE report "$TMP/run/bad2.json" --out "$TMP/x"
check "no report written on an error" test ! -e "$TMP/x"
$MUSCLE report "$TMP/run/manifest.json" >/dev/null 2>"$TMP/err"
check "--out is required (usage error, exit 2)" test $? -eq 2
$MUSCLE report "$TMP/run/manifest.json" --out "$TMP/x" --max-acc-drop lots >/dev/null 2>"$TMP/err"
check "--max-acc-drop must be a number (exit 2)" bash -c "test $? -eq 2 && grep -q 'max-acc-drop' '$TMP/err'"

# 3. the gate
gate() { # gate EXPECTED_EXIT NAME ARGS...: runs muscle gate, checks the exit code
  local want="$1" name="$2"; shift 2
  $MUSCLE gate "$@" >"$TMP/gate" 2>"$TMP/gate_err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else
    echo "# exit $rc, expected $want"; sed 's/^/#   /' "$TMP/gate" "$TMP/gate_err" | head -8; not_ok "$name"; fi
}
gate 0 "gate: passes at --max-nfr 5% (the chosen methods: NFR 5% and 0%)" --max-nfr 5% "$OUT/report.json"
check "gate: one PASS line per task, with the numbers" bash -c "
  grep -qx 'PASS  choice: muscle NFR 5.00% <= 5.00%; accuracy gain over M1 +15.00 pts' '$TMP/gate' &&
  grep -qx 'PASS  summary: muscle score NFR 0.00% <= 5.00%; mean score gain over M1 +4.00 pts' '$TMP/gate'"
gate 1 "gate: fails at --max-nfr 0.04" --max-nfr 0.04 "$OUT/report.json"
check "gate: the FAIL line says why" grep -q '^FAIL  choice: muscle NFR 5.00% > 4.00%.*(too many negative flips)' "$TMP/gate"
gate 1 "gate: fails when the accuracy gain is too small" --max-nfr 0.5 --min-acc-gain 20% "$OUT/report.json"
check "gate: ... and says so" grep -q '^FAIL  choice: .* +15.00 pts < +20.00 pts (gain too small)' "$TMP/gate"
gate 0 "gate: a negative --min-acc-gain" --max-nfr 0.5 --min-acc-gain -1% "$OUT/report.json"
gate 1 "gate: --method M2 --task choice checks the plain new model (NFR 10%)" --max-nfr 0.05 --method M2 --task choice "$OUT/report.json"
check "gate: ... one line, for that task" bash -c "test \$(wc -l <'$TMP/gate') -eq 1 && grep -q '^FAIL  choice: M2 NFR 10.00% > 5.00%' '$TMP/gate'"
gate 2 "gate: an unknown --task is an error (exit 2)" --max-nfr 0.05 --task nope "$OUT/report.json"
check "gate: ... naming it" grep -q "^muscle: error: .*report.json: no task named 'nope'" "$TMP/gate_err"
head -c 700 "$OUT/report.json" >"$TMP/cut.json"
gate 2 "gate: a corrupted (truncated) report: exit 2" --max-nfr 0.05 "$TMP/cut.json"
check "gate: ... one error line naming the file, nothing on stdout" bash -c "
  test \$(wc -l <'$TMP/gate_err') -eq 1 && grep -q '^muscle: error: .*cut.json:[0-9]*: not valid JSON' '$TMP/gate_err' && test ! -s '$TMP/gate'"
$PY -c '
import json, sys; j = json.load(open(sys.argv[1]))
del j["tasks"][1]["models"][1]["stats"]["score_nfr"]
json.dump(j, open(sys.argv[2], "w"))' "$OUT/report.json" "$TMP/hole.json"
gate 2 "gate: a report missing a field: exit 2" --max-nfr 0.05 "$TMP/hole.json"
check "gate: ... naming the file, task, model and field; no verdicts printed" bash -c "
  grep -q \"hole.json: tasks\\[1\\] ('summary'): models\\[1\\] ('muscle'): field 'stats.score_nfr.value': expected a number\" '$TMP/gate_err' && test ! -s '$TMP/gate'"
gate 2 "gate: a prediction file is not a report (exit 2)" --max-nfr 0.05 "$TMP/run/m1.jsonl"
gate 2 "gate: --max-nfr is required (exit 2)" "$OUT/report.json"
gate 2 "gate: --max-nfr 'five' (exit 2)" --max-nfr five "$OUT/report.json"
$PY -c '
import json, sys; j = json.load(open(sys.argv[1]))
j["tasks"][0]["chosen"] = None
json.dump(j, open(sys.argv[2], "w"))' "$OUT/report.json" "$TMP/none.json"
gate 1 "gate: no chosen method fails" --max-nfr 0.5 "$TMP/none.json"
check "gate: ... saying so" grep -q '^FAIL  choice: no chosen method' "$TMP/gate"

# 4. the browser: report.html is one self-contained file that renders with the table and the plot
if ! command -v chromium >/dev/null 2>&1; then
  echo "# chromium is not installed (scripts/deps.sh test installs it)"
  not_ok "chromium present"
else
  export HOME="$TMP/home"; mkdir -p "$HOME"
  CHROME=(chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions
          --user-data-dir="$TMP/chrome" --hide-scrollbars --window-size=1280,2000)
  timeout 120 "${CHROME[@]}" --dump-dom "file://$OUT/report.html" >"$TMP/dom.html" 2>"$TMP/chrome.log"
  check "chromium: --dump-dom exits 0" test $? -eq 0 -a -s "$TMP/dom.html"
  check "chromium DOM: table.results with rows and svg.nfr-plot with circles, per task" $PY - "$TMP/dom.html" <<'EOF'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.tables = {}; self.svgs = 0; self.circles = []; self.scripts = 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs); cls = (a.get("class") or "").split()
        if tag == "table" and "results" in cls: self.tables[a.get("id")] = 0; self.cur = a.get("id")
        if tag == "tr" and any(t == "table" for t, _ in self.stack) and getattr(self, "cur", None) and self.in_tbody: self.tables[self.cur] += 1
        if tag == "tbody": self.in_tbody = True
        if tag == "svg" and "nfr-plot" in cls: self.svgs += 1; self.circles.append(0)
        if tag == "circle" and self.circles: self.circles[-1] += 1
        if tag == "script": self.scripts += 1
        if tag not in ("meta", "br", "col", "line", "circle", "rect", "path"): self.stack.append((tag, cls))
    in_tbody = False
    def handle_endtag(self, tag):
        if tag == "tbody": self.in_tbody = False
        if tag == "table": self.cur = None
        while self.stack and self.stack[-1][0] != tag: self.stack.pop()
        if self.stack: self.stack.pop()
p = P(); p.feed(open(sys.argv[1]).read())
print("# tables", p.tables, "svgs", p.svgs, "circles", p.circles)
assert p.tables.get("results-choice") == 4 and p.tables.get("results-summary") == 3, p.tables
assert p.svgs == 2 and p.circles == [3, 2], (p.svgs, p.circles)
assert p.scripts == 1  # the flip tables' inline sort/filter script (no src)
EOF
  check "chromium DOM: the prediction with <script> stays text" grep -q '&lt;script&gt;alert("flip")&lt;/script&gt; &amp; Jerry' "$TMP/dom.html"
  timeout 120 "${CHROME[@]}" --screenshot="$TMP/shot.png" "file://$OUT/report.html" >/dev/null 2>>"$TMP/chrome.log"
  check "chromium: screenshot exits 0" test $? -eq 0
  check "chromium: the screenshot is a non-empty 1280-pixel-wide PNG with content" $PY - "$TMP/shot.png" <<'EOF'
import sys, struct, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) > 10000, len(b)
w, h = struct.unpack(">II", b[16:24]); print("# screenshot", w, "x", h, len(b), "bytes")
assert w == 1280 and h > 500
pos, idat = 8, b""
while pos < len(b):
    n, = struct.unpack(">I", b[pos:pos + 4]); typ = b[pos + 4:pos + 8]
    if typ == b"IDAT": idat += b[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)
assert len(set(raw)) > 50   # not a blank page
EOF
fi

echo "1..$TAP_N"
