#!/usr/bin/env bash
# The demo until `muscle update` lands: generation and scoring with a real llama2.c model.
set -euo pipefail
cd "$(dirname "$0")/.."
S=../shared/models/stories260K
[ -r "$S/stories260K.bin" ] || { echo "demo: missing $S/stories260K.bin (../shared must sit beside the checkout)" >&2; exit 1; }
echo "== muscle info"
build/muscle info "$S/stories260K.bin"
echo "== muscle generate (greedy, 256 tokens from BOS)"
build/muscle generate --model "$S/stories260K.bin" --max-tokens 256 --stats
echo "== muscle score"
build/muscle score --model "$S/stories260K.bin" --text "Once upon a time, there was a little girl named Lily."
