#!/usr/bin/env bash
# Training benchmarks, side by side with PyTorch (Debian python3-torch) in the same run:
# one optimizer step (forward + backward + AdamW) on a batch of 4 x 256 tokens, random-weight
# "15M" and "110M" Llama shapes; LoRA rank 8 on q,k,v,o (lora8_qkvo), rank 16 on every linear
# layer (lora16_all), and full-parameter training (full); base weights fp32 or bf16 (full
# training in bf16: muscle's mixed precision, pretrain --bf16: fp32 masters, bf16 products).
#   bench/train.sh [TASKS] [SHAPES] [DTYPES] [REPEATS]
#   e.g. bench/train.sh "lora8_qkvo lora16_all full" "15M 110M" "fp32 bf16" 2
# Each measurement runs REPEATS times (default 1) and keeps the best: on a shared machine a
# run is slowed by whatever else runs. Prints JSON lines and a markdown table (muscle /
# PyTorch ratio). Holds the benchmark lock (/tmp/muscle-bench.lock) throughout.
# PyTorch runs twice: given the AVX-512 OpenBLAS kernels muscle picks for itself
# (OPENBLAS_CORETYPE=SkylakeX, "PyTorch tuned"), and as Debian ships it (no
# OPENBLAS_CORETYPE: OpenBLAS 0.3.21 falls back to its SSE3 kernels on this CPU, "PyTorch as
# shipped"; TORCH_SHIPPED=0 skips it).
# Rows print minflt_per_step (minor page faults per timed step) in the JSON lines.
# PyTorch's bf16 runs are all-bf16 (weights, activations, adapter, optimizer state); muscle's
# keep the adapter, activations and optimizer state in fp32 (bf16 base weights only). For bf16
# rows PyTorch also runs its mixed precision, torch.autocast bf16 on an fp32 model ("PyTorch
# autocast": the like-for-like peer of muscle's full training --bf16).
# Every JSON line and the table carry the CPU's matrix flags (amx_bf16, avx512_bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-lora8_qkvo lora16_all full}"; shapes="${2:-15M 110M}"; dtypes="${3:-fp32 bf16}"; repeats="${4:-1}"
# TORCH_DTYPES: which PyTorch peers run (default "fp32 bf16 amp"); TORCH_ITERS: its timed steps (3)
torch_dtypes="${TORCH_DTYPES:-fp32 bf16 amp}"; torch_iters="${TORCH_ITERS:-3}"
make --no-print-directory -s all build/bench_train >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# Debian's OpenBLAS 0.3.21 does not know this CPU and would use SSE3 kernels: give PyTorch
# (which uses the same libblas) the AVX-512 kernels muscle selects for itself.
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
out=$(mktemp)
exec 9>/tmp/muscle-bench.lock
flock 9
# the lead's background experiment (if any) is paused while we measure, resumed on exit
grid=0
if [ -x /work/grid/pause ]; then /work/grid/pause >/dev/null && grid=1; fi
trap '[ "$grid" = 1 ] && /work/grid/resume >/dev/null' EXIT
for shape in $shapes; do for dtype in $dtypes; do for task in $tasks; do
  for r in $(seq "$repeats"); do
    build/bench_train --shape "$shape" --dtype "$dtype" --task "$task" | tee -a "$out"
    case " $torch_dtypes " in *" $dtype "*)
      /usr/bin/python3 bench/torch/bench_torch.py --json --shape "$shape" --dtype "$dtype" --task "$task" --threads "$OMP_NUM_THREADS" \
          --iters "$torch_iters" | tee -a "$out" ;; esac
    if [ "$dtype" = bf16 ] && [[ " $torch_dtypes " == *" amp "* ]]; then
      /usr/bin/python3 bench/torch/bench_torch.py --json --shape "$shape" --dtype amp --task "$task" --threads "$OMP_NUM_THREADS" \
          --iters "$torch_iters" \
          | sed 's/"impl": *"pytorch"/"impl": "pytorch-amp"/; s/"dtype": *"amp"/"dtype": "bf16"/' | tee -a "$out"
    fi
    if [ "${TORCH_SHIPPED:-1}" = 1 ] && [[ " $torch_dtypes " == *" $dtype "* ]]; then
      env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/torch/bench_torch.py --json --shape "$shape" --dtype "$dtype" --task "$task" \
          --threads "$OMP_NUM_THREADS" | sed 's/"impl": *"pytorch"/"impl": "pytorch-shipped"/' | tee -a "$out"
    fi
  done
done; done; done
[ "$grid" = 1 ] && /work/grid/resume >/dev/null && grid=0
flock -u 9
flags=$(grep -o 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')
/usr/bin/python3 - "$out" "${flags:-none}" <<'PY'
import json, sys
flags = sys.argv[2].strip() or "none"
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
key = lambda r: (r["task"], r["shape"], r["dtype"])
best = {}
for r in rows:
    if "tokens_per_s" not in r: continue
    k = (r["impl"],) + key(r)
    if k not in best or r["tokens_per_s"] > best[k]["tokens_per_s"]: best[k] = r
print("\nCPU matrix flags: %s" % flags)
print("\n| task | shape | base weights | muscle tok/s | PyTorch tuned tok/s | ratio | PyTorch autocast tok/s | ratio | PyTorch as shipped tok/s | ratio | muscle peak MB | PyTorch peak MB | CPU flags |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for k in sorted({key(r) for r in rows}, key=lambda k: (k[1], k[2], k[0])):
    a, b, c, d = (best.get((i,) + k) for i in ("muscle", "pytorch", "pytorch-shipped", "pytorch-amp"))
    if not a: continue
    tps = lambda r: f"{r['tokens_per_s']:.0f}" if r else "-"
    ratio = lambda r: f"{a['tokens_per_s'] / r['tokens_per_s']:.2f}x" if r else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {tps(a)} | {tps(b)} | {ratio(b)} | {tps(d)} | {ratio(d)} | {tps(c)} | {ratio(c)} | "
          f"{a['peak_rss_mb']:.0f} | {b['peak_rss_mb'] if b else 0:.0f} | {flags} |")
PY
rm -f "$out"
