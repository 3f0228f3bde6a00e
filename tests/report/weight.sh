#!/usr/bin/env bash
# The report's issue-18 parts on the hand-made fixture tests/fixtures/report/weight/ (written by
# its make_fixture.py): every method against the ce control (paired NFR difference with its
# interval, and the "beats ce" / "none beats ce" sentence), an interpolation sweep as a curve
# of the NFR-accuracy plot, and the inference-time mixture of M1 and the M2 seeds; numbers
# checked against an independent computation from the prediction files; report.html checked
# as well-formed, self-contained HTML.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
FIX=tests/fixtures/report/weight
mkdir -p "$TMP/run"
cp "$FIX"/*.jsonl "$FIX"/*.json "$TMP/run/"
OUT="$TMP/run/report"

$MUSCLE report "$TMP/run/manifest.json" --out "$OUT" --bootstrap 400 >"$TMP/table" 2>"$TMP/err"
check "report: exit 0, nothing on stderr" test $? -eq 0 -a ! -s "$TMP/err"
sed 's/^/# /' "$TMP/table" | head -30
check "table: the vs-ce column" grep -q 'dNFR vs ce pts' "$TMP/table"

check "report.json: vs ce, the sweep and the mixture match an independent computation" $PY - "$TMP/run" "$OUT/report.json" <<'PYEOF'
import json, math, sys
d = sys.argv[1]; rep = json.load(open(sys.argv[2])); man = json.load(open(d + "/manifest.json"))
t = rep["tasks"][0]; mt = man["tasks"][0]
def load(f): return {json.loads(l)["id"]: json.loads(l) for l in open(d + "/" + f)}
m1 = load(mt["old"]); ids = list(m1)
def nfr(f):
    x = load(f); return sum(m1[i]["correct"] and not x[i]["correct"] for i in ids) / len(ids)
files = {m["name"]: m["preds"] for m in mt["methods"]}
models = {m["name"]: m for m in t["models"]}
ce = [nfr(f) for f in files["ce"]]
for name in ("interp", "choice"):
    want = sum(nfr(f) - c for f, c in zip(files[name], ce)) / len(ce)
    got = models[name]["vs_ce"]["dnfr"]
    print("# %s vs ce: dNFR %.4f (independent %.4f) [%s, %s] beats_ce %s" % (name, got["value"], want, got["lo"], got["hi"], models[name]["vs_ce"]["beats_ce"]))
    assert abs(got["value"] - want) < 1e-12 and got["lo"] <= got["value"] <= got["hi"]
    assert models[name]["vs_ce"]["beats_ce"] == (models[name]["qualifies"] and got["hi"] < 0)
assert "vs_ce" not in models["ce"] and "vs_ce" not in models["M2"]
beats = [n for n in ("interp", "choice") if models[n]["vs_ce"]["beats_ce"]]
assert (t["beats_ce"] in beats) if beats else t["beats_ce"] is None
# the sweep: means over the seeds' files
sw = [json.load(open(d + "/" + f)) for f in mt["methods"][0]["sweeps"]]
pts = models["interp"]["sweep"]["points"]
assert len(pts) == 11
for g, p in enumerate(pts):
    for k in ("test_acc", "test_nfr"):
        assert abs(p[k] - sum(s["points"][g][k] for s in sw) / len(sw)) < 1e-12
assert abs(models["interp"]["sweep"]["chosen_a_mean"] - 0.4) < 1e-12
# the mixture (1 - a) mean(M2 seeds) + a M1 over the choices
m2 = [load(f) for f in mt["new"]["preds"]]
def sm(lp):
    z = sum(math.exp(v) for v in lp); return [math.exp(v) / z for v in lp]
for e in t["mixture"]:
    a = e["a"]; right = nf = 0
    for i in ids:
        p1 = sm(m1[i]["choice_logprobs"]); ps = [sm(x[i]["choice_logprobs"]) for x in m2]
        mix = [(1 - a) * sum(p[j] for p in ps) / len(ps) + a * p1[j] for j in range(len(p1))]
        best = max(range(len(mix)), key=lambda j: (mix[j], -j))
        ok = best == m1[i]["target"]; right += ok; nf += m1[i]["correct"] and not ok
    st = e["stats"]
    assert abs(st["acc_new"]["value"] - right / len(ids)) < 1e-12, (a, st["acc_new"], right)
    assert abs(st["nfr"]["value"] - nf / len(ids)) < 1e-12, (a, st["nfr"], nf)
    assert st["nfr"]["lo"] <= st["nfr"]["value"] <= st["nfr"]["hi"]
print("# mixture a=0.3: acc %.3f NFR %.3f" % (t["mixture"][3]["stats"]["acc_new"]["value"], t["mixture"][3]["stats"]["nfr"]["value"]))
assert t["mixture"][-1]["stats"]["nfr"]["value"] == 0  # a = 1 is M1 itself
PYEOF

check "report.html: well-formed, self-contained; the plot with a sweep curve and the mixture curve; the vs-ce column and sentence" \
  $PY - "$OUT/report.html" "$OUT/report.json" <<'PYEOF'
import json, sys
from html.parser import HTMLParser
VOID = {"meta", "br", "col", "img", "input", "hr", "link", "area", "base", "wbr", "source", "track", "param", "embed"}
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.errors = []; self.ids = set(); self.count = {}; self.th = []; self.text = []
        self.doctype = False; self.in_th = False
    def handle_decl(self, decl): self.doctype |= decl.lower() == "doctype html"
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids: self.errors.append("duplicate id " + a["id"])
            self.ids.add(a["id"])
        cls = tuple((a.get("class") or "").split())
        self.count[(tag, cls)] = self.count.get((tag, cls), 0) + 1
        if tag in ("script", "link", "img", "iframe") and ("src" in a or "href" in a): self.errors.append("external " + tag)
        if tag == "th": self.in_th = True; self.th.append("")
        if tag not in VOID: self.stack.append((tag, cls))
    def handle_startendtag(self, tag, attrs):
        cls = tuple((dict(attrs).get("class") or "").split())
        self.count[(tag, cls)] = self.count.get((tag, cls), 0) + 1
    def handle_endtag(self, tag):
        if tag == "th": self.in_th = False
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append("</%s> closes <%s>" % (tag, self.stack[-1][0] if self.stack else "nothing")); return
        self.stack.pop()
    def handle_data(self, data):
        if self.in_th: self.th[-1] += data
        self.text.append(data)
h = open(sys.argv[1]).read(); p = P(); p.feed(h); p.close()
assert p.doctype and not p.errors and not p.stack, (p.errors[:5], p.stack[:5])
n = lambda tag, *cls: sum(v for (t, c), v in p.count.items() if t == tag and all(x in c for x in cls))
print("# svg %d, polylines: sweep %d mixture %d; circles %d" % (n("svg", "nfr-plot"), n("g", "sweep"), n("g", "mixture"), n("circle")))
assert n("svg", "nfr-plot") == 1 and n("g", "sweep") == 1 and n("g", "mixture") == 1 and n("polyline") == 2
assert "dNFR vs ce pts" in p.th, p.th
assert n("table", "mixture") == 1
text = "".join(p.text)
t = json.load(open(sys.argv[2]))["tasks"][0]
want = ("%s beats ce" % t["beats_ce"]) if t["beats_ce"] else "none beats ce"
assert "against the ce control: " + want in text, want
print("# sentence:", want)
PYEOF

# without interp (choice's NFR equals ce's): none beats ce; without ce: the report says there is no control
$PY - "$TMP/run/manifest.json" "$TMP/run/no-interp.json" "$TMP/run/no-ce.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
a = json.loads(json.dumps(m)); a["tasks"][0]["methods"] = [x for x in a["tasks"][0]["methods"] if x["name"] != "interp"]
json.dump(a, open(sys.argv[2], "w"))
b = json.loads(json.dumps(m)); b["tasks"][0]["methods"] = [x for x in b["tasks"][0]["methods"] if x["name"] != "ce"]
json.dump(b, open(sys.argv[3], "w"))
PYEOF
$MUSCLE report "$TMP/run/no-interp.json" --out "$TMP/r2" --bootstrap 200 >"$TMP/t2" 2>&1
check "no method beats ce: the report says none does" grep -q 'against the ce control: none beats ce' "$TMP/t2" "$TMP/r2/report.md"
check "no method beats ce: report.html says so too" grep -q 'against the ce control: none beats ce' "$TMP/r2/report.html"
$MUSCLE report "$TMP/run/no-ce.json" --out "$TMP/r3" --bootstrap 200 >"$TMP/t3" 2>&1
check "no ce in the run: the report asks for the control" grep -q 'no method named ce in this run' "$TMP/t3"
echo "1..$TAP_N"
