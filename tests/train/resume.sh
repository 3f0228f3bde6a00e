#!/usr/bin/env bash
# Kill and resume: a run killed with SIGKILL at a random step (several seeds; the kill may
# land in a step or in a checkpoint write) and continued with --resume ends with files
# bit-identical to the same run left alone (same seed, same thread count). SIGINT and
# SIGTERM: the current step finishes, a checkpoint is saved, exit 130 / 143, and --resume
# reaches the same bits too.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K"
WP="$SHARED/corpora/war-and-peace.txt"
need "$S260/stories260K.bin" && need "$WP" || { echo "1..$TAP_N"; exit 0; }
head -c 300000 "$WP" >"$TMP/wp.txt"
STEPS=16
RUN="--model $S260/stories260K.bin --data $TMP/wp.txt --steps $STEPS --batch 4 --grad-accum 2 --seq-len 64 --lr 2e-3 --save-every 3 --eval-every 5 --val-max 4 --quiet"

lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
# start CMD... in the background; once its log has $k lines (steps 0..k-1 done) send signal $sig
run_and_signal() {
  local sig="$1" k="$2" out="$3"; shift 3
  "$@" 2>"$out.err" & local pid=$!
  while kill -0 "$pid" 2>/dev/null && [ "$(lines "$out/train_log.jsonl")" -lt "$k" ]; do sleep 0.002; done
  kill -"$sig" "$pid" 2>/dev/null
  { wait "$pid"; } 2>/dev/null; RC=$?
  STOPPED_AT=$(($(lines "$out/train_log.jsonl") - 1))
}
same() { # same DIR1 DIR2 FILE...
  local a="$1" b="$2"; shift 2
  for f in "$@"; do cmp -s "$a/$f" "$b/$f" || { echo "# $f differs"; return 1; }; done
}

for seed in 1 2 3; do
  $MUSCLE finetune $RUN --seed $seed --out "$TMP/a$seed"
  k=$((5 + RANDOM % (STEPS - 6)))   # after step 4 at least: a checkpoint (step 3) exists
  run_and_signal KILL "$k" "$TMP/b$seed" $MUSCLE finetune $RUN --seed $seed --out "$TMP/b$seed"
  if [ "$RC" -eq 137 ]; then echo "# seed $seed: killed during step $((STOPPED_AT + 1)) (last logged step: $STOPPED_AT)"
  else echo "# seed $seed: the run ended (exit $RC) before the kill"; fi
  $MUSCLE finetune $RUN --seed $seed --out "$TMP/b$seed" --resume
  check "LoRA, seed $seed: SIGKILL at a random step, --resume: bit-identical adapter and checkpoint" \
    same "$TMP/a$seed" "$TMP/b$seed" adapter_model.safetensors adapter_config.json training.json checkpoint/state.safetensors
done
# killed after the final checkpoint, before the outputs: --resume only writes them
cp -r "$TMP/a1" "$TMP/a1x"; rm "$TMP/a1x/adapter_model.safetensors" "$TMP/a1x/adapter_config.json" "$TMP/a1x/training.json"
$MUSCLE finetune $RUN --seed 1 --out "$TMP/a1x" --resume
check "--resume of a finished run writes the same outputs again" same "$TMP/a1" "$TMP/a1x" adapter_model.safetensors adapter_config.json training.json
check "different seeds give different adapters" bash -c "! cmp -s '$TMP/a1/adapter_model.safetensors' '$TMP/a2/adapter_model.safetensors'"
check "the resumed log has one line per step, in order" /usr/bin/python3 -c "
import json; L=[json.loads(l)['step'] for l in open('$TMP/b1/train_log.jsonl')]; assert L == list(range($STEPS + 1)), L"

