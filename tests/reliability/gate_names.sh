#!/usr/bin/env bash
# `muscle gate` on hand-written report.json files (issue 17, defect 8): every name it prints
# or matches (task and model names, roles, chosen, --task, --method) is valid UTF-8, at most
# 256 bytes and free of terminal controls (C0, DEL, C1, bidi overrides), or the report is
# refused with one line naming the file and the field; the error line itself is valid UTF-8
# whatever the path holds; nothing reaches stdout.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
# report TASK_NAME MODEL_NAME [EXTRA_TASK_JSON] : a report.json whose names are raw JSON
# string contents (escapes allowed), one mc task, chosen method MODEL_NAME
report() {
  local tn="$1" mn="$2" extra="${3:-}"
  printf '{"format":"muscle-report","version":1,"tasks":[{"name":"%s","kind":"mc","chosen":"%s",%s"models":[' "$tn" "$mn" "$extra"
  printf '{"name":"M2","role":"new","stats":{"nfr":{"value":0.1},"acc_new":{"value":0.8},"acc_old":{"value":0.7}}},'
  printf '{"name":"%s","role":"method","stats":{"nfr":{"value":0.01},"acc_new":{"value":0.8},"acc_old":{"value":0.7}}}]}]}\n' "$mn"
}
utf8_ok() { python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$1" 2>/dev/null; }
# refused NAME PATTERN FILE [GATE_ARGS...]: exit 2, one error line matching PATTERN, valid UTF-8
refused() {
  local name="$1" pat="$2" file="$3"; shift 3
  expect_error "$name" "$pat" $MUSCLE gate --max-nfr 0.05 "$@" "$file"
  check "... the error line is valid UTF-8" utf8_ok "$TMP/err"
}

report "choice" "muscle" >"$TMP/ok.json"
$MUSCLE gate --max-nfr 0.05 "$TMP/ok.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
check "a well-formed hand-written report passes (exit 0)" test $rc -eq 0
check "... with its PASS line" grep -qx 'PASS  choice: muscle NFR 1.00% <= 5.00%; accuracy gain over M1 +10.00 pts' "$TMP/out"
report "choix é ü 漢字 🙂" "méthode" >"$TMP/uni.json"
$MUSCLE gate --max-nfr 0.05 "$TMP/uni.json" >"$TMP/out" 2>"$TMP/err"; rc=$?
check "non-ASCII printable names pass as they are" bash -c "test $rc -eq 0 && grep -q '^PASS  choix é ü 漢字 🙂: méthode NFR' '$TMP/out'"

# invalid UTF-8 (raw bytes: cJSON copies them)
report $'bad\xff\xfename' "muscle" >"$TMP/u1.json"
refused "a task name with invalid UTF-8 is refused, naming the file and field" \
  "u1.json: tasks\[0\]: field 'name': expected a printable UTF-8 name, got invalid UTF-8 at byte 4" "$TMP/u1.json"
report "choice" $'mu\xc3' >"$TMP/u2.json"
refused "a model name cut inside a character is refused" \
  "u2.json: tasks\[0\] \('choice'\): models\[1\]: field 'name': .*invalid UTF-8 at byte 3" "$TMP/u2.json"
report "choice" "muscle" >"$TMP/u3.json"; sed -i 's/"chosen":"muscle"/"chosen":"mus\xed\xa0\x80"/' "$TMP/u3.json"
refused "a chosen name with an encoded surrogate is refused" "u3.json: tasks\[0\] \('choice'\): field 'chosen': .*invalid UTF-8" "$TMP/u3.json"
# control characters: escaped and raw, C0, DEL, C1, bidi
report 'x\u001b[2K\rPASS  fake' "muscle" >"$TMP/c1.json"
refused "an ANSI escape in a task name is refused (it could forge a verdict line)" \
  "c1.json: tasks\[0\]: field 'name': .*a control character \(U\+001B\) at byte 2" "$TMP/c1.json"
report "choice" $'mus\rcle' >"$TMP/c2.json"
refused "a raw CR in a model name is refused" "c2.json: .*models\[1\]: field 'name': .*\(U\+000D\)" "$TMP/c2.json"
report "choice" 'm\u0007' >"$TMP/c3.json"
refused "a BEL in a model name is refused" "\(U\+0007\)" "$TMP/c3.json"
report 'a\u007fb' "muscle" >"$TMP/c4.json"
refused "a DEL in a task name is refused" "\(U\+007F\)" "$TMP/c4.json"
report 'a\u009b31mb' "muscle" >"$TMP/c5.json"
refused "a C1 CSI (U+009B) in a task name is refused" "\(U\+009B\)" "$TMP/c5.json"
report 'SSAP\u202e' "muscle" >"$TMP/c6.json"
refused "a bidi override (U+202E) in a task name is refused" "\(U\+202E\)" "$TMP/c6.json"
report "choice" "muscle" >"$TMP/c7.json"; sed -i 's/"role":"method"/"role":"me\\u001bthod"/' "$TMP/c7.json"
refused "a control character in a role is refused" "models\[1\]: field 'role': .*\(U\+001B\)" "$TMP/c7.json"
# length
long=$(printf 'n%.0s' $(seq 300))
report "$long" "muscle" >"$TMP/l1.json"
refused "a 300-byte task name is refused" "l1.json: tasks\[0\]: field 'name': .*300 bytes \(at most 256\)" "$TMP/l1.json"
report "choice" "" >"$TMP/l2.json"
refused "an empty model name is refused" "models\[1\]: field 'name': .*an empty string" "$TMP/l2.json"
# wrong types and missing fields
report "choice" "muscle" | sed 's/"name":"choice"/"name":17/' >"$TMP/t1.json"
refused "a task name that is a number is refused" "t1.json: tasks\[0\]: field 'name': expected a string, got a number" "$TMP/t1.json"
report "choice" "muscle" | sed 's/"name":"M2"/"name":["M2"]/' >"$TMP/t2.json"
refused "a model name that is an array is refused" "models\[0\]: field 'name': expected a string, got an array" "$TMP/t2.json"
report "choice" "muscle" | sed 's/"chosen":"muscle",//' >"$TMP/t3.json"
refused "a missing 'chosen' is refused" "field 'chosen': expected a model name or null, got missing" "$TMP/t3.json"
report "choice" "muscle" | sed 's/"role":"new",//' >"$TMP/t4.json"
refused "a missing 'role' is refused" "models\[0\]: field 'role': expected a string, got missing" "$TMP/t4.json"
report "choice" "muscle" | sed 's/"name":"choice",//' >"$TMP/t5.json"
refused "a missing task name is refused" "tasks\[0\]: field 'name': expected a string, got missing" "$TMP/t5.json"
report "choice" "muscle" | sed 's/"kind":"mc"/"kind":"m\\u001bc"/' >"$TMP/t6.json"
refused "a bad kind is refused without printing it" "field 'kind': expected \"mc\" or \"gen\", got another string" "$TMP/t6.json"
check "... and the ESC is not echoed" bash -c "! grep -q $'\e' '$TMP/err'"
report "choice" "muscle" | sed 's/"models":\[/"models":[3,/' >"$TMP/t7.json"
refused "a model that is not an object is refused" "models\[0\]: expected an object, got a number" "$TMP/t7.json"
# the command line and the path
refused "--method with an ESC is refused" "--method: expected a printable UTF-8 name, got a control character" "$TMP/ok.json" --method $'m\e[31m'
refused "--task with invalid UTF-8 is refused" "--task: .*invalid UTF-8 at byte 2" "$TMP/ok.json" --task $'c\xffhoice'
cp "$TMP/u1.json" "$TMP/path"$'\xff'".json"
refused "a report whose path is not UTF-8: the error line is still valid UTF-8" "path.*json: tasks\[0\]" "$TMP/path"$'\xff'".json"
echo "1..$TAP_N"
