#!/usr/bin/env bash
# muscle eval end to end on real task files (small slices) and its agreement with compare.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
M="$SHARED/models/stories260K/stories260K.bin"
SEC="$SHARED/data/debian/debian-section.test.jsonl"; SUM="$SHARED/data/debian/debian-sum.test.jsonl"
need "$M" && need "$SEC" && need "$SUM" || { echo "1..$TAP_N"; exit 0; }

$MUSCLE eval --model "$M" --task "$SEC" --limit 40 --out "$TMP/a.jsonl" --quiet >"$TMP/a.sum"
$MUSCLE eval --model "$M" --task "$SEC" --limit 40 --out "$TMP/b.jsonl" --batch 1 --quiet >"$TMP/b.sum"
check "multiple choice: 40 prediction lines" test "$(wc -l <"$TMP/a.jsonl")" -eq 40
check "multiple choice: summary and predictions agree; prediction = argmax of choice log-likelihoods" /usr/bin/python3 -c "
import json
s=json.load(open('$TMP/a.sum')); P=[json.loads(l) for l in open('$TMP/a.jsonl')]
assert s['n']==40 and s['kind']=='multiple_choice'
assert abs(s['acc']-sum(p['correct'] for p in P)/40)<1e-9 and abs(s['acc_norm']-sum(p['correct_norm'] for p in P)/40)<1e-9
for p in P:
    lp=p['choice_logprobs']; assert len(lp)==4 and all(x<0 for x in lp)
    assert p['prediction']==max(range(4),key=lambda i:(lp[i],-i))
"
check "batch size does not change the log-likelihoods (1e-4) nor predictions" /usr/bin/python3 -c "
import json
A=[json.loads(l) for l in open('$TMP/a.jsonl')]; B=[json.loads(l) for l in open('$TMP/b.jsonl')]
assert [a['id'] for a in A]==[b['id'] for b in B]
assert max(abs(x-y) for a,b in zip(A,B) for x,y in zip(a['choice_logprobs'],b['choice_logprobs']))<1e-4
assert [a['prediction'] for a in A]==[b['prediction'] for b in B]
"
# a choice's log-likelihood equals what score gives for context+continuation minus the context
/usr/bin/python3 - "$SEC" >"$TMP/one.txt" <<'PY'
import json,sys
r=json.loads(open(sys.argv[1]).readline())
print(r['context']); print(' '+r['choices'][0])
PY
ctx=$(sed -n 1p "$TMP/one.txt"); cont=$(sed -n 2p "$TMP/one.txt")
$MUSCLE score --model "$M" --text "$ctx" >"$TMP/c.json"; $MUSCLE score --model "$M" --text "$ctx$cont" >"$TMP/cc.json"
check "a choice's log-likelihood = score(context + choice) - score(context)" /usr/bin/python3 -c "
import json
a=json.load(open('$TMP/c.json')); b=json.load(open('$TMP/cc.json')); p=json.loads(open('$TMP/a.jsonl').readline())
assert b['tokens'][:len(a['tokens'])]==a['tokens']
d=sum(b['logprobs'][len(a['tokens']):]); print('# %.6f vs %.6f'%(d,p['choice_logprobs'][0])); assert abs(d-p['choice_logprobs'][0])<1e-3
"
$MUSCLE compare "$TMP/a.jsonl" "$TMP/b.jsonl" --json >"$TMP/cmp.json"
check "compare of two identical runs: no flips" /usr/bin/python3 -c "
import json; d=json.load(open('$TMP/cmp.json'))
assert d['n']==40 and d['nfr']['value']==0 and d['pfr']['value']==0 and d['acc_old']['value']==d['acc_new']['value']
"
$MUSCLE eval --model "$M" --task "$SUM" --limit 3 --max-tokens 8 --out "$TMP/g.jsonl" --quiet >"$TMP/g.sum"
check "generation: predictions with text, exact match and ROUGE" /usr/bin/python3 -c "
import json
s=json.load(open('$TMP/g.sum')); P=[json.loads(l) for l in open('$TMP/g.jsonl')]
assert s['kind']=='generation' and len(P)==3
for p in P: assert isinstance(p['prediction'],str) and 0<=p['rouge1']<=1 and p['score']==p['rouge1'] and p['correct'] in (True,False)
assert abs(s['rouge1']-sum(p['rouge1'] for p in P)/3)<1e-6
"
expect_error "eval: missing task file" "nope.jsonl" $MUSCLE eval --model "$M" --task "$TMP/nope.jsonl"
expect_error "eval: unknown format name" "format" $MUSCLE eval --model "$M" --task "$SEC" --format nonsense
printf '{"id":"a","context":"x","choices":["a","b"],"label":5}\n' >"$TMP/bad.jsonl"
expect_error "eval: label out of range names file:line and field" "bad.jsonl:1.*label" $MUSCLE eval --model "$M" --task "$TMP/bad.jsonl"
echo "1..$TAP_N"