# full training: kill and resume too
PRE="--model $S260/stories260K.bin --data $TMP/wp.txt --steps 10 --batch 4 --grad-accum 1 --seq-len 64 --save-every 2 --val-max 4 --quiet"
$MUSCLE pretrain $PRE --out "$TMP/pa"
run_and_signal KILL $((4 + RANDOM % 5)) "$TMP/pb" $MUSCLE pretrain $PRE --out "$TMP/pb"
echo "# pretrain: killed (exit $RC) after step $STOPPED_AT"
$MUSCLE pretrain $PRE --out "$TMP/pb" --resume
check "full training: SIGKILL, --resume: bit-identical model.safetensors and checkpoint" \
  same "$TMP/pa" "$TMP/pb" model.safetensors config.json training.json checkpoint/state.safetensors

# full training in mixed precision (--bf16): the same kill and resume, bit for bit; the
# checkpoint records the precision and a resume with the other one is refused in one line
$MUSCLE pretrain $PRE --bf16 --out "$TMP/qa"
run_and_signal KILL $((4 + RANDOM % 5)) "$TMP/qb" $MUSCLE pretrain $PRE --bf16 --out "$TMP/qb"
echo "# pretrain --bf16: killed (exit $RC) after step $STOPPED_AT"
$MUSCLE pretrain $PRE --bf16 --out "$TMP/qb" --resume
check "full training --bf16: SIGKILL, --resume: bit-identical model.safetensors and checkpoint" \
  same "$TMP/qa" "$TMP/qb" model.safetensors config.json training.json checkpoint/state.safetensors
check "full training --bf16 differs from fp32 (the flag reaches the trainer)" bash -c "! cmp -s '$TMP/pa/model.safetensors' '$TMP/qa/model.safetensors'"
expect_error "--resume of an fp32 run with --bf16: refused, naming the precision" \
  "setting 'precision' is bf16 mixed \(--bf16\) now, fp32 in the checkpoint" $MUSCLE pretrain $PRE --bf16 --out "$TMP/pa" --resume
expect_error "--resume of a --bf16 run without it: refused" \
  "setting 'precision' is fp32 now, bf16 mixed \(--bf16\) in the checkpoint" $MUSCLE pretrain $PRE --out "$TMP/qa" --resume
# a checkpoint made before the precision was recorded reads as fp32
cp -r "$TMP/pa" "$TMP/pold"
/usr/bin/python3 - "$TMP/pold/checkpoint/state.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); del h["__metadata__"]["setting.precision"]
t = json.dumps(h, separators=(",", ":")).encode(); t += b" " * ((8 - len(t) % 8) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
check "a checkpoint without the precision setting resumes as fp32" $MUSCLE pretrain $PRE --out "$TMP/pold" --resume
expect_error "... and not as --bf16" "setting 'precision' is bf16 mixed" $MUSCLE pretrain $PRE --bf16 --out "$TMP/pold" --resume

# SIGINT: finish the step, save, exit 130 with a message; then resume
run_and_signal INT 4 "$TMP/c1" $MUSCLE finetune $RUN --seed 1 --out "$TMP/c1"
check "SIGINT: exit 130" test "$RC" -eq 130
check "SIGINT: one line saying where the checkpoint is" grep -q "^muscle: stopped by SIGINT after step $STOPPED_AT of $STEPS: checkpoint saved in $TMP/c1/checkpoint; continue with --resume" "$TMP/c1.err"
check "SIGINT: no adapter written yet" test ! -e "$TMP/c1/adapter_model.safetensors"
$MUSCLE finetune $RUN --seed 1 --out "$TMP/c1" --resume
check "SIGINT, --resume: bit-identical adapter" same "$TMP/a1" "$TMP/c1" adapter_model.safetensors checkpoint/state.safetensors
run_and_signal TERM 3 "$TMP/c2" $MUSCLE finetune $RUN --seed 2 --out "$TMP/c2"
check "SIGTERM: exit 143 and a checkpoint" test "$RC" -eq 143 -a -s "$TMP/c2/checkpoint/state.safetensors"
$MUSCLE finetune $RUN --seed 2 --out "$TMP/c2" --resume
check "SIGTERM, --resume: bit-identical adapter" same "$TMP/a2" "$TMP/c2" adapter_model.safetensors
echo "1..$TAP_N"
