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
export OMP_NUM_THREADS="${THREADS:-2}"
make --no-print-directory -s all build/bench_decode >/dev/null
f="build/bench-decode/$shape-$dtype.gguf"; mkdir -p build/bench-decode
[ -s "$f" ] || build/bench_decode --make-gguf "$f" --shape "$shape" --dtype "$dtype" >/dev/null
bf=(); [ "$dtype" = bf16 ] && bf=(--bf16) # bf16 weights kept as bf16 (without it they are widened to fp32)
exec 9>/tmp/muscle-bench.lock; flock 9
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
echo "CPU flags: $(grep -o 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
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
printf '%s\n' "${ratios[@]}" | sort -g | awk -v t="$target" '{ r[NR] = $1; if ($1 >= t) hit++ }
  END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        printf "median %.2fx, range %.2f-%.2fx, %d of %d pairs at %gx or more\n", m, r[1], r[NR], hit, NR, t }'
