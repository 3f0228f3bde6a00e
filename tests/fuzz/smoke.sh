#!/usr/bin/env bash
# CI's short fixed fuzzing budget: builds and runs every libFuzzer harness of fuzz/ for a few
# seconds (FUZZ_SMOKE_SECONDS, default 8) through the project's own runners, so the seeds,
# dictionaries, -max_len and sanitizers are exactly those of `make fuzz`:
#   fuzz/run_io.sh SECONDS safetensors gguf json_index        (work files in build-fuzz/)
#   fuzz/run_files.sh SECONDS hf_config adapter_config task   (work files in build-fuzz/;
#                                       the library is built once into build-fuzz/lib/)
#   FUZZ_DIR=build-fuzz/smoke fuzz/run_tokenizer.sh SECONDS H  (one call per harness)
# Two runners go at a time (the CI machine has 2 cores). One TAP line per harness; any crash,
# sanitizer report, timeout or leak is a `not ok` naming the saved input. A harness file in
# fuzz/ that no runner lists is a `not ok` too. Without clang or the libFuzzer runtime:
# one `not ok` saying what to install.
# The tokenizer seeds (made once per FUZZ_DIR, ~1-2 s of python3-sentencepiece) are kept; the
# smoke corpora are emptied first so each run costs the same (the encode harness executes
# every corpus file at start, ~30/s under ASan).
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
SECS="${FUZZ_SMOKE_SECONDS:-8}"
TOKDIR=build-fuzz/smoke

