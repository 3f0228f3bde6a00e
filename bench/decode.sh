#!/usr/bin/env bash
# Decoding benchmarks (issue 19): single-stream greedy decoding, muscle against llama.cpp on
# the same random-weight GGUF files, fp32 and bf16, "15M" and "110M" shapes; batched
# generation throughput at widths 1, 4, 16, 64 (fp32 and bf16 weights; the whole run with
# 16-token prompts, and the decoding rate after the prompts against the single stream's) and
# the scoring rate of the same model.
#   bench/decode.sh [SHAPES] [DTYPES] [WIDTHS]     e.g. bench/decode.sh "15M 110M" "fp32 bf16" "1 4 16 64"
# llama.cpp: its own llama-bench built for this CPU (bench/llamacpp/native.sh: from the
# source node-llama-cpp 3.22.1 ships, GGML_NATIVE; the peer the targets are set against), and
# node-llama-cpp 3.22.1's prebuilt CPU binaries through node (decode.mjs; a JavaScript round
# trip per token, shown for reference), both from bench/llamacpp/node_modules (git-ignored,
# `npm i -E --ignore-scripts`); never a dependency of `make test`. Without node/npm (or cmake
# for the native build) those rows are skipped.
# Env: THREADS (default 2), TOKENS (single-stream, default 128), BTOKENS (batched, new
# tokens per sequence, default 48), ITERS (best of, after a warm-up; default 2).
# Holds the benchmark lock (/tmp/muscle-bench.lock). Prints JSON lines and markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
shapes="${1:-15M 110M}"; dtypes="${2:-fp32 bf16}"; widths="${3:-1 4 16 64}"
THREADS="${THREADS:-2}"; TOKENS="${TOKENS:-128}"; BTOKENS="${BTOKENS:-48}"; ITERS="${ITERS:-2}"
export OMP_NUM_THREADS="$THREADS"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
make --no-print-directory -s all build/bench_decode >/dev/null
dir=build/bench-decode; mkdir -p "$dir"
have_llama=0
if command -v npm >/dev/null && command -v node >/dev/null; then
  if [ ! -d bench/llamacpp/node_modules/@node-llama-cpp/linux-x64 ]; then
    (cd bench/llamacpp && npm i -E --ignore-scripts --omit=optional --no-audit --no-fund >/dev/null) || true
  fi
  [ -d bench/llamacpp/node_modules/@node-llama-cpp/linux-x64 ] && have_llama=1
fi
[ "$have_llama" = 1 ] || echo "llama.cpp rows skipped: node/npm or the node-llama-cpp binaries are missing" >&2
have_native=0
if [ "$have_llama" = 1 ] && command -v cmake >/dev/null; then
  bench/llamacpp/native.sh >/dev/null && have_native=1 || echo "native llama.cpp rows skipped: its build failed" >&2
fi
out=$(mktemp)
exec 9>/tmp/muscle-bench.lock
flock 9
for shape in $shapes; do
  for dtype in $dtypes; do
    f="$dir/$shape-$dtype.gguf"
    [ -f "$f" ] || build/bench_decode --make-gguf "$f" --shape "$shape" --dtype "$dtype"
    bf=(); [ "$dtype" = bf16 ] && bf=(--bf16)
    build/bench_decode --model "$f" "${bf[@]}" --task single --tokens "$TOKENS" --iters "$ITERS" | sed "s/}\$/,\"shape\":\"$shape\"}/" | tee -a "$out"
    if [ "$have_native" = 1 ]; then
      bench/llamacpp/native.sh tg "$f" "$TOKENS" "$THREADS" "$ITERS" | sed "s/}\$/,\"shape\":\"$shape\",\"weights\":\"$dtype\"}/" | tee -a "$out"
    fi
    if [ "$have_llama" = 1 ]; then
      (cd bench/llamacpp && node decode.mjs "../../$f" "$TOKENS" "$THREADS" "$ITERS") | sed "s/\"impl\":\"llama.cpp\"/\"impl\":\"llama.cpp-node\"/; s/}\$/,\"shape\":\"$shape\",\"weights\":\"$dtype\"}/" | tee -a "$out"
    fi
  done
  f="$dir/$shape-fp32.gguf"
  build/bench_decode --model "$f" --task score --iters "$ITERS" | sed "s/}\$/,\"shape\":\"$shape\"}/" | tee -a "$out"
  for dtype in $dtypes; do
    f="$dir/$shape-$dtype.gguf"
    bf=(); [ "$dtype" = bf16 ] && bf=(--bf16)
    for w in $widths; do
      build/bench_decode --model "$f" "${bf[@]}" --task batch --width "$w" --tokens "$BTOKENS" --iters "$ITERS" | sed "s/}\$/,\"shape\":\"$shape\"}/" | tee -a "$out"
    done
  done
done
flock -u 9
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
single = {}
for r in rows:
    if r["task"] == "single":
        single.setdefault((r["shape"], r["weights"]), {})[r["impl"]] = r["tokens_per_s"]
print("\n| single-stream decode | weights | muscle tok/s | llama.cpp native tok/s | muscle / llama.cpp | llama.cpp via node tok/s |")
print("|---|---|---:|---:|---:|---:|")
for (shape, w), v in single.items():
    m, l, ln = v.get("muscle"), v.get("llama.cpp"), v.get("llama.cpp-node")
    print(f"| {shape} | {w} | {m:.1f} | {l if l else '-'} | {f'{m/l:.2f}x' if l else '-'} | {ln if ln else '-'} |")
score = {r["shape"]: r["tokens_per_s"] for r in rows if r["task"] == "score"}
b1 = {(r["shape"], r["weights"]): r["tokens_per_s"] for r in rows if r["task"] == "batch" and r["width"] == 1}
print("\n| batched generation | weights | width | tok/s (whole run) | x width 1 | share of fp32 scoring | decode tok/s (after the prompts) | x single stream |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["task"] != "batch": continue
    k = (r["shape"], r["weights"])
    s, one, ss = score.get(r["shape"]), b1.get(k), single.get(k, {}).get("muscle")
    t, dt = r["tokens_per_s"], r.get("decode_tokens_per_s")
    print(f"| {r['shape']} | {r['weights']} | {r['width']} | {t:.1f} | {f'{t/one:.1f}x' if one else '-'} | {f'{100*t/s:.0f}% of {s:.0f}' if s else '-'} | "
          f"{f'{dt:.1f}' if dt else '-'} | {f'{dt/ss:.1f}x' if dt and ss else '-'} |")
PY
rm -f "$out"
