#!/usr/bin/env bash
# Memory of a bf16 model (issue 20, "weights reordered once"): peak RSS (/usr/bin/time -v)
# of `muscle score` (one text of ~600 tokens: every product above 64 rows) and `muscle
# eval` (debian-section, 8 instances) on a random-weight "110M" Llama (dim 768, 12 layers,
# hidden 2048, untied 32000-word classifier: 134M parameters, 268 MB of bf16) written as a
# bf16 safetensors folder in $TMP (python3-torch; the Llama 2 tokenizer read from ../shared),
# then as a bf16 GGUF (muscle export gguf). Variants, one after another:
#   oneDNN: the default here (weights reordered once for oneDNN)
#   oneDNN, plain: MUSCLE_DNNL_PACK=0 (oneDNN re-packs the plain layout every call)
#   ours: MUSCLE_DNNL=0 (our GEMM, packed panels built on first use)
#   before: PREV=a build folder of an older checkout (its muscle), optional
#   bench/memory.sh            PREV=/tmp/prev/build bench/memory.sh
# Holds /tmp/muscle-bench.lock. Prints a markdown table with the seconds each run took.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory -s all >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
dir="${TMPDIR:-/tmp}/muscle-bench-110m-bf16"
tok=../shared/models/llama2-tokenizer/llama2_tokenizer.model
[ -f "$tok" ] || { echo "bench/memory.sh: $tok is missing (../shared)" >&2; exit 1; }
if [ ! -f "$dir/model.safetensors" ]; then
  mkdir -p "$dir"
  /usr/bin/python3 - "$dir" <<'PY'
import json, struct, sys, torch
d = sys.argv[1]
dim, layers, heads, hidden, vocab = 768, 12, 12, 2048, 32000
g = torch.Generator().manual_seed(1234)
names = [("model.embed_tokens.weight", (vocab, dim)), ("lm_head.weight", (vocab, dim)), ("model.norm.weight", (dim,))]
for l in range(layers):
    p = f"model.layers.{l}."
    names += [(p + "input_layernorm.weight", (dim,)), (p + "post_attention_layernorm.weight", (dim,))]
    names += [(p + f"self_attn.{x}_proj.weight", (dim, dim)) for x in "qkvo"]
    names += [(p + "mlp.gate_proj.weight", (hidden, dim)), (p + "mlp.up_proj.weight", (hidden, dim)),
              (p + "mlp.down_proj.weight", (dim, hidden))]
header, blobs, off = {}, [], 0
for n, shape in names:
    t = torch.ones(shape) if len(shape) == 1 else torch.randn(shape, generator=g) * 0.02
    b = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    header[n] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(f"{d}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs:
        f.write(b)
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "hidden_size": dim,
       "intermediate_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
       "num_key_value_heads": heads, "vocab_size": vocab, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5,
       "rope_theta": 10000.0, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
       "torch_dtype": "bfloat16"}
json.dump(cfg, open(f"{d}/config.json", "w"), indent=1)
PY
  ln -sf "$(realpath "$tok")" "$dir/tokenizer.model"
fi
[ -f "$dir.gguf" ] || build/muscle export gguf --model "$dir" --dtype bf16 --out "$dir.gguf" --quiet >/dev/null
text=$(head -c 2600 ../shared/corpora/war-and-peace.txt | tr '\n' ' ')
out=$(mktemp)
exec 9>/tmp/muscle-bench.lock
flock 9
measure() { # label, env, muscle binary, model, command
  local label=$1 envs=$2 bin=$3 model=$4 what=$5 log rc=0
  log=$(mktemp)
  if [ "$what" = score ]; then
    env $envs /usr/bin/time -v "$bin" score --model "$model" --bf16 --text "$text" >/dev/null 2>"$log" || rc=$?
  else
    env $envs /usr/bin/time -v "$bin" eval --model "$model" --bf16 --task ../shared/data/debian/debian-section.test.jsonl \
        --limit 8 --out "$log.preds" --quiet >/dev/null 2>"$log" || rc=$?
  fi
  [ "$rc" = 0 ] || { echo "bench/memory.sh: $label $what failed:" >&2; tail -3 "$log" >&2; }
  local kb s
  kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  s=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
  echo "| $what | $(basename "$model") | $label | $((kb / 1024)) | $s |" | tee -a "$out"
  rm -rf "$log" "$log.preds"
}
for model in "$dir" "$dir.gguf"; do for what in score eval; do
  measure "oneDNN, reordered once" "" build/muscle "$model" "$what"
  measure "oneDNN, plain (MUSCLE_DNNL_PACK=0)" "MUSCLE_DNNL_PACK=0" build/muscle "$model" "$what"
  measure "ours (MUSCLE_DNNL=0)" "MUSCLE_DNNL=0" build/muscle "$model" "$what"
  [ -n "${PREV:-}" ] && measure "before (PREV)" "" "$PREV/muscle" "$model" "$what"
done; done
flock -u 9
echo
echo "CPU flags: $(grep -o 'amx_bf16\|amx_tile\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')load: $(uptime | sed 's/.*load average: //')"
echo "| command | model | variant | peak RSS MB | wall time |"
echo "|---|---|---|---:|---:|"
cat "$out"
rm -f "$out"
