#!/usr/bin/env bash
# Engine benchmarks, side by side with PyTorch (Debian python3-torch) in the same run:
# scoring (all positions' log-probs, batch 4 x 256) and greedy decoding (128 tokens) on
# random-weight "15M" and "110M" Llama shapes, fp32 and bf16 weights.
#   bench/run.sh [TASKS] [SHAPES] [DTYPES]     e.g. bench/run.sh "score decode mc" "15M 110M" "fp32 bf16"
# Prints JSON lines and a markdown table (muscle / PyTorch ratio). Holds the benchmark lock
# (/tmp/muscle-bench.lock) so that no two benchmarks share the 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-score decode mc}"; shapes="${2:-15M 110M}"; dtypes="${3:-fp32 bf16}"
make --no-print-directory -s all build/bench_engine >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# Debian's OpenBLAS 0.3.21 does not know this CPU and would use SSE3 kernels: give PyTorch
# (which uses the same libblas) the AVX-512 kernels muscle selects for itself.
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
out=$(mktemp)
exec 9>/tmp/muscle-bench.lock
flock 9
for shape in $shapes; do for dtype in $dtypes; do for task in $tasks; do
  build/bench_engine --shape "$shape" --dtype "$dtype" --task "$task" | tee -a "$out"
  [ "$task" = mc ] && continue   # no PyTorch peer: compare with muscle's own "score" line
  /usr/bin/python3 bench/torch/bench_torch.py --json --shape "$shape" --dtype "$dtype" --task "$task" --threads "$OMP_NUM_THREADS" | tee -a "$out"
done; done; done
flock -u 9
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
key = lambda r: (r["task"], r["shape"], r["dtype"])
m = {key(r): r for r in rows if r["impl"] == "muscle"}
t = {key(r): r for r in rows if r["impl"] == "pytorch"}
print("\n| task | shape | weights | muscle tok/s | PyTorch tok/s | ratio | muscle peak MB | PyTorch peak MB |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for k in m:
    a, b = m[k], t.get(k)
    r = f"{a['tokens_per_s']/b['tokens_per_s']:.2f}x" if b else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {a['tokens_per_s']:.0f} | {b['tokens_per_s'] if b else 0:.0f} | {r} | {a['peak_rss_mb']:.0f} | {b['peak_rss_mb'] if b else 0:.0f} |")
PY
rm -f "$out"
