// llama.cpp's encode time alone, in process: node-llama-cpp (the peer kit's prebuilt llama.cpp,
// same release as its llama-tokenize) loads the GGUF's vocabulary once, then tokenizes the
// whole text REPS times; prints tokens, then best wall s and MB/s, best CPU s and MB/s. Used by bench/tokenize.sh.
//   node bench/tokenize_llama.mjs MODEL.gguf TEXT_FILE [REPS]
import fs from "fs";
import path from "path";
const peer = process.env.PEER_DIR || path.join(process.env.HOME, ".ulm-peer");
const { getLlama } = await import(path.join(peer, "node_modules/node-llama-cpp/dist/index.js"));
const [model_path, text_path, reps_s] = process.argv.slice(2);
const reps = Number(reps_s || 3);
const text = fs.readFileSync(text_path, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: model_path, vocabOnly: true });
const wall = [], cpu = [];
let n = 0;
for (let r = 0; r < reps; r++) {
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  n = model.tokenize(text, false).length; // no special-token parsing, no BOS
  const c = process.cpuUsage(c0);
  wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
  cpu.push((c.user + c.system) / 1e6);
}
// best of REPS, wall and CPU time (CPU time is steadier on a busy machine)
const w = Math.min(...wall), c = Math.min(...cpu);
console.log(`${n} ${w.toFixed(4)} ${(bytes / w / 1e6).toFixed(2)} ${c.toFixed(4)} ${(bytes / c / 1e6).toFixed(2)}`);
await model.dispose();
