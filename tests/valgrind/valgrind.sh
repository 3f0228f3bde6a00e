#!/usr/bin/env bash
# The small end-to-end commands under valgrind's memcheck: no invalid read/write, no use of
# uninitialised values in a branch or a system call, no bad free, no definite leak.
#   valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
# One TAP line per command, passing when valgrind reports zero errors (definite leaks count
# as errors) and the command did what it should (exit status, output).
# Environment for the program under valgrind:
#   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1  one thread: no libgomp/OpenBLAS thread pools,
#                     whose thread stacks show up as "possibly lost" (not counted anyway)
#   MUSCLE_NO_BLAS_FIXUP=1  muscle re-executes itself once to pick OpenBLAS kernels
#                     (src/core/cpu.c); under valgrind the re-executed program would run
#                     natively, unchecked
# Valgrind hides AVX-512 from the program's CPUID, so muscle's kernels and OpenBLAS choose AVX2
# code on their own. Should a command still die of an instruction valgrind cannot run, it is
# run again with MUSCLE_KERNEL=portable OPENBLAS_CORETYPE=Haswell (said in a # line).
# No suppression file is needed (none of libgomp's or OpenBLAS's blocks are definitely lost
# with one thread); tests/valgrind/*.supp files are passed to valgrind if some are added.
# Takes ~40 s (valgrind runs the forward pass ~30-50x slower than native): the eval steps use
# the 5 shortest instances of debian-section and the 2 shortest of debian-sum.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K"; M="$S260/stories260K.bin"
SEC="$SHARED/data/debian/debian-section.test.jsonl"; SUM="$SHARED/data/debian/debian-sum.test.jsonl"
need "$M" && need "$SEC" && need "$SUM" || { echo "1..$TAP_N"; exit 0; }
if ! command -v valgrind >/dev/null 2>&1; then
  not_ok "valgrind: not installed (scripts/deps.sh test installs it)"; echo "1..$TAP_N"; exit 0
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MUSCLE_NO_BLAS_FIXUP=1
supp=(); for f in tests/valgrind/*.supp; do [ -e "$f" ] && supp+=("--suppressions=$f"); done
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --num-callers=30 "${supp[@]}")
step=0

# vg NAME WANT_RC CHECK CMD...: runs CMD (muscle ARGS) under memcheck; stdout -> $TMP/out,
# stderr -> $TMP/err, valgrind's report -> $TMP/vg-N.log. CHECK (a shell expression) must
# also hold.
vg() {
  local name="$1" want="$2" chk="$3"; shift 3
  step=$((step + 1)); local log="$TMP/vg-$step.log" t=$SECONDS
  "${VG[@]}" --log-file="$log" "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if grep -qE 'unhandled instruction|Illegal opcode|SIGILL' "$log"; then
    echo "# $name: valgrind cannot run an instruction; again with MUSCLE_KERNEL=portable OPENBLAS_CORETYPE=Haswell"
    MUSCLE_KERNEL=portable OPENBLAS_CORETYPE=Haswell "${VG[@]}" --log-file="$log" "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
  fi
  local errs lost
  errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
  lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1)
  local dt=$((SECONDS - t))
  if [ "$rc" -eq "$want" ] && [ "${errs:-x}" = 0 ] && eval "$chk"; then
    ok "valgrind: $name: 0 errors, ${lost:-0} bytes definitely lost (${dt} s)"
  else
    echo "# exit $rc (expected $want), valgrind errors: ${errs:-?} (definitely lost: ${lost:-0} bytes); report:"
    grep -vE '^==[0-9]+== *$' "$log" | grep -A12 -E 'Invalid|uninitialised|Mismatched|definitely lost in|Syscall param|free\(\)|Process terminating' \
      | head -40 | sed 's/^/#   /'
    echo "# stderr:"; head -5 "$TMP/err" | sed 's/^/#   /'
    not_ok "valgrind: $name (${dt} s)"
  fi
}
# the N shortest lines of a JSONL file, in file order
shortest() { awk '{print length($0), NR}' "$1" | sort -n -k1,1 -k2,2 | head -"$2" | awk '{print $2}' | sort -n \
  | awk 'NR==FNR {w[$1] = 1; next} FNR in w' - "$1"; }
shortest "$SEC" 5 >"$TMP/sec5.jsonl"; shortest "$SUM" 2 >"$TMP/sum2.jsonl"

vg "muscle info stories260K" 0 'grep -q "5 layers" "$TMP/out"' $MUSCLE info "$M"
vg "muscle generate stories260K, 16 greedy tokens (= start of the llama2.c reference)" 0 \
  'o=$(cat "$TMP/out"); r=$(cat "$S260/greedy_256_from_bos.txt"); [ ${#o} -gt 20 ] && [ "${r:0:${#o}}" = "$o" ]' \
  $MUSCLE generate --model "$M" --max-tokens 16
vg "muscle score" 0 'grep -q "\"logprobs\"" "$TMP/out"' $MUSCLE score --model "$M" --text "Once upon a time, there was a cat"
vg "muscle tokenize (Llama 2 .model)" 0 '[ "$(cat "$TMP/out")" = "1 15043 3186" ]' \
  $MUSCLE tokenize --tokenizer "$SHARED/models/llama2-tokenizer/llama2_tokenizer.model" --bos --text "Hello world"
vg "muscle convert stories260K -> HF folder" 0 '[ -s "$TMP/hf/model.safetensors" ] && [ -s "$TMP/hf/config.json" ]' \
  $MUSCLE convert "$M" "$TMP/hf"
vg "muscle eval, multiple choice, 5 debian-section instances" 0 '[ "$(wc -l <"$TMP/a.jsonl")" -eq 5 ]' \
  $MUSCLE eval --model "$M" --task "$TMP/sec5.jsonl" --out "$TMP/a.jsonl" --quiet
vg "muscle eval, same instances, converted folder, --batch 1" 0 '[ "$(wc -l <"$TMP/c.jsonl")" -eq 5 ]' \
  $MUSCLE eval --model "$TMP/hf" --task "$TMP/sec5.jsonl" --out "$TMP/c.jsonl" --batch 1 --quiet
vg "muscle eval, generation, 2 debian-sum instances, --max-tokens 4" 0 '[ "$(wc -l <"$TMP/g.jsonl")" -eq 2 ]' \
  $MUSCLE eval --model "$M" --task "$TMP/sum2.jsonl" --max-tokens 4 --out "$TMP/g.jsonl" --quiet
vg "muscle compare of the two multiple-choice outputs (--flips)" 0 'grep -q "\"nfr\"" "$TMP/out"' \
  $MUSCLE compare "$TMP/a.jsonl" "$TMP/c.jsonl" --json --flips "$TMP/flips.jsonl"
vg "muscle report on tests/fixtures/report (2 tasks, seeds, methods)" 0 \
  '[ -s "$TMP/rep/report.html" ] && grep -q "muscle (chosen)" "$TMP/out"' \
  $MUSCLE report tests/fixtures/report/manifest.json --out "$TMP/rep" --bootstrap 50
vg "muscle gate on that report (a failing threshold: exit 1)" 1 'grep -q "^FAIL  choice" "$TMP/out"' \
  $MUSCLE gate --max-nfr 0.04 "$TMP/rep/report.json"
head -c 1000 "$M" >"$TMP/trunc.bin"
vg "error path: truncated model (one error line)" 1 \
  '[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "^muscle: error: .*trunc.bin" "$TMP/err"' \
  $MUSCLE generate --model "$TMP/trunc.bin" --tokenizer "$S260/tok512.bin"
{ head -3 "$TMP/sec5.jsonl"; printf '{"id":"bad","context":"x","choices":["a","b"],"label":5}\n'; } >"$TMP/bad.jsonl"
vg "error path: task file with a bad label on line 4 (one error line)" 1 \
  '[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "bad.jsonl:4" "$TMP/err"' \
  $MUSCLE eval --model "$M" --task "$TMP/bad.jsonl" --out "$TMP/bad-preds.jsonl"
echo "1..$TAP_N"
