#!/usr/bin/env bash
# The model families (model/arch.h) at the Llama path's shapes: scoring (batch 4 x 256, all
# positions' log-probs) and one LoRA training step (rank 8 on q,k,v,o, batch 4 x 256, AdamW),
# random-weight "15M" shape, fp32, each family against plain Llama measured in the same run.
#   bench/families.sh [FAMILIES] [SHAPE] [REPEATS]   e.g. bench/families.sh "llama llama3 mistral qwen2 qwen3" 15M 2
# Families: llama (the peer), llama3 (llama3 rotary scaling), mistral (sliding window 128),
# qwen2 (q/k/v biases), qwen3 (per-head q/k norms); bench/bench_family.h. Each measurement
# runs REPEATS times (default 1) and keeps the best. Holds the benchmark lock.
set -euo pipefail
cd "$(dirname "$0")/.."
families="${1:-llama llama3 mistral qwen2 qwen3}"; shape="${2:-15M}"; repeats="${3:-1}"
make --no-print-directory -s all build/bench_engine build/bench_train >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
out=$(mktemp)
exec 9>/tmp/muscle-bench.lock
flock 9
for fam in $families; do
  for r in $(seq "$repeats"); do
    build/bench_engine --family "$fam" --shape "$shape" --dtype fp32 --task score --iters 2 | tee -a "$out"
    build/bench_train --family "$fam" --shape "$shape" --dtype fp32 --task lora8_qkvo --iters 2 | tee -a "$out"
  done
done
flock -u 9
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
best = {}
for r in rows:
    k = (r["family"], r["task"])
    if k not in best or r["tokens_per_s"] > best[k]["tokens_per_s"]:
        best[k] = r
print("\n| family | scoring tok/s | vs llama | LoRA training tok/s | vs llama |")
print("|---|---:|---:|---:|---:|")
fams = []
for r in rows:
    if r["family"] not in fams: fams.append(r["family"])
for f in fams:
    s, t = best.get((f, "score")), best.get((f, "lora8_qkvo"))
    ls, lt = best.get(("llama", "score")), best.get(("llama", "lora8_qkvo"))
    rs = f"{s['tokens_per_s']/ls['tokens_per_s']:.2f}" if s and ls else "-"
    rt = f"{t['tokens_per_s']/lt['tokens_per_s']:.2f}" if t and lt else "-"
    print(f"| {f} | {s['tokens_per_s']:.0f} | {rs} | {t['tokens_per_s']:.0f} | {rt} |")
PY
rm -f "$out"
