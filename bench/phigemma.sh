#!/usr/bin/env bash
# Phi and Gemma blocks (issue 13) against the Llama path at the same shapes, in one process,
# interleaved, best of REPEATS (bench/bench_phigemma.c): scoring, a LoRA training step and a
# full training step, random "15M" shape, fp32. Holds the benchmark lock.
#   bench/phigemma.sh [REPEATS]      (default 5; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory -s all build/bench_phigemma >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec 9>/tmp/muscle-bench.lock
flock 9
build/bench_phigemma --repeats "${1:-5}"
