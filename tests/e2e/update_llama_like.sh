#!/usr/bin/env bash
# Llama-like update pairs with a byte-level BPE tokenizer, end to end (issue 12): for each
# family, two tiny models built by muscle from a config.json with that family's real keys and
# a GPT-2-style tokenizer.json (ByteLevel pre-tokenizer and decoder; tests/e2e/xtok_bpe.py
# learns its merges from War and Peace): v1 pretrained from random weights on one part of the
# text, v2 = v1 pretrained further on another part; an old task adapter (PEFT names of the
# Llama projections) on v1; `muscle update` to v2 on a small multiple-choice task
# (debian-section) writes its report with NFR. Families (FAMILIES, default both):
#   smollm  SmolLM/SmolLM2: model_type llama, tied embeddings, GQA, rope_theta 1e5
#   qwen2   Qwen2/2.5: model_type qwen2, biases on q, k, v (trained: checked non-zero)
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
WP="$SHARED/corpora/war-and-peace.txt"; D="$SHARED/data/debian"
need "$WP" && need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
head -c 400000 "$WP" | tail -c 300000 >"$TMP/wp1.txt"
head -c 800000 "$WP" | tail -c 300000 >"$TMP/wp2.txt"
python3 tests/e2e/xtok_bpe.py "$TMP/wp1.txt" 200 "$TMP/tokenizer.json"
NV=$(python3 -c "import json; print(len(json.load(open('$TMP/tokenizer.json'))['model']['vocab']))")
BOS=$((NV - 1))
check "a GPT-2-style byte-level BPE tokenizer.json of $NV pieces is written" test "$NV" -gt 400
head -n 64 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
head -n 32 "$D/debian-section.test.jsonl" >"$TMP/sec.test.jsonl"
PRE=(--steps 40 --seq-len 128 --batch 8 --grad-accum 1 --lr 3e-3 --quiet)
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 3e-3 --seq-len 128 --quiet)

config() { # config FAMILY: its config.json (the keys the published configs carry)
  case "$1" in
  smollm) cat <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "hidden_size": 64,
 "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 100000.0, "rope_scaling": null,
 "attention_bias": false, "attention_dropout": 0.0, "mlp_bias": false, "pretraining_tp": 1,
 "tie_word_embeddings": true, "vocab_size": $NV, "bos_token_id": $BOS, "eos_token_id": $BOS,
 "initializer_range": 0.02, "use_cache": true, "torch_dtype": "float32"}
JSON
  ;;
  qwen2) cat <<JSON
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu", "hidden_size": 64,
 "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "rope_scaling": null,
 "use_sliding_window": false, "sliding_window": 256, "max_window_layers": 2, "attention_dropout": 0.0,
 "tie_word_embeddings": true, "vocab_size": $NV, "bos_token_id": $BOS, "eos_token_id": $BOS,
 "initializer_range": 0.02, "use_cache": true, "torch_dtype": "float32"}
JSON
  ;;
  esac
}

for F in ${FAMILIES:-smollm qwen2}; do
  W="$TMP/$F"; mkdir -p "$W/cfg"
  config "$F" >"$W/cfg/config.json"
  mt=$(python3 -c "import json; print(json.load(open('$W/cfg/config.json'))['model_type'])")
  $MUSCLE pretrain --config "$W/cfg" --tokenizer "$TMP/tokenizer.json" --data "$TMP/wp1.txt" --out "$W/v1" --seed 1 "${PRE[@]}" 2>"$W/e1"; rc=$?
  [ $rc -ne 0 ] && sed 's/^/# /' "$W/e1" | tail -3
  check "$F: pretrain --config ($mt config.json, byte-level BPE tokenizer.json) trains v1" test $rc -eq 0 -a -s "$W/v1/model.safetensors"
  $MUSCLE pretrain --model "$W/v1" --data "$TMP/wp2.txt" --out "$W/v2" --seed 2 "${PRE[@]}" 2>"$W/e2"; rc=$?
  [ $rc -ne 0 ] && sed 's/^/# /' "$W/e2" | tail -3
  check "$F: pretrain --model v1 continues it into v2" test $rc -eq 0 -a -s "$W/v2/model.safetensors"
  check "$F: v1 and v2 are $mt folders with the tokenizer.json, tied embeddings, held-out loss lowered" /usr/bin/python3 -c "
