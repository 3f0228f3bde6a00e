#!/usr/bin/env bash
# Builds bench/bench_gemm.c against build/libmuscle.a and runs it on 2 threads,
# holding /tmp/muscle-bench.lock (the cores are shared).
# Usage: bench/gemm.sh [seconds-per-measurement]
# BENCH_CPUTIME=1 times with process CPU time / threads (with OMP_WAIT_POLICY=passive),
# an estimate of the unshared speed when other jobs load the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory -s build/bench_gemm >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_PROC_BIND="${OMP_PROC_BIND:-close}"
flock /tmp/muscle-bench.lock build/bench_gemm "$@"
