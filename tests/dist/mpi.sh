#!/usr/bin/env bash
# Data-parallel training and sharded evaluation on MPI (docs/distributed.md), 2 ranks of
# one thread each against 1 process of one thread (same global batch, same seed):
#  - finetune, pretrain, finetune --compat (token, choice and sequence level): the same result up to
#    the order of floating-point sums. Tolerances: adapter/model weights max |diff| <= 1e-3
#    and every logged loss within 1e-5 relative. Measured (stories260K, 12 LoRA steps at
#    lr 2e-3, batch 8 split 4+4): 5.3e-05 on the adapter, 2e-7 relative on the losses;
#    pretrain 8 steps: 1.2e-07. The fp32 gradient sums differ in the last bits; AdamW
#    divides by sqrt(v), so on weights whose gradient is near zero a last-bit change can
#    move an update by a sizeable part of lr: 1e-3 is half of one step at lr 2e-3.
#    When the ranks' shards are whole micro-batches (batch 4 x grad-accum 2 on 2 ranks)
#    the result is bit-identical.
#  - eval (multiple choice and generation): byte-identical predictions and summary;
#  - a 2-rank checkpoint resumes on 1 rank; a killed rank stops the job within a bounded
#    time with a message naming it; a hung rank trips the watchdog (MUSCLE_DIST_TIMEOUT);
#    the last checkpoint stays good;
#  - update on 2 ranks: the same adapters and predictions as on 1 (with --compat-epochs 0.5,1:
#    the candidates trained on both ranks, the count chosen on rank 0).
# Runs build/muscle (the -O3 build): the sanitizer build's MPI runs are not tested here
# (OpenMPI's own allocations are reported as leaks by LeakSanitizer; run with
# ASAN_OPTIONS=detect_leaks=0 to try them by hand).
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K/stories260K.bin"
WP="$SHARED/corpora/war-and-peace.txt"
D="$SHARED/data/debian"
if ! command -v mpirun >/dev/null || ! ldd "$MUSCLE" 2>/dev/null | grep -q libmpi; then
  echo "ok 1 # SKIP $MUSCLE is built without MPI or mpirun is missing (apt-get install libopenmpi-dev openmpi-bin; make)"
  echo "1..1"; exit 0
fi
need "$S260" && need "$WP" && need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
export OMP_NUM_THREADS=1 MUSCLE_DIST_TIMEOUT=60
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none -x OMP_NUM_THREADS -x MUSCLE_DIST_TIMEOUT -np 2)
DIFF=tests/dist/st_diff.py
head -c 200000 "$WP" >"$TMP/wp.txt"
head -n 40 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
head -n 40 "$D/debian-section.test.jsonl" >"$TMP/sec.test.jsonl"
head -n 16 "$D/debian-section.validation.jsonl" >"$TMP/sec.val.jsonl"
head -n 6 "$D/debian-sum.test.jsonl" >"$TMP/sum.test.jsonl"

# losses LOG1 LOG2: every step's loss and val_loss agree within 1e-5 relative (prints the largest)
losses() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
assert [x['step'] for x in a] == [x['step'] for x in b], 'steps differ'
m = 0.0
for x, y in zip(a, b):
    for k in ('loss', 'val_loss'):
        if k in x: m = max(m, abs(x[k] - y[k]) / abs(x[k]))
print('# losses: max relative difference %.2g' % m)
sys.exit(0 if m <= 1e-5 else 1)
EOF
}
close() { # close A B: weights within 1e-3 (prints the max difference)
  local r; r=$(/usr/bin/python3 "$DIFF" "$1" "$2" 1e-3); local rc=$?; echo "# $r"; return $rc
}

