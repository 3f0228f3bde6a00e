// Per-token log-probabilities from a real llama.cpp (node-llama-cpp's prebuilt binaries).
// usage: node llamacpp_logprobs.mjs MODEL.gguf LORA.gguf|- TOKEN_IDS(comma-separated)
// Prints JSON {"logprobs": [null, lp1, ...]}: lp_i = log p(token_i | tokens before it), the
// same quantity as `muscle score` prints, from the full next-token distribution llama.cpp
// computes (temperature 1, no top-k / top-p / min-p truncation: softmax of the logits).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, loraPath, idsArg] = process.argv.slice(2);
const ids = idsArg.split(",").map(Number);
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
    logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath});
const ctx = await model.createContext({
    contextSize: 128, batchSize: 128, sequences: 1, threads: 2,
    // fp32 attention as muscle computes it: llama.cpp's defaults (an F16 KV cache, flash
    // attention "auto", which rounds through F16 on the CPU) are ~1e-2 off in log-probability
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false,
    ...(loraPath !== "-" ? {lora: {adapters: [{filePath: loraPath, scale: 1}]}} : {})
});
const seq = ctx.getSequence();
const out = [null];
for (let k = 1; k < ids.length; k++) {
    await seq.clearHistory();
    const it = seq.evaluateWithMetadata(ids.slice(0, k), {probabilities: true},
        {temperature: 1, topK: 0, topP: 1, minP: 0});
    const {value} = await it.next();
    await it.return();
    const p = value.probabilities.get(ids[k]);
    let sum = 0;
    for (const v of value.probabilities.values()) sum += v;
    if (Math.abs(sum - 1) > 1e-4)
        throw new Error(`position ${k}: a truncated distribution (${value.probabilities.size} tokens, sum ${sum})`);
    out.push(p > 0 ? Math.log(p) : -Infinity);
}
console.log(JSON.stringify({logprobs: out}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
