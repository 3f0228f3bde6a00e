#!/usr/bin/env bash
# One run per output folder (issue 17, defects 1 and 2): a second finetune into a folder a
# first one is writing fails at once naming the holder's pid, and train_log.jsonl stays
# valid JSONL; the same for update's RUN_DIR and report --out. A killed update (SIGTERM or
# SIGKILL) leaves no step running; a rerun resumes (or refuses while a step is still
# stopping), it never races it.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K/stories260K.bin"
WP="$SHARED/corpora/war-and-peace.txt"
D="$SHARED/data/debian"
need "$S260" && need "$WP" || { echo "1..$TAP_N"; exit 0; }
head -c 200000 "$WP" >"$TMP/wp.txt"
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local n=$(($1 * 20)); shift
  for _ in $(seq 1 $n); do "$@" && return 0; sleep 0.05; done; return 1
}

# 1. finetune: a slow first run, a second one into the same --out
FT=(finetune --model "$S260" --data "$TMP/wp.txt" --steps 100000 --batch 2 --seq-len 32 --eval-every 0 --quiet)
$MUSCLE "${FT[@]}" --out "$TMP/ft" 2>"$TMP/ft1.err" & p1=$!
wait_for 60 test "$(lines "$TMP/ft/train_log.jsonl")" -ge 2
expect_error "a second finetune into the same --out fails at once, naming the holder's pid" "in use by another muscle run \\(pid $p1 " \
  $MUSCLE "${FT[@]}" --out "$TMP/ft"
kill -TERM $p1; wait $p1
check "the first run's train_log.jsonl is valid JSONL" python3 -c "
import json,sys
for l in open('$TMP/ft/train_log.jsonl', encoding='utf-8', errors='strict'): json.loads(l)"
check "after the first run ended, the folder can be used again (resume)" $MUSCLE "${FT[@]}" --steps 4 --out "$TMP/ft2"

# report --out: locked for the run
mkdir -p "$TMP/rep"; exec 9>"$TMP/rep/.muscle.lock"; flock 9; echo "4242 test" >&9
printf '{"id":"a","correct":true}\n{"id":"b","correct":false}\n' >"$TMP/p.jsonl"
printf '{"tasks":[{"name":"t","kind":"mc","old":"p.jsonl","new":{"preds":["p.jsonl"]}}]}\n' >"$TMP/m.json"
expect_error "report --out a folder in use is refused naming the pid" "in use by another muscle run \\(pid 4242" \
  $MUSCLE report "$TMP/m.json" --out "$TMP/rep"
exec 9>&-

# 2. update: SIGTERM and SIGKILL of update mid-step leave no step running
need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
head -n 48 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
head -n 16 "$D/debian-section.test.jsonl" >"$TMP/sec.test.jsonl"
$MUSCLE finetune --model "$S260" --task "$TMP/sec.train.jsonl" --out "$TMP/a1" --epochs 1 --seq-len 96 --quiet
U=(update --old-model "$S260" --old-adapter "$TMP/a1" --new-model "$S260" --task-train "$TMP/sec.train.jsonl"
   --task-test "$TMP/sec.test.jsonl" --out "$TMP/run" --methods ce --epochs 40 --batch 2 --seq-len 96 --bootstrap 0 --quiet)
steps() { pgrep -f -- "[m]uscle finetune.*--out $TMP/run/" >/dev/null; } # [m]: never this shell's own line
no_steps() { ! steps; }
for sig in TERM KILL; do
  $MUSCLE "${U[@]}" >/dev/null 2>"$TMP/u-$sig.err" & pu=$!
  wait_for 120 steps
  wait_for 60 test -s "$TMP/run/adapters/new-s1/train_log.jsonl"
  if [ $sig = KILL ]; then
    expect_error "a second update on a RUN_DIR in use fails, naming the pid" "in use by another muscle run \\(pid $pu " $MUSCLE "${U[@]}"
  fi
  kill -$sig $pu; wait $pu 2>/dev/null; rc=$?
  if [ $sig = TERM ]; then
    no_steps; left=$?
    check "SIGTERM: update stops with 143 and no step is left running (exit $rc)" test $rc -eq 143 -a $left -eq 0
  else
    # the kernel tells the orphaned step to stop (SIGTERM): it saves its checkpoint and ends
    wait_for 60 no_steps
    check "SIGKILL: the orphaned step stops by itself" no_steps
  fi
done
# a rerun with fewer epochs would be refused (other settings); same settings resume
check "a checkpoint of the interrupted step is there to resume from" test -s "$TMP/run/adapters/new-s1/checkpoint/state.safetensors"
check "the rerun is not refused: the folder is free again" bash -c "MUSCLE_TEST_KILL_AFTER_COMMITS=1 $MUSCLE ${U[*]} 2>$TMP/u3.err; ! grep -q 'in use' $TMP/u3.err"
echo "1..$TAP_N"
