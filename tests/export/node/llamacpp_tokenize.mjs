// Token ids from a real llama.cpp (node-llama-cpp's prebuilt binaries) for a GGUF vocabulary.
// usage: node llamacpp_tokenize.mjs MODEL.gguf TEXTS.json
// TEXTS.json is an array of strings. Prints JSON {"ids": [[...], ...], "bos", "eos",
// "addBos", "pad", "vocabularyType"}: llama_tokenize of each text with special tokens parsed (llama.cpp then matches
// CONTROL and USER_DEFINED tokens in the text, as muscle and transformers match added tokens)
// and no BOS added (compared separately through addBos).
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, textsPath] = process.argv.slice(2);
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
    logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath, vocabOnly: true});
const ids = texts.map((t) => Array.from(model.tokenize(t, true)));
const pad = model.fileInfo?.metadata?.tokenizer?.ggml?.padding_token_id; // node-llama-cpp's own GGUF reader
const out = {ids, bos: model.tokens.bos, eos: model.tokens.eos, addBos: model.tokens.shouldPrependBosToken,
    pad: pad ?? null, vocabularyType: model.vocabularyType};
process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