import json, struct, array, sys
for v in ('v1', 'v2'):
    d = '$W/' + v
    c = json.load(open(d + '/config.json')); assert c['model_type'] == '$mt' and c['vocab_size'] == $NV, c
    t = json.load(open(d + '/tokenizer.json')); assert t['pre_tokenizer']['type'] == 'ByteLevel' and t['model']['type'] == 'BPE'
    L = [json.loads(l) for l in open(d + '/train_log.jsonl')]; x = [r['val_loss'] for r in L if 'val_loss' in r]
    print('# $F %s held-out loss %.3f -> %.3f' % (v, x[0], x[-1])); assert x[-1] < x[0]
    b = open(d + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    assert 'lm_head.weight' not in h, 'tied: no lm_head'
    if '$F' == 'qwen2':
        for k in ('model.layers.0.self_attn.q_proj.bias', 'model.layers.1.self_attn.k_proj.bias', 'model.layers.1.self_attn.v_proj.bias'):
            s, e = h[k]['data_offsets']; assert max(abs(q) for q in array.array('f', b[8 + n + s:8 + n + e])) > 0, k
    else:
        assert not any(k.endswith('.bias') for k in h), 'llama: no biases'
"
  $MUSCLE info "$W/v2" >"$W/info" 2>&1
  check "$F: muscle info reads v2 as $mt with the tied classifier and the $NV-piece tokenizer.json" bash -c "
grep -q '^arch: *$mt, dim 64' '$W/info' && grep -q '^classifier: *tied' '$W/info' && grep -q '^tokenizer: *tokenizer.json, $NV pieces' '$W/info'"
  $MUSCLE finetune --model "$W/v1" --task "$TMP/sec.train.jsonl" --out "$W/a1" --seed 1 "${TR[@]}" 2>"$W/e3"; rc=$?
  [ $rc -ne 0 ] && sed 's/^/# /' "$W/e3" | tail -3
  check "$F: the old task adapter trains on v1, with the Llama projections' PEFT names" /usr/bin/python3 -c "
import json; c = json.load(open('$W/a1/adapter_config.json')); t = sorted(c['target_modules'])
print('# $F target_modules', t); assert set(t) <= {'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'} and 'q_proj' in t, t"
  $MUSCLE update --old-model "$W/v1" --old-adapter "$W/a1" --new-model "$W/v2" --task-train "$TMP/sec.train.jsonl" \
      --task-test "$TMP/sec.test.jsonl" --out "$W/run" --methods muscle,choice --epochs 1 --batch 8 --seq-len 128 \
      --bootstrap 200 --quiet >"$W/u.out" 2>"$W/u.err"; rc=$?
  [ $rc -ne 0 ] && tail -5 "$W/u.err" | sed 's/^/# /'
  check "$F: muscle update runs end to end on the pair" test $rc -eq 0 -a -s "$W/run/report.json" -a -s "$W/run/report.html"
  check "$F: report.json: M2 and both methods with accuracy and NFR on the 32 test instances" /usr/bin/python3 -c "
import json; r = json.load(open('$W/run/report.json')); t = r['tasks'][0]
names = [m['name'] for m in t['models']]; assert names == ['M2', 'muscle', 'choice'], names
for m in t['models']:
    s = m['stats']; print('# $F %-7s acc old %.3f new %.3f NFR %.3f [%.3f, %.3f]' % (m['name'], s['acc_old']['value'], s['acc_new']['value'], s['nfr']['value'], s['nfr']['lo'], s['nfr']['hi']))
    assert s['acc_old']['den'] == 32 and 0 <= s['nfr']['lo'] <= s['nfr']['value'] <= s['nfr']['hi'] <= 1"
  check "$F: every prediction file has the 32 instances" /usr/bin/python3 -c "
import json, glob
fs = sorted(glob.glob('$W/run/preds/*.jsonl')); assert len(fs) >= 4, fs
for f in fs:
    L = [json.loads(l) for l in open(f)]; assert len(L) == 32 and all(isinstance(x['correct'], bool) for x in L), f"
done
echo "1..$TAP_N"
