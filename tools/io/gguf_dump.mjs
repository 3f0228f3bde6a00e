// Cross-check of src/io/gguf.c against an independent GGUF parser (@huggingface/gguf).
// Prints a normalized listing that tools/io/gguf_dump.c prints too; diff the two:
//   npm install @huggingface/gguf   (in a scratch folder, then run node from there)
//   node gguf_dump.mjs FILE > a.txt; build/tools/gguf_dump FILE > b.txt; diff a.txt b.txt
import { gguf } from "@huggingface/gguf";
const M = 1000000007n;
function bitsOf(x, t) {
  const dv = new DataView(new ArrayBuffer(8));
  if (t === 6) { dv.setFloat32(0, x, true); return BigInt(dv.getUint32(0, true)); }
  if (t === 12) { dv.setFloat64(0, x, true); return dv.getBigUint64(0, true); }
  if (t === 7) return x ? 1n : 0n;
  return BigInt.asUintN(64, BigInt(x));
}
function strHash(s) {
  let h = 0n;
  for (const b of Buffer.from(s, "utf8")) h = (h * 31n + BigInt(b)) % M;
  return h;
}
const r = await gguf(process.argv[2], { allowLocalFile: true, typedMetadata: true });
const out = [`data_offset ${r.tensorDataOffset}`];
for (const [k, v] of Object.entries(r.typedMetadata)) {
  if (k === "version" || k === "tensor_count" || k === "kv_count") { out.push(`${k} ${v.value}`); continue; }
  if (Array.isArray(v.value)) {
    let h = 0n;
    for (const x of v.value) h = (h * 31n + (v.subType === 8 ? strHash(x) : bitsOf(x, v.subType))) % M;
    out.push(`kv ${k} ${v.type} array ${v.subType} n=${v.value.length} hash=${h}`);
  } else if (v.type === 8) {
    out.push(`kv ${k} ${v.type} str len=${Buffer.byteLength(v.value, "utf8")} hash=${strHash(v.value)}`);
  } else {
    out.push(`kv ${k} ${v.type} bits=${bitsOf(v.value, v.type)}`);
  }
}
for (const t of r.tensorInfos) out.push(`tensor ${t.name} ne=${t.shape.map(String).join(",")} type=${t.dtype} offset=${t.offset}`);
console.log(out.join("\n"));
