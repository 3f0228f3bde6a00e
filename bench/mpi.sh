#!/usr/bin/env bash
# Data-parallel scaling (docs/distributed.md): training tokens/s with 1 process of C threads
# against R MPI ranks of C/R threads each (C = the machine's cores, R = 2 by default), the
# same global batch, and the share of the step time the ranks spend in MPI collectives
# (the "comm_s" and "step_s" the trainer logs per step on several ranks; the collective
# time includes waiting for the slowest rank).
#   bench/mpi.sh [WORKLOADS] [STEPS] [RANKS]
#   WORKLOADS: any of
#     full15M   muscle pretrain, a new random model of the stories15M shape (dim 288, 6
#               layers, 6 heads, hidden 768; vocab 512): 6.2M parameters, all trained;
#               batch 4 x grad-accum 2 x 256 tokens a step
#     lora1M    muscle finetune, LoRA rank 8 on every linear layer of babyllama105 (0.94M
#               base parameters); batch 8 x grad-accum 2 x 256 tokens a step
#   default "full15M lora1M", 24 steps (the first 4 not counted), 2 ranks.
# Prints JSON lines and a markdown table for bench/RESULTS.md. Holds the benchmark lock
# (/tmp/muscle-bench.lock) throughout: never two benchmarks at once. Run it on a quiet
# machine: with other work on the cores, ranks wait for each other and the share of time in
# MPI grows.
set -euo pipefail
cd "$(dirname "$0")/.."
workloads="${1:-full15M lora1M}"; steps="${2:-24}"; ranks="${3:-2}"
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun not found (apt-get install openmpi-bin libopenmpi-dev; make)" >&2; exit 1; }
make --no-print-directory -s all >/dev/null
ldd build/muscle | grep -q libmpi || { echo "bench/mpi.sh: build/muscle is built without MPI" >&2; exit 1; }
SHARED="${MUSCLE_SHARED:-../shared}"
cores=$(nproc)
tpr=$((cores / ranks)); [ "$tpr" -ge 1 ] || tpr=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
head -c 2000000 "$SHARED/corpora/war-and-peace.txt" >"$tmp/wp.txt"
out="$tmp/results.jsonl"
exec 9>/tmp/muscle-bench.lock
flock 9
args() { # the command line of a workload
  case "$1" in
    full15M) echo "pretrain --dim 288 --layers 6 --heads 6 --hidden 768 --tokenizer $SHARED/models/stories260K/tok512.bin
                   --data $tmp/wp.txt --seq-len 256 --batch 4 --grad-accum 2 --steps $steps --val-frac 0.01 --val-max 8 --eval-every 1000000 --quiet" ;;
    lora1M) echo "finetune --model $SHARED/models/babyllama105/model.bin --data $tmp/wp.txt --seq-len 256 --batch 8 --grad-accum 2
                   --steps $steps --rank 8 --val-frac 0.01 --val-max 8 --eval-every 1000000 --quiet" ;;
    *) echo "bench/mpi.sh: unknown workload '$1' (full15M, lora1M)" >&2; exit 2 ;;
  esac
}
summarise() { # workload ranks threads log
  /usr/bin/python3 - "$@" <<'PY' | tee -a "$out"
import json, statistics, sys
w, ranks, threads, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = [json.loads(l) for l in open(log)]
steps = [r for r in rows if 'tokens_per_s' in r][4:]  # the first steps warm up
tps = statistics.median(r['tokens_per_s'] for r in steps)
step_s = sum(r.get('step_s', 0) for r in steps)
comm_s = sum(r.get('comm_s', 0) for r in steps)
print(json.dumps({"workload": w, "ranks": ranks, "threads_per_rank": threads, "steps": len(steps),
                  "tokens_per_s": round(tps, 1), "comm_share": round(comm_s / step_s, 4) if step_s else 0.0}))
PY
}
for w in $workloads; do
  a=$(args "$w")
  rm -rf "$tmp/one" "$tmp/many"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=$cores build/muscle $a --out "$tmp/one"
  summarise "$w" 1 "$cores" "$tmp/one/train_log.jsonl"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=$tpr mpirun --allow-run-as-root --oversubscribe --bind-to none -x OMP_NUM_THREADS -np "$ranks" \
    build/muscle $a --out "$tmp/many"
  summarise "$w" "$ranks" "$tpr" "$tmp/many/train_log.jsonl"
done
flock -u 9
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n| workload | ranks x threads | tokens/s | speed-up | time in MPI collectives |")
print("|---|---|---:|---:|---:|")
base = {}
for r in rows:
    if r["ranks"] == 1: base[r["workload"]] = r["tokens_per_s"]
for r in rows:
    b = base.get(r["workload"])
    print("| %s | %d x %d | %.0f | %s | %s |" % (r["workload"], r["ranks"], r["threads_per_rank"], r["tokens_per_s"],
          "%.2fx" % (r["tokens_per_s"] / b) if b else "-", "%.1f%%" % (100 * r["comm_share"]) if r["ranks"] > 1 else "-"))
PY
