#!/usr/bin/env bash
# The cross-tokenizer experiment of docs/results.md (issue 14), small scale: M1 = the
# demo's v1 (SentencePiece, 512 pieces) + its shipped adapters; v2 = a model pretrained
# from scratch here with a byte-level BPE tokenizer of 357 pieces (tests/e2e/xtok_bpe.py)
# on the demo's descriptions. `muscle update` with 3 seeds (the noise floor is the NFR
# between M2 seeds) and the methods: ce (control), muscle (token level, exact piece
# mapping), muscle-uld (token level, ULD), choice (choice level) on debian-section;
# ce, muscle, muscle-uld, seqkd (sequence level) on debian-sum.
#   scripts/experiments/xtok_update.sh ROOT [SEEDS]
# Sizes: NTRAIN/NTEST (section 240/200, sum 120/60), V2STEPS (200), COMPAT_EPOCHS (1);
# TASKS (default "section sum"); METHODS_SECTION, METHODS_SUM replace the method lists (e.g.
# to rerun only the methods a change touches: M1 and M2 are evaluated every time).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${1:?usage: xtok_update.sh ROOT [SEEDS]}"; SEEDS="${2:-3}"
MUSCLE="${MUSCLE:-build/muscle}"
mkdir -p "$ROOT"
python3 -c "
import json
for f in ['section.train','sum.train']:
  for l in open('demo/data/'+f+'.jsonl'):
    d=json.loads(l); print(d.get('context') or d.get('prompt'))
" >"$ROOT/corpus.txt"
[ -s "$ROOT/tokenizer.json" ] || python3 tests/e2e/xtok_bpe.py "$ROOT/corpus.txt" 100 "$ROOT/tokenizer.json"
[ -s "$ROOT/v2/model.safetensors" ] || $MUSCLE pretrain --data "$ROOT/corpus.txt" --data-format lines --tokenizer "$ROOT/tokenizer.json" \
    --dim 96 --layers 3 --heads 4 --hidden 256 --seq-len 128 --steps "${V2STEPS:-200}" --batch 8 --grad-accum 1 --lr 3e-3 \
    --out "$ROOT/v2" --quiet
head -n "${NTRAIN:-240}" demo/data/section.train.jsonl >"$ROOT/section.train.jsonl"
head -n "${NTEST:-200}" demo/data/section.test.jsonl >"$ROOT/section.test.jsonl"
head -n "${NTRAIN_SUM:-120}" demo/data/sum.train.jsonl >"$ROOT/sum.train.jsonl"
head -n "${NTEST_SUM:-60}" demo/data/sum.test.jsonl >"$ROOT/sum.test.jsonl"
U=(--epochs 2 --compat-epochs "${COMPAT_EPOCHS:-1}" --lr 3e-3 --batch 8 --seq-len 120 --seeds "$SEEDS" --quiet)
TASKS="${TASKS:-section sum}"
[[ " $TASKS " == *" section "* ]] && $MUSCLE update --old-model demo/models/v1 --old-adapter demo/adapters/section-v1 --new-model "$ROOT/v2" \
    --task-train "$ROOT/section.train.jsonl" --task-test "$ROOT/section.test.jsonl" --out "$ROOT/section" \
    --methods "${METHODS_SECTION:-ce,muscle,muscle-uld=--compat student-wrong --vocab-map uld,choice}" "${U[@]}" >"$ROOT/section.txt"
[[ " $TASKS " == *" sum "* ]] && $MUSCLE update --old-model demo/models/v1 --old-adapter demo/adapters/sum-v1 --new-model "$ROOT/v2" \
    --task-train "$ROOT/sum.train.jsonl" --task-test "$ROOT/sum.test.jsonl" --out "$ROOT/sum" --max-tokens 16 \
    --methods "${METHODS_SUM:-ce,muscle,muscle-uld=--compat student-wrong --vocab-map uld,seqkd}" "${U[@]}" >"$ROOT/sum.txt"
cat "$ROOT"/section.txt "$ROOT"/sum.txt 2>/dev/null || true
# length normalisation across tokenizers: acc (summed log-likelihood) and acc_norm (divided
# by the choice's bytes, lm-eval's) per model, and the NFR against M1 under each rule
python3 - "$ROOT/section/preds" "$SEEDS" <<'PY'
import json, sys
d, S = sys.argv[1], int(sys.argv[2])
def load(n): return {x['id']: x for x in map(json.loads, open(f'{d}/{n}.jsonl'))}
old = load('old')
def row(name, runs):
    for key in ('correct', 'correct_norm'):
        acc = sum(sum(r[i][key] for i in r) / len(r) for r in runs) / len(runs)
        nfr = sum(sum(old[i][key] and not r[i][key] for i in r) / len(r) for r in runs) / len(runs)
        print(f'{name:12s} {key:13s} acc {100*acc:6.2f}  NFR vs M1 (same rule) {100*nfr:6.2f}')
row('M1', [old])
import os
for n in ['new', 'ce', 'muscle', 'muscle-uld', 'choice']:
    if os.path.exists(f'{d}/{n}-s1.jsonl'): row(n, [load(f'{n}-s{k}') for k in range(1, S + 1)])
PY