# ---- finetune: shards that split the micro-batch (batch 8 -> 4 + 4) ----
RUN=(--model "$S260" --data "$TMP/wp.txt" --steps 12 --batch 8 --grad-accum 1 --seq-len 64 --lr 2e-3 --save-every 4 --eval-every 4 --val-max 16 --quiet)
$MUSCLE finetune "${RUN[@]}" --out "$TMP/f1"
"${MPIRUN[@]}" "$MUSCLE" finetune "${RUN[@]}" --out "$TMP/f2" 2>"$TMP/f2.err"
check "finetune on 2 ranks writes its outputs once (rank 0)" test -s "$TMP/f2/adapter_model.safetensors" -a -s "$TMP/f2/checkpoint/state.safetensors" -a -s "$TMP/f2/training.json"
check "finetune, 2 ranks vs 1: adapter within 1e-3" close "$TMP/f1/adapter_model.safetensors" "$TMP/f2/adapter_model.safetensors"
check "finetune, 2 ranks vs 1: losses within 1e-5 relative" losses "$TMP/f1/train_log.jsonl" "$TMP/f2/train_log.jsonl"
check "the log records the step time and the time in MPI collectives" grep -q '"comm_s"' "$TMP/f2/train_log.jsonl"

# ---- finetune: shards = whole micro-batches (batch 4 x grad-accum 2): the same bits ----
RUNB=(--model "$S260" --data "$TMP/wp.txt" --steps 8 --batch 4 --grad-accum 2 --seq-len 64 --lr 2e-3 --save-every 2 --val-max 8 --quiet)
$MUSCLE finetune "${RUNB[@]}" --out "$TMP/g1"
"${MPIRUN[@]}" "$MUSCLE" finetune "${RUNB[@]}" --out "$TMP/g2"
check "finetune, shards of whole micro-batches: bit-identical adapter and checkpoint" \
  bash -c "cmp '$TMP/g1/adapter_model.safetensors' '$TMP/g2/adapter_model.safetensors' && cmp '$TMP/g1/checkpoint/state.safetensors' '$TMP/g2/checkpoint/state.safetensors'"

# ---- pretrain ----
PRE=(--model "$S260" --data "$TMP/wp.txt" --steps 8 --batch 8 --grad-accum 1 --seq-len 64 --save-every 4 --val-max 8 --quiet)
$MUSCLE pretrain "${PRE[@]}" --out "$TMP/p1"
"${MPIRUN[@]}" "$MUSCLE" pretrain "${PRE[@]}" --out "$TMP/p2"
check "pretrain, 2 ranks vs 1: model within 1e-3" close "$TMP/p1/model.safetensors" "$TMP/p2/model.safetensors"
check "pretrain, 2 ranks vs 1: losses within 1e-5 relative" losses "$TMP/p1/train_log.jsonl" "$TMP/p2/train_log.jsonl"

# ---- compatibility training ----
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
$MUSCLE finetune --model "$S260" --task "$TMP/sec.train.jsonl" --out "$TMP/a1" --seed 1 "${TR[@]}"
$MUSCLE finetune --model "$S260" --task "$TMP/sec.train.jsonl" --out "$TMP/a2" --seed 2 "${TR[@]}"
C=(--model "$S260" --adapter-init "$TMP/a2" --old-model "$S260" --old-adapter "$TMP/a1" --task "$TMP/sec.train.jsonl" "${TR[@]}" --batch 4 --epochs 2)
for lvl in token choice; do
  $MUSCLE finetune "${C[@]}" --compat student-wrong --level $lvl --out "$TMP/c1-$lvl"
  "${MPIRUN[@]}" "$MUSCLE" finetune "${C[@]}" --compat student-wrong --level $lvl --out "$TMP/c2-$lvl"
  check "finetune --compat student-wrong --level $lvl, 2 ranks vs 1: adapter within 1e-3" \
    close "$TMP/c1-$lvl/adapter_model.safetensors" "$TMP/c2-$lvl/adapter_model.safetensors"
