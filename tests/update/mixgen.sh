#!/bin/bash
# tests/update/mixgen.sh - the inference-time mixture of generators (update/update_mixgen.c):
# `muscle update` on a generation task decodes the test inputs from (1-a) mean(M2 seeds) + a M1
# at a = 0, 0.3, 0.5 (preds/mixgen-aA.jsonl) and the report shows it beside the methods
# (text, Markdown, HTML, JSON). At a = 0 with one seed, M1 is not run and the file is M2's own
# predictions, record for record; at a = 0.5 M1 changes some output. A resumed run keeps the
# files; the manifest's "mixture" field is checked (generation only, a in [0, 1], increasing).
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1="$SHARED/models/stories260K/stories260K.bin"
need "$V1" || { echo "1..$TAP_N"; exit 0; }
D="$SHARED/data/debian"
head -n 16 "$D/debian-sum.train.jsonl" >"$TMP/tr.jsonl"
head -n 8 "$D/debian-sum.test.jsonl" >"$TMP/te.jsonl"
# M1: another seed and learning rate than update's M2 (seed 1, lr 1e-3)
$MUSCLE finetune --model "$V1" --task "$TMP/tr.jsonl" --out "$TMP/m1" --seed 7 --epochs 1 --batch 8 --lr 4e-3 --seq-len 96 --quiet 2>"$TMP/e"
U=(update --old-model "$V1" --old-adapter "$TMP/m1" --new-model "$V1" --task-train "$TMP/tr.jsonl" --task-test "$TMP/te.jsonl"
   --out "$TMP/run" --seeds 1 --epochs 1 --seq-len 96 --max-tokens 16 --methods ce)
$MUSCLE "${U[@]}" >"$TMP/out" 2>"$TMP/err"
rc=$?; [ $rc -ne 0 ] && tail -5 "$TMP/err" | sed 's/^/# /'
check "update on a generation task runs to its report" test $rc -eq 0 -a -s "$TMP/run/report.json"
check "the mixture's predictions at a = 0, 0.3, 0.5" test -s "$TMP/run/preds/mixgen-a0.0.jsonl" -a -s "$TMP/run/preds/mixgen-a0.3.jsonl" \
    -a -s "$TMP/run/preds/mixgen-a0.5.jsonl"
cmp_preds() { # cmp_preds A B MODE: MODE same = every record equal; differ = some prediction differs
  /usr/bin/python3 -c "
import json, sys
rd = lambda p: {json.dumps(r['id']): r for r in map(json.loads, open(p))}
a, b = rd('$1'), rd('$2')
assert a.keys() == b.keys() and len(a) == 8, (len(a), len(b))
d = sum(a[k]['prediction'] != b[k]['prediction'] for k in a)
print('# %d of %d outputs differ' % (d, len(a)))
assert (all(a[k] == b[k] for k in a) if '$3' == 'same' else d > 0)"
}
check "a = 0 with one M2 seed: M2's own predictions, record for record" cmp_preds "$TMP/run/preds/mixgen-a0.0.jsonl" "$TMP/run/preds/new-s1.jsonl" same
check "a = 0.5: M1 changes some outputs" cmp_preds "$TMP/run/preds/mixgen-a0.5.jsonl" "$TMP/run/preds/new-s1.jsonl" differ
check "the manifest lists the mixture's files" /usr/bin/python3 -c "
import json; m = json.load(open('$TMP/run/manifest.json'))['tasks'][0]['mixture']
assert [e['a'] for e in m] == [0, 0.3, 0.5] and m[1]['preds'] == 'preds/mixgen-a0.3.jsonl', m"
check "report.json: the mixture of the generators, a = 0 as M2 (score and score NFR)" /usr/bin/python3 -c "
import json; t = json.load(open('$TMP/run/report.json'))['tasks'][0]
assert t['mixture_of'] == 'generators' and [e['a'] for e in t['mixture']] == [0, 0.3, 0.5], t.get('mixture')
m2 = [m for m in t['models'] if m['name'] == 'M2'][0]['stats']; x = t['mixture'][0]['stats']
for k in ('score_new', 'score_nfr', 'acc_new', 'nfr'):
    assert abs(x[k]['value'] - m2[k]['value']) < 1e-12, (k, x[k], m2[k])"
check "the printed tables show it" grep -q "inference-time mixture of the generators: greedy decoding from (1-a) x mean(1 M2 seeds) + a x M1" "$TMP/out"
check "report.md shows it" grep -q "inference-time mixture of the generators" "$TMP/run/report.md"
check "report.html: its table and its curve in the plot" grep -q "Inference-time mixture of the generators (two models deployed)" "$TMP/run/report.html"
check "... the curve" grep -q '<g class="mixture"><polyline' "$TMP/run/report.html"
$MUSCLE "${U[@]}" >"$TMP/out2" 2>"$TMP/err2"
check "a resumed run keeps the mixture's files" grep -q "a = 0.5 (decoding the test set): done before" "$TMP/err2"
# the manifest's field, by hand
M="$TMP/run/manifest.json"
bad() { # bad NAME PATTERN PYTHON-EDIT: the manifest edited, refused in one line
  /usr/bin/python3 -c "
import json; j = json.load(open('$M')); t = j['tasks'][0]
$3
json.dump(j, open('$TMP/run/bad.json', 'w'))"
  expect_error "$1" "$2" $MUSCLE report "$TMP/run/bad.json" --out "$TMP/rep"
}
bad "mixture: a out of [0, 1]" "bad.json: tasks\[0\].mixture\[1\].a: expected a number in \[0, 1\]" "t['mixture'][1]['a'] = 1.5"
bad "mixture: weights not increasing" "tasks\[0\].mixture\[2\].a: expected the weights in increasing order" "t['mixture'][2]['a'] = 0.3"
bad "mixture: on a multiple-choice task" "tasks\[0\].mixture: only a generation task" "t['kind'] = 'mc'"
bad "mixture: a missing file" "mixgen-nope.jsonl" "t['mixture'][0]['preds'] = 'preds/mixgen-nope.jsonl'"
echo "1..$TAP_N"
