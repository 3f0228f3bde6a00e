#!/usr/bin/env bash
# Batched generation through the programs (model/generate_batch.h): `muscle eval` on a
# generation task gives the same predictions at any --batch (greedy, with an adapter, and
# sampled: each instance its own stream); `muscle generate --prompts FILE` gives, line for
# line, what `muscle generate --prompt` gives one prompt at a time; bad prompt files fail
# with one line naming the file and line.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
M="$SHARED/models/stories260K/stories260K.bin"
need "$M" || { echo "1..$TAP_N"; exit 0; }
V1=demo/models/v1 A1=demo/adapters/sum-v1
head -n 24 demo/data/sum.test.jsonl >"$TMP/sum.jsonl"

for b in 1 5 16; do
  $MUSCLE eval --model $V1 --adapter $A1 --task "$TMP/sum.jsonl" --max-tokens 24 --batch $b --out "$TMP/e$b.jsonl" --quiet >"$TMP/e$b.sum"
done
$MUSCLE eval --model $V1 --adapter $A1 --task "$TMP/sum.jsonl" --max-tokens 24 --out "$TMP/ed.jsonl" --quiet >"$TMP/ed.sum"
check "eval (generation, adapter): 24 predictions" test "$(wc -l <"$TMP/e1.jsonl")" -eq 24
check "eval (generation, adapter): the same predictions at --batch 1, 5, 16 and the default" \
  bash -c "cmp '$TMP/e1.jsonl' '$TMP/e5.jsonl' && cmp '$TMP/e1.jsonl' '$TMP/e16.jsonl' && cmp '$TMP/e1.jsonl' '$TMP/ed.jsonl'"
check "eval (generation): the summaries agree but for the time" /usr/bin/python3 -c "
import json
a=json.load(open('$TMP/e1.sum')); b=json.load(open('$TMP/e16.sum'))
for k in ('exact_match','rouge1','rouge2','rougeL','n','skipped'): assert a[k]==b[k], k
"
for b in 1 7; do
  $MUSCLE eval --model $V1 --adapter $A1 --task "$TMP/sum.jsonl" --max-tokens 16 --temperature 0.8 --seed 5 --batch $b --out "$TMP/s$b.jsonl" --quiet >/dev/null
done
$MUSCLE eval --model $V1 --adapter $A1 --task "$TMP/sum.jsonl" --max-tokens 16 --temperature 0.8 --seed 6 --batch 7 --out "$TMP/s6.jsonl" --quiet >/dev/null
check "eval (sampled): the same texts at --batch 1 and 7 for a seed" cmp "$TMP/s1.jsonl" "$TMP/s7.jsonl"
check "eval (sampled): another seed, other texts" bash -c "! cmp -s '$TMP/s1.jsonl' '$TMP/s6.jsonl'"

printf '%s\n' '"Once upon a time"' '{"prompt": "Lily and Tom went to the park.", "id": "p2"}' '' '"The sun was"' '"Tim"' '{"prompt": "", "id": 5}' >"$TMP/p.jsonl"
$MUSCLE generate --model "$M" --prompts "$TMP/p.jsonl" --max-tokens 40 --stop "!" --batch 2 --quiet >"$TMP/g.jsonl"
for p in "Once upon a time" "Lily and Tom went to the park." "The sun was" "Tim" ""; do
  $MUSCLE generate --model "$M" --prompt "$p" --max-tokens 40 --stop "!"
done >"$TMP/one.txt"
check "generate --prompts: one line per prompt, in order, ids copied, as --prompt one at a time" /usr/bin/python3 -c "
import json
G=[json.loads(l) for l in open('$TMP/g.jsonl')]
one=open('$TMP/one.txt').read().split('\n')[:-1]
assert [g['index'] for g in G]==[0,1,2,3,4] and G[1]['id']=='p2' and G[4]['id']==5 and 'id' not in G[0]
assert [g['text'] for g in G]==one, ([g['text'] for g in G], one)
assert all(g['stopped_by'] in ('max_tokens','eos','stop','context') for g in G)
"
$MUSCLE generate --model "$M" --prompts "$TMP/p.jsonl" --max-tokens 40 --stop "!" --out "$TMP/g2.jsonl" --quiet >"$TMP/g2.out"
check "generate --prompts --out: the same lines in the file, nothing on stdout" bash -c "cmp '$TMP/g.jsonl' '$TMP/g2.jsonl' && [ ! -s '$TMP/g2.out' ]"
printf '%s\n' '"fine"' '[1, 2]' >"$TMP/bad.jsonl"
expect_error "generate --prompts: a bad line is named" "bad.jsonl:2: expected a JSON string or an object" \
  $MUSCLE generate --model "$M" --prompts "$TMP/bad.jsonl"
$MUSCLE generate --model "$M" --prompts "$TMP/p.jsonl" --prompt hi >/dev/null 2>"$TMP/err2"; rc2=$?
check "generate: --prompt and --prompts together are a usage error (exit 2)" bash -c "[ $rc2 -eq 2 ] && grep -q exclude '$TMP/err2'"
echo "1..$TAP_N"
