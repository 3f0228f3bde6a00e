#!/usr/bin/env bash
# Runs every bench_torch.py measurement, each under its own hold of the shared benchmark
# lock (so other engineers' benchmarks can interleave), appending JSON lines to $1
# (default bench/torch/results.jsonl).  Extra arguments go to bench_torch.py.
set -u
cd "$(dirname "$0")/../.."
out="${1:-bench/torch/results.jsonl}"; shift || true
for shape in 15M 110M; do
  for dtype in fp32 bf16; do
    for task in score decode lora8_qkvo lora16_all full; do
      flock /tmp/muscle-bench.lock /usr/bin/python3 bench/torch/bench_torch.py --json \
        --shape "$shape" --dtype "$dtype" --task "$task" "$@" >>"$out"
    done
  done
done
