#!/usr/bin/env bash
# Llama-like update pairs with a byte-level BPE tokenizer, end to end (issue 12): for each
# family, two tiny models built by muscle from a config.json with that family's real keys and
# a GPT-2-style tokenizer.json (ByteLevel pre-tokenizer and decoder; tests/e2e/xtok_bpe.py
# learns its merges from War and Peace): v1 pretrained from random weights on one part of the
# text, v2 = v1 pretrained further on another part; an old task adapter (PEFT names of the
# Llama projections) on v1; `muscle update` to v2 on a small multiple-choice task
# (debian-section) writes its report with NFR. Families (FAMILIES, default all six; configs
# from the PyTorch fixtures' config.json, resized):
#   smollm2  SmolLM/SmolLM2: model_type llama, tied embeddings, GQA, rope_theta 1e5
#   llama3   Llama 3.x: rope_scaling llama3, eos_token_id list, untied
#   mistral  sliding_window 48 < the 128-token rows (honoured in training and scoring)
#   qwen2    Qwen2/2.5: biases on q, k, v (trained: checked non-zero), linear rope scaling, tied
#   qwen3    per-head q/k RMSNorm (trained: checked != 1), head_dim 32 != 64/4
#   gemma    (1 + w) RMSNorm, GeGLU, multi-query, head_dim 32, tied (not Llama-like, same path)
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
. tests/e2e/lib.sh
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

config() { # config FAMILY: the family's config.json of the PyTorch fixtures (its real keys,
  # tests/fixtures/model/families/), resized: 64 wide, 2 layers, the BPE vocabulary
  python3 - "$1" "$NV" "$BOS" <<'PY'
import json, sys
f, nv, bos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = json.load(open('tests/fixtures/model/families/%s/config.json' % f))
c.update(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=256,
         vocab_size=nv, bos_token_id=bos, eos_token_id=[bos] if isinstance(c['eos_token_id'], list) else bos)
if 'head_dim' in c: c['head_dim'] = 16 if f == 'llama3' else 32  # qwen3, gemma: head_dim != hidden / heads
if f == 'mistral': c['sliding_window'] = 48                      # shorter than --seq-len 128: honoured
c.pop('pad_token_id', None)
json.dump(c, sys.stdout, indent=1)
PY
}

for F in ${FAMILIES:-smollm2 llama3 mistral qwen2 qwen3 gemma}; do
  W="$TMP/$F"; mkdir -p "$W/cfg"
  config "$F" >"$W/cfg/config.json"
  mt=$(python3 -c "import json; print(json.load(open('$W/cfg/config.json'))['model_type'])")
  $MUSCLE pretrain --config "$W/cfg" --tokenizer "$TMP/tokenizer.json" --data "$TMP/wp1.txt" --out "$W/v1" --seed 1 "${PRE[@]}" 2>"$W/e1"; rc=$?
  [ $rc -ne 0 ] && sed 's/^/# /' "$W/e1" | tail -3
  check "$F: pretrain --config ($mt config.json, byte-level BPE tokenizer.json) trains v1" test $rc -eq 0 -a -s "$W/v1/model.safetensors"
  $MUSCLE pretrain --model "$W/v1" --data "$TMP/wp2.txt" --out "$W/v2" --seed 2 "${PRE[@]}" 2>"$W/e2"; rc=$?
  [ $rc -ne 0 ] && sed 's/^/# /' "$W/e2" | tail -3
  check "$F: pretrain --model v1 continues it into v2" test $rc -eq 0 -a -s "$W/v2/model.safetensors"
  check "$F: v1 and v2 are $mt folders with the tokenizer.json, the family's tensors, held-out loss lowered" /usr/bin/python3 -c "
import json, struct, array
for v in ('v1', 'v2'):
    d = '$W/' + v
    c = json.load(open(d + '/config.json')); assert c['model_type'] == '$mt' and c['vocab_size'] == $NV, c
    t = json.load(open(d + '/tokenizer.json')); assert t['pre_tokenizer']['type'] == 'ByteLevel' and t['model']['type'] == 'BPE'
    L = [json.loads(l) for l in open(d + '/train_log.jsonl')]; x = [r['val_loss'] for r in L if 'val_loss' in r]
    print('# $F %s held-out loss %.3f -> %.3f' % (v, x[0], x[-1])); assert x[-1] < x[0]
    b = open(d + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    def vals(k): s, e = h[k]['data_offsets']; return array.array('f', b[8 + n + s:8 + n + e])
    tied = c.get('tie_word_embeddings', '$mt' == 'gemma')
    assert ('lm_head.weight' in h) != tied, 'lm_head present iff untied'
    biases = sorted(k for k in h if k.endswith('.bias'))
    if '$F' == 'qwen2':
        assert len(biases) == 6 and all(max(abs(q) for q in vals(k)) > 0 for k in biases), biases
    else:
        assert not biases, biases
    if '$F' == 'qwen3':
        assert any(q != 1 for q in vals('model.layers.1.self_attn.k_norm.weight')), 'k_norm trained'
"
  $MUSCLE info "$W/v2" >"$W/info" 2>&1
  read -r tied hd < <(python3 -c "
import json; c = json.load(open('$W/v2/config.json'))
print(int(c.get('tie_word_embeddings', c['model_type'] == 'gemma')), c.get('head_dim', 16))")
  check "$F: muscle info reads v2 as $mt (head dim $hd, tied $tied) with the $NV-piece tokenizer.json" bash -c "
grep -q '^arch: *$mt, dim 64, .*head dim $hd)' '$W/info' && grep -q '^tokenizer: *tokenizer.json, $NV pieces' '$W/info' &&
if [ $tied = 1 ]; then grep -q '^classifier: *tied' '$W/info'; else ! grep -q '^classifier: *tied' '$W/info'; fi"
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
  check_update_report "$F" "$W/run" 32
done
echo "1..$TAP_N"
