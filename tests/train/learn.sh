#!/usr/bin/env bash
# muscle pretrain / finetune on real data: continuing stories260K's pretraining on War and
# Peace for a few dozen steps lowers its held-out loss on that text, and so does a LoRA
# adapter trained the same way; the written folders load again (the saved model scores a
# held-out passage better than the original, generate --adapter changes the output); a new
# model trained from scratch (random weights) learns too and loads as a Hugging Face folder.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K"
WP="$SHARED/corpora/war-and-peace.txt"
need "$S260/stories260K.bin" && need "$WP" || { 
# a shape from a config.json, a separate held-out file, epochs instead of steps
mkdir -p "$TMP/cfg"
echo '{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
  "vocab_size": 512, "max_position_embeddings": 64, "tie_word_embeddings": true}' >"$TMP/cfg/config.json"
head -c 20000 "$WP" >"$TMP/train.txt"; tail -c 5000 "$WP" >"$TMP/val.txt"
$MUSCLE pretrain --config "$TMP/cfg/config.json" --tokenizer "$S260/tok512.bin" --data "$TMP/train.txt" --val "$TMP/val.txt" \
  --epochs 2 --batch 8 --grad-accum 1 --seq-len 32 --lr 1e-2 --out "$TMP/cfgrun" --quiet
check "pretrain --config --val --epochs: 2 epochs of steps, the whole held-out file, loss falls" /usr/bin/python3 -c "
import json, math; r=json.load(open('$TMP/cfgrun/training.json')); L=[json.loads(l) for l in open('$TMP/cfgrun/train_log.jsonl')]
assert r['steps'] == math.ceil(2 * r['train_examples'] / 8), r
assert r['val'].endswith('val.txt') and r['val_tokens'] > 1000 and L[-1]['val_tokens'] == r['val_tokens'] - 1
assert 1.9 < L[-1]['epoch'] <= 2.1 and r['val_loss'] < r['start_val_loss'] - 0.5, (L[-1], r)
print('# config.json model: %d steps, held-out loss %.3f -> %.3f' % (r['steps'], r['start_val_loss'], r['val_loss']))"
echo "1..$TAP_N"; exit 0; }
py() { /usr/bin/python3 -c "$@"; }
# the held-out split is the last 5% of the corpus' tokens; validation on its first 32 windows
RUN="--data $WP --steps 30 --batch 4 --grad-accum 1 --seq-len 128 --lr 1e-3 --val-max 32 --eval-every 10 --quiet"

$MUSCLE pretrain --model "$S260/stories260K.bin" --out "$TMP/pre" $RUN 2>"$TMP/err"
check "pretrain: Hugging Face folder, tokenizer, log, record and checkpoint written" \
  test -s "$TMP/pre/config.json" -a -s "$TMP/pre/model.safetensors" -a -s "$TMP/pre/tokenizer.bin" \
       -a -s "$TMP/pre/train_log.jsonl" -a -s "$TMP/pre/training.json" -a -s "$TMP/pre/checkpoint/state.safetensors"
check "pretrain: held-out loss falls by more than 0.5" py "
import json; r=json.load(open('$TMP/pre/training.json')); a,b=r['start_val_loss'],r['val_loss']
print('# pretrain held-out loss %.4f -> %.4f (%.4f)' % (a, b, b - a)); assert b < a - 0.5"
check "pretrain: log has step 0 (val_loss) and one line per step with its fields" py "
import json; L=[json.loads(l) for l in open('$TMP/pre/train_log.jsonl')]
assert [l['step'] for l in L] == list(range(31)) and 'val_loss' in L[0] and 'loss' not in L[0]
for l in L[1:]: assert all(k in l for k in ('epoch','loss','lr','grad_norm','tokens_per_s')), l
assert [l['step'] for l in L if 'val_loss' in l] == [0, 10, 20, 30]
assert L[1]['lr'] < L[2]['lr'] and L[-1]['lr'] < L[10]['lr']   # warm-up, then decay"
# an independent check of the saved weights: a passage from the held-out end of the book
tail -c 400 "$WP" | tr '\n' ' ' >"$TMP/passage.txt"
$MUSCLE score --model "$S260/stories260K.bin" --text "$(cat "$TMP/passage.txt")" >"$TMP/s0.json"
$MUSCLE score --model "$TMP/pre" --text "$(cat "$TMP/passage.txt")" >"$TMP/s1.json"
check "pretrain: the saved model gives a held-out passage a higher log-likelihood" py "
import json; a=json.load(open('$TMP/s0.json')); b=json.load(open('$TMP/s1.json'))
print('# passage: %d tokens, mean log-prob %.4f -> %.4f' % (a['n_tokens'], a['total_logprob']/a['n_tokens'], b['total_logprob']/b['n_tokens']))
assert b['total_logprob'] > a['total_logprob']"

