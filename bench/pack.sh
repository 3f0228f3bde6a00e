#!/usr/bin/env bash
# Frozen bf16 weights on oneDNN: reordered once vs the plain layout re-packed per call
# (bench/bench_pack.c), per product, CPU time / threads (robust on a busy machine).
#   bench/pack.sh [M] [REPS] [xw]   e.g. bench/pack.sh 1024 3; xw: the backward product dy.W
# Holds /tmp/muscle-bench.lock; prints the CPU's AMX / AVX512-BF16 flags and the load.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory -s build/bench_pack >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
exec 9>/tmp/muscle-bench.lock
flock 9
echo "# CPU flags: $(grep -o 'amx_bf16\|amx_tile\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')load before: $(uptime | sed 's/.*load average: //')"
grid=0; if [ -x /work/grid/pause ]; then /work/grid/pause >/dev/null && grid=1; fi
trap '[ "$grid" = 1 ] && /work/grid/resume >/dev/null' EXIT
BENCH_CPUTIME=1 build/bench_pack "${1:-1024}" "${2:-3}" ${3:-}
echo "# load after: $(uptime | sed 's/.*load average: //')"
