#!/usr/bin/env bash
# Measures the shipped demo scenario (the numbers in demo/README.md): for each task,
#   M1 = v1 + the shipped adapter A1, evaluated on the shipped test set;
#   M2 = v2 + a task adapter trained here with A1's recipe (seed 1), and M2' (seed 2);
#   muscle compare M1 -> M2 (the update's flips) and M2 -> M2' (the noise floor: flips
#   between two adapters that differ only in their seed).
# The M2 adapters are not shipped (`muscle update` trains its own). Output in $RUN
# (default build/demo-measure): adapters, predictions, *.eval.json, *.compare.json, times.txt.
# Usage: demo/measure.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
MUSCLE="${MUSCLE:-build/muscle}"
RUN="${1:-build/demo-measure}"
GEN_TOK="${GEN_TOK:-24}"
FT_COMMON="--epochs 3 --batch 8 --grad-accum 1 --lr 3e-3 --seq-len 512"   # as demo/build.sh
mkdir -p "$RUN"
timed() { # LABEL CMD...: runs CMD, appends "LABEL seconds" to times.txt
  local label="$1"; shift; local t0; t0=$(date +%s.%N)
  "$@"
  echo "$label $(echo "$(date +%s.%N) - $t0" | bc)" >>"$RUN/times.txt"
}
for task in section sum; do
  for seed in 1 2; do
    A="$RUN/$task-v2-s$seed"
    [ -s "$A/adapter_model.safetensors" ] || timed "finetune $task v2 seed $seed" \
      nice -n 5 "$MUSCLE" finetune --model demo/models/v2 --task "demo/data/$task.train.jsonl" --out "$A" $FT_COMMON --seed "$seed" --quiet
  done
  for who in v1:demo/adapters/$task-v1 v2-s1:$RUN/$task-v2-s1 v2-s2:$RUN/$task-v2-s2; do
    name=${who%%:*}; A=${who#*:}; M=demo/models/${name%%-*}
    P="$RUN/$task-$name"
    [ -s "$P.preds.jsonl" ] || timed "eval $task $name" \
      nice -n 5 "$MUSCLE" eval --model "$M" --adapter "$A" --task "demo/data/$task.test.jsonl" --out "$P.preds.jsonl" \
        --max-tokens "$GEN_TOK" --quiet >"$P.eval.json"
  done
  "$MUSCLE" compare "$RUN/$task-v1.preds.jsonl" "$RUN/$task-v2-s1.preds.jsonl" --json >"$RUN/$task.update.json"
  "$MUSCLE" compare "$RUN/$task-v2-s1.preds.jsonl" "$RUN/$task-v2-s2.preds.jsonl" --json >"$RUN/$task.noise.json"
  echo "== $task: M1 -> M2"; "$MUSCLE" compare "$RUN/$task-v1.preds.jsonl" "$RUN/$task-v2-s1.preds.jsonl"
  echo "== $task: M2 -> M2' (noise floor)"; "$MUSCLE" compare "$RUN/$task-v2-s1.preds.jsonl" "$RUN/$task-v2-s2.preds.jsonl"
done
cat "$RUN/times.txt"
