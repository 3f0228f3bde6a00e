# tests/cli/lib.sh - TAP helpers for the command-line tests (sourced).
# MUSCLE: the program under test; SHARED: ../shared.
MUSCLE="${MUSCLE:-build/muscle}"
SHARED="${MUSCLE_SHARED:-../shared}"
TAP_N=0
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); echo "not ok $TAP_N - $*"; }
check() { # check NAME CMD... : passes when CMD exits 0
  local name="$1"; shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}
need() { # need FILE: fail loudly when reference data is missing
  if [ ! -r "$1" ]; then echo "# missing reference file $1 (../shared must sit beside the checkout)"; not_ok "reference file $1 present"; return 1; fi
}
# expect_error NAME PATTERN CMD...: non-zero exit (not a crash: exit < 128), exactly one
# line on stderr that starts with "muscle: error:" and matches PATTERN, nothing on stdout.
expect_error() {
  local name="$1" pat="$2"; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  local lines; lines=$(wc -l <"$TMP/err")
  if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] && grep -q '^muscle: error: ' "$TMP/err" \
     && grep -qE -- "$pat" "$TMP/err" && [ ! -s "$TMP/out" ]; then
    ok "$name"
  else
    echo "# exit $rc; stderr:"; sed 's/^/#   /' "$TMP/err" | head -5; echo "# stdout:"; head -c 300 "$TMP/out" | sed 's/^/#   /'
    echo # the output may end without a newline: the TAP line must start its own line
    not_ok "$name"
  fi
}
