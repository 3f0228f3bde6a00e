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
export OMP_NUM_THREADS="${THREADS:-2}"
make --no-print-directory -s all build/bench_decode >/dev/null
f="build/bench-decode/$shape-$dtype.gguf"; mkdir -p build/bench-decode
[ -s "$f" ] || build/bench_decode --make-gguf "$f" --shape "$shape" --dtype "$dtype" >/dev/null
bench/llamacpp/native.sh >/dev/null
bf=(); [ "$dtype" = bf16 ] && bf=(--bf16)
exec 9>/tmp/muscle-bench.lock; flock 9
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
echo "CPU flags: $(grep -o 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
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
printf '%s\n' "${ratios[@]}" | sort -g | awk '{ r[NR] = $1; if ($1 >= 1) hit++ }
  END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        printf "median %.2fx, range %.2f-%.2fx, %d of %d pairs at 1x or more\n", m, r[1], r[NR], hit, NR }'
