#!/usr/bin/env bash
# Every output parses (issue 17, defect 5): eval, compare --flips, report, generate and
# generate --prompts on the shipped models, every .json/.jsonl/.html/.md/.csv they write
# (and generate's stdout) decoded with Python's strict UTF-8 decoder, JSON and JSON lines
# with json.loads. Sampling at a high temperature makes byte-fallback tokens end mid-character.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K/stories260K.bin"
D="$SHARED/data/debian"
need "$S260" && need "$D/debian-sum.test.jsonl" || { echo "1..$TAP_N"; exit 0; }
O="$TMP/out"; mkdir -p "$O"
head -n 6 "$D/debian-sum.test.jsonl" >"$TMP/sum.jsonl"
head -n 6 "$D/debian-section.test.jsonl" >"$TMP/sec.jsonl"
$MUSCLE eval --model "$S260" --task "$TMP/sum.jsonl" --out "$O/sum.preds.jsonl" --max-tokens 24 >"$O/sum.eval.json" 2>/dev/null
$MUSCLE eval --model "$S260" --task "$TMP/sec.jsonl" --out "$O/sec.preds.jsonl" >"$O/sec.eval.json" 2>/dev/null
$MUSCLE compare "$O/sum.preds.jsonl" "$O/sum.preds.jsonl" --flips "$O/flips.jsonl" --json >"$O/compare.json" 2>/dev/null
printf '{"title":"t","tasks":[{"name":"sec","kind":"mc","old":"%s","new":{"name":"M2","preds":["%s"]},"methods":[]}]}\n' \
  "$O/sec.preds.jsonl" "$O/sec.preds.jsonl" >"$TMP/man.json"
$MUSCLE report "$TMP/man.json" --out "$O/rep" --bootstrap 0 >/dev/null 2>&1
printf '"\\u00e9t\\u00e9"\n{"id":"x","prompt":"Once"}\n' >"$TMP/prompts.jsonl"
$MUSCLE generate --model "$S260" --prompts "$TMP/prompts.jsonl" --out "$O/gen.jsonl" --max-tokens 48 --temperature 5 --seed 3 --quiet 2>/dev/null
for seed in 1 2 3 4 5 6; do
  $MUSCLE generate --model "$S260" --prompt "Once" --max-tokens 64 --temperature 8 --seed $seed >"$O/gen.$seed.txt" 2>/dev/null
done
n=$(find "$O" -type f | wc -l)
check "the commands wrote their outputs ($n files)" test "$n" -ge 14
check "every output file is valid UTF-8 (JSON and JSON lines parse)" python3 -c "
import json, os, sys
bad = []
for dp, _, fs in os.walk('$O'):
    for f in fs:
        p = os.path.join(dp, f)
        try:
            t = open(p, encoding='utf-8', errors='strict').read()
            if f.endswith('.jsonl'):
                for l in t.splitlines():
                    if l.strip(): json.loads(l)
            elif f.endswith('.json'):
                json.loads(t)
        except Exception as e:
            bad.append('%s: %s' % (f, e))
for b in bad: print('#', b)
sys.exit(1 if bad else 0)"
check "the sampled texts reached U+FFFD at least once (byte-fallback cut mid-character)" \
  bash -c "cat '$O'/gen.*.txt '$O/gen.jsonl' '$O/sum.preds.jsonl' | grep -q \$'\\xef\\xbf\\xbd'"
# eval's summary names its paths through cJSON: a '"' and a '\' in a path stay valid JSON
Q="$TMP/q\"x\\é"; mkdir -p "$Q"
head -n 2 "$TMP/sec.jsonl" >"$Q/t.jsonl"
$MUSCLE eval --model "$S260" --task "$Q/t.jsonl" --out "$Q/p.jsonl" >"$TMP/q.json" 2>/dev/null
check "eval's summary with '\"' and '\\' in the paths parses and names them exactly" python3 -c "
import json, sys
d = json.load(open(sys.argv[1], encoding='utf-8'))
sys.exit(0 if d['task'] == sys.argv[2] + '/t.jsonl' and d['preds'] == sys.argv[2] + '/p.jsonl' else 1)" "$TMP/q.json" "$Q"
# score: a log-prob that is not finite (a model whose lm_head is 1e38 everywhere) is null, never
# nan/inf, so strict JSON readers parse the line
cp -r tests/fixtures/model/tiny_hf "$TMP/huge"
python3 - "$TMP/huge/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
s, e = h['lm_head.weight']['data_offsets']
for i in range(8 + n + s, 8 + n + e, 4): b[i:i + 4] = struct.pack('<f', 1e38)
open(p, 'wb').write(b)
PY
$MUSCLE score --model "$TMP/huge" --text "hello world" >"$TMP/score.json" 2>/dev/null
check "score of a model with non-finite log-probs prints strict JSON (null, not nan)" python3 -c "
import json, sys
def bad(c): raise ValueError('non-standard constant ' + c)
d = json.loads(open(sys.argv[1], encoding='utf-8').read(), parse_constant=bad)
sys.exit(0 if None in d['logprobs'][1:] and d['total_logprob'] is None else 1)" "$TMP/score.json"
echo "1..$TAP_N"
