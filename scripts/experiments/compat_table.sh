#!/usr/bin/env bash
# The compatibility experiment of docs/results.md (issue 5, "Table 7"): one update pair,
# one task, every method, K seeds, through `muscle update`.
#
#   scripts/experiments/compat_table.sh ROOT PAIR TASK [SEEDS]
#     PAIR  stories  v1 = stories260K (../shared), v2 = v1 continued on War and Peace +
#                    Debian descriptions (built here, once, in ROOT/stories-v2)
#           demo     the shipped demo pair (demo/models/v1, v2; old adapters demo/adapters)
#     TASK  section  debian-section, 4-way multiple choice
#           sum      debian-sum, summarisation (ROUGE-1)
# Sizes: NTRAIN, NTEST (default 600/400 for section, 400/200 for sum), EPOCHS (2).
# Writes ROOT/PAIR-TASK/ (the update run: report.md, report.json, report.html).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${1:?usage: compat_table.sh ROOT PAIR TASK [SEEDS]}"; PAIR="${2:?pair}"; TASK="${3:?task}"; SEEDS="${4:-3}"
MUSCLE="${MUSCLE:-build/muscle}"; S="${MUSCLE_SHARED:-../shared}"; D="$S/data/debian"
mkdir -p "$ROOT"
case "$TASK" in
  section) NTRAIN="${NTRAIN:-600}"; NTEST="${NTEST:-400}"; FILE=debian-section
           METHODS="${METHODS:-muscle,choice,muscle-answer,old-correct,distill,token-likelihood,sequence-likelihood,focal,elodi,focal-choice,elodi-choice,ce}" ;;
  sum)     NTRAIN="${NTRAIN:-400}"; NTEST="${NTEST:-200}"; FILE=debian-sum
           METHODS="${METHODS:-muscle,muscle-answer,old-correct,distill,token-likelihood,sequence-likelihood,focal,elodi,ce,seqkd}" ;;
  *) echo "compat_table.sh: TASK is section or sum" >&2; exit 2 ;;
esac
EPOCHS="${EPOCHS:-2}"; SEQ="${SEQ:-192}"
DATA="$ROOT/data"; mkdir -p "$DATA"
[ -s "$DATA/$TASK.train.jsonl" ] || head -n "$NTRAIN" "$D/$FILE.train.jsonl" >"$DATA/$TASK.train.jsonl"
[ -s "$DATA/$TASK.test.jsonl" ] || head -n "$NTEST" "$D/$FILE.test.jsonl" >"$DATA/$TASK.test.jsonl"
case "$PAIR" in
  stories)
    V1="$S/models/stories260K/stories260K.bin"; V2="$ROOT/stories-v2"
    if [ ! -s "$V2/model.safetensors" ]; then
      { head -c 1500000 "$S/corpora/war-and-peace.txt"; echo
        /usr/bin/python3 -c "
import json
for i,l in enumerate(open('$D/debian-section.train.jsonl')):
    if i < 2000: continue          # not the task's training lines
    if i >= 6000: break
    print(json.loads(l)['context'].strip()); print()"
      } >"$ROOT/stories-corpus.txt"
      $MUSCLE pretrain --model "$V1" --data "$ROOT/stories-corpus.txt" --out "$V2" --steps 400 --seq-len 256 \
          --batch 8 --grad-accum 1 --lr 1e-3 --seed 1 --quiet
    fi
    A1="$ROOT/stories-$TASK-a1"
    [ -s "$A1/adapter_model.safetensors" ] || $MUSCLE finetune --model "$V1" --task "$DATA/$TASK.train.jsonl" --out "$A1" \
        --epochs "$EPOCHS" --batch 8 --grad-accum 1 --lr 1e-3 --seq-len "$SEQ" --seed 1 --quiet ;;
  demo)
    V1=demo/models/v1; V2=demo/models/v2; A1="demo/adapters/$TASK-v1" ;;
  *) echo "compat_table.sh: PAIR is stories or demo" >&2; exit 2 ;;
esac
$MUSCLE update --old-model "$V1" --old-adapter "$A1" --new-model "$V2" --task-train "$DATA/$TASK.train.jsonl" \
    --task-test "$DATA/$TASK.test.jsonl" --out "$ROOT/$PAIR-$TASK" --methods "$METHODS" --seeds "$SEEDS" \
    --epochs "$EPOCHS" --seq-len "$SEQ" --max-tokens 24 --quiet
