#!/usr/bin/env bash
# Engine I acceptance through the program: reference generations, scoring, info, errors.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K"; BABY="$SHARED/models/babyllama105"

# 1. greedy generation equals llama2.c's reference output, byte for byte
if need "$S260/greedy_256_from_bos.txt"; then
  $MUSCLE generate --model "$S260/stories260K.bin" --tokenizer "$S260/tok512.bin" --max-tokens 256 --temperature 0 >"$TMP/g1"
  check "stories260K: 256 greedy tokens from BOS equal greedy_256_from_bos.txt" cmp -s "$TMP/g1" "$S260/greedy_256_from_bos.txt"
  # the tokenizer is found beside the model when not named
  $MUSCLE generate --model "$S260/stories260K.bin" --max-tokens 256 >"$TMP/g1b"
  check "stories260K: tokenizer found beside the model" cmp -s "$TMP/g1b" "$S260/greedy_256_from_bos.txt"
fi
if need "$BABY/greedy_from_bos.txt"; then
  $MUSCLE generate --model "$BABY/model.bin" --tokenizer "$BABY/tok105.bin" --max-tokens 200 >"$TMP/g2"
  check "babyllama105: 200 greedy tokens from BOS equal greedy_from_bos.txt" cmp -s "$TMP/g2" "$BABY/greedy_from_bos.txt"
  $MUSCLE generate --model "$BABY/model.bin" --tokenizer "$BABY/tok105.model" --max-tokens 200 >"$TMP/g2b"
  check "babyllama105 with the SentencePiece .model tokenizer: same output" cmp -s "$TMP/g2b" "$BABY/greedy_from_bos.txt"
fi

# 2. sampling: same seed same text, another seed another text; stop strings; prompt
a=$($MUSCLE generate --model "$S260/stories260K.bin" --temperature 1 --top-p 0.9 --seed 7 --max-tokens 60)
b=$($MUSCLE generate --model "$S260/stories260K.bin" --temperature 1 --top-p 0.9 --seed 7 --max-tokens 60)
c=$($MUSCLE generate --model "$S260/stories260K.bin" --temperature 1 --top-p 0.9 --seed 8 --max-tokens 60)
check "sampling is reproducible with a seed" test "$a" = "$b"
check "another seed gives another text" test "$a" != "$c"
s=$($MUSCLE generate --model "$S260/stories260K.bin" --max-tokens 256 --stop "Lily")
check "stop string ends the text before it" test "$s" = "Once upon a time, there was a little girl named "
p=$($MUSCLE generate --model "$S260/stories260K.bin" --prompt "Once upon a time, there was a little girl named" --max-tokens 5)
check "a prompt is continued, and only the new text printed" test "$p" = " Lily. She loved"
r=$($MUSCLE generate --model "$S260/stories260K.bin" --max-tokens 120 --no-repeat-ngram 2)
check "no-repeat-ngram changes greedy output" test "$r" != "$(head -c ${#r} "$S260/greedy_256_from_bos.txt")"

# 3. score: JSON with ids and log-probabilities
$MUSCLE score --model "$S260/stories260K.bin" --text "Once upon a time" >"$TMP/s.json"
check "score prints JSON with tokens and log-probabilities" /usr/bin/python3 -c "
import json,sys; d=json.load(open('$TMP/s.json'))
assert d['tokens'][0]==1 and d['logprobs'][0] is None and len(d['tokens'])==len(d['logprobs'])>2
assert all(x<=0 for x in d['logprobs'][1:]); assert abs(sum(d['logprobs'][1:])-d['total_logprob'])<1e-3"

# 4. info and tokenize
$MUSCLE info "$S260/stories260K.bin" >"$TMP/info"
check "info names format, shape and tokenizer" grep -q "dim 64, hidden 172, 5 layers, 8 heads (4 kv heads" "$TMP/info"
t=$($MUSCLE tokenize --tokenizer "$SHARED/models/llama2-tokenizer/llama2_tokenizer.model" --bos --text "Hello world")
check "tokenize with the Llama 2 tokenizer" test "$t" = "1 15043 3186"

