#!/usr/bin/env bash
# The shipped demo scenario (demo/README.md) is intact and usable: every file matches
# demo/SHA256SUMS, both base models load and score a line, both old task adapters (A1) load
# and evaluate on 20 test lines. Needs nothing from ../shared.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
DEMO=demo

# 1. checksums: an accidental change to a shipped file is caught
if [ -r "$DEMO/SHA256SUMS" ] && (cd "$DEMO" && sha256sum --quiet -c SHA256SUMS) >"$TMP/sums" 2>&1; then
  ok "demo files match demo/SHA256SUMS ($(wc -l <"$DEMO/SHA256SUMS") files)"
else
  sed 's/^/#   /' "$TMP/sums" | head -10; not_ok "demo files match demo/SHA256SUMS"
fi
# every file under data/ models/ adapters/ is listed (nothing shipped unchecked)
listed=$(awk '{print $2}' "$DEMO/SHA256SUMS" 2>/dev/null | LC_ALL=C sort)
present=$(cd "$DEMO" && find data models adapters -type f 2>/dev/null | LC_ALL=C sort)
check "every shipped file is listed in demo/SHA256SUMS" test "$listed" = "$present"

# 2. the base models load, share the tokenizer, and score a line
for v in v1 v2; do
  M="$DEMO/models/$v"
  if "$MUSCLE" info "$M" >"$TMP/info.$v" 2>"$TMP/err"; then
    check "$v: muscle info (llama, vocab 512, sentencepiece tokenizer)" \
      grep -q 'vocab: *512' "$TMP/info.$v"
  else
    sed 's/^/#   /' "$TMP/err"; not_ok "$v: muscle info"
  fi
  "$MUSCLE" score --model "$M" --text "This package contains the development files for libfoo." >"$TMP/score.$v" 2>"$TMP/err"
  check "$v: muscle score gives a finite log-probability" \
    /usr/bin/python3 -c 'import json,math,sys; r=json.load(open(sys.argv[1])); assert r["n_tokens"]>5 and math.isfinite(r["total_logprob"]) and r["total_logprob"]<0' "$TMP/score.$v"
done
check "v1 and v2 carry the same tokenizer" cmp -s "$DEMO/models/v1/tokenizer.model" "$DEMO/models/v2/tokenizer.model"
check "v1 and v2 differ" bash -c "! cmp -s $DEMO/models/v1/model.safetensors $DEMO/models/v2/model.safetensors"

# 3. the old task adapters load on v1 and evaluate on 20 test lines
for task in section sum; do
  A="$DEMO/adapters/$task-v1"
  if "$MUSCLE" eval --model "$DEMO/models/v1" --adapter "$A" --task "$DEMO/data/$task.test.jsonl" --limit 20 \
       --max-tokens 16 --out "$TMP/$task.preds.jsonl" --quiet >"$TMP/$task.eval.json" 2>"$TMP/err"; then
    check "$task-v1: muscle eval on 20 test lines writes 20 predictions" test "$(wc -l <"$TMP/$task.preds.jsonl")" -eq 20
  else
    sed 's/^/#   /' "$TMP/err" | head -5; not_ok "$task-v1: muscle eval on 20 test lines"
  fi
done
# the multiple-choice adapter is better than chance on these 20 lines (4 choices: 25%)
check "section-v1: at least 7 of 20 correct (chance is 5)" \
  /usr/bin/python3 -c 'import json,sys; n=sum(json.loads(l)["correct"] for l in open(sys.argv[1])); sys.exit(0 if n>=7 else 1)' "$TMP/section.preds.jsonl"
echo "1..$TAP_N"
