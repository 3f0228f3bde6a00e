#!/usr/bin/env bash
# Issue 18's experiment grid: weight-space methods (adapter interpolation, seed soups) against
# the ce control and the paper-style methods, on three update pairs x two multiple-choice
# tasks x K seeds, through `muscle update`, in resumable pieces.
#
#   scripts/experiments/weightspace_grid.sh ROOT [PAIRS] [TASKS] [SEEDS] [METHODS]
#     PAIRS    comma list (default stories,demo,scratch)
#              stories  v1 = stories260K (../shared); v2 = v1 continued on War and Peace + Debian
#                       descriptions (built once in ROOT/pairs/stories-v2, as compat_table.sh does)
#              demo     the shipped demo pair (demo/models/v1, v2; the old adapters are trained here)
#              scratch  v1 = stories260K; v2 = a model of the same shape (dim 64, 5 layers, 8 heads,
#                       4 kv heads, hidden 172) and the same tokenizer trained FROM SCRATCH with
#                       `muscle pretrain` on War and Peace + Debian descriptions (not continued from
#                       v1: independent weights, a large accuracy gap on the Debian tasks); the old
#                       adapter still moves to v2 (same shapes), so `interp` applies
#     TASKS    comma list (default section,arc)
#              section  debian-section (4-way multiple choice)
#              arc      ARC-Easy (LLM-Adapters format, 3-5 choices; train split sliced into
#                       train and validation)
#              synopsis a package's long description -> its one-line synopsis among 4 (built
#                       from debian-sum: the 3 distractors are other packages' synopses of the
#                       same split, drawn with a fixed seed; the gold's position is drawn too)
#              kind     a package's description -> what the package is, among "a library",
#                       "development files", "documentation", "a program" (the label from the
#                       package name: -dev, -doc/-docs, lib*/python3-*/ruby-*/golang-*/node-*/
#                       r-cran-*/php-*/perl-*, else a program; same lines as section)
#              sum      debian-sum (generation: a package's long description -> its one-line
#                       synopsis; ROUGE-1 and score flips; 24 new tokens as in the demo tables)
#     SEEDS    K (default 3)
#     METHODS  default interp,soup,ce,choice,interp-choice,soup-choice
# Every piece is one `muscle update` run folder, ROOT/runs/PAIR-TASK; run the script again
# (with the same arguments, or more seeds / methods) to resume: finished steps are skipped.
# Sizes (environment): NTRAIN (600), NVAL (200), NTEST (400), EPOCHS (2), SEQ (192),
# SCRATCH_STEPS (3000), STORIES_STEPS (400).
# TRANSFER=N (default 0): N more unlabelled task inputs for the distillation terms (`update
# --transfer`; the training split's lines after the training and validation slices, labels
# never read); the run folder is then ROOT/runs/PAIR-TASK-trN.
# COMPAT_EPOCHS=E (default: update's, 1): epochs of compatibility training; the run folder
# then ends in -ceE. A list E1,E2,... (update chooses the count on validation) ends it in
# -ceE1_E2_...
# MIXW=A1,A2,... (default none): the mixture presets' a chosen on their students' validation
# results among these weights (`update --mixture-weights`), one training per a (and count);
# the run folder then ends in -mwA1_A2_... . When that folder is new and the folder without
# the suffix holds a finished run, the new one starts as its copy without the mixture
# presets' files: M1, the new adapters and the other methods do not depend on the list.
# CEW=W1,W2,... (default none): the same for the mixture presets' cross-entropy weight W
# (`update --ce-weights`); the run folder then ends in -cwW1_W2_... (after -mw...).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${1:?usage: weightspace_grid.sh ROOT [PAIRS] [TASKS] [SEEDS] [METHODS]}"
PAIRS="${2:-stories,demo,scratch}"; TASKS="${3:-section,arc}"; SEEDS="${4:-3}"
METHODS="${5:-interp,soup,ce,choice,interp-choice,soup-choice}"
MUSCLE="${MUSCLE:-build/muscle}"; S="${MUSCLE_SHARED:-../shared}"; D="$S/data/debian"
NTRAIN="${NTRAIN:-600}"; NVAL="${NVAL:-200}"; NTEST="${NTEST:-400}"; EPOCHS="${EPOCHS:-2}"; SEQ="${SEQ:-192}"
SCRATCH_STEPS="${SCRATCH_STEPS:-3000}"; STORIES_STEPS="${STORIES_STEPS:-400}"; TRANSFER="${TRANSFER:-0}"
COMPAT_EPOCHS="${COMPAT_EPOCHS:-}"; MIXW="${MIXW:-}"; CEW="${CEW:-}"
PY=/usr/bin/python3
mkdir -p "$ROOT/data" "$ROOT/pairs" "$ROOT/runs"
V1_STORIES="$S/models/stories260K/stories260K.bin"

