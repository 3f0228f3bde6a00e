#!/usr/bin/env bash
# muscle pretrain / finetune: every bad input is one line "muscle: error: ..." naming it,
# and nothing is trained: bad flags and values, missing or empty data, --resume without a
# checkpoint or with changed settings, an output folder that cannot be one.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K"
M="$S260/stories260K.bin"
need "$M" || { echo "1..$TAP_N"; exit 0; }
printf 'Once upon a time there was a cat.\n\nThe cat sat on a mat and looked at the sun.\n\n' >"$TMP/tiny.txt"
for i in $(seq 60); do cat "$TMP/tiny.txt"; done >"$TMP/small.txt"
FT="$MUSCLE finetune --model $M --quiet"
PT="$MUSCLE pretrain --model $M --quiet"
SMALL="--data $TMP/small.txt --steps 2 --batch 2 --grad-accum 1 --seq-len 32"

expect_error "unknown flag" "unknown option '--bogus'" $FT --data "$TMP/small.txt" --out "$TMP/o" --bogus
expect_error "flag without its value" "option '--lr' needs a value" $FT --data "$TMP/small.txt" --out "$TMP/o" --lr
expect_error "--lr not a number" "--lr 'fast': expected a number" $FT $SMALL --out "$TMP/o" --lr fast
expect_error "--lr negative" "--lr '-1': expected a number > 0" $FT $SMALL --out "$TMP/o" --lr -1
expect_error "--batch 0" "--batch '0': expected an integer in 1..65536" $FT $SMALL --out "$TMP/o" --batch 0
expect_error "--schedule unknown" "--schedule 'step': expected cosine, linear or constant" $FT $SMALL --out "$TMP/o" --schedule step
expect_error "--targets unknown" "--targets 'q,x'" $FT $SMALL --out "$TMP/o" --targets q,x
expect_error "--data-format unknown" "--data-format 'csv'" $FT $SMALL --out "$TMP/o" --data-format csv
expect_error "--val-frac out of range" "--val-frac '0.9'" $FT $SMALL --out "$TMP/o" --val-frac 0.9
expect_error "--steps and --epochs" "not both" $FT $SMALL --out "$TMP/o" --epochs 2
expect_error "--adapter-init with --rank" "--adapter-init brings its own rank" $FT $SMALL --out "$TMP/o" --adapter-init "$TMP" --rank 4
expect_error "finetune without --model" "--model is required" $MUSCLE finetune $SMALL --out "$TMP/o"
expect_error "without --data or --task" "--data FILE or --task FILE is required" $FT --out "$TMP/o"
expect_error "without --out" "--out DIR is required" $FT --data "$TMP/small.txt"
expect_error "pretrain without a model or a shape" "exactly one of --model" $MUSCLE pretrain $SMALL --out "$TMP/o"
expect_error "pretrain: a new model without --tokenizer" "needs --tokenizer" $MUSCLE pretrain $SMALL --out "$TMP/o" --dim 32 --layers 1 --heads 4 --hidden 64
expect_error "pretrain: a partial shape" "needs --dim, --layers, --heads and --hidden" $MUSCLE pretrain $SMALL --out "$TMP/o" --dim 32 --tokenizer "$S260/tok512.bin"
expect_error "pretrain: --config that is not config.json" "expected a file named config.json" $MUSCLE pretrain $SMALL --out "$TMP/o" --config "$TMP/small.txt" --tokenizer "$S260/tok512.bin"
expect_error "--seq-len beyond the model's context" "--seq-len 600: expected 1..512" $FT $SMALL --out "$TMP/o" --seq-len 600
expect_error "missing data file" "$TMP/none.txt" $FT --data "$TMP/none.txt" --out "$TMP/o"
: >"$TMP/empty.txt"
expect_error "empty data file" "empty.txt: no text" $FT --data "$TMP/empty.txt" --out "$TMP/o"
printf '\n  \n\t\n' >"$TMP/blank.txt"
expect_error "data file of blank lines" "blank.txt: no text" $PT --data "$TMP/blank.txt" --out "$TMP/o"
printf '{"text": "a"}\n{"title": "b"}\n' >"$TMP/bad.jsonl"
expect_error "JSON lines without a text field" "bad.jsonl:2: field 'text' is missing" $FT --data "$TMP/bad.jsonl" --out "$TMP/o"
expect_error "too little text for a window" "too few" $FT --data "$TMP/tiny.txt" --out "$TMP/o" --seq-len 64
check "no output folder was made by the failures above" test ! -e "$TMP/o"

expect_error "--resume with no checkpoint" "no checkpoint to resume from" $FT $SMALL --out "$TMP/r" --resume
$FT $SMALL --out "$TMP/r" 2>/dev/null
check "a short run completes" test -s "$TMP/r/adapter_model.safetensors"
expect_error "--resume with a changed setting names it" "setting 'lr' is 0.01 now, 0.001 in the checkpoint" $FT $SMALL --out "$TMP/r" --resume --lr 0.01
{ cat "$TMP/small.txt"; echo "One more line."; } >"$TMP/small2.txt"
expect_error "--resume with changed data" "setting 'data' is .* now, .* in the checkpoint" $FT --data "$TMP/small2.txt" --steps 2 --batch 2 --grad-accum 1 --seq-len 32 --out "$TMP/r" --resume
expect_error "--resume with other LoRA settings" "setting 'rank' is 4 now, 8" $FT $SMALL --out "$TMP/r" --resume --rank 4
expect_error "a new run into a folder holding one" "holds a training run already" $FT $SMALL --out "$TMP/r"
echo x >"$TMP/file"
expect_error "output folder is a file" "$TMP/file: exists and is not a directory" $FT $SMALL --out "$TMP/file"
expect_error "output folder below a file" "$TMP/file" $FT $SMALL --out "$TMP/file/sub"
if [ "$(id -u)" -ne 0 ]; then
  mkdir "$TMP/ro"; chmod 555 "$TMP/ro"
  expect_error "read-only output folder" "ro" $FT $SMALL --out "$TMP/ro"
fi
$MUSCLE pretrain --help >"$TMP/h1"; $MUSCLE finetune --help >"$TMP/h2"
check "--help on both commands" grep -q "usage: muscle pretrain" "$TMP/h1"
check "finetune --help" grep -q "usage: muscle finetune" "$TMP/h2"
check "finetune --help names its defaults" grep -q "default 1e-3" "$TMP/h2"
echo "1..$TAP_N"
