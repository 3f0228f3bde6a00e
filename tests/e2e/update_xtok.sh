#!/usr/bin/env bash
# An update across tokenizers end to end (issue 14), tiny and fast: M1 = the demo's v1
# (SentencePiece, 512 pieces) + its shipped adapters; M2 = a model pretrained here from
# scratch with ANOTHER tokenizer of another size (a byte-level BPE tokenizer.json of 357
# pieces that tests/e2e/xtok_bpe.py writes). `muscle update` runs a multiple-choice task
# (token level with the exact piece mapping, choice level) and a generation task (token
# level, sequence level; prompts too long for v2's context cut in text, the same for both
# models); finetune --compat runs the ULD mapping; the report compares per instance.
# Needs nothing from ../shared.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1=demo/models/v1
python3 -c "
import json
for f in ['section.train','sum.train']:
  for l in open('demo/data/'+f+'.jsonl'):
    d=json.loads(l); print(d.get('context') or d.get('prompt'))
" >"$TMP/corpus.txt"
python3 tests/e2e/xtok_bpe.py "$TMP/corpus.txt" 100 "$TMP/tokenizer.json"
check "a byte-level BPE tokenizer of 357 pieces is written" /usr/bin/python3 -c "
import json; t=json.load(open('$TMP/tokenizer.json')); assert len(t['model']['vocab']) == 357, len(t['model']['vocab'])"
$MUSCLE pretrain --data "$TMP/corpus.txt" --data-format lines --tokenizer "$TMP/tokenizer.json" --dim 64 --layers 2 --heads 4 \
    --hidden 176 --seq-len 128 --steps 60 --batch 8 --grad-accum 1 --lr 3e-3 --out "$TMP/v2" --quiet 2>"$TMP/err"
check "v2 pretrained with its own tokenizer (357 pieces; v1 has 512)" sh -c "
$MUSCLE info '$TMP/v2' | grep -q 'tokenizer.json, 357 pieces' && $MUSCLE info $V1 | grep -q '512 pieces'"

head -n 64 demo/data/section.train.jsonl >"$TMP/sec.train.jsonl"
head -n 40 demo/data/section.test.jsonl >"$TMP/sec.test.jsonl"
head -n 40 demo/data/sum.train.jsonl >"$TMP/sum.train.jsonl"
head -n 16 demo/data/sum.test.jsonl >"$TMP/sum.test.jsonl"
U=(--epochs 1 --compat-epochs 1 --lr 3e-3 --batch 8 --seq-len 120 --quiet)
$MUSCLE update --old-model $V1 --old-adapter demo/adapters/section-v1 --new-model "$TMP/v2" --task-train "$TMP/sec.train.jsonl" \
    --task-test "$TMP/sec.test.jsonl" --out "$TMP/mc" --methods muscle,choice "${U[@]}" >"$TMP/mc.out" 2>"$TMP/err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/err" | sed 's/^/# /'
check "multiple choice: muscle update across tokenizers runs to the report" test $rc -eq 0 -a -s "$TMP/mc/report.json"
check "multiple choice: M1 scored with its own tokenizer is above chance, every method compared per instance" /usr/bin/python3 -c "
import json
def acc(p): L=[json.loads(l) for l in open(p)]; return sum(x['correct'] for x in L)/len(L), len(L)
a1,n1=acc('$TMP/mc/preds/old.jsonl'); a2,n2=acc('$TMP/mc/preds/new-s1.jsonl')
am,nm=acc('$TMP/mc/preds/muscle-s1.jsonl'); ac,nc=acc('$TMP/mc/preds/choice-s1.jsonl')
print('# acc M1 %.3f M2 %.3f muscle %.3f choice %.3f' % (a1,a2,am,ac)); assert a1 > 0.4 and n1 == n2 == nm == nc == 40"
check "the report names both models' families and tokenizers" sh -c "
grep -q 'llama, dim 128, 5 layers; sentencepiece tokenizer, 512 pieces' '$TMP/mc/report.md' &&
grep -q 'llama, dim 64, 2 layers; tokenizer.json tokenizer, 357 pieces' '$TMP/mc/report.md'"
$MUSCLE update --old-model $V1 --old-adapter demo/adapters/sum-v1 --new-model "$TMP/v2" --task-train "$TMP/sum.train.jsonl" \
    --task-test "$TMP/sum.test.jsonl" --out "$TMP/gen" --methods muscle,seqkd --max-tokens 16 "${U[@]}" >"$TMP/gen.out" 2>"$TMP/err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/err" | sed 's/^/# /'
