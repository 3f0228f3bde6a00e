#!/usr/bin/env bash
# A Phi-architecture update pair built by muscle, end to end (issue 13): two tiny Phi models
# (model_type phi: LayerNorm with bias, parallel attention and MLP, GELU fc1/fc2, partial
# rotary, biases) pretrained by `muscle pretrain`: v1 from a config.json with random weights
# on one part of War and Peace, v2 = v1 pretrained further on another part; an old task
# adapter (PEFT names q_proj, k_proj, v_proj, dense, fc1, fc2) on v1; `muscle update` to v2
# on a small multiple-choice task (debian-section) writes its report with NFR.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
. tests/e2e/lib.sh
TOK="$SHARED/models/stories260K/tok512.bin"; WP="$SHARED/corpora/war-and-peace.txt"; D="$SHARED/data/debian"
need "$TOK" && need "$WP" && need "$D/debian-section.train.jsonl" || { echo "1..$TAP_N"; exit 0; }
mkdir -p "$TMP/cfg"
cat >"$TMP/cfg/config.json" <<'JSON'
{"architectures": ["PhiForCausalLM"], "model_type": "phi", "hidden_act": "gelu_new", "hidden_size": 64,
 "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
 "partial_rotary_factor": 0.5, "layer_norm_eps": 1e-05, "max_position_embeddings": 256, "rope_theta": 10000.0,
 "qk_layernorm": false, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "tie_word_embeddings": false,
 "vocab_size": 512, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
JSON
head -c 400000 "$WP" | tail -c 300000 >"$TMP/wp1.txt"
head -c 800000 "$WP" | tail -c 300000 >"$TMP/wp2.txt"
PRE=(--steps 40 --seq-len 128 --batch 8 --grad-accum 1 --lr 3e-3 --quiet)
$MUSCLE pretrain --config "$TMP/cfg" --tokenizer "$TOK" --data "$TMP/wp1.txt" --out "$TMP/v1" --seed 1 "${PRE[@]}" 2>"$TMP/e1"; rc=$?
[ $rc -ne 0 ] && sed 's/^/# /' "$TMP/e1" | tail -3
check "pretrain --config (a Phi config.json) trains a new Phi model" test $rc -eq 0 -a -s "$TMP/v1/model.safetensors"
$MUSCLE pretrain --model "$TMP/v1" --data "$TMP/wp2.txt" --out "$TMP/v2" --seed 2 "${PRE[@]}" 2>"$TMP/e2"; rc=$?
[ $rc -ne 0 ] && sed 's/^/# /' "$TMP/e2" | tail -3
check "pretrain --model v1 continues it into v2" test $rc -eq 0 -a -s "$TMP/v2/model.safetensors"
check "v1 and v2 are Phi folders whose pretraining lowered the held-out loss, biases trained" /usr/bin/python3 -c "
import json, struct, array
for v in ('v1', 'v2'):
    c = json.load(open('$TMP/%s/config.json' % v)); assert c['model_type'] == 'phi' and c['partial_rotary_factor'] == 0.5, c
    L = [json.loads(l) for l in open('$TMP/%s/train_log.jsonl' % v)]; x = [r['val_loss'] for r in L if 'val_loss' in r]
    print('# %s held-out loss %.3f -> %.3f' % (v, x[0], x[-1])); assert x[-1] < x[0]
    b = open('$TMP/%s/model.safetensors' % v, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    for k in ('lm_head.bias', 'model.final_layernorm.bias', 'model.layers.1.mlp.fc2.bias', 'model.layers.0.input_layernorm.bias'):
        s, e = h[k]['data_offsets']; assert max(abs(t) for t in array.array('f', b[8 + n + s:8 + n + e])) > 0, k
"
head -n 64 "$D/debian-section.train.jsonl" >"$TMP/sec.train.jsonl"
head -n 32 "$D/debian-section.test.jsonl" >"$TMP/sec.test.jsonl"
TR=(--epochs 1 --batch 8 --grad-accum 1 --lr 3e-3 --seq-len 128 --quiet)
$MUSCLE finetune --model "$TMP/v1" --task "$TMP/sec.train.jsonl" --out "$TMP/a1" --seed 1 "${TR[@]}" 2>"$TMP/e3"; rc=$?
[ $rc -ne 0 ] && sed 's/^/# /' "$TMP/e3" | tail -3
check "the old task adapter trains on v1, with Phi's PEFT module names" /usr/bin/python3 -c "
import json; c = json.load(open('$TMP/a1/adapter_config.json')); t = sorted(c['target_modules'])
print('# target_modules', t); assert t == sorted(['q_proj', 'k_proj', 'v_proj', 'dense', 'fc1', 'fc2']), t"
$MUSCLE update --old-model "$TMP/v1" --old-adapter "$TMP/a1" --new-model "$TMP/v2" --task-train "$TMP/sec.train.jsonl" \
    --task-test "$TMP/sec.test.jsonl" --out "$TMP/run" --methods muscle,choice --epochs 1 --batch 8 --seq-len 128 \
    --bootstrap 200 --quiet >"$TMP/u.out" 2>"$TMP/u.err"; rc=$?
[ $rc -ne 0 ] && tail -5 "$TMP/u.err" | sed 's/^/# /'
check "muscle update runs end to end on the Phi pair" test $rc -eq 0 -a -s "$TMP/run/report.json" -a -s "$TMP/run/report.html"
check_update_report phi "$TMP/run" 32
echo "1..$TAP_N"
