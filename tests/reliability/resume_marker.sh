#!/usr/bin/env bash
# A training step of `muscle update` is done only when all of its outputs are there, the
# completion marker (training.json, written last) included (issue 17, defect 3): an update
# killed between the adapter's two files resumes instead of wedging every rerun. Killed
# with the MUSCLE_TEST_KILL_AFTER_COMMITS hook of core/file.h at every commit in turn (each
# process counts its own commits), rerun each time: the run must end with exit 0.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K/stories260K.bin"
D="$SHARED/data/debian"
need "$S260" && need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
head -n 16 "$D/debian-section.train.jsonl" >"$TMP/tr.jsonl"
head -n 4 "$D/debian-section.test.jsonl" >"$TMP/te.jsonl"
$MUSCLE finetune --model "$S260" --task "$TMP/tr.jsonl" --out "$TMP/a1" --epochs 1 --seq-len 96 --quiet
U=(update --old-model "$S260" --old-adapter "$TMP/a1" --new-model "$S260" --task-train "$TMP/tr.jsonl"
   --task-test "$TMP/te.jsonl" --out "$TMP/run" --methods ce --epochs 1 --batch 8 --seq-len 96 --bootstrap 0 --quiet)
# a fresh finetune commits best/adapter_model, best/adapter_config, checkpoint/state, then
# adapter_model.safetensors (4th), adapter_config.json, training.json: killed after its 4th
MUSCLE_TEST_KILL_AFTER_COMMITS=4 $MUSCLE "${U[@]}" >/dev/null 2>"$TMP/err.k" ; rc=$?
check "the kill lands between the adapter's two files (exit $rc)" \
  test $rc -ne 0 -a -e "$TMP/run/adapters/new-s1/adapter_model.safetensors" -a ! -e "$TMP/run/adapters/new-s1/adapter_config.json"
$MUSCLE "${U[@]}" >/dev/null 2>"$TMP/err.r"; rc=$?
[ $rc -ne 0 ] && sed 's/^/# /' "$TMP/err.r" | tail -3
check "the rerun resumes that step and ends (exit $rc)" test $rc -eq 0 -a -s "$TMP/run/report.json"
# every commit in turn (each process counts its own commits), on a new folder, rerun each time
U2=("${U[@]/$TMP\/run/$TMP/run2}")
for k in $(seq 1 40); do
  MUSCLE_TEST_KILL_AFTER_COMMITS=$k $MUSCLE "${U2[@]}" >/dev/null 2>"$TMP/err.$k"; rc=$?
  [ $rc -eq 0 ] && break
done
check "killed after commit 1, 2, ... in turn, the update always resumes and ends ($k runs, exit $rc)" test $rc -eq 0 -a -s "$TMP/run2/report.json"
check "every adapter is complete" bash -c "for a in '$TMP'/run/adapters/*/ '$TMP'/run2/adapters/*/; do test -s \$a/adapter_config.json -a -s \$a/training.json || exit 1; done"
# deterministic: a finished step with its config (and marker) gone is trained again, not "done before"
rm "$TMP/run/adapters/ce-s1/adapter_config.json" "$TMP/run/adapters/ce-s1/training.json"
UV=(); for x in "${U[@]}"; do [ "$x" != --quiet ] && UV+=("$x"); done
$MUSCLE "${UV[@]}" >/dev/null 2>"$TMP/err.x"; rc=$?
check "an adapter without adapter_config.json is resumed, not counted as done (exit $rc)" \
  bash -c "[ $rc -eq 0 ] && ! grep -q \"compatibility adapter 'ce', seed 1: done before\" '$TMP/err.x' && test -s '$TMP/run/adapters/ce-s1/adapter_config.json'"
echo "1..$TAP_N"
