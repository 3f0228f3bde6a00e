#!/usr/bin/env bash
# Options and inputs refused before anything runs, with a message (issue 17, defects 6-8):
# update validates every option and input file before the first step (and a corrected rerun
# then works); NUL in ids and names; strict decimal numbers; messages that say what was typed.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K/stories260K.bin"
D="$SHARED/data/debian"
need "$S260" && need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
head -n 16 "$D/debian-section.train.jsonl" >"$TMP/tr.jsonl"
head -n 4 "$D/debian-section.test.jsonl" >"$TMP/te.jsonl"
{ cat "$TMP/te.jsonl"; head -n 1 "$TMP/te.jsonl"; } >"$TMP/dup.jsonl"
mkdir -p "$TMP/a1"
U=(update --old-model "$S260" --old-adapter "$TMP/a1" --new-model "$S260" --task-train "$TMP/tr.jsonl"
   --methods ce --batch 8 --seq-len 96 --bootstrap 0 --quiet)
# 7. every option and input before the first step: nothing is written into RUN_DIR
for bad in "--epochs 0" "--lr nan" "--compat-lr -1" "--compat-epochs 0" "--max-acc-drop nan" "--epochs 1e9" "--lr 0x10"; do
  expect_error "update $bad is refused before any step" "${bad%% *}" $MUSCLE "${U[@]}" --task-test "$TMP/te.jsonl" --out "$TMP/r1" $bad
done
expect_error "update: duplicate test ids are refused before any step, naming both lines" 'appears twice \(lines 1 and 5\)' \
  $MUSCLE "${U[@]}" --task-test "$TMP/dup.jsonl" --out "$TMP/r1"
expect_error "update: duplicate validation ids are refused before any step when a choice pairs them" \
  '^muscle: error: --task-val: .*dup.jsonl: id .* appears twice \(lines 1 and 5\)' \
  $MUSCLE "${U[@]}" --task-test "$TMP/te.jsonl" --task-val "$TMP/dup.jsonl" --compat-epochs 1,2 --out "$TMP/r1"
# where nothing pairs it (the best epoch only) it passes the checks (the run then stops at M1: $TMP/a1 is empty)
$MUSCLE "${U[@]}" --task-test "$TMP/te.jsonl" --task-val "$TMP/dup.jsonl" --epochs 1 --out "$TMP/r2" 2>"$TMP/r2.err"
check "a validation set with a repeated id is accepted where nothing pairs it" \
  bash -c "test -e '$TMP/r2/update.json' && ! grep -q 'appears twice' '$TMP/r2.err'"
expect_error "update: a template that does not fit the test set is refused before any step" "nosuchfield" \
  $MUSCLE "${U[@]}" --task-test "$TMP/te.jsonl" --out "$TMP/r1" --prompt "{nosuchfield}"
check "nothing was written into the run folder" test ! -e "$TMP/r1/update.json"
# 6. NUL in ids and names
printf '{"id":"a\\u0000XYZ","correct":true}\n{"id":"a\\u0000QQQ","correct":false}\n' >"$TMP/p1.jsonl"
printf '{"id":"a\\u0000XYZ","correct":false}\n{"id":"a\\u0000QQQ","correct":true}\n' >"$TMP/p2.jsonl"
expect_error "ids with NUL are refused (not cut and paired)" 'p1.jsonl:1: a NUL character' $MUSCLE compare "$TMP/p1.jsonl" "$TMP/p2.jsonl"
printf 'id,correct\n"a\0X",1\n' >"$TMP/p.csv"
expect_error "a CSV id with a 0 byte is refused" 'p.csv:2: a NUL character' $MUSCLE compare "$TMP/p.csv" "$TMP/p.csv"
printf '{"tasks":[{"name":"t\\u0000x","old":"p1.jsonl","new":{"preds":["p2.jsonl"]}}]}\n' >"$TMP/man.json"
expect_error "a manifest name with NUL is refused" 'man.json:1: a NUL character' $MUSCLE report "$TMP/man.json" --out "$TMP/rep"
printf '{"tasks":[{"name":"t","models":[{"name":"muscle\\u0000evil"}]}]}\n' >"$TMP/rj.json"
expect_error "gate: a method name with NUL is refused" 'rj.json:1: a NUL character' $MUSCLE gate --max-nfr 0.1 --method muscle "$TMP/rj.json"
# 8. messages
expect_error "generate --temperature -1 says why" "temperature '-1'" $MUSCLE generate --model "$S260" --prompt hi --temperature -1
expect_error "generate --top-p 0 says why" "top-p '0'" $MUSCLE generate --model "$S260" --prompt hi --top-p 0
expect_error "generate --top-p 2 says why" "top-p '2'" $MUSCLE generate --model "$S260" --prompt hi --top-p 2
expect_error "gate --max-nfr 0x10 is not a number" "max-nfr '0x10'" $MUSCLE gate --max-nfr 0x10 "$TMP/rj.json"
expect_error "gate --max-nfr -1 is refused" "max-nfr '-1'" $MUSCLE gate --max-nfr -1 "$TMP/rj.json"
expect_error "finetune --epochs 1e9 names the range" 'expected a number in \(0, 1e6\]' $MUSCLE finetune --model "$S260" \
  --task "$TMP/tr.jsonl" --out "$TMP/f1" --epochs 1e9 --quiet
