#!/usr/bin/env bash
# `muscle compare` end to end on small handwritten prediction files: the table, --json
# (checked against an independent Python computation), --flips, --baseline, and the errors.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3

# 10 multiple-choice instances. old right on q0..q5; new loses q4 (negative flip), wins
# q6, q7 (positive flips); q8 both wrong alike, q9 both wrong differently. new's lines
# come in another order.
cat >"$TMP/old.jsonl" <<'EOF'
{"id": "q0", "correct": true, "prediction": 1, "target": 1}
{"id": "q1", "correct": true, "prediction": 0, "target": 0}

{"id": "q2", "correct": true, "prediction": 2, "target": 2}
{"id": "q3", "correct": true, "prediction": 3, "target": 3}
{"id": "q4", "correct": true, "prediction": 1, "target": 1, "choice_logprobs": [-2.0, -0.5, -3.1, -4.0]}
{"id": "q5", "correct": true, "prediction": 0, "target": 0}
{"id": "q6", "correct": false, "prediction": 1, "target": 0}
{"id": "q7", "correct": false, "prediction": 1, "target": 2}
{"id": "q8", "correct": false, "prediction": 3, "target": 1}
{"id": "q9", "correct": false, "prediction": 2, "target": 3, "extra": "ignored"}
EOF
cat >"$TMP/new.jsonl" <<'EOF'
{"id": "q9", "correct": false, "prediction": 0, "target": 3}
{"id": "q8", "correct": false, "prediction": 3, "target": 1}
{"id": "q7", "correct": true, "prediction": 2, "target": 2}
{"id": "q6", "correct": true, "prediction": 0, "target": 0}
{"id": "q5", "correct": true, "prediction": 0, "target": 0}
{"id": "q4", "correct": false, "prediction": 2, "target": 1, "choice_logprobs": [-2.0, -0.9, -0.8, -4.0]}
{"id": "q3", "correct": true, "prediction": 3, "target": 3}
{"id": "q2", "correct": true, "prediction": 2, "target": 2}
{"id": "q1", "correct": true, "prediction": 0, "target": 0}
{"id": "q0", "correct": true, "prediction": 1, "target": 1}
EOF

# 1. the table
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" >"$TMP/table" 2>"$TMP/err"
check "table: exit 0, nothing on stderr" test $? -eq 0 -a ! -s "$TMP/err"
check "table: 10 instances, bootstrap named" grep -q "^10 instances; 95% intervals: paired bootstrap, 1000 resamples, seed 42" "$TMP/table"
check "table: accuracies 60% and 70%" grep -qE "^accuracy, old +60.00% +\[[0-9.]+, [0-9.]+\] +6/10$" "$TMP/table"
grep -qE "^accuracy, new +70.00% .* 7/10$" "$TMP/table" && ok "table: accuracy new" || not_ok "table: accuracy new"
check "table: NFR 10% (1/10)" grep -qE "^negative flip rate NFR +10.00% +\[0.00, [0-9.]+\] +1/10$" "$TMP/table"
check "table: PFR 20% (2/10)" grep -qE "^positive flip rate PFR +20.00% .* 2/10$" "$TMP/table"
check "table: inconsistency flips 20% (q4 and q9)" grep -qE "^inconsistency flip rate +20.00% .* 2/10$" "$TMP/table"
check "table: NFI 1/3, BTC 5/6" bash -c "grep -qE '^negative flip impact NFI +33.33% .* 1/3$' '$TMP/table' && grep -qE '^backward trust compatibility BTC +83.33% .* 5/6$' '$TMP/table'"
check "table: no score rows without scores" bash -c "! grep -q 'mean score' '$TMP/table'"

# 2. --json, checked against a Python computation from the same files
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --json --seed 7 >"$TMP/a.json"
check "--json: one object whose point values equal an independent computation" $PY - "$TMP/old.jsonl" "$TMP/new.jsonl" "$TMP/a.json" <<'EOF'
import json, sys
rd = lambda p: {json.dumps(d["id"]): d for d in (json.loads(l) for l in open(p) if l.strip())}
old, new = rd(sys.argv[1]), rd(sys.argv[2])
out = open(sys.argv[3]).read().splitlines(); assert len(out) == 1
j = json.loads(out[0]); n = len(old); assert j["n"] == n == 10 and j["seed"] == 7 and j["bootstrap"] == 1000
c1 = {k: old[k]["correct"] for k in old}; c2 = {k: new[k]["correct"] for k in old}
nf = sum(c1[k] and not c2[k] for k in old); pf = sum(not c1[k] and c2[k] for k in old)
inc = sum(not c2[k] and old[k]["prediction"] != new[k]["prediction"] for k in old)
want = {"acc_old": sum(c1.values()) / n, "acc_new": sum(c2.values()) / n, "nfr": nf / n, "pfr": pf / n, "ifr": inc / n,
        "nfi": nf / (n - sum(c2.values())), "btc": sum(c1[k] and c2[k] for k in old) / sum(c1.values())}
