#!/usr/bin/env bash
# Where a training step's time goes: perf samples of bench_train (one warm-up step + ITERS
# timed steps of 4 x 256 tokens), self time by function, grouped into the matrix products
# and everything outside them (attention's softmax, norms, loss, rotary, activations, the
# optimizer, the bf16 operand copies of the mixed products, OpenMP waits).
#   bench/train_profile.sh [TASK] [SHAPES] [DTYPES] [ITERS]
#   e.g. bench/train_profile.sh full "15M 110M" "fp32 bf16" 2
# Holds the benchmark lock; prints one markdown row per (shape, dtype) with the CPU's
# matrix flags, and the largest functions outside the products.
# Only the timed steps are sampled (perf record --control, bench_train's MUSCLE_PERF_CTL:
# events enabled after the warm-up step), so the random initialisation and the planning's
# first-touch page faults are left out. Pauses the lead's grid (/work/grid/pause) while it
# samples and resumes it on exit. PROFILE_KEEP=DIR keeps each perf report there.
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:-full}"; shapes="${2:-15M 110M}"; dtypes="${3:-fp32 bf16}"; iters="${4:-2}"
make --no-print-directory -s build/bench_train >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
flags=$(grep -o 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' '); flags="${flags:-none}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
exec 9>/tmp/muscle-bench.lock
flock 9
grid=0
if [ -x /work/grid/pause ]; then /work/grid/pause >/dev/null && grid=1; fi
trap 'rm -rf "$tmp"; [ "$grid" = 1 ] && /work/grid/resume >/dev/null' EXIT
for shape in $shapes; do for dtype in $dtypes; do
  rm -f "$tmp/ctl"; mkfifo "$tmp/ctl"
  MUSCLE_PERF_CTL="$tmp/ctl" perf record -q -F 499 -D -1 --control "fifo:$tmp/ctl" -o "$tmp/perf.data" -- \
      build/bench_train --shape "$shape" --dtype "$dtype" --task "$task" --iters "$iters" >"$tmp/run.json" 2>/dev/null
  perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null >"$tmp/report.txt"
  if [ -n "${PROFILE_KEEP:-}" ]; then mkdir -p "$PROFILE_KEEP"; cp "$tmp/report.txt" "$PROFILE_KEEP/$task-$shape-$dtype.txt"; cp "$tmp/run.json" "$PROFILE_KEEP/$task-$shape-$dtype.json"; fi
  /usr/bin/python3 - "$tmp/report.txt" "$tmp/run.json" "$shape" "$dtype" "$task" "$flags" <<'PY'
import json, re, sys
rep, run, shape, dtype, task, flags = sys.argv[1:7]
r = json.load(open(run))
# (group, test on "dso symbol"): the first match wins
GROUPS = [
    ("set-up", r"rand_weight|rng_normal|rng_u32|__logf|__cosf|__sinf|train_hash_model|ld-linux|model_init_random"),
    ("bf16 conversions", r"round_rows|\bmixed\b|mixed_refresh|xwt_bf16_portable|kmm_xwt$|kmm_xw_bf16|kweight_repack|pack_bf16|dtype_from_f32"),
    ("attention softmax/mask", r"attention_(forward|backward|mask|scores_row|pv_row)|softmax_causal|kvec_"),
    ("norms", r"rmsnorm|layernorm|norm_(forward|backward)"),
    ("loss (log-softmax over the vocabulary)", r"crossentropy|logsoftmax|logsumexp"),
    ("rotary", r"rope_"),
    ("activations", r"swiglu|geglu|gelu"),
    ("optimizer (AdamW, clipping)", r"adamw|grad_(clip|global|scale)|train_spans|span_sumsq"),
    ("embedding", r"embed"),
    ("memset", r"memset"),
    ("memcpy", r"memcpy|memmove"),
    ("malloc/free", r"libc.*(malloc|free|_int_|sysmalloc|aligned_alloc|unlink_chunk|mmap|munmap)"),
    ("OpenMP waits", r"libgomp"),
    ("kernel (page faults, scheduling)", r"\[kernel"),
    ("products", r"libdnnl|libopenblas|\[JIT\]|perf-\d+\.map|\[unknown\]|kmm_|gemm_|gemv|pack_a_tile|pack_b_panel|kernel_|_avx512|_avx2"),
]
tot = {}
top = []
for line in open(rep):
    m = re.match(r"\s*([\d.]+)%\s+(.*?)\s+\[[.k]\]\s+(\S+)", line)  # dso may hold spaces ("[JIT] tid 7")
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    key = dso + " " + sym
    g = next((name for name, pat in GROUPS if re.search(pat, key)), "other")
    tot[g] = tot.get(g, 0) + pct
    top.append((pct, g, sym, dso))
tot.pop("set-up", None)  # random weights and planning: not the step
s = sum(tot.values()) or 1
prod = 100 * tot.get("products", 0) / s
cols = ["bf16 conversions", "attention softmax/mask", "norms", "loss (log-softmax over the vocabulary)", "rotary",
        "activations", "optimizer (AdamW, clipping)", "embedding", "memset", "memcpy", "malloc/free", "OpenMP waits",
        "kernel (page faults, scheduling)"]
print("| %s | %s | %s | %.0f | %.0f | %.0f%% | %.0f%% | %s | %.0f%% | %s |" % (
    task, shape, dtype, r["tokens_per_s"], r.get("minflt_per_step", -1), prod, 100 - prod,
    ", ".join("%s %.0f%%" % (c.split(" (")[0], 100 * tot.get(c, 0) / s) for c in cols if tot.get(c, 0) >= 0.5),
    100 * tot.get("other", 0) / s, flags))
print("#   largest outside the products: " + "; ".join([
    "%s %.1f%%" % (sym[:40] if not sym.startswith("0x") else dso, 100 * p / s) for p, g, sym, dso in sorted(top, reverse=True) if g not in ("products", "set-up")][:8]))
PY
done; done
flock -u 9
