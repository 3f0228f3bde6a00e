#!/usr/bin/env bash
# Builds the io fuzzers with clang's libFuzzer (+ AddressSanitizer, UBSan) and runs each
# for SECONDS (default 60), seeded with the fixtures, the real GGUF file of ../shared,
# small writer-made files, tests/fixtures/io/fuzz/ (past crashes) and truncations.
#   fuzz/run_io.sh [SECONDS] [HARNESS...]     (harnesses: safetensors gguf json_index)
# Work files go to build-fuzz/ (persistent corpus in build-fuzz/corpus/NAME, crashes in
# build-fuzz/artifacts/). Exit status 1 when a harness found a crash.
set -u
cd "$(dirname "$0")/.."
. fuzz/lib.sh
secs="${1:-60}"; shift || true
harnesses=("$@"); [ ${#harnesses[@]} -eq 0 ] && harnesses=(safetensors gguf json_index)
out=build-fuzz
shared="${MUSCLE_SHARED:-../shared}"
mkdir -p "$out/artifacts"
CC="${FUZZ_CC:-clang}"
cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -Isrc $(pkg-config --cflags libcjson) -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=undefined)
lib=(src/io/*.c src/core/error.c src/core/file.c src/core/dtype.c src/core/hash.c src/core/strbuf.c src/core/utf8.c)
libs=($(pkg-config --libs libcjson) -lm)

build() { # name -> $out/fuzz_name
  "$CC" "${cflags[@]}" -fsanitize=fuzzer "fuzz/fuzz_$1.c" "${lib[@]}" "${libs[@]}" -o "$out/fuzz_$1" || exit 2
}

seed_truncations() { # file dir: the file and cuts of it at ~16 points
  local f="$1" d="$2" n i b
  n=$(stat -c %s "$f"); b=$(basename "$f")
  [ "$n" -gt 16384 ] && { head -c 16384 "$f" >"$d/$b.head"; return; }
  cp "$f" "$d/$b"
  for i in 1 4 8 9 12 16 24 32 48 64 100 $((n / 2)) $((n - 8)) $((n - 1)); do
    [ "$i" -gt 0 ] && [ "$i" -lt "$n" ] && head -c "$i" "$f" >"$d/$b.cut$i"
  done
}

make_seeds() {
  local s="$out/seeds"; rm -rf "$s"; mkdir -p "$s/safetensors" "$s/gguf" "$s/json_index"
  for f in tests/fixtures/io/*.safetensors tests/fixtures/io/sharded/*.safetensors; do seed_truncations "$f" "$s/safetensors"; done
  cp tests/fixtures/io/sharded/model.safetensors.index.json "$s/json_index/"
  printf '{"metadata":{"total_size":8},"weight_map":{"a":"x.safetensors","b":"y.safetensors"}}' >"$s/json_index/small.json"
  printf '{"weight_map":{"a\\u00e9":"x","b":"../y"},"metadata":null}' >"$s/json_index/escapes.json"
  "$CC" "${cflags[@]}" fuzz/fuzz_gguf_seeds.c "${lib[@]}" "${libs[@]}" -o "$out/fuzz_gguf_seeds" || exit 2
  mkdir -p "$s/gguf.tmp"
  "$out/fuzz_gguf_seeds" "$s/gguf.tmp" || exit 2
  for f in "$s"/gguf.tmp/*.gguf; do seed_truncations "$f" "$s/gguf"; done
  rm -rf "$s/gguf.tmp"
  for h in safetensors gguf json_index; do  # inputs that once crashed (replayed by tests/io/test_fuzz_regress.c)
    cp tests/fixtures/io/fuzz/$h/* "$s/$h/" 2>/dev/null
  done
  real="$shared/models/tiny-random-gguf/llama-2-tiny-random.gguf"
  [ -r "$real" ] && head -c 16384 "$real" >"$s/gguf/real.head"
  cat >"$out/json.dict" <<'DICT'
"{"
"}"
"["
"]"
":"
","
"\""
"\\u"
"\\u0000"
"\\ud800"
"__metadata__"
"dtype"
"shape"
"data_offsets"
"F32"
"F16"
"BF16"
"I8"
"F4"
"weight_map"
"metadata"
"total_size"
"9007199254740993"
"1e300"
"-1"
"null"
"true"
DICT
  cat >"$out/gguf.dict" <<'DICT'
"GGUF"
"general.alignment"
"general.architecture"
"\x03\x00\x00\x00"
"\x02\x00\x00\x00"
"\x09\x00\x00\x00\x08\x00\x00\x00"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"\x00\x00\x00\x00\x00\x00\x00\x80"
"\x20\x00\x00\x00"
"\x1e\x00\x00\x00"
DICT
}

status=0
make_seeds
for h in "${harnesses[@]}"; do
  build "$h"
  mkdir -p "$out/corpus/$h"
  dict="$out/json.dict"; maxlen=4096
  [ "$h" = gguf ] && { dict="$out/gguf.dict"; maxlen=16384; }
  fuzz_run "$h" "$out/fuzz_$h" "$secs" "$dict" "$maxlen" "$out" "$out/corpus/$h" "$out/seeds/$h" || status=1
done
exit $status