# 5. bad input: one clear error line, non-zero exit, no crash
expect_error "missing model file" "no/such/model.bin" $MUSCLE generate --model "$TMP/no/such/model.bin"
head -c 1000 "$S260/stories260K.bin" >"$TMP/trunc.bin"
expect_error "truncated llama2.c file" "trunc.bin.*(truncated|bytes)" $MUSCLE generate --model "$TMP/trunc.bin" --tokenizer "$S260/tok512.bin"
printf 'garbage that is no model at all, not even close' >"$TMP/garbage.bin"
expect_error "corrupted llama2.c header" "garbage.bin" $MUSCLE info "$TMP/garbage.bin"
expect_error "tokenizer that does not fit the model" "do not belong together" $MUSCLE generate --model "$S260/stories260K.bin" --tokenizer "$BABY/tok105.bin"
expect_error "missing tokenizer file" "nope.model" $MUSCLE generate --model "$S260/stories260K.bin" --tokenizer "$TMP/nope.model"
head -c 3000 "$S260/tok512.bin" >"$TMP/tok_trunc.bin"
expect_error "truncated tokenizer" "tok_trunc.bin" $MUSCLE generate --model "$S260/stories260K.bin" --tokenizer "$TMP/tok_trunc.bin"
# GGUF: the real tiny random file loads and runs with the vocabulary from its metadata
G="$SHARED/models/tiny-random-gguf/llama-2-tiny-random.gguf"
if need "$G"; then
  $MUSCLE generate --model "$G" --max-tokens 8 --ignore-eos >"$TMP/gg" 2>"$TMP/gge"
  check "tiny random GGUF generates with its embedded tokenizer" test "$(wc -c <"$TMP/gg")" -gt 1
  $MUSCLE info "$G" >"$TMP/ginfo"
  check "tiny random GGUF: info shows gguf, F16, 32000 pieces" grep -q "gguf, 32000 pieces" "$TMP/ginfo"
  head -c 100000 "$G" >"$TMP/trunc.gguf"
  expect_error "truncated GGUF file" "trunc.gguf" $MUSCLE info "$TMP/trunc.gguf"
  { head -c 8 "$G"; printf '\377\377\377\377\377\377\377\177'; tail -c +17 "$G"; } >"$TMP/bad.gguf"
  expect_error "corrupted GGUF tensor count" "bad.gguf" $MUSCLE info "$TMP/bad.gguf"
fi
# safetensors: truncated data, corrupted header
mkdir -p "$TMP/st1" "$TMP/st2"
cp tests/fixtures/model/tiny_hf/config.json "$TMP/st1/"; cp tests/fixtures/model/tiny_hf/config.json "$TMP/st2/"
head -c 20000 tests/fixtures/model/tiny_hf/model.safetensors >"$TMP/st1/model.safetensors"
expect_error "truncated safetensors file" "st1/model.safetensors" $MUSCLE info "$TMP/st1"
{ printf '\020\000\000\000\000\000\000\000{"a":{"dtype":'; } >"$TMP/st2/model.safetensors"
expect_error "corrupted safetensors header" "st2/model.safetensors" $MUSCLE info "$TMP/st2"
mkdir -p "$TMP/st3"; cp tests/fixtures/model/tiny_hf/model.safetensors "$TMP/st3/"
expect_error "HF folder without config.json" "config.json" $MUSCLE info "$TMP/st3"
mkdir -p "$TMP/st4"; cp tests/fixtures/model/tiny_hf/model.safetensors "$TMP/st4/"; echo '{"hidden_size": 32,' >"$TMP/st4/config.json"
expect_error "broken config.json" "config.json" $MUSCLE info "$TMP/st4"
expect_error "a model larger than --max-memory is refused before loading, with the numbers" "needs about 1.0 MB.*0.5 MB" $MUSCLE generate --model "$S260/stories260K.bin" --max-memory 500K
expect_error "bad option value" "max-tokens" $MUSCLE generate --model "$S260/stories260K.bin" --max-tokens -3
echo "1..$TAP_N"
