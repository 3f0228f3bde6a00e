#!/usr/bin/env bash
# Measures the shipped demo scenario (the numbers in demo/README.md): for each task,
#   M1 = v1 + the shipped adapter A1, evaluated on the shipped test set;
#   M2 = v2 + a task adapter trained here with A1's recipe (seed 1), and M2' (seed 2);
#   muscle compare M1 -> M2 (the update's flips) and M2 -> M2' (the noise floor: flips
#   between two adapters that differ only in their seed).
# The M2 adapters are not shipped (`muscle update` trains its own). Output in $RUN
# (default build/demo-measure): adapters, predictions, *.eval.json, *.compare.json, times.txt.
# Work is done cheapest-first (M1 evaluations, then M2, then the noise floor) and every
# finished piece is kept, so an interrupted run continues where it stopped.
# Usage: demo/measure.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
MUSCLE="${MUSCLE:-build/muscle}"
RUN="${1:-build/demo-measure}"
GEN_TOK="${GEN_TOK:-24}"
FT_COMMON="--epochs 3 --batch 8 --grad-accum 1 --lr 3e-3 --seq-len 512"   # A1's recipe (demo/build.sh)
mkdir -p "$RUN"
timed() { # LABEL CMD...: runs CMD, appends "LABEL seconds" to times.txt
  local label="$1"; shift; local t0; t0=$(date +%s.%N)
  "$@"
  echo "$label $(echo "$(date +%s.%N) - $t0" | bc)" >>"$RUN/times.txt"
}
adapter() { # TASK SEED
  local A="$RUN/$1-v2-s$2"
  [ -s "$A/adapter_model.safetensors" ] || { rm -rf "$A"; timed "finetune $1 v2 seed $2" \
    nice -n 5 "$MUSCLE" finetune --model demo/models/v2 --task "demo/data/$1.train.jsonl" --out "$A" $FT_COMMON --seed "$2" --quiet; }
}
evaluate() { # TASK NAME MODEL ADAPTER
  local P="$RUN/$1-$2"
  [ -s "$P.preds.jsonl" ] || timed "eval $1 $2" \
    nice -n 5 "$MUSCLE" eval --model "$3" --adapter "$4" --task "demo/data/$1.test.jsonl" --out "$P.preds.jsonl" \
      --max-tokens "$GEN_TOK" --quiet >"$P.eval.json"
}
for task in section sum; do evaluate "$task" v1 demo/models/v1 "demo/adapters/$task-v1"; done
for task in section sum; do
  adapter "$task" 1; evaluate "$task" v2-s1 demo/models/v2 "$RUN/$task-v2-s1"
  "$MUSCLE" compare "$RUN/$task-v1.preds.jsonl" "$RUN/$task-v2-s1.preds.jsonl" --json >"$RUN/$task.update.json"
  echo "== $task: M1 -> M2"; "$MUSCLE" compare "$RUN/$task-v1.preds.jsonl" "$RUN/$task-v2-s1.preds.jsonl"
done
for task in section sum; do
  adapter "$task" 2; evaluate "$task" v2-s2 demo/models/v2 "$RUN/$task-v2-s2"
  "$MUSCLE" compare "$RUN/$task-v2-s1.preds.jsonl" "$RUN/$task-v2-s2.preds.jsonl" --json >"$RUN/$task.noise.json"
  echo "== $task: M2 -> M2' (noise floor)"; "$MUSCLE" compare "$RUN/$task-v2-s1.preds.jsonl" "$RUN/$task-v2-s2.preds.jsonl"
done
cat "$RUN/times.txt"
