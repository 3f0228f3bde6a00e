#!/bin/bash
# tests/update/mixgen.sh - the inference-time mixture of generators (update/update_mixgen.c):
# `muscle update` on a generation task decodes the test inputs from (1-a) mean(M2 seeds) + a M1
# at a = 0, 0.3, 0.5 (preds/mixgen-aA.jsonl) and the report shows it beside the methods
# (text, Markdown, HTML, JSON). At a = 0 with one seed, M1 is not run and the file is M2's own
# predictions, record for record; at a = 0.5 M1 changes some output. A resumed run keeps the
# files; the manifest's "mixture" field is checked (generation only, a in [0, 1], increasing).
# With --task-val, a mixture preset's a is chosen on the validation split (update_mixgen.c).
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
check "a resumed run keeps the mixture's files" grep -q "a = 0.5 (decoding the test split): done before" "$TMP/err2"
# the mixture presets' a chosen on the validation split (the rule of the choice level), the sweep in the report
sed -n 9,14p "$D/debian-sum.test.jsonl" >"$TMP/va.jsonl"
$MUSCLE update --old-model "$V1" --old-adapter "$TMP/m1" --new-model "$V1" --task-train "$TMP/tr.jsonl" --task-val "$TMP/va.jsonl" \
    --task-test "$TMP/te.jsonl" --out "$TMP/run2" --seeds 2 --epochs 1 --seq-len 96 --max-tokens 16 --methods mixture-seqkd \
    >"$TMP/out3" 2>"$TMP/err3"
rc=$?; [ $rc -ne 0 ] && tail -5 "$TMP/err3" | sed 's/^/# /'
check "update with --task-val and mixture-seqkd runs" test $rc -eq 0 -a -s "$TMP/run2/report.json"
check "the mixture decoded on the validation split at a = 0.1 ... 0.5" test -s "$TMP/run2/preds/mixgen-a0.1.val.jsonl" -a -s "$TMP/run2/preds/mixgen-a0.5.val.jsonl"
check "a chosen by the rule, its adapters trained with it, the sweep in the report" /usr/bin/python3 -c "
import json, struct
v = json.load(open('$TMP/run2/preds/mixgen.val.json')); pts = v['points']
assert [p['a'] for p in pts] == [0.1, 0.2, 0.3, 0.4, 0.5], pts
ok = [p for p in pts if p['val_score'] >= v['m2_val_score'] - v['tolerance']]
want = min(ok, key=lambda p: (p['val_nfr'], p['a'])) if ok else max(pts, key=lambda p: (p['val_score'], -p['a']))
assert v['chosen_a'] == want['a'], (v, want)
for s in (1, 2):
    b = open('$TMP/run2/adapters/mixture-seqkd-s%d/adapter_model.safetensors' % s, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    c = json.loads(json.loads(b[8:8 + n])['__metadata__']['muscle.compat'])
    assert c['mixture_a'] == v['chosen_a'], (c, v)
t = json.load(open('$TMP/run2/report.json'))['tasks'][0]
m = [m for m in t['models'] if m['name'] == 'mixture-seqkd'][0]
assert 'a = %.1f chosen on validation' % v['chosen_a'] in m['settings'] and 'a=0.4 ' in m['settings'], m['settings']"
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
