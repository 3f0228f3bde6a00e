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
// One evaluation in a fresh context. The generator samples a token at each step (ignored:
// the text's own token goes back in); by default it would end when that sample is an
// end-of-generation token, which happened in some runs: yieldEogToken keeps it going. A
// fixed seed makes a run repeatable; null when it still ends early (then tried again).
async function attempt() {
    const ctx = await model.createContext({
        contextSize: 128, batchSize: 128, sequences: 1, threads: 2, batching: {dispatchSchedule: "nextTick"},
        // fp32 attention as muscle computes it: llama.cpp's defaults (an F16 KV cache, flash
        // attention "auto", which rounds through F16 on the CPU) are ~1e-2 off in log-probability
        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false,
        ...(loraPath !== "-" ? {lora: {adapters: [{filePath: loraPath, scale: 1}]}} : {})
    });
    const seq = ctx.getSequence();
    const out = [null];
    // one pass: the generator evaluates the tokens given so far and yields the next-token
    // distribution; the text's next token goes back in through next(token)
    const it = seq.evaluateWithMetadata([ids[0]], {probabilities: true}, {temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1, yieldEogToken: true});
    let step = await it.next();
    for (let k = 1; k < ids.length; k++) {
        if (step.done || !step.value) return null;
        const probs = step.value.probabilities;
        let sum = 0;
        for (const v of probs.values()) sum += v;
        if (Math.abs(sum - 1) > 1e-4) throw new Error(`position ${k}: a truncated distribution (${probs.size} tokens, sum ${sum})`);
        const p = probs.get(ids[k]);
        out.push(p > 0 ? Math.log(p) : -Infinity);
        if (k + 1 < ids.length) step = await it.next(ids[k]);
    }
    await it.return();
    return out;
}
let out = null;
for (let a = 0; a < 3 && !out; a++) out = await attempt();
if (!out) throw new Error("llama.cpp's generator ended before the text three times");
process.stdout.write(JSON.stringify({logprobs: out}) + "\n", () => process.exit(0));
// (exit at once: disposing the bindings takes ~30 s and frees nothing the OS would not)
