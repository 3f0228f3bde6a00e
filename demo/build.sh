#!/usr/bin/env bash
# Builds the embedded demo scenario (demo/README.md) from ../shared/data/debian only:
#   demo/data/{section,sum}.{train,test}.jsonl   task subsets (shared train -> train, test -> test)
#   demo/models/v1, demo/models/v2               base models pretrained from scratch here
#   demo/adapters/section-v1, sum-v1             the old task adapters (A1) on v1
#   demo/SHA256SUMS                              checksums of every shipped file
# Intermediate files (corpora, tokenizer training input, full training folders with logs and
# checkpoints) go to $WORK (default build/demo-work), never committed.
#
# Usage: demo/build.sh [STAGE...]    stages: data corpus tokenizer v1 v2 adapters sums
#        (default: all, in that order; a stage whose output exists is skipped - delete
#        it, or set FORCE=1, to redo it)
# Reproducible: seeded everywhere, and muscle gives the same bits for the same seed and
# thread count, so OMP_NUM_THREADS is pinned to 2 (the machine the shipped files came from).
# ~25 minutes on 2 cores, nearly all of it pretraining v2.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
MUSCLE="${MUSCLE:-build/muscle}"
S="${MUSCLE_SHARED:-../shared}"; D="$S/data/debian"
WORK="${WORK:-build/demo-work}"
PY=/usr/bin/python3
FORCE="${FORCE:-0}"
[ -r "$D/debian-section.train.jsonl" ] || { echo "demo/build.sh: missing $D (../shared must sit beside the checkout)" >&2; exit 1; }
[ -x "$MUSCLE" ] || { echo "demo/build.sh: $MUSCLE missing: run make all" >&2; exit 1; }
$PY -c 'import sentencepiece' 2>/dev/null || { echo "demo/build.sh: needs python3-sentencepiece (apt-get install python3-sentencepiece)" >&2; exit 1; }
mkdir -p "$WORK"
todo() { [ "$FORCE" = 1 ] || [ ! -e "$1" ]; }   # todo OUTPUT: the stage must run

# The base models: same shape, same tokenizer; they differ systematically in data and
# training: v1 is trained from scratch on a seeded half of the corpus for 300 steps
# (2.5M tokens, ~2.2 passes over its half); v2 is v1 trained further, every weight, on the
# whole corpus for 300 more steps (twice v1's training, the other half of the text new to it).
SHAPE="--dim 128 --layers 5 --heads 8 --kv-heads 4 --hidden 352"
PRE_COMMON="--seq-len 512 --batch 8 --grad-accum 2 --lr 1e-3 --eval-every 100 --val-max 32 --dtype bf16"
PRE_V1="$SHAPE --tokenizer $WORK/tok/tokenizer.model --steps 300 --seed 1"
PRE_V2="--model $WORK/v1 --steps 300 --seed 2"
# The old task adapters: LoRA rank 8 on all linear layers (the defaults), best epoch kept.
FT_COMMON="--epochs 3 --batch 8 --grad-accum 1 --lr 3e-3 --seq-len 512 --seed 1"

stage_data() {
  $PY demo/prepare.py data "$D" demo/data
}
stage_corpus() {
  todo "$WORK/corpus-v2.txt" && $PY demo/prepare.py corpus "$D" "$WORK"; true
}
stage_tokenizer() {
  if todo "$WORK/tok/tokenizer.model"; then $PY demo/prepare.py tokenizer "$WORK"; fi
  # the C tokenizer must agree with sentencepiece on every corpus line and every task text
  $PY - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
with open(f"{w}/tok/check.txt", "w", encoding="utf-8") as g:
    for l in open(f"{w}/corpus-v2.txt", encoding="utf-8"):
        if l.strip(): g.write(l)
    for t in ("section", "sum"):
        for s in ("train", "test"):
            for l in open(f"demo/data/{t}.{s}.jsonl", encoding="utf-8"):
                r = json.loads(l)
                for k in ("context", "prompt", "target"):
                    if k in r: g.write(r[k].replace("\n", " ") + "\n")
                for c in r.get("choices", []): g.write(" " + c + "\n")
PY
  $PY tools/tokenizer/sp_reference.py "$WORK/tok/tokenizer.model" "$WORK/tok/check.txt" "$WORK/tok/check.ref"
  printf '%s\t%s\t%s\n' "$WORK/tok/tokenizer.model" "$WORK/tok/check.ref" "$WORK/tok/check.txt" >"$WORK/tok/manifest"
  MUSCLE_TOK_AGREE="$WORK/tok/manifest" build/tests/tokenizer/test_tok_agreement | tee "$WORK/tok/agreement.txt"
  grep -q '^ok ' "$WORK/tok/agreement.txt" && ! grep -q '^not ok' "$WORK/tok/agreement.txt"
}
pretrain() { # NAME CORPUS ARGS...
  local name="$1" corpus="$2"; shift 2
  if todo "$WORK/$name/model.safetensors"; then
    rm -rf "$WORK/$name"
    nice -n 5 "$MUSCLE" pretrain --data "$corpus" --out "$WORK/$name" $PRE_COMMON "$@"
  fi
  mkdir -p "demo/models/$name"
  cp "$WORK/$name/config.json" "$WORK/$name/model.safetensors" "$WORK/$name/tokenizer.model" \
     "$WORK/$name/training.json" "demo/models/$name/"
}
stage_v1() { pretrain v1 "$WORK/corpus-v1.txt" $PRE_V1; }
stage_v2() { pretrain v2 "$WORK/corpus-v2.txt" $PRE_V2; }
stage_adapters() {
  for task in section sum; do
    local out="$WORK/$task-v1"
    if todo "$out/adapter_model.safetensors"; then
      rm -rf "$out"
      nice -n 5 "$MUSCLE" finetune --model demo/models/v1 --task "demo/data/$task.train.jsonl" --out "$out" $FT_COMMON
    fi
    mkdir -p "demo/adapters/$task-v1"
    cp "$out/adapter_config.json" "$out/adapter_model.safetensors" "$out/training.json" "demo/adapters/$task-v1/"
  done
}
stage_sums() {
  (cd demo && find data models adapters -type f | LC_ALL=C sort | xargs sha256sum) >demo/SHA256SUMS
  echo "demo/SHA256SUMS: $(wc -l <demo/SHA256SUMS) files"
}

stages=("$@"); [ ${#stages[@]} -eq 0 ] && stages=(data corpus tokenizer v1 v2 adapters sums)
for s in "${stages[@]}"; do
  echo "== demo/build.sh: $s"
  "stage_$s"
done