for k, v in want.items():
    s = j[k]; assert abs(s["value"] - v) < 1e-12, (k, s, v)
    if s["lo"] is not None: assert s["lo"] <= s["value"] <= s["hi"], (k, s)
assert j["nfr"]["num"] == 1 and j["nfr"]["den"] == 10
assert j["discrete"] is True and j["continuous"] is False and "score_nfr" not in j
EOF
# the intervals, replayed in Python: the same generator (core/rng.h: splitmix64 seeding,
# xorshift64*, bounded draws by rejection), the same draws, numpy's percentiles
$PY - "$TMP/big_old.jsonl" "$TMP/big_new.jsonl" <<'EOF'
import json, random, sys
r = random.Random(5)
with open(sys.argv[1], "w") as fo, open(sys.argv[2], "w") as fn:
    for i in range(400):
        c1 = r.random() < 0.7; c2 = c1 if r.random() < 0.85 else not c1
        fo.write(json.dumps({"id": i, "correct": c1, "prediction": 0}) + "\n")
        fn.write(json.dumps({"id": i, "correct": c2, "prediction": 0 if c2 == c1 else 1}) + "\n")
EOF
$MUSCLE compare "$TMP/big_old.jsonl" "$TMP/big_new.jsonl" --json --seed 11 --bootstrap 333 >"$TMP/big.json"
sed 's/"seed":11/"seed":12/' "$TMP/big.json" >"$TMP/big_wrong_seed.json"
cat >"$TMP/replay.py" <<'EOF'
import json, sys
import numpy as np
M = 2**64 - 1
rd = lambda p: [json.loads(l) for l in open(p) if l.strip()]
old = rd(sys.argv[1]); new = {json.dumps(d["id"]): d for d in rd(sys.argv[2])}
pairs = [(d["correct"], new[json.dumps(d["id"])]["correct"]) for d in old]  # in OLD's order
j = json.load(open(sys.argv[3])); n, B = len(pairs), j["bootstrap"]
z = (j["seed"] + 0x9e3779b97f4a7c15) & M
z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
z ^= z >> 31
state = z or 0x2545f4914f6cdd1d
def u32():
    global state
    s = state; s ^= s >> 12; s ^= (s << 25) & M; s ^= s >> 27; state = s
    return ((s * 0x2545f4914f6cdd1d) & M) >> 32
limit = (2**32 - n) % n
def draw():
    while True:
        x = u32()
        if x >= limit: return x % n
vals = {"acc_old": [], "nfr": [], "pfr": [], "btc": []}
for b in range(B):
    r = [pairs[draw()] for _ in range(n)]
    c1 = sum(a for a, _ in r); nf = sum(a and not c for a, c in r)
    vals["acc_old"].append(c1 / n); vals["nfr"].append(nf / n)
    vals["pfr"].append(sum(c and not a for a, c in r) / n)
    vals["btc"].append((c1 - nf) / c1 if c1 else float("nan"))
for k, v in vals.items():
    v = np.array(v)
    if np.isnan(v).any():
        assert j[k]["lo"] is None, k; continue
    lo, hi = np.percentile(v, [2.5, 97.5])
    assert abs(lo - j[k]["lo"]) < 1e-12 and abs(hi - j[k]["hi"]) < 1e-12, (k, lo, hi, j[k])
EOF
check "--json: intervals equal a Python replay of the bootstrap (same draws, numpy percentiles)" \
  $PY "$TMP/replay.py" "$TMP/big_old.jsonl" "$TMP/big_new.jsonl" "$TMP/big.json"
check "the replay is sensitive: another seed's draws do not match" \
  bash -c "! $PY '$TMP/replay.py' '$TMP/big_old.jsonl' '$TMP/big_new.jsonl' '$TMP/big_wrong_seed.json' 2>/dev/null"
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --json --seed 7 >"$TMP/b.json"
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --json --seed 8 >"$TMP/c.json"
check "same seed, same output byte for byte" cmp -s "$TMP/a.json" "$TMP/b.json"
check "another seed, other intervals" bash -c "! cmp -s '$TMP/a.json' '$TMP/c.json'"
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --json --bootstrap 0 >"$TMP/nb.json"
check "--bootstrap 0: values without intervals" $PY -c "
import json; j = json.load(open('$TMP/nb.json')); assert j['nfr']['lo'] is None and j['nfr']['value'] == 0.1"

