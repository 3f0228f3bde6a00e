#!/usr/bin/env bash
# Matrix engine (issue 20): bf16 scoring (4 x 256) and a LoRA r8 q,k,v,o training step
# (4 x 256, forward + backward + AdamW) on the random-weight "110M" Llama shape, in one run:
#   muscle fp32, muscle bf16 on our kernels (MUSCLE_DNNL=0), muscle bf16 on oneDNN
#   (MUSCLE_DNNL=1; AMX where the CPU has it; frozen weights reordered once into oneDNN's
#   layout), the same with the plain weights oneDNN re-packs every call (MUSCLE_DNNL=1
#   MUSCLE_DNNL_PACK=0), muscle bf16 as it was before (PREV=a build
#   folder of an older checkout with bench_engine/bench_train, optional), PyTorch bf16.
# Every row records the CPU's AMX / AVX512-BF16 flags and oneDNN's implementation.
#   bench/engine.sh [TASKS] [SHAPE] [ITERS]      e.g. bench/engine.sh "score lora8_qkvo" 110M 2
#   PREV=/tmp/prev/build bench/engine.sh
# Each measurement is the mean of ITERS timed iterations (default 2: short, the machine is
# shared); muscle's variants and PyTorch run back to back. Holds /tmp/muscle-bench.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-score lora8_qkvo}"; shape="${2:-110M}"; iters="${3:-2}"
make --no-print-directory -s all build/bench_engine build/bench_train >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
flags=$(grep -o 'amx_bf16\|amx_tile\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')
impl=$(MUSCLE_DNNL=1 build/muscle info --cpu | sed -n 's/^bf16 forward x.W^T, m > [0-9]*: //p')
out=$(mktemp)
exec 9>/tmp/muscle-bench.lock
flock 9
run_muscle() { # label, env, binary folder, task, dtype
  local label=$1 envs=$2 dir=$3 task=$4 dtype=$5 prog
  if [ "$task" = score ]; then prog="$dir/bench_engine --task score"; else prog="$dir/bench_train --task $task"; fi
  env $envs $prog --shape "$shape" --dtype "$dtype" --iters "$iters" | grep '^{' |
    sed "s/^{/{\"variant\":\"$label\",/" | tee -a "$out"
}
for task in $tasks; do
  run_muscle "muscle fp32" "MUSCLE_DNNL=0" build "$task" fp32
  run_muscle "muscle bf16 ours" "MUSCLE_DNNL=0" build "$task" bf16
  run_muscle "muscle bf16 oneDNN" "MUSCLE_DNNL=1" build "$task" bf16
  run_muscle "muscle bf16 oneDNN plain" "MUSCLE_DNNL=1 MUSCLE_DNNL_PACK=0" build "$task" bf16
  [ -n "${PREV:-}" ] && run_muscle "muscle bf16 before" "" "$PREV" "$task" bf16
  /usr/bin/python3 bench/torch/bench_torch.py --json --shape "$shape" --dtype bf16 --task "$task" \
      --threads "$OMP_NUM_THREADS" | grep '^{' | sed 's/^{/{"variant":"PyTorch bf16",/' | tee -a "$out"
done
flock -u 9
/usr/bin/python3 - "$out" "$flags" "$impl" "$(uptime | sed 's/.*load average: //')" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
flags, impl, load = sys.argv[2], sys.argv[3], sys.argv[4]
print(f"\nCPU flags: {flags or '(none)'}; oneDNN bf16 matmul: {impl}; load average after: {load}")
print("\n| task | variant | tok/s | vs PyTorch bf16 | vs muscle fp32 | CPU flags |")
print("|---|---|---:|---:|---:|---|")
for task in dict.fromkeys(r["task"] for r in rows):
    rs = [r for r in rows if r["task"] == task and "tokens_per_s" in r]
    ref = {r["variant"]: r["tokens_per_s"] for r in rs}
    for r in rs:
        t = r["tokens_per_s"]
        pt, f32 = ref.get("PyTorch bf16"), ref.get("muscle fp32")
        print(f"| {task} {r['shape']} | {r['variant']} | {t:.0f} | {t / pt:.2f}x | {t / f32:.2f}x | {flags} (busy) |"
              if pt and f32 else f"| {task} | {r['variant']} | {t:.0f} | - | - | {flags} (busy) |")
PY
rm -f "$out"
