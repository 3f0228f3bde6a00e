#!/usr/bin/env bash
# The sequence-level ensemble and mixture teachers (docs/compat.md) through finetune --compat
# and muscle update at a tiny scale: the ensemble of one adapter X is seqkd with X as its
# teacher (the same tensors, bit for bit); the ensemble of two and the mixture run and record
# their settings; the mixture on a generation task without its weight, and across
# tokenizers, are refused in one line; `muscle update` runs the new presets (ensemble-seqkd,
# mixture-seqkd, mixture-gen) over 2 seeds, each teacher being both seeds' new adapters.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1="$SHARED/models/stories260K/stories260K.bin"
need "$V1" || { echo "1..$TAP_N"; exit 0; }
D="$SHARED/data/debian"
head -n 16 "$D/debian-sum.train.jsonl" >"$TMP/sum.train.jsonl"
head -n 6 "$D/debian-sum.test.jsonl" >"$TMP/sum.test.jsonl"
head -n 8 "$D/debian-sum.test.jsonl" >"$TMP/transfer.jsonl" # unlabelled use: the mask = the outputs differ
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 2e-3 --seq-len 96 --quiet)
for s in 1 2 3; do
  $MUSCLE finetune --model "$V1" --task "$TMP/sum.train.jsonl" --out "$TMP/g$s" --seed $s "${TR[@]}" 2>>"$TMP/e"
done
check "task adapters train" test -s "$TMP/g3/adapter_model.safetensors"

tensors() { # the adapter's tensor bytes (the header's metadata names the method)
  /usr/bin/python3 -c "
import hashlib, struct, sys
b = open('$1/adapter_model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
print(hashlib.sha256(b[8 + n:]).hexdigest())"
}
meta() { # meta DIR PYTHON-EXPR-on-c: the adapter's muscle.compat settings
  /usr/bin/python3 -c "
import json, struct
b = open('$1/adapter_model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
c = json.loads(json.loads(b[8:8 + n])['__metadata__']['muscle.compat'])
assert $2, c"
}
# (with the transfer inputs: at this scale every ROUGE is 0 and no labelled instance is masked)
G=(finetune --model "$V1" --adapter-init "$TMP/g2" --task "$TMP/sum.train.jsonl" --epochs 1 --batch 8 --grad-accum 1 --lr 2e-3
   --seq-len 96 --level sequence --ce-weight 0.5 --max-tokens 8 --no-repeat-ngram 2 --transfer "$TMP/transfer.jsonl")
# the ensemble of one adapter (g3) is seqkd (student-wrong) with g3 as its teacher
$MUSCLE "${G[@]}" --old-model "$V1" --old-adapter "$TMP/g1" --compat ensemble --ensemble-adapters "$TMP/g3" --out "$TMP/ens1" 2>"$TMP/err_e1"
$MUSCLE "${G[@]}" --old-model "$V1" --old-adapter "$TMP/g3" --compat student-wrong --out "$TMP/sk3" --quiet 2>"$TMP/err"
grep "the mask chose" "$TMP/err_e1" | sed 's/^/# /'
check "... the teacher's outputs were distilled on some instances" grep -q "the mask chose the ensemble on [1-9][0-9.]*% of" "$TMP/err_e1"
t1=$(tensors "$TMP/ens1"); t2=$(tensors "$TMP/sk3"); t0=$(tensors "$TMP/g2")
echo "# ensemble of g3: $t1; seqkd taught by g3: $t2; the start g2: $t0"
check "ensemble of one adapter = seqkd with that teacher (identical tensors)" test -n "$t1" -a "$t1" = "$t2"
check "... and the training changed the adapter" test "$t1" != "$t0"
# two new adapters: ensemble decoding; the mixture with M1 at a given weight
$MUSCLE "${G[@]}" --old-model "$V1" --old-adapter "$TMP/g1" --compat ensemble --ensemble-adapters "$TMP/g2,$TMP/g3" \
    --out "$TMP/ens2" 2>"$TMP/err_e2"
grep "the mask chose" "$TMP/err_e2" | sed 's/^/# /'
check "ensemble of 2 at the sequence level" meta "$TMP/ens2" "c['method'] == 'ensemble' and c['level'] == 'sequence'"
check "... its teacher pass is the ensemble's decoding" grep -q "teacher ensemble (generating)" "$TMP/err_e2"
check "... a different adapter from the ensemble of one" test "$(tensors "$TMP/ens2")" != "$t1"
$MUSCLE "${G[@]}" --old-model "$V1" --old-adapter "$TMP/g1" --compat mixture --mixture-weight 0.3 \
    --ensemble-adapters "$TMP/g2,$TMP/g3" --out "$TMP/mix" --quiet 2>"$TMP/err"
check "mixture at the sequence level, a recorded" meta "$TMP/mix" "c['method'] == 'mixture' and c['mixture_a'] == 0.3 and c['level'] == 'sequence'"
check "... not the ensemble's adapter" test "$(tensors "$TMP/mix")" != "$(tensors "$TMP/ens2")"
expect_error "mixture on a generation task without its weight" "give --mixture-weight A" \
    $MUSCLE "${G[@]}" --old-model "$V1" --old-adapter "$TMP/g1" --compat mixture --out "$TMP/x1" --quiet
expect_error "a level the method lacks: the list from the table" "focal has no sequence level: use .*ensemble, mixture, weighted or flip" \
    $MUSCLE "${G[@]}" --old-model "$V1" --old-adapter "$TMP/g1" --compat focal --out "$TMP/x2" --quiet

# muscle update: the new generation presets over 2 seeds
$MUSCLE update --old-model "$V1" --old-adapter "$TMP/g1" --new-model "$V1" --task-train "$TMP/sum.train.jsonl" \
    --task-test "$TMP/sum.test.jsonl" --out "$TMP/run" --seeds 2 --epochs 1 --seq-len 96 --max-tokens 8 \
    --methods ensemble-seqkd,mixture-seqkd,mixture-gen --quiet 2>"$TMP/err_u" >"$TMP/out_u"
rc=$?; [ $rc -ne 0 ] && tail -5 "$TMP/err_u" | sed 's/^/# /'
check "update with the generation presets runs to its report" test $rc -eq 0 -a -s "$TMP/run/report.json"
check "update: mixture-seqkd's a = 0.3 (the generation default)" meta "$TMP/run/adapters/mixture-seqkd-s2" "c['mixture_a'] == 0.3 and c['level'] == 'sequence'"
check "update: mixture-gen at the token level" meta "$TMP/run/adapters/mixture-gen-s1" "c['mixture_a'] == 0.3 and c['level'] == 'token'"
check "update: ensemble-seqkd's teacher was both seeds' new adapters" /usr/bin/python3 -c "
import json; e = json.load(open('$TMP/run/adapters/ensemble-seqkd-s1/training.json'))['settings']['compat_ensemble'].split(',')
assert len(e) == 2 and e[0].endswith('adapters/new-s1') and e[1].endswith('adapters/new-s2'), e"
$MUSCLE update --help >"$TMP/h"
check "update --help: the presets generated from the methods' entries" grep -q "mixture-seqkd .*--compat mixture --level sequence --ce-weight 0.5 --mixture-weight 0.3 (generation)" "$TMP/h"
echo "1..$TAP_N"
