# fuzz/lib.sh - sourced by fuzz/run_io.sh and fuzz/run_files.sh: one libFuzzer run and its
# summary line.
#
# fuzz_run NAME EXE SECONDS DICT MAXLEN OUT CORPUS [SEED_DIR...]
#   runs EXE for SECONDS into the corpus folder CORPUS (seeded from the SEED_DIRs), crash
#   artifacts as OUT/artifacts/NAME-*, the log in OUT/fuzz_NAME.log; prints the executions,
#   the coverage and the corpus size on stdout and, when the run failed, the first error
#   lines on stderr. Returns libFuzzer's exit status (non-zero: a crash, a leak or a timeout).
#   FUZZ_TIMEOUT (seconds, default 10): libFuzzer's per-input timeout, which counts wall time;
#   on a loaded machine under `nice -n 19` a process can be descheduled for longer than 10 s
#   (seen: a 3-byte manifest "timed out" after 15 s and replays in 0.1 s of CPU).
fuzz_run() {
  local h="$1" exe="$2" secs="$3" dict="$4" maxlen="$5" out="$6" corpus="$7"
  shift 7
  local log="$out/fuzz_$h.log" rc runs cov corp
  echo "== fuzz_$h: ${secs}s" >&2
  "$exe" -max_total_time="$secs" -max_len="$maxlen" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$dict" -artifact_prefix="$out/artifacts/$h-" \
    "$corpus" "$@" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  corp=$(ls "$corpus" | wc -l)
  if [ $rc -ne 0 ]; then
    echo "fuzz_$h: FAILED (exit $rc) after ${runs:-?} runs; see $log and $out/artifacts/" >&2
    grep -m5 -E 'ERROR|SUMMARY|runtime error|invariant failed' "$log" >&2
  fi
  echo "fuzz_$h: ${secs}s, ${runs:-?} executions, ${cov:-cov: ?}, corpus $corp files, exit $rc"
  return $rc
}
