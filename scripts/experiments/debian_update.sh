#!/usr/bin/env bash
# A base-model update end to end, on real data (issue "Task adapters, evaluation and the
# compatibility metrics"):
#   v1 = ../shared/models/stories260K (a real TinyStories model)
#   v2 = v1 after more pretraining (`muscle pretrain`) on new text: War and Peace and the
#        long descriptions of Debian packages (from debian-section's training split)
#   for each task (debian-section: 4-way multiple choice; debian-sum: summaries), a LoRA task
#   adapter on v1 and on v2 (`muscle finetune --task`), and a second v2 adapter with another
#   seed (the noise floor); evaluation on the test split (`muscle eval`) and the comparisons
#   (`muscle compare`): accuracy / ROUGE, NFR, PFR, with 95% intervals.
# Usage: scripts/experiments/debian_update.sh RUN_DIR [small|full]
#   small: seconds-to-minutes version used by tests/e2e/update_small.sh
#   full:  the documented experiment (docs/results.md), hours on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN="${1:?usage: debian_update.sh RUN_DIR [small|full]}"; SCALE="${2:-small}"
MUSCLE="${MUSCLE:-build/muscle}"; S="${MUSCLE_SHARED:-../shared}"
V1="$S/models/stories260K/stories260K.bin"
D="$S/data/debian"
mkdir -p "$RUN"
if [ "$SCALE" = full ]; then
  PRE_STEPS=2000; NTRAIN=10000; NTEST=2000; EPOCHS=3; SEQ=384; GEN_TOK=32; Q=""
else
  PRE_STEPS=20; NTRAIN=200; NTEST=80; EPOCHS=2; SEQ=160; GEN_TOK=12; Q="--quiet"
fi
# 1. the new text for v2 (derived at run time, never committed)
if [ ! -s "$RUN/corpus.txt" ]; then
  { if [ "$SCALE" = full ]; then cat "$S/corpora/war-and-peace.txt"; else head -c 150000 "$S/corpora/war-and-peace.txt"; fi
    echo
    /usr/bin/python3 -c "
import json,sys
for i,l in enumerate(open('$D/debian-section.train.jsonl')):
    if '$SCALE'!='full' and i>=300: break
    print(json.loads(l)['context'].strip()); print()"
  } >"$RUN/corpus.txt.tmp" && mv "$RUN/corpus.txt.tmp" "$RUN/corpus.txt"
fi
# 2. v2 by continued pretraining
[ -s "$RUN/v2/model.safetensors" ] || $MUSCLE pretrain --model "$V1" --data "$RUN/corpus.txt" --out "$RUN/v2" \
    --steps "$PRE_STEPS" --seq-len 256 --batch 8 --grad-accum 1 --lr 1e-3 --seed 1 $Q
# 3. task data slices
head -n "$NTRAIN" "$D/debian-section.train.jsonl" >"$RUN/section.train.jsonl"
head -n "$NTEST" "$D/debian-section.test.jsonl" >"$RUN/section.test.jsonl"
head -n "$NTRAIN" "$D/debian-sum.train.jsonl" >"$RUN/sum.train.jsonl"
head -n "$NTEST" "$D/debian-sum.test.jsonl" >"$RUN/sum.test.jsonl"
# 4. adapters, evaluation, comparison
for task in section sum; do
  for who in v1:1 v2:1 v2:2; do
    base=${who%%:*}; seed=${who##*:}; M=$([ "$base" = v1 ] && echo "$V1" || echo "$RUN/v2")
    A="$RUN/$task-$base-s$seed"
    [ -s "$A/adapter_model.safetensors" ] || $MUSCLE finetune --model "$M" --task "$RUN/$task.train.jsonl" --out "$A" \
        --epochs "$EPOCHS" --batch 8 --grad-accum 1 --lr 3e-3 --seq-len "$SEQ" --seed "$seed" $Q
    [ -s "$A.preds.jsonl" ] || $MUSCLE eval --model "$M" --adapter "$A" --task "$RUN/$task.test.jsonl" --out "$A.preds.jsonl" \
        --max-tokens "$GEN_TOK" $Q >"$A.eval.json"
  done
  $MUSCLE compare "$RUN/$task-v1-s1.preds.jsonl" "$RUN/$task-v2-s1.preds.jsonl" --json --flips "$RUN/$task.flips.jsonl" >"$RUN/$task.compare.json"
  $MUSCLE compare "$RUN/$task-v2-s1.preds.jsonl" "$RUN/$task-v2-s2.preds.jsonl" --json >"$RUN/$task.noise.json"
  $MUSCLE compare "$RUN/$task-v1-s1.preds.jsonl" "$RUN/$task-v2-s1.preds.jsonl"
done
