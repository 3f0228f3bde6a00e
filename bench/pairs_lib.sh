# bench/pairs_lib.sh - what bench/ratio.sh and bench/decode_pairs.sh share (sourced from the
# repository's root): pairs_setup SHAPE DTYPE builds the benchmark, makes the GGUF file if
# missing, sets f (its path) and bf (--bf16 for bf16 weights: kept as bf16, not widened),
# takes the benchmark lock and prints the CPU flags; field NAME reads a number from a JSON
# line; pairs_summary TARGET prints the median, range and count at TARGET of the ratios in
# the array `ratios`.
pairs_setup() {
  export OMP_NUM_THREADS="${THREADS:-2}"
  make --no-print-directory -s all build/bench_decode >/dev/null
  f="build/bench-decode/$1-$2.gguf"; mkdir -p build/bench-decode
  [ -s "$f" ] || build/bench_decode --make-gguf "$f" --shape "$1" --dtype "$2" >/dev/null
  bf=(); [ "$2" = bf16 ] && bf=(--bf16)
  exec 9>/tmp/muscle-bench.lock; flock 9
  echo "CPU flags: $(grep -o 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
}
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
pairs_summary() {
  printf '%s\n' "${ratios[@]}" | sort -g | awk -v t="$1" '{ r[NR] = $1; if ($1 >= t) hit++ }
    END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
          printf "median %.2fx, range %.2f-%.2fx, %d of %d pairs at %gx or more\n", m, r[1], r[NR], hit, NR, t }'
}
