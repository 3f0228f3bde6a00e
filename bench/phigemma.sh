#!/usr/bin/env bash
# Phi and Gemma blocks (issue 13) against the Llama path at the same shapes ("15M": d 288,
# 6 layers, 6 heads, intermediate 768, vocabulary 512, fp32), through the command line:
#   full training  muscle pretrain --config (tokens/s of its log, batch 8 x 256)
#   LoRA training  muscle finetune on debian-section (tokens/s of its log)
#   scoring        muscle score of a 256-token text (wall time, best of REPEATS)
# Each family keeps its own parts at those shapes: Phi has no gate (2 MLP matrices instead of
# 3), one LayerNorm per layer, partial rotary 0.5; Gemma (here) 6 heads of 48 and ONE kv head
# (multi-query), GeGLU; so the work per token differs: the table gives it beside the ratio.
#   bench/phigemma.sh [REPEATS]     (holds the benchmark lock; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-1}"
S="${MUSCLE_SHARED:-../shared}"; TOK="$S/models/stories260K/tok512.bin"
make --no-print-directory -s all >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
common='"hidden_size": 288, "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 6,
 "max_position_embeddings": 512, "vocab_size": 512, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false'
mkdir -p "$T/llama" "$T/phi" "$T/gemma"
echo "{\"model_type\": \"llama\", $common, \"num_key_value_heads\": 6, \"rms_norm_eps\": 1e-5}" >"$T/llama/config.json"
echo "{\"model_type\": \"phi\", $common, \"num_key_value_heads\": 6, \"hidden_act\": \"gelu_new\", \"partial_rotary_factor\": 0.5, \"layer_norm_eps\": 1e-5}" >"$T/phi/config.json"
echo "{\"model_type\": \"gemma\", $common, \"num_key_value_heads\": 1, \"head_dim\": 48, \"hidden_act\": \"gelu_pytorch_tanh\", \"rms_norm_eps\": 1e-6}" >"$T/gemma/config.json"
head -c 600000 "$S/corpora/war-and-peace.txt" | tail -c 400000 >"$T/text.txt"
head -n 64 "$S/data/debian/debian-section.train.jsonl" >"$T/task.jsonl"
text=$(head -c 1100 "$S/corpora/war-and-peace.txt" | tail -c 440 | tr '\n' ' ')
exec 9>/tmp/muscle-bench.lock
flock 9
for fam in llama phi gemma; do
  for r in $(seq "$repeats"); do
    build/muscle pretrain --config "$T/$fam" --tokenizer "$TOK" --data "$T/text.txt" --out "$T/m-$fam" --steps 6 \
      --seq-len 256 --batch 8 --grad-accum 1 --val-frac 0 --quiet --seed 1
    /usr/bin/python3 -c "import json,sys; L=[json.loads(l) for l in open('$T/m-$fam/train_log.jsonl')]; print(json.dumps({'family':'$fam','task':'full','tokens_per_s':max(x.get('tokens_per_s',0) for x in L)}))" >>"$T/rows"
    rm -rf "$T/a-$fam"
    build/muscle finetune --model "$T/m-$fam" --task "$T/task.jsonl" --out "$T/a-$fam" --epochs 1 --batch 8 --grad-accum 1 \
      --seq-len 256 --quiet --seed 1 2>/dev/null
    /usr/bin/python3 -c "import json; L=[json.loads(l) for l in open('$T/a-$fam/train_log.jsonl')]; print(json.dumps({'family':'$fam','task':'lora','tokens_per_s':max(x.get('tokens_per_s',0) for x in L)}))" >>"$T/rows"
    t0=$(date +%s.%N); for i in 1 2 3 4 5; do build/muscle score --model "$T/m-$fam" --text "$text" >"$T/score.json"; done; t1=$(date +%s.%N)
    n=$(/usr/bin/python3 -c "import json; print(len(json.load(open('$T/score.json'))['tokens']))" 2>/dev/null || echo 0)
    /usr/bin/python3 -c "print('{\"family\":\"$fam\",\"task\":\"score\",\"tokens_per_s\":%.1f}' % (5 * $n / ($t1 - $t0)))" >>"$T/rows"
  done
done
flock -u 9
cat "$T/rows"
/usr/bin/python3 - "$T/rows" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
best = {}
for r in rows:
    k = (r["family"], r["task"])
    if k not in best or r["tokens_per_s"] > best[k]["tokens_per_s"]: best[k] = r
print("\n| family | full training tok/s | vs llama | LoRA training tok/s | vs llama | scoring (CLI, 5 calls) tok/s | vs llama |")
print("|---|---:|---:|---:|---:|---:|---:|")
for f in ("llama", "phi", "gemma"):
    cells = []
    for t in ("full", "lora", "score"):
        v, l = best[(f, t)]["tokens_per_s"], best[("llama", t)]["tokens_per_s"]
        cells += ["%.0f" % v, "%.2f" % (v / l)]
    print("| %s | %s |" % (f, " | ".join(cells)))
PY
