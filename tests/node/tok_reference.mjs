// Reference ids and decodes from transformers.js (@huggingface/transformers, offline, local files).
//   node tok_reference.mjs DIR TEXTS.jsonl OUT.jsonl [DECODE_IDS.jsonl DECODE_OUT.jsonl N]
// DIR holds tokenizer.json (+ tokenizer_config.json). TEXTS.jsonl: one JSON string per line.
// OUT.jsonl: one JSON object per text, {"ids": [...], "dec": "..."}: encode without special
// tokens (add_special_tokens false: muscle adds BOS/EOS only when asked), and decode of those
// ids with clean_up_tokenization_spaces false and special tokens kept.
// With N: N random id sequences (fixed seed; half of the ids single-byte pieces 0..255, so that
// partial UTF-8 sequences are common) are written to DECODE_IDS.jsonl, one JSON array a line,
// and their decodes to DECODE_OUT.jsonl, one JSON string a line. Sequences whose decode holds
// a NUL are skipped (C strings cannot hold them).
import { AutoTokenizer, env } from '@huggingface/transformers';
import fs from 'node:fs';
import path from 'node:path';

const [dir, textsPath, outPath, decIn, decOut] = process.argv.slice(2);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useFSCache = false;
env.localModelPath = path.dirname(path.resolve(dir)) + '/';
const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)), { local_files_only: true });
const lines = (p) => fs.readFileSync(p, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
const opt = { clean_up_tokenization_spaces: false, skip_special_tokens: false };
const out = [];
for (const text of lines(textsPath)) {
  const ids = tok.encode(text, { add_special_tokens: false });
  out.push(JSON.stringify({ ids, dec: ids.length ? tok.decode(ids, opt) : '' }));
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
if (decIn) {
  let seed = 12345;
  const rand = () => { // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const vocab = tok._tokenizer.model.vocab.length;
  const seqs = [], decs = [];
  const want = Number(process.argv[7] ?? 1000);
  while (seqs.length < want) {
    const len = 1 + Math.floor(rand() * 12);
    const ids = Array.from({ length: len }, () => (rand() < 0.5 ? Math.floor(rand() * 256) : Math.floor(rand() * vocab)));
    if (ids.some((i) => tok._tokenizer.model.vocab[i] === undefined)) continue;
    const d = tok.decode(ids, opt);
    if (d.includes('\0')) continue;
    seqs.push(JSON.stringify(ids));
    decs.push(JSON.stringify(d));
  }
  fs.writeFileSync(decIn, seqs.join('\n') + '\n');
  fs.writeFileSync(decOut, decs.join('\n') + '\n');
}
