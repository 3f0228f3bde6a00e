#!/usr/bin/env bash
# Tokenizer throughput on war-and-peace (one benchmark at a time: flock /tmp/muscle-bench.lock).
# Usage: tools/tokenizer/bench.sh   (after make all; builds tok_bench against build/libmuscle.a)
set -euo pipefail
cd "$(dirname "$0")/../.."
S="${MUSCLE_SHARED:-../shared}"
B="${BUILD:-build}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -std=c11 -D_GNU_SOURCE -O3 -march=x86-64 -mtune=znver3 -Isrc $(pkg-config --cflags libcjson) \
  tools/tokenizer/tok_bench.c "$B/libmuscle.a" $(pkg-config --libs libcjson openblas) -ldnnl -lutf8proc -lpcre2-8 -lm -fopenmp \
  -o "$tmp/tok_bench"
/usr/bin/python3 tools/tokenizer/make_llama_json.py "$S/models/llama2-tokenizer/llama2_tokenizer.model" "$tmp/tokenizer.json"
/usr/bin/python3 - "$S" <<'PY'
import sys, time, sentencepiece as spm
s = sys.argv[1]
text = open(s + "/corpora/war-and-peace.txt", "rb").read()
lines = text.split(b"\n")
sp = spm.SentencePieceProcessor(model_file=s + "/models/llama2-tokenizer/llama2_tokenizer.model")
best = 1e9
for _ in range(3):
    t0 = time.perf_counter(); n = sum(len(x) for x in sp.encode(lines)); best = min(best, time.perf_counter() - t0)
bw = 1e9
for _ in range(3):
    t0 = time.perf_counter(); m = len(sp.encode(text)); bw = min(bw, time.perf_counter() - t0)
print("%-60s %-14s by line (batch call): %d tokens %.2f Mtok/s | whole text: %d tokens %.2f Mtok/s" %
      ("python3-sentencepiece 0.1.97 llama2_tokenizer.model", "reference", n, n / best / 1e6, m, m / bw / 1e6))
PY
"$tmp/tok_bench" "$S/corpora/war-and-peace.txt" "$S/models/llama2-tokenizer/llama2_tokenizer.model" \
  "$S/models/llama2-tokenizer/llama2_tokenizer.bin" "$tmp/tokenizer.json" "$S/models/babyllama105/tok105.model" \
  "$S/models/stories260K/tok512.bin"
