#!/usr/bin/env bash
# bench/llamacpp/native.sh - llama.cpp built for this CPU, the fair peer of bench/decode.sh.
#
# node-llama-cpp's prebuilt binaries (decode.mjs) pay a JavaScript round trip per token: on
# the 15M shape they decode at ~60 tok/s, which measures node, not llama.cpp. This builds
# llama.cpp's own `llama-bench` from the source node-llama-cpp 3.22.1 ships (the git bundle
# node_modules/node-llama-cpp/llama/gitRelease.bundle, llama.cpp release tag in
# llama.cpp.info.json), with GGML_NATIVE (this CPU's instruction sets) and OpenMP, into
# build/llama.cpp-src (git-ignored; nothing is downloaded: the bundle comes with the pinned
# npm package). Never a dependency of `make test`.
#
#   bench/llamacpp/native.sh                       build (once) and print the binary's path
#   bench/llamacpp/native.sh tg MODEL.gguf N THREADS ITERS
#                                                  single-stream decode: llama-bench's tg N
#                                                  (N tokens from an empty context, batch 1;
#                                                  best of ITERS + 1 runs after llama-bench's
#                                                  warm-up), one JSON line like bench_decode's
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
src="$root/build/llama.cpp-src"
bin="$src/b/bin/llama-bench"
bundle="$here/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [ ! -x "$bin" ]; then
  if [ ! -f "$bundle" ]; then
    (cd "$here" && npm i -E --ignore-scripts --omit=optional --no-audit --no-fund >/dev/null)
  fi
  [ -f "$bundle" ] || { echo "native.sh: $bundle is missing (npm install of node-llama-cpp 3.22.1 failed)" >&2; exit 1; }
  command -v cmake >/dev/null || { echo "native.sh: cmake is needed to build llama.cpp" >&2; exit 1; }
  rm -rf "$src"
  git clone -q "$bundle" "$src"
  cmake -S "$src" -B "$src/b" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$src/b" --target llama-bench -j"$(nproc)" >/dev/null
fi
[ "${1:-}" = tg ] || { echo "$bin"; exit 0; }
model="$2"; n="${3:-128}"; threads="${4:-2}"; iters="${5:-2}"
"$bin" -m "$model" -p 0 -n "$n" -t "$threads" -r "$((iters + 1))" -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)[0]
print(json.dumps({"impl": "llama.cpp", "model": sys.argv[1], "task": "single", "width": 1,
                  "tokens_per_s": round(max(r.get("samples_ts") or [r["avg_ts"]]), 1), "threads": int(sys.argv[2]), "binary": "native " + r.get("build_commit", ""),
                  "cpu": r.get("cpu_info", "")}))' "$model" "$threads"