# 3. --flips
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --flips "$TMP/flips.jsonl" >"$TMP/out"
check "--flips: the table says what was written" grep -q "1 negative, 2 positive, 1 inconsistent" "$TMP/out"
check "--flips: one line per flip, with kind, target and both predictions" $PY - "$TMP/flips.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["id"], r["kind"]) for r in rows] == [("q4", "negative"), ("q6", "positive"), ("q7", "positive"), ("q9", "inconsistent")], rows
q4 = rows[0]
assert q4["old"] == {"line": 6, "correct": True, "prediction": 1, "choice_logprobs": [-2, -0.5, -3.1, -4]}, q4
assert q4["new"]["prediction"] == 2 and q4["new"]["correct"] is False and q4["new"]["line"] == 6 and q4["target"] == 1
assert rows[3]["old"]["prediction"] == 2 and rows[3]["new"]["prediction"] == 0
EOF
check "--flips: no temporary file left beside it" test "$(ls "$TMP" | grep -c 'flips.jsonl.')" -eq 0

# 4. continuous scores (with generated texts), and --baseline
cat >"$TMP/s1.jsonl" <<'EOF'
{"id": 1, "score": 0.5, "prediction": "a cat sat"}
{"id": 2, "score": 0.2, "prediction": "dog"}
{"id": 3, "score": 0.0, "prediction": ""}
{"id": 4, "score": 1.0, "prediction": "the mat"}
{"id": 5, "score": 0.3, "prediction": "x y"}
EOF
cat >"$TMP/s2.jsonl" <<'EOF'
{"id": 1, "score": 0.7, "prediction": "the cat sat"}
{"id": 2, "score": 0.2, "prediction": "a dog"}
{"id": 3, "score": 0.1, "prediction": "mat"}
{"id": 4, "score": 0.6, "prediction": "mat"}
{"id": 5, "score": 0.3, "prediction": "x y"}
EOF
cat >"$TMP/sc.jsonl" <<'EOF'
{"id": 5, "score": 0.3, "prediction": "x y"}
{"id": 4, "score": 1.0, "prediction": "the mat"}
{"id": 3, "score": 0.0, "prediction": ""}
{"id": 2, "score": 0.4, "prediction": "dog dog"}
{"id": 1, "score": 0.5, "prediction": "a cat sat"}
EOF
$MUSCLE compare "$TMP/s1.jsonl" "$TMP/s2.jsonl" >"$TMP/st"
check "scores: table rows for mean, score flips, magnitudes" bash -c "grep -qE '^mean score, old +0.4000' '$TMP/st' && grep -qE '^score NFR \(D < 0\) +20.00% .* 1/5$' '$TMP/st' && grep -qE '^score PFR \(D > 0\) +40.00% .* 2/5$' '$TMP/st' && grep -qE '^regression magnitude m_r +0.4000' '$TMP/st' && grep -qE '^gain magnitude m_g +0.1500' '$TMP/st' && grep -qE '^score BTC .* +75.00% .* 3/4$' '$TMP/st'"
$MUSCLE compare "$TMP/s1.jsonl" "$TMP/sc.jsonl" --baseline "$TMP/s2.jsonl" --json --flips "$TMP/sflips.jsonl" >"$TMP/d.json"
check "--baseline: deltas of new (a compatible model) against the baseline" $PY - "$TMP/d.json" "$TMP/sflips.jsonl" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["continuous"] and not j["discrete"]
assert j["score_nfr"]["value"] == 0 and abs(j["baseline_metrics"]["score_nfr"]["value"] - 0.2) < 1e-12
d = j["delta"]
assert abs(d["score_dnfr"]["value"] + 0.2) < 1e-12 and abs(d["score_rel_dnfr_pct"]["value"] + 100) < 1e-9, d
assert abs(d["dscore"]["value"] - (2.2 - 1.9) / 5) < 1e-12, d
assert "dnfr" not in d
rows = [json.loads(l) for l in open(sys.argv[2])]
assert [(r["id"], r["kind"]) for r in rows] == [(2, "positive")] and abs(rows[0]["delta"] - 0.2) < 1e-12, rows
EOF

