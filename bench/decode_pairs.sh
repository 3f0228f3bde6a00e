#!/usr/bin/env bash
# Issue 19's single-stream bar in tight alternation: muscle's greedy decoding against
# llama.cpp's own llama-bench (bench/llamacpp/native.sh, built for this CPU) on the same GGUF,
# PAIRS pairs of `bench_decode --task single --tokens 128` then llama-bench's `tg 128` (each
# best of 2 after a warm-up), one pair after the other, so both sides of a pair see the same
# moment of a noisy host (bench/decode.sh measures the two minutes apart: on this VM the same
# binary moved 20% between its passes). Prints a markdown row per pair, then the median
# ratio, its range and how many pairs reach 1.
#   bench/decode_pairs.sh [SHAPE] [DTYPE] [PAIRS]   defaults: 110M bf16 6
# The GGUF files are bench/decode.sh's (made here if missing). Holds the benchmark lock.
# Needs node/npm and cmake for the llama.cpp build (never a dependency of `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
shape="${1:-110M}"; dtype="${2:-bf16}"; pairs="${3:-6}"
. bench/pairs_lib.sh
pairs_setup "$shape" "$dtype"
bench/llamacpp/native.sh >/dev/null
echo "| pair | $shape $dtype muscle tok/s | llama.cpp tok/s | ratio |"
echo "|---:|---:|---:|---:|"
ratios=()
for p in $(seq 1 "$pairs"); do
  m=$(build/bench_decode --model "$f" "${bf[@]}" --task single --tokens 128 --iters 2 | field tokens_per_s)
  l=$(bench/llamacpp/native.sh tg "$f" 128 "$OMP_NUM_THREADS" 2 | field tokens_per_s)
  r=$(awk -v a="$m" -v b="$l" 'BEGIN { printf "%.2f", a / b }')
  ratios+=("$r")
  echo "| $p | $m | $l | ${r}x |"
done
pairs_summary 1
