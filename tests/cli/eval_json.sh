#!/usr/bin/env bash
# muscle eval's summary line is JSON made by cJSON: paths with quotes, backslashes and
# non-ASCII letters come out escaped and read back as given; numbers keep their precision.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
V1="$SHARED/models/stories260K/stories260K.bin"
need "$V1" || { echo "1..$TAP_N"; exit 0; }
D="$TMP/we\"ird\\dir é"
mkdir -p "$D"
head -n 6 "$SHARED/data/debian/debian-section.test.jsonl" >"$D/t\"est.jsonl"
$MUSCLE eval --model "$V1" --task "$D/t\"est.jsonl" --out "$D/p\"reds.jsonl" --quiet >"$TMP/sum" 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && sed 's/^/# /' "$TMP/err"
check "eval with quotes and backslashes in its paths exits 0" test $rc -eq 0
check "the summary is one line of JSON that gives the paths back as given" /usr/bin/python3 -c "
import json, sys
lines = open('$TMP/sum', encoding='utf-8').read().splitlines(); assert len(lines) == 1, lines
j = json.loads(lines[0]); d = sys.argv[1]
assert j['task'] == d + '/t\"est.jsonl' and j['preds'] == d + '/p\"reds.jsonl' and j['adapter'] is None, j
assert j['n'] == 6 and j['kind'] == 'multiple_choice' and 0 <= j['acc'] <= 1, j
assert '\"acc\":%.6f' % j['acc'] in lines[0], lines[0]  # six decimals, as always" "$D"
echo "1..$TAP_N"