# 5. errors: one line "muscle: error: ...", non-zero exit, nothing on stdout
grep -v '"q3"' "$TMP/new.jsonl" >"$TMP/miss.jsonl"
echo '{"id": "q99", "correct": true, "prediction": 0}' >>"$TMP/miss.jsonl"
expect_error "mismatched ids: both sides named, with files" \
  'different instances: 1 id of .*old.jsonl missing from .*miss.jsonl: "q3" \(line 5\); 1 id of .*miss.jsonl missing from .*old.jsonl: "q99" \(line 10\)' \
  $MUSCLE compare "$TMP/old.jsonl" "$TMP/miss.jsonl"
head -3 "$TMP/new.jsonl" >"$TMP/few.jsonl"
expect_error "many missing ids: the first few and a count" 'missing from .*few.jsonl: "q0" \(line 1\), "q1" \(line 2\), "q2" \(line 4\) and 4 more' \
  $MUSCLE compare "$TMP/old.jsonl" "$TMP/few.jsonl"
{ cat "$TMP/new.jsonl"; echo '{"id": "q2", "correct": true, "prediction": 2}'; } >"$TMP/dup.jsonl"
expect_error "duplicate id names the id, lines and file" 'dup.jsonl: duplicate id "q2" \(lines 8 and 11\)' \
  $MUSCLE compare "$TMP/old.jsonl" "$TMP/dup.jsonl"
sed '3s/.*/{"id": "q7", "correct": true, "prediction": 2/' "$TMP/new.jsonl" >"$TMP/bad.jsonl"
expect_error "malformed JSON line names file:line" 'bad.jsonl:3: not valid JSON' $MUSCLE compare "$TMP/old.jsonl" "$TMP/bad.jsonl"
sed '2s/"correct": false/"correct": "no"/' "$TMP/new.jsonl" >"$TMP/bad2.jsonl"
expect_error "wrong field type names file:line and field" "bad2.jsonl:2: field 'correct': expected true or false, got a string" \
  $MUSCLE compare "$TMP/old.jsonl" "$TMP/bad2.jsonl"
sed '4s/"score": 1.0/"score": 1.5/' "$TMP/s1.jsonl" >"$TMP/bad3.jsonl"
expect_error "score out of range" "bad3.jsonl:4: field 'score': expected a number in \[0, 1\], got 1.5" \
  $MUSCLE compare "$TMP/bad3.jsonl" "$TMP/s2.jsonl"
sed '2s/, "prediction": "dog"//' "$TMP/s1.jsonl" >"$TMP/bad4.jsonl"
expect_error "missing prediction" "bad4.jsonl:2: field 'prediction' is missing" $MUSCLE compare "$TMP/bad4.jsonl" "$TMP/s2.jsonl"
sed '3s/"score": 0.0/"correct": true/' "$TMP/s1.jsonl" >"$TMP/bad5.jsonl"
expect_error "outcome fields must be the same on every line" "bad5.jsonl:3: field 'correct' is present, but line 1 has none" \
  $MUSCLE compare "$TMP/bad5.jsonl" "$TMP/s2.jsonl"
expect_error "no outcome in common" "has 'correct', .* has 'score': no outcome to compare" $MUSCLE compare "$TMP/old.jsonl" "$TMP/s2.jsonl"
: >"$TMP/empty.jsonl"
expect_error "empty file" "empty.jsonl: no predictions" $MUSCLE compare "$TMP/empty.jsonl" "$TMP/new.jsonl"
expect_error "missing file" "nope.jsonl" $MUSCLE compare "$TMP/nope.jsonl" "$TMP/new.jsonl"
sed '2s/"target": 1/"target": 2/' "$TMP/new.jsonl" >"$TMP/tgt.jsonl"
expect_error "targets that differ: different test sets" "id \"q8\": 'target' differs between .*old.jsonl:10 and .*tgt.jsonl:2" \
  $MUSCLE compare "$TMP/old.jsonl" "$TMP/tgt.jsonl"
expect_error "flips file in a missing folder" "no/such/dir" \
  $MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --flips "$TMP/no/such/dir/f.jsonl"
$MUSCLE compare "$TMP/old.jsonl" >/dev/null 2>"$TMP/err"; rc=$?
check "one file only: usage error (exit 2)" test "$rc" -eq 2
$MUSCLE compare "$TMP/old.jsonl" "$TMP/new.jsonl" --bootstrap -5 >/dev/null 2>"$TMP/err"; rc=$?
check "bad --bootstrap: exit 2 with the option named" bash -c "test $rc -eq 2 && grep -q -- '--bootstrap' '$TMP/err'"
$MUSCLE compare --help >"$TMP/help"
check "--help names the options" bash -c "grep -q -- '--flips FILE' '$TMP/help' && grep -q -- '--baseline PREDS' '$TMP/help'"
echo "1..$TAP_N"