done
head -n 16 "$D/debian-sum.train.jsonl" >"$TMP/sum.train.jsonl"
$MUSCLE finetune --model "$S260" --task "$TMP/sum.train.jsonl" --out "$TMP/s1" --seed 1 "${TR[@]}"
$MUSCLE finetune --model "$S260" --task "$TMP/sum.train.jsonl" --out "$TMP/s2" --seed 2 "${TR[@]}"
C=(--model "$S260" --adapter-init "$TMP/s2" --old-model "$S260" --old-adapter "$TMP/s1" --task "$TMP/sum.train.jsonl" "${TR[@]}"
   --batch 4 --epochs 2 --compat student-wrong --level sequence --ce-weight 0.5 --max-tokens 8)
$MUSCLE finetune "${C[@]}" --out "$TMP/c1-seq"
"${MPIRUN[@]}" "$MUSCLE" finetune "${C[@]}" --out "$TMP/c2-seq"
check "finetune --compat student-wrong --level sequence, 2 ranks vs 1: adapter within 1e-3" \
  close "$TMP/c1-seq/adapter_model.safetensors" "$TMP/c2-seq/adapter_model.safetensors"
check "finetune --compat --level sequence, 2 ranks vs 1: losses within 1e-5 relative" \
  losses "$TMP/c1-seq/train_log.jsonl" "$TMP/c2-seq/train_log.jsonl"

# ---- sharded eval ----
for t in sec sum; do
  $MUSCLE eval --model "$S260" --adapter "$TMP/a1" --task "$TMP/$t.test.jsonl" --out "$TMP/e1-$t.jsonl" --max-tokens 24 --quiet >"$TMP/e1-$t.sum"
  "${MPIRUN[@]}" "$MUSCLE" eval --model "$S260" --adapter "$TMP/a1" --task "$TMP/$t.test.jsonl" --out "$TMP/e2-$t.jsonl" --max-tokens 24 --quiet >"$TMP/e2-$t.sum"
  check "eval ($t) on 2 ranks: byte-identical predictions file" cmp "$TMP/e1-$t.jsonl" "$TMP/e2-$t.jsonl"
  check "eval ($t) on 2 ranks: one summary, the same metrics" bash -c "[ \$(wc -l <'$TMP/e2-$t.sum') -eq 1 ] &&
    diff <(sed 's/\"adapter\".*//' '$TMP/e1-$t.sum') <(sed 's/\"adapter\".*//' '$TMP/e2-$t.sum')"
done

# ---- a killed rank; the 2-rank checkpoint resumes on 1 rank ----
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
rank_pid() { # rank_pid MPIRUN_PID RANK
  local p
  for p in $(pgrep -P "$1"); do grep -qz "^OMPI_COMM_WORLD_RANK=$2\$" "/proc/$p/environ" 2>/dev/null && { echo "$p"; return; }; done
}
KILL=(--model "$S260" --data "$TMP/wp.txt" --steps 40 --batch 4 --grad-accum 2 --seq-len 64 --lr 2e-3 --save-every 3 --val-max 8 --quiet)
$MUSCLE finetune "${KILL[@]}" --out "$TMP/k1"
"${MPIRUN[@]}" "$MUSCLE" finetune "${KILL[@]}" --out "$TMP/k2" 2>"$TMP/k2.err" &
mp=$!
while kill -0 "$mp" 2>/dev/null && [ "$(lines "$TMP/k2/train_log.jsonl")" -lt 8 ]; do sleep 0.02; done
r1=$(rank_pid "$mp" 1)
t0=$SECONDS
[ -n "$r1" ] && kill -KILL "$r1"
wait "$mp"; rc=$?
echo "# rank 1 (pid ${r1:-?}) killed after step $(($(lines "$TMP/k2/train_log.jsonl") - 1)); mpirun exit $rc after $((SECONDS - t0)) s"
check "a killed rank stops the job: non-zero exit within 30 s" test -n "$r1" -a "$rc" -ne 0 -a $((SECONDS - t0)) -le 30
check "a killed rank: the message names it" grep -q "rank 1 .*exited on signal 9" "$TMP/k2.err"
$MUSCLE finetune "${KILL[@]}" --out "$TMP/k2" --resume 2>"$TMP/k2r.err"; rc=$?
check "the 2-rank checkpoint left by the kill resumes on 1 rank" test "$rc" -eq 0
check "... and the result is bit-identical to the uninterrupted 1-rank run" cmp "$TMP/k1/adapter_model.safetensors" "$TMP/k2/adapter_model.safetensors"

