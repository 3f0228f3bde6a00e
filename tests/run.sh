#!/usr/bin/env bash
# Runs every test and prints one closing line "N passed, N failed".
#  - C unit tests: build/tests/*/test_* (cmocka, TAP output), and again the
#    sanitizer build in build-asan/tests/ (AddressSanitizer + UBSan);
#  - script tests: tests/*/*.sh, which print TAP lines ("ok N - name" / "not ok N - name")
#    and run the program from $MUSCLE (default build/muscle).
# Usage: tests/run.sh [PATTERN]   (only tests whose path contains PATTERN)
set -u
cd "$(dirname "$0")/.."
pat="${1:-}"
pass=0; fail=0; failed_names=()
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
log=$(mktemp); trap 'rm -f "$log"' EXIT

run_one() { # name, command...
  local name="$1"; shift
  local t0=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local ok nok
  ok=$(grep -c '^ok ' "$log"); nok=$(grep -c '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok - $name exited with $rc" >>"$log"; fi
  if [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok - $name ran no test" >>"$log"; fi
  pass=$((pass + ok)); fail=$((fail + nok))
  printf '%-52s %3d passed %3d failed  %4ds\n' "$name" "$ok" "$nok" $((SECONDS - t0))
  if [ "$nok" -ne 0 ]; then failed_names+=("$name"); sed 's/^/    | /' "$log" | tail -n 40; fi
}

for dir in build build-asan; do
  [ -d "$dir/tests" ] || continue
  for t in $(find "$dir/tests" -type f -name 'test_*' -perm -u+x | sort); do
    [ -n "$pat" ] && [[ "$t" != *"$pat"* ]] && continue
    run_one "$t" "$t"
  done
done
export MUSCLE="${MUSCLE:-build/muscle}"
for t in $(find tests -mindepth 2 -name '*.sh' ! -name 'lib.sh' | sort); do
  [ -n "$pat" ] && [[ "$t" != *"$pat"* ]] && continue
  run_one "$t" bash "$t"
done
[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
