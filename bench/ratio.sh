#!/usr/bin/env bash
# Issue 19's ratio in tight alternation: width-W batched decoding (after the prompts) over the
# single stream, PAIRS pairs of `bench_decode --task single --tokens 128` then `--task batch
# --width W --tokens 48` on the same GGUF (best of 2 after a warm-up each), one pair after the
# other, so both sides of a pair see the same moment of a noisy host. Prints a markdown row
# per pair, then the median ratio, its range and how many pairs reach TARGET.
#   bench/ratio.sh [SHAPE] [DTYPE] [PAIRS] [WIDTH] [TARGET]   defaults: 110M fp32 10 16 8
# The GGUF files are bench/decode.sh's (made here if missing). Holds the benchmark lock.
set -euo pipefail
cd "$(dirname "$0")/.."
shape="${1:-110M}"; dtype="${2:-fp32}"; pairs="${3:-10}"; width="${4:-16}"; target="${5:-8}"
. bench/pairs_lib.sh
pairs_setup "$shape" "$dtype"
echo "| pair | single tok/s | width $width after the prompts tok/s | ratio |"
echo "|---:|---:|---:|---:|"
ratios=()
for p in $(seq 1 "$pairs"); do
  s=$(build/bench_decode --model "$f" "${bf[@]}" --task single --tokens 128 --iters 2 | field tokens_per_s)
  b=$(build/bench_decode --model "$f" "${bf[@]}" --task batch --width "$width" --tokens 48 --iters 2 | field decode_tokens_per_s)
  r=$(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.2f", b / s }')
  ratios+=("$r")
  echo "| $p | $s | $b | ${r}x |"
done
pairs_summary "$target"