$MUSCLE finetune --model "$S260/stories260K.bin" --out "$TMP/ft" $RUN 2>"$TMP/err"
check "finetune: PEFT folder written" test -s "$TMP/ft/adapter_config.json" -a -s "$TMP/ft/adapter_model.safetensors"
check "finetune: held-out loss falls by more than 0.3" py "
import json; r=json.load(open('$TMP/ft/training.json')); a,b=r['start_val_loss'],r['val_loss']
print('# LoRA held-out loss %.4f -> %.4f (%.4f)' % (a, b, b - a)); assert b < a - 0.3"
check "finetune: rank 8, alpha 16, all linear layers, training settings in the metadata" py "
import json, struct
c=json.load(open('$TMP/ft/adapter_config.json'))
assert c['r']==8 and c['lora_alpha']==16 and len(c['target_modules'])==7, c
f=open('$TMP/ft/adapter_model.safetensors','rb'); n=struct.unpack('<Q', f.read(8))[0]; h=json.loads(f.read(n))
t=json.loads(h['__metadata__']['muscle.training']); assert t['command']=='finetune' and t['settings']['lr']=='0.001', t"
$MUSCLE score --model "$S260/stories260K.bin" --adapter "$TMP/ft" --text "$(cat "$TMP/passage.txt")" >"$TMP/s2.json"
check "finetune: base + adapter gives the held-out passage a higher log-likelihood" py "
import json; a=json.load(open('$TMP/s0.json')); b=json.load(open('$TMP/s2.json'))
print('# passage with the adapter: mean log-prob %.4f -> %.4f' % (a['total_logprob']/a['n_tokens'], b['total_logprob']/b['n_tokens']))
assert b['total_logprob'] > a['total_logprob']"
$MUSCLE generate --model "$S260/stories260K.bin" --max-tokens 40 >"$TMP/g0.txt"
$MUSCLE generate --model "$S260/stories260K.bin" --adapter "$TMP/ft" --max-tokens 40 >"$TMP/g1.txt"
check "generate --adapter loads the trained adapter and changes the output" test -s "$TMP/g1.txt" -a -n "$(cmp -s "$TMP/g0.txt" "$TMP/g1.txt" || echo differ)"
sed 's/^/# without: /' "$TMP/g0.txt" | head -2; sed 's/^/# adapter: /' "$TMP/g1.txt" | head -2

# from scratch: random weights of a given shape, the stories260K tokenizer
$MUSCLE pretrain --dim 32 --layers 2 --heads 4 --kv-heads 2 --hidden 96 --tokenizer "$S260/tok512.bin" \
  --data "$WP" --out "$TMP/new" --steps 20 --batch 4 --grad-accum 1 --seq-len 64 --lr 1e-2 --val-max 16 --quiet
check "pretrain from scratch: loss falls from about ln(512) = 6.24 by more than 1" py "
import json; r=json.load(open('$TMP/new/training.json')); a,b=r['start_val_loss'],r['val_loss']
print('# new model held-out loss %.4f -> %.4f' % (a, b)); assert abs(a - 6.24) < 0.3 and b < a - 1"
$MUSCLE info "$TMP/new" --json >"$TMP/info.json"
check "pretrain from scratch: the folder loads (shape, vocabulary and context as asked)" py "
import json; i=json.load(open('$TMP/info.json'))
assert (i['dim'],i['n_layers'],i['n_heads'],i['n_kv_heads'],i['hidden_dim'],i['vocab_size'],i['seq_len'])==(32,2,4,2,96,512,64), i
assert i['tokenizer'] is not None"

# a shape from a config.json, a separate held-out file, epochs instead of steps
mkdir -p "$TMP/cfg"
echo '{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
  "vocab_size": 512, "max_position_embeddings": 64, "tie_word_embeddings": true}' >"$TMP/cfg/config.json"
head -c 20000 "$WP" >"$TMP/train.txt"; tail -c 5000 "$WP" >"$TMP/val.txt"
$MUSCLE pretrain --config "$TMP/cfg/config.json" --tokenizer "$S260/tok512.bin" --data "$TMP/train.txt" --val "$TMP/val.txt" \
  --epochs 2 --batch 8 --grad-accum 1 --seq-len 32 --lr 1e-2 --out "$TMP/cfgrun" --quiet
check "pretrain --config --val --epochs: 2 epochs of steps, the whole held-out file, loss falls" /usr/bin/python3 -c "
import json, math; r=json.load(open('$TMP/cfgrun/training.json')); L=[json.loads(l) for l in open('$TMP/cfgrun/train_log.jsonl')]
assert r['steps'] == math.ceil(2 * r['train_examples'] / 8), r
assert r['val'].endswith('val.txt') and r['val_tokens'] > 1000 and L[-1]['val_tokens'] == r['val_tokens'] - 1
assert 1.9 < L[-1]['epoch'] <= 2.1 and r['val_loss'] < r['start_val_loss'] - 0.5, (L[-1], r)
print('# config.json model: %d steps, held-out loss %.3f -> %.3f' % (r['steps'], r['start_val_loss'], r['val_loss']))"
echo "1..$TAP_N"