# seed_run BASE RUN KEY VALUE: a new run folder RUN (with update.json's KEY = VALUE) starts as
# a copy of the finished run BASE without the mixture presets' files (MIXW, CEW above).
seed_run() {
  if [ ! -e "$2" ] && [ -s "$1/report.json" ]; then
    cp -r "$1" "$2.tmp"
    rm -rf "$2.tmp"/adapters/*mixture-* "$2.tmp"/preds/*mixture-* "$2.tmp"/logs/*mixture-* \
           "$2.tmp"/report.* "$2.tmp"/manifest.json "$2.tmp"/flips.csv
    $PY -c "
import json, sys
p = sys.argv[1] + '/update.json'; j = json.load(open(p))
j[sys.argv[2]] = sys.argv[3]
for m in [m for m in j['methods'] if 'mixture-' in m]: del j['methods'][m]
json.dump(j, open(p, 'w'), indent=1)" "$2.tmp" "$3" "$4"
    mv "$2.tmp" "$2"
  fi
}

# ---- task slices (written once) ----
task_data() { # TASK -> ROOT/data/TASK.{train,val,test}.jsonl
  local t=$1 dd="$ROOT/data"
  [ -s "$dd/$t.test.jsonl" ] && return 0
  case "$t" in
    section)
      head -n "$NTRAIN" "$D/debian-section.train.jsonl" >"$dd/$t.train.jsonl"
      head -n "$NVAL" "$D/debian-section.validation.jsonl" >"$dd/$t.val.jsonl"
      head -n "$NTEST" "$D/debian-section.test.jsonl" >"$dd/$t.test.jsonl.tmp" ;;
    arc)
      $PY - "$S/data/commonsense/ARC-Easy" "$dd" "$NTRAIN" "$NVAL" "$NTEST" <<'PYEOF'
import json, sys
src, dd, ntr, nva, nte = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
tr = json.load(open(src + "/train.json")); te = json.load(open(src + "/test.json"))
def put(path, name, recs):
    with open(path, "w") as f:
        for i, r in enumerate(recs): f.write(json.dumps(dict(r, id=f"{name}-{i}")) + "\n")
put(dd + "/arc.train.jsonl", "train", tr[:ntr]); put(dd + "/arc.val.jsonl", "val", tr[ntr:ntr + nva])
put(dd + "/arc.test.jsonl.tmp", "test", te[:nte])
PYEOF
      ;;
    synopsis)
      synopsis_mc "$D/debian-sum.train.jsonl" 0 "$NTRAIN" >"$dd/$t.train.jsonl"
      synopsis_mc "$D/debian-sum.validation.jsonl" 0 "$NVAL" >"$dd/$t.val.jsonl"
      synopsis_mc "$D/debian-sum.test.jsonl" 0 "$NTEST" >"$dd/$t.test.jsonl.tmp" ;;
    kind)
      head -n "$NTRAIN" "$D/debian-section.train.jsonl" | kind_mc >"$dd/$t.train.jsonl"
      head -n "$NVAL" "$D/debian-section.validation.jsonl" | kind_mc >"$dd/$t.val.jsonl"
      head -n "$NTEST" "$D/debian-section.test.jsonl" | kind_mc >"$dd/$t.test.jsonl.tmp" ;;
    sum)
      head -n "$NTRAIN" "$D/debian-sum.train.jsonl" >"$dd/$t.train.jsonl"
      head -n "$NVAL" "$D/debian-sum.validation.jsonl" >"$dd/$t.val.jsonl"
      head -n "$NTEST" "$D/debian-sum.test.jsonl" >"$dd/$t.test.jsonl.tmp" ;;
    *) echo "weightspace_grid.sh: TASK is section, arc, synopsis, kind or sum" >&2; exit 2 ;;
  esac
  # the splits repeat a few packages (debian-section's test split: 2000 lines, "default-jre-headless"
  # at lines 67 and 1039; its validation split: "libwebkit2gtk-4.0-doc" at lines 206 and 918): the
  # first line of each id is kept (predictions pair by id)
  mv "$dd/$t.val.jsonl" "$dd/$t.val.jsonl.tmp"
  for s in val test; do
    $PY -c '
import json, sys
seen = set()
for l in open(sys.argv[1]):
    i = json.loads(l)["id"]
    if i not in seen: seen.add(i); sys.stdout.write(l)' "$dd/$t.$s.jsonl.tmp" >"$dd/$t.$s.jsonl.dedup"
    rm "$dd/$t.$s.jsonl.tmp"
    mv "$dd/$t.$s.jsonl.dedup" "$dd/$t.$s.jsonl"
  done
}

kind_mc() { # debian-section lines on stdin -> the same contexts, labelled with the package's kind
  $PY -c '
import json, sys
KINDS = ["a library", "development files", "documentation", "a program"]
LIB = ("lib", "python3-", "ruby-", "golang-", "node-", "r-cran-", "php-", "perl-")
for l in sys.stdin:
    r = json.loads(l); i = r["id"]
    k = 1 if i.endswith("-dev") else 2 if i.endswith(("-doc", "-docs")) else 0 if i.startswith(LIB) else 3
    print(json.dumps({"id": i, "context": r["context"], "choices": KINDS, "label": k}))'
}

synopsis_mc() { # SUMFILE FIRST N -> stdout: N multiple-choice lines from lines FIRST.. of a debian-sum split
  $PY - "$1" "$2" "$3" <<'PYEOF'
import json, random, sys
path, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recs = [json.loads(l) for l in open(path)]
rng = random.Random(20261206)
for i in range(first, min(first + n, len(recs))):
    r = recs[i]
    others = set()
    while len(others) < 3:  # other packages' synopses, distinct from the gold and each other
        j = rng.randrange(len(recs))
        if j != i and recs[j]["target"] != r["target"]: others.add(recs[j]["target"])
    choices = sorted(others); rng.shuffle(choices)
    label = rng.randrange(4); choices.insert(label, r["target"])
    print(json.dumps({"id": r["id"], "context": r["prompt"], "choices": choices, "label": label}))
PYEOF
}

transfer_data() { # TASK N -> ROOT/data/TASK.transferN.jsonl: unlabelled inputs (labels never read)
  local t=$1 n=$2 out="$ROOT/data/$1.transfer$2.jsonl"
  [ -s "$out" ] && return 0
  case "$t" in # the training split's lines after the training slice (v2's corpus starts at 2000)
    section) sed -n "$((NTRAIN + 1)),$((NTRAIN + n))p" "$D/debian-section.train.jsonl" >"$out.tmp" ;;
    sum) sed -n "$((NTRAIN + 1)),$((NTRAIN + n))p" "$D/debian-sum.train.jsonl" >"$out.tmp" ;;
    kind) sed -n "$((NTRAIN + 1)),$((NTRAIN + n))p" "$D/debian-section.train.jsonl" | kind_mc >"$out.tmp" ;;
    synopsis) synopsis_mc "$D/debian-sum.train.jsonl" "$NTRAIN" "$n" >"$out.tmp" ;;
    arc) $PY -c "
import json, sys
tr = json.load(open('$S/data/commonsense/ARC-Easy/train.json'))[$NTRAIN + $NVAL:][:$n]
for i, r in enumerate(tr): print(json.dumps(dict(r, id=f'transfer-{i}')))" >"$out.tmp" ;;
  esac
  mv "$out.tmp" "$out"
}

# ---- the new text both built v2s learn from (written once) ----
corpus() {
  local c="$ROOT/pairs/corpus.txt"
  [ -s "$c" ] && return 0
  { head -c 1500000 "$S/corpora/war-and-peace.txt"; echo
    $PY -c "
import json
for i,l in enumerate(open('$D/debian-section.train.jsonl')):
    if i < 2000: continue          # not the task's training lines
    if i >= 6000: break
    print(json.loads(l)['context'].strip()); print()"
  } >"$c.tmp" && mv "$c.tmp" "$c"
}

# ---- pairs: sets V1, V2 ----
pair() {
  case "$1" in
    stories)
      V1="$V1_STORIES"; V2="$ROOT/pairs/stories-v2"; corpus
      [ -s "$V2/model.safetensors" ] || $MUSCLE pretrain --model "$V1" --data "$ROOT/pairs/corpus.txt" --out "$V2" \
          --steps "$STORIES_STEPS" --seq-len 256 --batch 8 --grad-accum 1 --lr 1e-3 --seed 1 --quiet ;;
    demo)
      V1=demo/models/v1; V2=demo/models/v2 ;;
    scratch)
      V1="$V1_STORIES"; V2="$ROOT/pairs/scratch-v2"; corpus
      # the same shape and tokenizer as stories260K, random initial weights (seed 7), no v1 weights
      [ -s "$V2/model.safetensors" ] || $MUSCLE pretrain --tokenizer "$S/models/stories260K/tok512.bin" \
          --dim 64 --layers 5 --heads 8 --kv-heads 4 --hidden 172 --vocab 512 --data "$ROOT/pairs/corpus.txt" \
          --out "$V2" --steps "$SCRATCH_STEPS" --seq-len 256 --batch 8 --grad-accum 1 --lr 3e-3 --seed 7 --quiet ;;
    *) echo "weightspace_grid.sh: PAIR is stories, demo or scratch" >&2; exit 2 ;;
  esac
}

for P in ${PAIRS//,/ }; do
  pair "$P"
  for T in ${TASKS//,/ }; do
    task_data "$T"
    A1="$ROOT/pairs/$P-$T-a1" # the old task adapter, trained on v1 with the run's recipe
    [ -s "$A1/adapter_model.safetensors" ] || $MUSCLE finetune --model "$V1" --task "$ROOT/data/$T.train.jsonl" \
        --val "$ROOT/data/$T.val.jsonl" --out "$A1" --epochs "$EPOCHS" --batch 8 --grad-accum 1 --lr 1e-3 \
        --seq-len "$SEQ" --seed 1 --quiet
    RUN="$ROOT/runs/$P-$T"; TF=()
    [ "$T" = sum ] && TF+=(--max-tokens 24) # generation: the demo tables' decoding length
    if [ "$TRANSFER" -gt 0 ]; then
      transfer_data "$T" "$TRANSFER"
      RUN="$RUN-tr$TRANSFER"; TF+=(--transfer "$ROOT/data/$T.transfer$TRANSFER.jsonl")
    fi
    if [ -n "$COMPAT_EPOCHS" ]; then RUN="$RUN-ce${COMPAT_EPOCHS//,/_}"; TF+=(--compat-epochs "$COMPAT_EPOCHS"); fi
    if [ -n "$MIXW" ]; then TF+=(--mixture-weights "$MIXW"); seed_run "$RUN" "$RUN-mw${MIXW//,/_}" mixture_weights "$MIXW"; RUN="$RUN-mw${MIXW//,/_}"; fi
    if [ -n "$CEW" ]; then TF+=(--ce-weights "$CEW"); seed_run "$RUN" "$RUN-cw${CEW//,/_}" ce_weights "$CEW"; RUN="$RUN-cw${CEW//,/_}"; fi
    echo "== $P $T: $SEEDS seeds, methods $METHODS$([ "$TRANSFER" -gt 0 ] && echo ", $TRANSFER transfer inputs")${COMPAT_EPOCHS:+, $COMPAT_EPOCHS compat epochs}" >&2
    $MUSCLE update --old-model "$V1" --old-adapter "$A1" --new-model "$V2" --task-train "$ROOT/data/$T.train.jsonl" \
        --task-val "$ROOT/data/$T.val.jsonl" --task-test "$ROOT/data/$T.test.jsonl" --out "$RUN" "${TF[@]}" \
        --methods "$METHODS" --seeds "$SEEDS" --epochs "$EPOCHS" --seq-len "$SEQ" --quiet
  done
done
