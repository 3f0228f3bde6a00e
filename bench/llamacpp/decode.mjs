// bench/llamacpp/decode.mjs - llama.cpp's single-stream greedy decoding speed on a GGUF file,
// through node-llama-cpp 3.22.1's prebuilt CPU binaries (@node-llama-cpp/linux-x64: libllama
// + the addon; no build from source). The peer of `bench_decode --task single`: BOS, then N
// greedy tokens; tokens/s over tokens 2..N (the first comes from the prompt's pass).
//   node decode.mjs MODEL.gguf [N] [THREADS] [ITERS]
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, nArg, thArg, itArg] = process.argv.slice(2);
const N = Number(nArg || 128), threads = Number(thArg || 2), iters = Number(itArg || 2);
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: false});
let best = 0;
for (let it = 0; it <= iters; it++) {
    const ctx = await model.createContext({contextSize: 512, threads, batchSize: 512});
    const seq = ctx.getSequence();
    let n = 0, tFirst = 0;
    for await (const tok of seq.evaluate([1], {temperature: 0})) {
        void tok;
        if (++n === 1) tFirst = performance.now();
        if (n >= N) break;
    }
    const tps = (n - 1) / ((performance.now() - tFirst) / 1000);
    if (it && tps > best) best = tps;
    await ctx.dispose();
}
console.log(JSON.stringify({impl: "llama.cpp", model: modelPath, task: "single", width: 1, tokens_per_s: Math.round(best * 10) / 10,
                            threads, binary: llama.buildType, cpu: llama.cpuMathCores ?? null}));
await model.dispose();
await llama.dispose();
