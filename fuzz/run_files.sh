#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the other files muscle reads and runs each for SECONDS
# (default 60): config.json, adapter_config.json and task files.
#   fuzz/run_files.sh [SECONDS] [HARNESS...]     (harnesses: hf_config adapter_config task preds manifest)
# The library is built once by the project's Makefile with clang, libFuzzer's coverage
# instrumentation, ASan and UBSan into build-fuzz/lib/ (incremental afterwards); each
# harness links against it. Seeds: the committed fuzz/corpus/NAME/ and the inputs that once
# crashed a harness (tests/model/regress/NAME/, tests/task/regress/NAME/; replayed by
# tests/model/test_fuzz_regress.c and tests/task/test_fuzz_regress.c).
# Work files go to build-fuzz/ (persistent corpus in build-fuzz/corpus/NAME, crashes in
# build-fuzz/artifacts/NAME-*). Exit status 1 when a harness found a crash.
set -u
cd "$(dirname "$0")/.."
. fuzz/lib.sh
secs="${1:-60}"; shift || true
harnesses=("$@"); [ ${#harnesses[@]} -eq 0 ] && harnesses=(hf_config adapter_config task preds manifest)
out=build-fuzz
mkdir -p "$out/artifacts"
CC="${FUZZ_CC:-clang}"
export MUSCLE_SHARED="${MUSCLE_SHARED:-../shared}" # the task harness tokenizes with Llama 2's tokenizer

# --- the library: the Makefile's sanitizer build, with clang and coverage for libFuzzer ----
# (CFLAGS from the environment is appended to the Makefile's own flags)
if ! CFLAGS="-fsanitize=fuzzer-no-link" make --no-print-directory -s -j"${FUZZ_JOBS:-2}" CC="$CC" BUILD="$out/lib" SAN=1 OPT=-O1 \
       "$out/lib/libmuscle.a" >"$out/lib-build.log" 2>&1; then
  cat "$out/lib-build.log" >&2; echo "fuzz/run_files.sh: building the library failed" >&2; exit 2
fi
cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -Isrc $(pkg-config --cflags libcjson openblas) -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp)
libs=("$out/lib/libmuscle.a" $(pkg-config --libs openblas libcjson) -ldnnl -lutf8proc -lpcre2-8 -lm)

regress_dir() { # harness -> its folder of past crash inputs
  case "$1" in task) echo tests/task/regress/task ;; preds) echo tests/metrics/regress/preds ;; manifest) echo tests/report/regress/manifest ;; *) echo "tests/model/regress/$1" ;; esac
}

cat >"$out/config.dict" <<'DICT'
"{"
"}"
"["
"]"
":"
","
"\""
"null"
"true"
"false"
"-1"
"0"
"1e300"
"1e-45"
"3.5e38"
"9007199254740993"
"\\u0000"
"\\ud800"
"model_type"
"llama"
"rope_scaling"
"hidden_size"
"intermediate_size"
"num_hidden_layers"
"num_attention_heads"
"num_key_value_heads"
"head_dim"
"vocab_size"
"max_position_embeddings"
"rms_norm_eps"
"rope_theta"
"tie_word_embeddings"
"bos_token_id"
"eos_token_id"
"peft_type"
"LORA"
"r"
"lora_alpha"
"use_rslora"
"fan_in_fan_out"
"bias"
"none"
"rank_pattern"
"alpha_pattern"
"target_modules"
"all-linear"
"q_proj"
"k_proj"
"v_proj"
"o_proj"
"gate_proj"
"up_proj"
"down_proj"
DICT
cat >"$out/task.dict" <<'DICT'
"{"
"}"
"["
"]"
"\x0a"
"\""
"null"
"true"
"\\u0000"
"\\ud83d\\ude00"
"id"
"context"
"choices"
"label"
"prompt"
"target"
"answer"
"ctx_a"
"ctx_b"
"endings"
"activity_label"
"goal"
"sol1"
"sol2"
"question"
"stem"
"text"
"answerKey"
"passage"
"article"
"options"
"#### "
"dialogue"
"summary"
"instruction"
"input"
"output"
"{goal}"
"{{"
"}}"
DICT

status=0
for h in "${harnesses[@]}"; do
  if [ ! -f "fuzz/fuzz_$h.c" ]; then echo "fuzz/run_files.sh: no harness fuzz/fuzz_$h.c" >&2; status=1; continue; fi
  "$CC" "${cflags[@]}" "fuzz/fuzz_$h.c" "${libs[@]}" -o "$out/fuzz_$h" || exit 2
  mkdir -p "$out/corpus/$h"
  seeds=("fuzz/corpus/$h")
  r=$(regress_dir "$h"); [ -d "$r" ] && seeds+=("$r")
  dict="$out/config.dict"; maxlen=4096
  [ "$h" = task ] && dict="$out/task.dict"
  fuzz_run "$h" "$out/fuzz_$h" "$secs" "$dict" "$maxlen" "$out" "$out/corpus/$h" "${seeds[@]}" || status=1
done
exit $status