expect_error "finetune --seq-len 1 names --seq-len" '--seq-len 1' $MUSCLE finetune --model "$S260" --task "$TMP/tr.jsonl" \
  --out "$TMP/f2" --seq-len 1 --quiet
# 8. outputs that are inputs, escapes from RUN_DIR, control characters in names
expect_error "eval --out equal to --task is refused" "is an input of this run" $MUSCLE eval --model "$S260" --task "$TMP/te.jsonl" --out "$TMP/te.jsonl"
check "the task file is untouched" cmp -s "$TMP/te.jsonl" <(head -n 4 "$D/debian-section.test.jsonl")
ln -s "$TMP/p1.jsonl" "$TMP/link.jsonl"
cp "$TMP/te.jsonl" "$TMP/c1.jsonl"
printf '{"id":"x","correct":true}\n' >"$TMP/q1.jsonl"
expect_error "compare --flips equal to an input (another spelling) is refused" "is an input of this run" \
  $MUSCLE compare "$TMP/q1.jsonl" "$TMP/q1.jsonl" --flips "$TMP/./q1.jsonl"
expect_error "a method's --out is refused (it would escape RUN_DIR)" "gives --out" \
  $MUSCLE "${U[@]}" --task-test "$TMP/te.jsonl" --out "$TMP/r2" --methods "x=--compat none --out /tmp/elsewhere"
expect_error "a method named with '..' is refused" "use letters, digits" \
  $MUSCLE "${U[@]}" --task-test "$TMP/te.jsonl" --out "$TMP/r2" --methods "../x=--compat none"
cp "$TMP/te.jsonl" "$TMP/te"$'\e'"[2J.jsonl"
expect_error "a test file name with ESC is refused before any step" "control character \(0x1b\)" \
  $MUSCLE "${U[@]}" --task-test "$TMP/te"$'\e'"[2J.jsonl" --out "$TMP/r3"
printf '{"tasks":[{"name":"t\\u001b[31mx","old":"q1.jsonl","new":{"preds":["q1.jsonl"]}}]}\n' >"$TMP/man2.json"
expect_error "a manifest name with ESC is refused" "control character \(0x1b\)" $MUSCLE report "$TMP/man2.json" --out "$TMP/rep2"
long=$(printf 'n%.0s' $(seq 300))
printf '{"tasks":[{"name":"%s","old":"q1.jsonl","new":{"preds":["q1.jsonl"]}}]}\n' "$long" >"$TMP/man3.json"
expect_error "a manifest name over 256 bytes is refused (gate could not read the report)" "300 bytes long, expected at most 256" \
  $MUSCLE report "$TMP/man3.json" --out "$TMP/rep3"
check "report --quiet is accepted" bash -c "$MUSCLE report --help | grep -q -- --quiet"
echo "1..$TAP_N"