# ---- a hung rank: the watchdog ----
MUSCLE_DIST_TIMEOUT=3 "${MPIRUN[@]}" "$MUSCLE" finetune "${KILL[@]}" --out "$TMP/k3" 2>"$TMP/k3.err" &
mp=$!
while kill -0 "$mp" 2>/dev/null && [ "$(lines "$TMP/k3/train_log.jsonl")" -lt 5 ]; do sleep 0.02; done
r1=$(rank_pid "$mp" 1)
t0=$SECONDS
[ -n "$r1" ] && kill -STOP "$r1"
wait "$mp"; rc=$?
echo "# rank 1 stopped (SIGSTOP); mpirun exit $rc after $((SECONDS - t0)) s"
check "a hung rank: the watchdog stops the job within 20 s (MUSCLE_DIST_TIMEOUT=3)" test -n "$r1" -a "$rc" -ne 0 -a $((SECONDS - t0)) -le 20
check "a hung rank: the message says what happened" grep -q "muscle: error: rank 0 of 2: no answer from the other ranks for 3 s" "$TMP/k3.err"
$MUSCLE finetune "${KILL[@]}" --out "$TMP/k3" --resume 2>/dev/null
check "... and its last checkpoint resumes to the same bits" cmp "$TMP/k1/adapter_model.safetensors" "$TMP/k3/adapter_model.safetensors"

# ---- update on 2 ranks ----
U=(update --old-model "$S260" --old-adapter "$TMP/a1" --new-model "$S260" --task-train "$TMP/sec.train.jsonl"
   --task-test "$TMP/sec.test.jsonl" --methods muscle --seeds 1 --epochs 1 --batch 8 --seq-len 96 --bootstrap 50 --quiet
   --task-val "$TMP/sec.val.jsonl" --compat-epochs 0.5,1) # the epochs chosen on validation: a phase of its own (rank 0 chooses)
$MUSCLE "${U[@]}" --out "$TMP/u1" >/dev/null 2>"$TMP/u1.err"
"${MPIRUN[@]}" "$MUSCLE" "${U[@]}" --out "$TMP/u2" >"$TMP/u2.out" 2>"$TMP/u2.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u2.err" | sed 's/^/# /'
check "update on 2 ranks finishes with one report" test "$rc" -eq 0 -a -s "$TMP/u2/report.json" -a "$(grep -c '^M1 ' "$TMP/u2.out")" -eq 1
check "update on 2 ranks: the same predictions files as on 1" bash -c "
for f in '$TMP'/u1/preds/*.jsonl; do cmp \"\$f\" '$TMP'/u2/preds/\$(basename \"\$f\") || exit 1; done"
check "update on 2 ranks: the same adapters as on 1" bash -c "
for d in '$TMP'/u1/adapters/*; do cmp \"\$d/adapter_model.safetensors\" '$TMP'/u2/adapters/\$(basename \"\$d\")/adapter_model.safetensors || exit 1; done"
check "update on 2 ranks: the same choice of compatibility epochs as on 1" bash -c "
cmp '$TMP'/u1/preds/muscle-s1.epochs.json '$TMP'/u2/preds/muscle-s1.epochs.json && test -s '$TMP'/u2/adapters/muscle-s1-e0.5/adapter_model.safetensors"
echo "1..$TAP_N"
