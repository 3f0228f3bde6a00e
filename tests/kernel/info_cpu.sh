#!/usr/bin/env bash
# tests/kernel/info_cpu.sh - `muscle info --cpu`: the dispatch report (issue 20) names the
# level, oneDNN's ISA, the bf16 engine and each product's implementation; MUSCLE_DNNL
# switches the engine; MUSCLE_KERNEL caps the level; bad use is one error line.
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
out=$("$MUSCLE" info --cpu 2>"$TMP/err"); rc=$?
echo "$out" | sed 's/^/# /'
good=0; [ "$rc" -eq 0 ] && [ ! -s "$TMP/err" ] && good=1
check "info --cpu exits 0 with nothing on stderr" [ "$good" = 1 ]
# the small-product bound: 64 rows at avx512bf16 (the small-m kernel), 4 below it
if grep -q '^kernel level: avx512bf16' <<<"$out"; then SM=64; else SM=4; fi
for line in "kernel level: " "oneDNN: loaded, version " "bf16 engine: " "bf16 forward x.W^T, m > $SM: " \
            "bf16 forward x.W^T, m <= $SM: " "bf16 backward dy.W (exact dy): " "bf16 mixed products" "fp32 products: "; do
  check "report has '$line'" grep -qF -- "$line" <<<"$out"
done
check "MUSCLE_DNNL=0: our engine" grep -q '^bf16 engine: ours (MUSCLE_DNNL=0)' <<<"$(MUSCLE_DNNL=0 "$MUSCLE" info --cpu)"
dn=$(MUSCLE_DNNL=1 "$MUSCLE" info --cpu)
check "MUSCLE_DNNL=1: oneDNN, its implementation named" grep -qE "^bf16 forward x.W\\^T, m > $SM: (brg|gemm|ref)[^ ]*:" <<<"$dn"
check "MUSCLE_DNNL=1: the engine line says so" grep -q '^bf16 engine: oneDNN (MUSCLE_DNNL=1)' <<<"$dn"
# frozen weights: reordered once into the layout oneDNN names, or (MUSCLE_DNNL_PACK=0) plain
check "MUSCLE_DNNL=1: weights reordered once, layout named" grep -qE "^bf16 forward x.W\\^T, m > $SM: .*, weights reordered once per weight into [A-Za-z0-9]+$" <<<"$dn"
check "MUSCLE_DNNL_PACK=0: plain weights" grep -qE "^bf16 forward x.W\\^T, m > $SM: .*plain weights re-packed by oneDNN every call" \
  <<<"$(MUSCLE_DNNL=1 MUSCLE_DNNL_PACK=0 "$MUSCLE" info --cpu)"
MUSCLE_DNNL=1 MUSCLE_DNNL_PACK=2 "$MUSCLE" info --cpu >"$TMP/out" 2>"$TMP/err"; rc=$?
good=0; [ "$rc" -eq 0 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "MUSCLE_DNNL_PACK=2 ignored" "$TMP/err" && good=1
check "MUSCLE_DNNL_PACK=2: one warning line, the default kept" [ "$good" = 1 ]
check "MUSCLE_KERNEL=portable caps the level" grep -q '^kernel level: portable' <<<"$(MUSCLE_KERNEL=portable "$MUSCLE" info --cpu)"
check "MUSCLE_KERNEL=portable: our engine" grep -q '^bf16 engine: ours' <<<"$(MUSCLE_KERNEL=portable "$MUSCLE" info --cpu)"
"$MUSCLE" info --cpu some/model >"$TMP/out" 2>"$TMP/err"; rc=$?
good=0; [ "$rc" -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- "--cpu takes no MODEL" "$TMP/err" && [ ! -s "$TMP/out" ] && good=1
check "info --cpu with a MODEL is a usage error (exit 2, one line, nothing on stdout)" [ "$good" = 1 ]
echo "1..$TAP_N"