check "generation: muscle update across tokenizers (token and sequence levels) runs to the report" test $rc -eq 0 -a -s "$TMP/gen/report.json"
check "generation: M1's outputs are text of its own tokenizer, scored per instance" /usr/bin/python3 -c "
import json; L=[json.loads(l) for l in open('$TMP/gen/preds/old.jsonl')]; assert len(L) == 16
print('# M1 mean ROUGE-1 %.3f' % (sum(x['score'] for x in L)/16)); assert sum(x['score'] for x in L) > 0"
check "generation: a prompt too long for v2's context is cut in text, the same bytes for M1 and every v2 model" /usr/bin/python3 -c "
import json
def cuts(n): return {x['id']: x.get('prompt_cut_bytes', 0) for x in map(json.loads, open('$TMP/gen/preds/%s.jsonl' % n))}
c = cuts('old'); n_cut = sum(v > 0 for v in c.values())
print('# %d of %d prompts cut in text to fit both contexts' % (n_cut, len(c))); assert n_cut > 0
for n in ('new-s1', 'muscle-s1', 'seqkd-s1'): assert cuts(n) == c, n"

# eval --fit-with: one tokenizer keeps the token cut (the same bytes as without it); another
# tokenizer cuts in text; a missing model is named
E=(--task "$TMP/sum.test.jsonl" --max-tokens 16 --quiet)
$MUSCLE eval --model "$TMP/v2" "${E[@]}" --out "$TMP/e-plain.jsonl" >/dev/null 2>"$TMP/err"
$MUSCLE eval --model "$TMP/v2" "${E[@]}" --fit-with "$TMP/v2" --out "$TMP/e-same.jsonl" >/dev/null 2>>"$TMP/err"
$MUSCLE eval --model "$TMP/v2" "${E[@]}" --fit-with $V1 --out "$TMP/e-v1.jsonl" >/dev/null 2>>"$TMP/err"
check "eval --fit-with a model of the same tokenizer: the same predictions, byte for byte" cmp -s "$TMP/e-plain.jsonl" "$TMP/e-same.jsonl"
check "eval --fit-with a model of another tokenizer: the cut prompts are marked" sh -c "
grep -q prompt_cut_bytes '$TMP/e-v1.jsonl' && ! grep -q prompt_cut_bytes '$TMP/e-plain.jsonl'"
expect_error "eval --fit-with a missing model" "--fit-with $TMP/nope" $MUSCLE eval --model "$TMP/v2" "${E[@]}" --fit-with "$TMP/nope"

# finetune --compat directly: the exact mapping's coverage and alignment are reported; ULD trains
C=(--model "$TMP/v2" --adapter-init "$TMP/mc/adapters/new-s1" --old-model $V1 --old-adapter demo/adapters/section-v1
   --task "$TMP/sec.train.jsonl" --compat student-wrong --epochs 1 --batch 8 --seq-len 120)
$MUSCLE finetune "${C[@]}" --out "$TMP/c-exact" 2>"$TMP/err"
grep -h "aligned by byte\|mapping" "$TMP/err" | sed 's/^/# /'
check "exact mapping: the share of M1's mass covered and the aligned positions are printed" sh -c "
grep -q 'they hold [0-9.]*% of M1' '$TMP/err' && grep -q 'positions aligned by byte offset' '$TMP/err' && test -s '$TMP/c-exact/adapter_model.safetensors'"
$MUSCLE finetune "${C[@]}" --vocab-map uld --out "$TMP/c-uld" --quiet 2>"$TMP/err"
check "ULD mapping trains and records it" /usr/bin/python3 -c "
import json, struct
b = open('$TMP/c-uld/adapter_model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
c = json.loads(json.loads(b[8:8 + n])['__metadata__']['muscle.compat']); assert c['vocab_map'] == 'uld', c"
$MUSCLE finetune "${C[@]}" --compat token-likelihood --vocab-map uld --out "$TMP/c-tl" 2>"$TMP/err"
grep -h "mask chose" "$TMP/err" | sed 's/^/# /'
check "token-likelihood with ULD (the span log-likelihoods compared) trains" sh -c "
grep -q 'the mask chose M1 on [0-9.]*% of' '$TMP/err' && test -s '$TMP/c-tl/adapter_model.safetensors'"
expect_error "a token-level method without a cross-tokenizer definition is refused" "not defined across tokenizers" \
    $MUSCLE finetune "${C[@]}" --compat elodi --out "$TMP/c-x"
MUSCLE_XTOK_MIN_COVERAGE=0.999 expect_error "a mapping below the least coverage is refused with the figure" \
    "exact vocabulary mapping covers [0-9.]*% of the old model's probability mass \\(below 100%\\)" $MUSCLE finetune "${C[@]}" --quiet --out "$TMP/c-z"
expect_error "a bad --vocab-map" "exact or uld" $MUSCLE finetune "${C[@]}" --vocab-map nope --out "$TMP/c-y"
echo "1..$TAP_N"
