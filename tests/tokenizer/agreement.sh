#!/usr/bin/env bash
# Agreement of the C tokenizer with Debian's python3-sentencepiece 0.1.97, line by line over ALL
# of war-and-peace.txt (63845 lines): ids equal and DecodeIds equal, for
#   tok105.model, tok105.bin, llama2_tokenizer.model, llama2_tokenizer.bin,
#   the llama2 vocabulary rebuilt through tok_init_from_vocab (the GGUF path),
#   a Llama-kind tokenizer.json built from llama2_tokenizer.model the way HF's LlamaConverter
#   does (tools/tokenizer/make_llama_json.py), in both styles: legacy Prepend+Replace
#   normalizer, and the newer Metaspace pre-tokenizer with [a, b] merges, and
#   two small BPE models trained now by sentencepiece (tools/tokenizer/train_nfkc_model.py:
#   nmt_nfkc / nfkc_cf charsmaps, user-defined and control pieces, byte fallback on and off,
#   no dummy prefix, custom unk_surface) on their own 6032-line text: 3000 corpus lines,
#   Unicode edge cases, malformed UTF-8 and 3000 random multi-script lines.
# Then whole files as ONE text each (newlines included) for llama2_tokenizer.bin, the legacy
# tokenizer.json and the trained nmt_nfkc model (tok105 and llama2 whole-corpus checksums are
# also in test_tokenizer.c).
# Fails (not ok) below 100%. References come from tools/tokenizer/sp_reference.py.
set -u
cd "$(dirname "$0")/../.."
S="${MUSCLE_SHARED:-../shared}"
BIN="${BUILD:-build}/tests/tokenizer/test_tok_agreement"
PY=/usr/bin/python3
corpus="$S/corpora/war-and-peace.txt"
t105="$S/models/babyllama105/tok105"
l2="$S/models/llama2-tokenizer/llama2_tokenizer"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
fail() { n=$((n + 1)); echo "not ok $n - $*"; }

for f in "$corpus" "$t105.model" "$t105.bin" "$l2.model" "$l2.bin"; do
  [ -r "$f" ] || { fail "missing reference file $f (../shared must sit beside the checkout)"; exit 1; }
done
[ -x "$BIN" ] || { fail "$BIN is missing: run make all first"; exit 1; }

ref() { # model corpus out [--default-unk-surface] [--whole]; runs in the background
  ( "$PY" tools/tokenizer/sp_reference.py "$@" 2>"$3.err" || echo "sp_reference.py $1 $*: $(tail -1 "$3.err")" >"$3.failed" ) &
}
mkdir -p "$tmp/hf" "$tmp/hf2"
"$PY" tools/tokenizer/make_llama_json.py "$l2.model" "$tmp/hf/tokenizer.json" 2>"$tmp/py.err" ||
  fail "make_llama_json.py: $(tail -1 "$tmp/py.err")"
"$PY" tools/tokenizer/make_llama_json.py "$l2.model" "$tmp/hf2/tokenizer.json" --metaspace 2>"$tmp/py.err" ||
  fail "make_llama_json.py --metaspace: $(tail -1 "$tmp/py.err")"
"$PY" tools/tokenizer/train_nfkc_model.py "$corpus" "$tmp/nfkc" 2>"$tmp/py.err" >/dev/null ||
  fail "train_nfkc_model.py: $(tail -1 "$tmp/py.err")"
# the references (the slow part: ~20 s of CPU) run two or three at a time
ref "$l2.model" "$corpus" "$tmp/l2-whole.ref" --whole   # whole corpus as ONE text (3.2 MB)
ref "$l2.model" "$corpus" "$tmp/l2.ref"
wait
ref "$t105.model" "$corpus" "$tmp/t105.ref"
# tokenizer.bin cannot store the model's unk_surface: its reference uses the default one.
ref "$t105.model" "$corpus" "$tmp/t105-bin.ref" --default-unk-surface
if [ -f "$tmp/nfkc.model" ]; then
  ref "$tmp/nfkc.model" "$tmp/nfkc.txt" "$tmp/nfkc.ref"
  ref "$tmp/nfkc-b.model" "$tmp/nfkc.txt" "$tmp/nfkc-b.ref"
  ref "$tmp/nfkc.model" "$tmp/nfkc.txt" "$tmp/nfkc-whole.ref" --whole
fi
wait
for f in "$tmp"/*.failed; do [ -e "$f" ] && fail "$(cat "$f")"; done

{
  line() { [ -e "${1#vocab:}" ] && [ -f "$2" ] && [ ! -e "$2.failed" ] && printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
  line "$t105.model" "$tmp/t105.ref" "$corpus"
  line "$t105.bin" "$tmp/t105-bin.ref" "$corpus"
  line "$l2.model" "$tmp/l2.ref" "$corpus"
  line "$l2.bin" "$tmp/l2.ref" "$corpus"
  line "vocab:$l2.model" "$tmp/l2.ref" "$corpus"
  line "$tmp/hf/tokenizer.json" "$tmp/l2.ref" "$corpus"
  line "$tmp/hf2/tokenizer.json" "$tmp/l2.ref" "$corpus"
  line "$tmp/nfkc.model" "$tmp/nfkc.ref" "$tmp/nfkc.txt"
  line "$tmp/nfkc-b.model" "$tmp/nfkc-b.ref" "$tmp/nfkc.txt"
  line "$l2.bin" "$tmp/l2-whole.ref" "whole:$corpus"
  line "$tmp/hf/tokenizer.json" "$tmp/l2-whole.ref" "whole:$corpus"
  line "$tmp/nfkc.model" "$tmp/nfkc-whole.ref" "whole:$tmp/nfkc.txt"
  true
} >"$tmp/manifest"
MUSCLE_TOK_AGREE="$tmp/manifest" "$BIN" | awk -v base="$n" '
  /^(not )?ok [0-9]+ / { sub(/ok [0-9]+ /, "ok " (++k + base) " "); print; next } { print }'
exit "${PIPESTATUS[0]}"