# --- which harnesses, and which runner runs them -----------------------------------------
defaults() { # the default harness list of a runner script
  sed -n 's/.*harnesses=(\([a-z_ ]*\)).*/\1/p' "$1" | head -1
}
read -r -a io <<<"$(defaults fuzz/run_io.sh)"
read -r -a tok <<<"$(defaults fuzz/run_tokenizer.sh)"
read -r -a files <<<"$(defaults fuzz/run_files.sh)"
orphans=()
for f in $(grep -l 'LLVMFuzzerTestOneInput' fuzz/fuzz_*.c | sort); do
  n=$(basename "$f" .c); n=${n#fuzz_}
  if [[ " ${io[*]} " == *" $n "* ]] || [[ " ${files[*]} " == *" $n "* ]] \
     || { [[ "$n" == tokenizer_* ]] && [[ " ${tok[*]} " == *" ${n#tokenizer_} "* ]]; }; then
    continue
  fi
  orphans+=("$n")
done

# --- clang and libFuzzer present? -----------------------------------------------------------
why=""
if ! command -v clang >/dev/null 2>&1; then
  why="clang not found (install clang and libclang-rt-14-dev: scripts/deps.sh test)"
else
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$TMP/probe.c"
  if ! clang -fsanitize=fuzzer,address,undefined "$TMP/probe.c" -o "$TMP/probe" 2>"$TMP/probe.err"; then
    why="clang cannot link a libFuzzer harness (libclang_rt.fuzzer missing? install libclang-rt-14-dev: scripts/deps.sh test): $(grep -m1 -iE 'cannot find|not found|error' "$TMP/probe.err")"
  elif ! "$TMP/probe" -runs=1 >"$TMP/probe.log" 2>&1; then
    why="a trivial libFuzzer harness does not run: $(tail -1 "$TMP/probe.log")"
  fi
fi
if [ -n "$why" ]; then
  not_ok "fuzz smoke: no harness built: $why"
  echo "1..$TAP_N"; exit 0
fi

# --- run: two workers -------------------------------------------------------------------------
mkdir -p "$TOKDIR"
rm -rf "$TOKDIR"/corpus-*
# seeds made by an older runner (e.g. before a harness was added) are made again
[ fuzz/run_tokenizer.sh -nt "$TOKDIR/seeds.done" ] && rm -f "$TOKDIR/seeds.done"
for h in "${tok[@]}"; do  # inputs of an earlier smoke run's crash: keep them aside, report them
  for c in "$TOKDIR/$h"/crash-* "$TOKDIR/$h"/timeout-* "$TOKDIR/$h"/leak-* "$TOKDIR/$h"/oom-*; do
    [ -e "$c" ] || continue
    mkdir -p "$TOKDIR/old"; mv "$c" "$TOKDIR/old/$h-$(basename "$c")"
    echo "# earlier smoke crash input kept as $TOKDIR/old/$h-$(basename "$c")"
  done
done
t0=$SECONDS
tok_job() { # harness
  local t=$SECONDS
  FUZZ_DIR="$TOKDIR" fuzz/run_tokenizer.sh "$SECS" "$1" >"$TMP/tok-$1.log" 2>&1
  echo "$? $((SECONDS - t))" >"$TMP/tok-$1.rc"
}
claim() { mkdir "$TMP/claim-$1" 2>/dev/null; }
worker_tok() {  # the tokenizer harnesses in order; the first one makes the seeds
  local h
  for h in "${tok[@]}"; do claim "$h" && tok_job "$h"; touch "$TMP/first-tok-done"; done
}
worker_io() {   # the io harnesses, the files ones, then helps with the tokenizer ones from the end of the list
  local t=$SECONDS i
  if [ ${#io[@]} -gt 0 ]; then
    fuzz/run_io.sh "$SECS" "${io[@]}" >"$TMP/io.log" 2>&1
    echo "$? $((SECONDS - t))" >"$TMP/io.rc"
  fi
  t=$SECONDS
  if [ ${#files[@]} -gt 0 ]; then
    FUZZ_JOBS=1 fuzz/run_files.sh "$SECS" "${files[@]}" >"$TMP/files.log" 2>&1
    echo "$? $((SECONDS - t))" >"$TMP/files.rc"
  fi
  # never two seed-making runs at once: wait until the seeds exist or the first run ended
  while [ ! -f "$TOKDIR/seeds.done" ] && [ ! -f "$TMP/first-tok-done" ]; do sleep 1; done
  for ((i = ${#tok[@]} - 1; i >= 0; i--)); do claim "${tok[$i]}" && tok_job "${tok[$i]}"; done
}
if [ ${#tok[@]} -eq 0 ]; then touch "$TMP/first-tok-done"; fi
worker_io & p1=$!
worker_tok & p2=$!
wait "$p1" "$p2"
echo "# fuzz smoke: ${SECS} s per harness, $((SECONDS - t0)) s wall time for everything (builds included, 2 at a time)"

# --- one TAP line per harness ---------------------------------------------------------------
show() { sed 's/^/#   /' | tail -n "${2:-15}"; }
report() { # runner-name log harness...: the io and files runners print the same lines
  local runner="$1" rlog="$2" h line runs rc art; shift 2
  for h in "$@"; do
    line=$(grep -E "^fuzz_$h: " "$rlog" | tail -1)
    if [ -z "$line" ]; then
      echo "# fuzz/$runner output:"; show <"$rlog"
      not_ok "fuzz_$h: not run (fuzz/$runner exit $(cut -d' ' -f1 "${rlog%.log}.rc" 2>/dev/null || echo ?), build failure?)"
      continue
    fi
    runs=$(sed -n 's/.* \([0-9?]*\) executions.*/\1/p' <<<"$line")
    rc=$(sed -n 's/.*exit \([0-9]*\)$/\1/p' <<<"$line")
    if [ "$rc" = 0 ] && [ "$runs" != "?" ] && [ "${runs:-0}" -gt 0 ]; then
      ok "fuzz_$h: $SECS s, $runs runs, no crash"
    else
      echo "# $line"; grep -m8 -E 'ERROR|SUMMARY|runtime error|invariant failed|Test unit written|artifact' "build-fuzz/fuzz_$h.log" 2>/dev/null | show
      art=$(ls -t build-fuzz/artifacts/"$h"-* 2>/dev/null | head -1)
      not_ok "fuzz_$h: CRASH after ${runs:-?} runs (libFuzzer exit $rc)${art:+, input saved as $art}; log build-fuzz/fuzz_$h.log"
    fi
  done
}
report run_io.sh "$TMP/io.log" "${io[@]}"
report run_files.sh "$TMP/files.log" "${files[@]}"
for h in "${tok[@]}"; do
  log="$TMP/tok-$h.log"
  read -r rc secs 2>/dev/null <"$TMP/tok-$h.rc" || rc="?"
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  [ -z "$runs" ] && runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  if [ "$rc" = 0 ] && [ -n "$runs" ] && [ "$runs" -gt 0 ]; then
    ok "fuzz_tokenizer_$h: $SECS s, $runs runs, no crash"
  elif ! grep -q "^== fuzz_tokenizer_$h" "$log"; then
    echo "# fuzz/run_tokenizer.sh output:"; show <"$log"
    not_ok "fuzz_tokenizer_$h: not run (fuzz/run_tokenizer.sh exit $rc before fuzzing: seeds or build failed)"
  else
    grep -m8 -E 'ERROR|SUMMARY|runtime error|Test unit written|crash-|timeout-|leak-' "$log" | show
    art=$(ls -t "$TOKDIR/$h"/crash-* "$TOKDIR/$h"/timeout-* "$TOKDIR/$h"/leak-* "$TOKDIR/$h"/oom-* 2>/dev/null | head -1)
    not_ok "fuzz_tokenizer_$h: CRASH after ${runs:-?} runs (exit $rc)${art:+, input saved as $art}"
  fi
done
for h in "${orphans[@]}"; do
  not_ok "fuzz/fuzz_$h.c is a libFuzzer harness that none of fuzz/run_io.sh, fuzz/run_files.sh, fuzz/run_tokenizer.sh runs"
done
echo "1..$TAP_N"
