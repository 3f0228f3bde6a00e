// Encoding speed of transformers.js on one text file (whole lines, as the C bench does).
//   node bench_encode.mjs DIR FILE  -> prints "tokens seconds"
import { AutoTokenizer, env } from '@huggingface/transformers';
import fs from 'node:fs';
import path from 'node:path';
const [dir, file] = process.argv.slice(2);
env.allowRemoteModels = false;
env.localModelPath = path.dirname(path.resolve(dir)) + '/';
const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)), { local_files_only: true });
const lines = fs.readFileSync(file, 'utf8').split('\n');
const t0 = process.hrtime.bigint();
let n = 0;
for (const l of lines) n += tok.encode(l, { add_special_tokens: false }).length;
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`${n} ${s}`);
