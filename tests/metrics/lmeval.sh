#!/usr/bin/env bash
# Other tools' per-instance results in `muscle compare`: lm-evaluation-harness --log_samples
# files (tests/fixtures/lmeval, written by make_fixtures.py the way the harness writes them),
# plain CSV / JSONL of id + correct/score, and McNemar's exact test. Every number is checked
# against an independent computation in Python from the same files.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
F=tests/fixtures/lmeval
A1=$(ls $F/m1/*/samples_arc_easy_*.jsonl); A2=$(ls $F/m2/*/samples_arc_easy_*.jsonl)
AM=$(ls $F/muscle/*/samples_arc_easy_*.jsonl); AP=$(ls $F/m2-prompt2/*/samples_arc_easy_*.jsonl)
G1=$(ls $F/m1/*/samples_gsm8k_*.jsonl); G2=$(ls $F/m2/*/samples_gsm8k_*.jsonl)

# expected: acc, NFR, PFR counts and McNemar's p from the files, in Python
expect() { # expect OLD NEW METRIC FILTER
  $PY - "$@" <<'PYEOF'
import json, sys, math
old, new, metric, filt = sys.argv[1:5]
def load(p):
    d = {}
    for line in open(p, encoding="utf-8"):
        s = json.loads(line)
        if s.get("filter", "none") == filt: d[s["doc_id"]] = s[metric] == 1
    return d
a, b = load(old), load(new)
n = len(a); nf = sum(a[k] and not b[k] for k in a); pf = sum(b[k] and not a[k] for k in a)
k = min(nf, pf); m = nf + pf
p = 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m)
print(json.dumps({"n": n, "acc_old": sum(a.values()), "acc_new": sum(b.values()), "nfr": nf, "pfr": pf, "p": p}))
PYEOF
}
got() { # got COMPARE_ARGS... : the same fields from muscle compare --json
  $MUSCLE compare --json --bootstrap 0 "$@" | $PY -c '
import json, sys
j = json.load(sys.stdin)
print(json.dumps({"n": j["n"], "acc_old": j["acc_old"]["num"], "acc_new": j["acc_new"]["num"], "nfr": j["nfr"]["num"],
                  "pfr": j["pfr"]["num"], "p": j["mcnemar"]["p"]}))'
}
same() { # same NAME EXPECTED GOT
  if $PY -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); assert a.keys()==b.keys() and all(abs(a[k]-b[k])<=1e-12*max(1,abs(a[k])) for k in a), (a,b)' "$2" "$3"; then ok "$1"; else echo "# expected $2"; echo "# got      $3"; not_ok "$1"; fi
}
same "lm-eval arc_easy: acc (default for multiple choice), flips, McNemar p" "$(expect $A1 $A2 acc none)" "$(got $A1 $A2)"
same "lm-eval arc_easy: --metric acc_norm" "$(expect $A1 $A2 acc_norm none)" "$(got $A1 $A2 --metric acc_norm)"
same "lm-eval gsm8k: exact_match (default for generation), the first line's filter" "$(expect $G1 $G2 exact_match strict-match)" "$(got $G1 $G2)"
same "lm-eval gsm8k: --metric exact_match,flexible-extract" "$(expect $G1 $G2 exact_match flexible-extract)" "$(got $G1 $G2 --metric exact_match,flexible-extract)"
$MUSCLE compare --json --bootstrap 0 $A1 $A2 >"$TMP/c.json"
check "compare --json names the format and the metric" $PY -c '
import json,sys; j=json.load(open(sys.argv[1])); assert j["format"]=="lm-eval" and j["metric"]=="acc,none", j' "$TMP/c.json"
$MUSCLE compare $A1 $A2 --baseline $AM --bootstrap 0 >"$TMP/t.txt"
check "compare prints McNemar for old vs new and baseline vs new" grep -q '^McNemar, baseline vs new' "$TMP/t.txt"
expect_error "lm-eval: two runs with different prompts are refused (prompt_hash)" "prompt_hash' differs.*different prompts" $MUSCLE compare $A1 $AP
expect_error "lm-eval: an unknown metric names itself" "metric 'rouge1' is missing" $MUSCLE compare $A1 $A2 --metric rouge1
expect_error "lm-eval: an unknown filter" "no sample with filter 'strict'" $MUSCLE compare $G1 $G2 --metric exact_match,strict
expect_error "--metric on a muscle file is refused" "only applies to lm-eval" $MUSCLE compare tests/fixtures/report/m1.jsonl tests/fixtures/report/m1.jsonl --metric acc

# hostile lm-eval lines
head -3 $A1 >"$TMP/ok.jsonl"
sed '2s/"acc": [01]\.0/"acc": 0.5/' "$TMP/ok.jsonl" >"$TMP/half.jsonl"
expect_error "lm-eval: acc must be 0 or 1" "half.jsonl:2: metric 'acc': expected 0 or 1" $MUSCLE compare "$TMP/half.jsonl" "$TMP/half.jsonl"
$PY - "$TMP/ok.jsonl" "$TMP/liar.jsonl" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
lines[0]["acc"] = 1.0 - lines[0]["acc"]
open(sys.argv[2], "w").write("".join(json.dumps(l) + "\n" for l in lines))
PYEOF
expect_error "lm-eval: an acc that contradicts the logged loglikelihoods" "liar.jsonl:1: metric 'acc' is .* but the logged loglikelihoods pick" $MUSCLE compare "$TMP/liar.jsonl" "$TMP/liar.jsonl"
$PY -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
lines[1]["filtered_resps"][2][0] = "nan"
open(sys.argv[2], "w").write("".join(json.dumps(l) + "\n" for l in lines))' "$TMP/ok.jsonl" "$TMP/nan.jsonl"
expect_error "lm-eval: a NaN loglikelihood" "nan.jsonl:2: field 'filtered_resps'" $MUSCLE compare "$TMP/nan.jsonl" "$TMP/nan.jsonl"
cat "$TMP/ok.jsonl" <(head -1 "$TMP/ok.jsonl") >"$TMP/dup.jsonl"
expect_error "lm-eval: a doc_id twice (same filter)" "duplicate id 0 \(lines 1 and 4\)" $MUSCLE compare "$TMP/dup.jsonl" "$TMP/dup.jsonl"
printf '{"doc_id": 0, "acc": 1.0, "filtered_resps": [["-1", "False"]], "arguments": {"gen_args_0": {"arg_0": "x\xff", "arg_1": " y"}}}\n' >"$TMP/utf.jsonl"
expect_error "not valid UTF-8: names the line" "utf.jsonl:1: not valid UTF-8" $MUSCLE compare "$TMP/utf.jsonl" "$TMP/utf.jsonl"

# plain CSV and JSONL: id + correct / score
$PY - $A1 $A2 "$TMP" <<'PYEOF'
import json, sys, csv
for tag, p in (("old", sys.argv[1]), ("new", sys.argv[2])):
    rows = [json.loads(l) for l in open(p)]
    with open(f"{sys.argv[3]}/{tag}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["id", "correct", "text"])
        for r in rows: w.writerow([r["doc_id"], "true" if r["acc"] == 1 else "false", r["arguments"]["gen_args_0"]["arg_0"] + ', "quoted"'])
    with open(f"{sys.argv[3]}/{tag}.jsonl", "w") as f:
        for r in rows: f.write(json.dumps({"id": r["doc_id"], "correct": r["acc"] == 1}) + "\n")
PYEOF
same "CSV (quoted fields, newlines inside quotes): the same numbers as the lm-eval files" "$(expect $A1 $A2 acc none)" "$(got $TMP/old.csv $TMP/new.csv)"
same "JSONL of id + correct: the same numbers" "$(expect $A1 $A2 acc none)" "$(got $TMP/old.jsonl $TMP/new.jsonl)"
same "CSV against lm-eval (ids 7 and doc_id 7 match)" "$(expect $A1 $A2 acc none)" "$(got $TMP/old.csv $A2)"
printf 'id,score\na,0.5\nb,nan\n' >"$TMP/nan.csv"
expect_error "CSV: a NaN score names the line" "nan.csv:3: field 'score': expected a number in \[0, 1\], got 'nan'" $MUSCLE compare "$TMP/nan.csv" "$TMP/nan.csv"
printf 'id,correct\na,true\nb,false\na,true\n' >"$TMP/dup.csv"
expect_error "CSV: a duplicate id" "duplicate id \"a\" \(lines 2 and 4\)" $MUSCLE compare "$TMP/dup.csv" "$TMP/dup.csv"
printf 'name,correct\na,true\n' >"$TMP/noid.csv"
expect_error "CSV: no id column" "noid.csv:1: the header has no column 'id'" $MUSCLE compare "$TMP/noid.csv" "$TMP/noid.csv"
printf 'id,correct\na,yes\n' >"$TMP/yes.csv"
expect_error "CSV: correct must be true/false" "yes.csv:2: field 'correct': expected true/false or 1/0" $MUSCLE compare "$TMP/yes.csv" "$TMP/yes.csv"
printf 'id,correct\n"a,true\n' >"$TMP/open.csv"
expect_error "CSV: an unclosed quote" "open.csv:2: a quoted field is not closed" $MUSCLE compare "$TMP/open.csv" "$TMP/open.csv"
printf 'id,correct\na,true,x\n' >"$TMP/wide.csv"
expect_error "CSV: a row wider than the header" "wide.csv:2: 3 fields, but the header has 2" $MUSCLE compare "$TMP/wide.csv" "$TMP/wide.csv"
printf '{"id": 1, "score": NaN}\n' >"$TMP/nan.jsonl"
expect_error "JSONL: NaN is not JSON" "nan.jsonl:1: not valid JSON" $MUSCLE compare "$TMP/nan.jsonl" "$TMP/nan.jsonl"

# McNemar's exact test against the binomial sums, on made-up discordant counts
$PY - "$TMP" <<'PYEOF'
import json, sys
for name, b, c, same in (("m1", 9, 1, 20), ("m2", 0, 0, 5), ("m3", 30, 45, 100)):
    with open(f"{sys.argv[1]}/{name}-old.jsonl", "w") as fo, open(f"{sys.argv[1]}/{name}-new.jsonl", "w") as fn:
        i = 0
        for o, n, k in ((1, 0, b), (0, 1, c), (1, 1, same)):
            for _ in range(k):
                fo.write(json.dumps({"id": i, "correct": bool(o)}) + "\n"); fn.write(json.dumps({"id": i, "correct": bool(n)}) + "\n"); i += 1
PYEOF
for c in m1 m2 m3; do
  same "McNemar exact p = 2 * binomial tail ($c)" "$($PY -c '
import json, math, sys
rows = lambda p: {json.loads(l)["id"]: json.loads(l)["correct"] for l in open(p)}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
nf = sum(a[k] and not b[k] for k in a); pf = sum(b[k] and not a[k] for k in a); m = nf + pf
p = 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(nf, pf) + 1)) / 2 ** m)
print(json.dumps({"n": len(a), "acc_old": sum(a.values()), "acc_new": sum(b.values()), "nfr": nf, "pfr": pf, "p": p}))' "$TMP/$c-old.jsonl" "$TMP/$c-new.jsonl")" "$(got "$TMP/$c-old.jsonl" "$TMP/$c-new.jsonl")"
done
echo "1..$TAP_N"
