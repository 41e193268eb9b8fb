#!/usr/bin/env node
// bench/compare.mjs — ulm side by side with llama.cpp on the same weights.
//
//   export PEER_DIR=$HOME/.ulm-peer            # the peer kit's llama.cpp (../shared/peer/setup.sh)
//   node bench/compare.mjs [--presets smollm2-135m,gemma3-270m] [--quants q8,q4] [--threads 1,2]
//        [--rounds 3] [--models DIR] [--out bench/results/DATE.md] [--no-noamx] [--no-amx] [--plain]
//
// `ulm convert` stores q8/q4 with 16 rows interleaved (q8r16/q4r16: the same quantized values,
// repacked once), the layout ulm's decode kernels read fastest; --plain keeps the GGUF layout.
//
// For each preset and quant it writes a random-weight GGUF with the peer's make_gguf.py (Q8_0 or
// Q4_0) and converts it with `ulm convert` (quantized blocks are used as they are), so both engines
// run the same weights. Then, in interleaved rounds (round r runs every model, thread count and
// engine once before round r+1 starts), it measures:
//   throughput   ulm: `ulm bench M.ulm -t T -p 128,512 -n 128 --reps 1 --json`
//                llama.cpp: `llama-bench -m M.gguf -t T -p 128,512 -n 128 -r 1 -o json`, with its
//                default (AMX) ggml-cpu and with the AVX-512-only one (LD_LIBRARY_PATH=build-noamx/bin);
//                on a host without AMX only the native build (the two would be the same code)
//   ttft + RSS   process start to exit of a run that generates ONE token after a 32-token prompt
//                (`ulm run ... -n 1 -c 512 --temp 0` / `llama-completion ... -n 1 -c 512 --temp 0
//                -no-cnv`), wall time measured around the spawn; peak RSS by /usr/bin/time -v.
// Page cache: every model file is read once (cat > /dev/null) and run once untimed before round 1,
// and read again at the start of every round.
// It records /proc/loadavg beside every sample and the steal/idle of /proc/stat over the run, and
// writes medians with min–max and the ratio table against the targets of issue 8, plus the raw
// samples as JSON next to the markdown file.
import { spawnSync, execSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const flag = (name) => args.includes(name);
if (flag("-h") || flag("--help")) {
  console.log(fs.readFileSync(new URL(import.meta.url), "utf8").split("\n").slice(1, 21).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
  process.exit(0);
}
const PEER = process.env.PEER_DIR || path.join(os.homedir(), ".ulm-peer");
const KIT = opt("--kit", path.resolve(REPO, "../shared/peer"));
const LBIN = path.join(PEER, "llama.cpp-src/build/bin");
const NOAMX_LIB = path.join(PEER, "llama.cpp-src/build-noamx/bin");
const ULM = opt("--ulm", path.join(REPO, "build/ulm"));
const MODELS = opt("--models", path.join(os.homedir(), "ulm-bench/models"));
const PRESETS = opt("--presets", "smollm2-135m,gemma3-270m").split(",");
const QUANTS = opt("--quants", "q8").split(",");
const THREADS = opt("--threads", "2").split(",").map(Number);
const ROUNDS = Number(opt("--rounds", "3"));
const PP = opt("--pp", "128,512");
const TG = Number(opt("--tg", "128"));
const TIMEOUT_S = Number(opt("--timeout", "1800"));
const date = new Date().toISOString().slice(0, 10);
const PLAIN = flag("--plain");
const OUT = opt("--out", path.join(REPO, `bench/results/${date}.md`));
// llama.cpp builds compared: on a host with AMX, its default (AMX) build and the AVX-512-only one;
// elsewhere the two are the same code, so only the native build runs (labelled by the host's ISA).
const HOST_FLAGS = (() => { try { return (fs.readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:\s*(.*)$/m) || [])[1].split(" "); } catch { return []; } })();
const HAS_AMX = HOST_FLAGS.includes("amx_tile") && HOST_FLAGS.includes("amx_int8");
const NATIVE_ISA = HOST_FLAGS.includes("avx512f") ? "AVX-512" : HOST_FLAGS.includes("avx2") ? "AVX2" : "native";
const ENGINES = HAS_AMX ? ["ulm", ...(flag("--no-amx") ? [] : ["llama-amx"]), ...(flag("--no-noamx") ? [] : ["llama-noamx"])]
                        : ["ulm", "llama-native"];
const LABEL = { "llama-amx": "AMX", "llama-noamx": "AVX-512", "llama-native": NATIVE_ISA };
// issue 8's targets: prefill >= 1x the AMX build and >= 1.5x the AVX-512-only one; without AMX the
// native build is llama.cpp's best here, so prefill must reach 1x of it.
const PP_TARGET = { "llama-amx": 1.0, "llama-noamx": 1.5, "llama-native": 1.0 };
const GGUF_TYPE = { q8: "q8_0", q4: "q4_0" };

for (const f of [ULM, path.join(LBIN, "llama-bench"), path.join(LBIN, "llama-completion"), path.join(KIT, "make_gguf.py")])
  if (!fs.existsSync(f)) { console.error(`compare: missing ${f} (PEER_DIR=${PEER}; build ulm with make)`); process.exit(2); }
fs.mkdirSync(MODELS, { recursive: true });

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const loadavg = () => fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
function cpuStat() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3] + f[4], steal: f[7] || 0 };
}
function run(cmd, argv, { env = {}, timeS = TIMEOUT_S } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { env: { ...process.env, ...env }, encoding: "utf8", timeout: timeS * 1000,
    maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")}: exit ${r.status} ${r.signal || ""}\n${(r.stderr || "").slice(-2000)}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}
const shq = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
const median = (v) => { const s = [...v].sort((a, b) => a - b), n = s.length; return n ? (n % 2 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };

// ---- models: GGUF by make_gguf.py, .ulm by ulm convert ----
const models = [];
for (const p of PRESETS) for (const q of QUANTS) {
  const gguf = path.join(MODELS, `${p}-${GGUF_TYPE[q]}.gguf`), ulm = path.join(MODELS, `${p}-${GGUF_TYPE[q]}${PLAIN ? "-plain" : "-r16"}.ulm`);
  if (!fs.existsSync(gguf)) { log(`make_gguf.py ${gguf}`); run("/usr/bin/python3", [path.join(KIT, "make_gguf.py"), gguf, "--preset", p, "--type", GGUF_TYPE[q]]); }
  if (!fs.existsSync(ulm) || fs.statSync(ulm).mtimeMs < fs.statSync(gguf).mtimeMs) { log(`ulm convert ${ulm}`); run(ULM, ["convert", gguf, "-o", ulm, ...(PLAIN ? ["--plain"] : [])]); }
  models.push({ preset: p, quant: q, gguf, ulm, mib: { gguf: fs.statSync(gguf).size / 1048576, ulm: fs.statSync(ulm).size / 1048576 } });
}

// ---- the 32-token prompt: BOS + 31 single-letter words ("▁a" is one token in make_gguf.py's vocabulary) ----
const PROMPT = "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e";
for (const m of models) {
  const ids = run(path.join(LBIN, "llama-tokenize"), ["-m", m.gguf, "-p", PROMPT, "--ids", "--log-disable"]).stdout.trim().split("\n").pop();
  m.prompt_tokens_llama = JSON.parse(ids).length;
  m.prompt_tokens_ulm = Number(run(ULM, ["tokenize", m.ulm, "-p", PROMPT, "--count"]).stdout.trim());
}

// ---- the commands ----
const CTX = 512;
function cmdThroughput(eng, m, t) {
  if (eng === "ulm") return { cmd: ULM, argv: ["bench", m.ulm, "-t", String(t), "-p", PP, "-n", String(TG), "--reps", "1", "--json"], env: {} };
  return { cmd: path.join(LBIN, "llama-bench"), argv: ["-m", m.gguf, "-t", String(t), "-p", PP, "-n", String(TG), "-r", "1", "-o", "json"],
    env: eng === "llama-noamx" ? { LD_LIBRARY_PATH: NOAMX_LIB } : {} };
}
function cmdFirstToken(eng, m, t) {
  const base = eng === "ulm"
    ? [ULM, "run", "-m", m.ulm, "-p", PROMPT, "-n", "1", "-c", String(CTX), "-t", String(t), "--temp", "0"]
    : [path.join(LBIN, "llama-completion"), "-m", m.gguf, "-p", PROMPT, "-n", "1", "-c", String(CTX), "-t", String(t), "--temp", "0", "-no-cnv"];
  return { cmd: "/usr/bin/time", argv: ["-v", ...base], env: eng === "llama-noamx" ? { LD_LIBRARY_PATH: NOAMX_LIB } : {} };
}
const show = (c) => (Object.keys(c.env).length ? Object.entries(c.env).map(([k, v]) => `${k}=${v} `).join("") : "") + [c.cmd, ...c.argv].map(shq).join(" ");

function parseThroughput(eng, out) {
  const r = {};
  const j = JSON.parse(out);
  if (eng === "ulm") {
    for (const p of j.prefill) r[`pp${p.n_prompt}`] = p.tok_s.median;
    r[`tg${j.decode.n_gen}`] = j.decode.tok_s.median;
  } else {
    for (const e of j) r[e.n_gen ? `tg${e.n_gen}` : `pp${e.n_prompt}`] = e.avg_ts;
  }
  return r;
}
function parseRss(stderr) {
  const m = stderr.match(/Maximum resident set size \(kbytes\): (\d+)/);
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---- warm-up: page cache and one untimed run of each ----
const samples = []; // {round, preset, quant, threads, engine, metric, value, load1}
const stat0 = cpuStat(), loads = [];
const t0run = Date.now();
log(`machine: ${os.cpus()[0].model}, ${os.cpus().length} cpus; load ${loadavg().join(" ")}`);
for (const m of models) {
  execSync(`cat ${shq(m.gguf)} ${shq(m.ulm)} > /dev/null`);
  for (const eng of ENGINES) { const c = cmdFirstToken(eng, m, THREADS[THREADS.length - 1]); run(c.cmd, c.argv, { env: c.env }); }
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [mi, m] of models.entries()) {
    if (r || mi) report(r, mi);
    execSync(`cat ${shq(m.gguf)} ${shq(m.ulm)} > /dev/null`);
    for (const t of THREADS) {
      for (const eng of ENGINES) {
        const c = cmdThroughput(eng, m, t), l = loadavg();
        loads.push(l[0]);
        try {
          const res = run(c.cmd, c.argv, { env: c.env });
          for (const [k, v] of Object.entries(parseThroughput(eng, res.stdout)))
            samples.push({ round: r, preset: m.preset, quant: m.quant, threads: t, engine: eng, metric: k, value: v, load1: l[0] });
          log(`round ${r + 1}/${ROUNDS} ${m.preset} ${m.quant} t${t} ${eng}: ${JSON.stringify(parseThroughput(eng, res.stdout))} (${(res.ms / 1e3).toFixed(1)} s, load ${l[0]})`);
        } catch (e) { log(`FAILED ${show(c)}: ${e.message}`); }
      }
      for (const eng of ENGINES) {
        const c = cmdFirstToken(eng, m, t), l = loadavg();
        loads.push(l[0]);
        try {
          const res = run(c.cmd, c.argv, { env: c.env });
          samples.push({ round: r, preset: m.preset, quant: m.quant, threads: t, engine: eng, metric: "ttft_ms", value: res.ms, load1: l[0] });
          samples.push({ round: r, preset: m.preset, quant: m.quant, threads: t, engine: eng, metric: "rss_mib", value: parseRss(res.stderr), load1: l[0] });
          log(`round ${r + 1}/${ROUNDS} ${m.preset} ${m.quant} t${t} ${eng}: first token ${res.ms.toFixed(0)} ms, RSS ${parseRss(res.stderr).toFixed(1)} MiB`);
        } catch (e) { log(`FAILED ${show(c)}: ${e.message}`); }
      }
    }
  }
}

// ---- report (rewritten after every round, so a cut-off run leaves its rounds so far) ----
function report(roundsDone, modelsInRound = 0) {
const stat1 = cpuStat(), elapsedMin = (Date.now() - t0run) / 60000;
const lscpu = (() => { try { return execSync("lscpu", { encoding: "utf8" }); } catch { return ""; } })();
const lsc = (k) => (lscpu.match(new RegExp(`^${k}:\\s*(.*)$`, "m")) || [])[1] || "?";
const flags = lsc("Flags");
const isa = ["avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "avx512_fp16"].filter((f) => flags.split(" ").includes(f)).join(" ");
const ulmVersion = run(ULM, ["version"]).stdout.trim().replace(/\n/g, "; ");
// The commit of the checkout the ulm binary was built in (--ulm may point at another worktree).
const gitRev = (() => { try { return execSync("git rev-parse --short HEAD", { cwd: path.dirname(path.dirname(path.resolve(ULM))), encoding: "utf8" }).trim(); } catch { return "?"; } })();
const dt = stat1.total - stat0.total;
const pick = (m, t, eng, metric) => samples.filter((s) => s.preset === m.preset && s.quant === m.quant && s.threads === t && s.engine === eng && s.metric === metric).map((s) => s.value).filter(Number.isFinite);
const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "—");
const cell = (v, d) => (v.length ? `${fmt(median(v), d)} (${fmt(Math.min(...v), d)}–${fmt(Math.max(...v), d)})` : "—");

let md = `# ulm vs llama.cpp — ${date}\n\n`;
md += `Written by \`bench/compare.mjs\` (ulm ${gitRev}, .ulm files in the ${PLAIN ? "GGUF block (--plain)" : "16-row interleaved (default)"} layout). The machine has ${os.cpus().length} cores and may be shared `;
md += `(see the load average below), so each figure is the median over ${roundsDone} interleaved rounds${roundsDone < ROUNDS ? ` (of ${ROUNDS} planned; partial: round ${roundsDone + 1} has done ${modelsInRound} of ${models.length} models so far)` : ""}, with min–max.\n\n`;
md += `## Machine\n\n- CPU: ${lsc("Model name")}, ${lsc("CPU\\(s\\)")} cores (${lsc("Thread\\(s\\) per core")} thread/core), ISA flags: ${isa}\n`;
md += `- ulm: ${ulmVersion}; llama.cpp: the peer kit's source build (release v0.5.0, ${PEER}/llama.cpp-src/build), ${HAS_AMX ? "AMX ggml-cpu (default) and the AVX-512-only one (build-noamx)" : `native ggml-cpu (${NATIVE_ISA}; this host has no AMX, so the AVX-512-only build would be the same code and is not run)`}\n`;
md += `- load average (1 min) over the ${fmt(elapsedMin, 0)} min run, sampled before each command: median ${fmt(median(loads), 2)}, min ${fmt(Math.min(...loads), 2)}, max ${fmt(Math.max(...loads), 2)}\n`;
md += `- /proc/stat over the run: idle ${fmt(100 * (stat1.idle - stat0.idle) / dt)}%, steal ${fmt(100 * (stat1.steal - stat0.steal) / dt)}%\n\n`;
md += `## Commands (one round, first model; THREADS = 1 or 2)\n\n\`\`\`sh\n`;
const m0 = models[0];
for (const eng of ENGINES) md += `${show(cmdThroughput(eng, m0, "THREADS"))}\n`;
for (const eng of ENGINES) md += `${show(cmdFirstToken(eng, m0, "THREADS"))}\n`;
md += `\`\`\`\n\n- ppN / tgN: tok/s (ulm bench: one timed run after a warm-up, as llama-bench -r 1; decode feeds random token ids without sampling, as llama-bench's tg).\n`;
md += `- ttft: wall time from spawning the process to its exit after generating one token from a 32-token prompt (BOS + 31 single-letter words; tokens counted by each engine: ${models.map((m) => `${m.preset} ${m.prompt_tokens_ulm}/${m.prompt_tokens_llama}`).join(", ")} ulm/llama), context ${CTX}. It includes model load, llama.cpp's default warm-up decode, prefill and teardown. Page cache warm: each file is read with cat > /dev/null and run once untimed before round 1, and read again before each round.\n`;
md += `- RSS: peak resident set of that same process (/usr/bin/time -v), context ${CTX}, f16 KV cache in both.\n\n`;

md += `## Results (median (min–max) over rounds)\n\n`;
const TARGET = { tg: 1.2, ttft: 0.25, rss: 1.0 };
const LL = ENGINES.filter((e) => e !== "ulm");
const verdicts = [];
for (const m of models) for (const t of THREADS) {
  md += `### ${m.preset} ${m.quant} (${GGUF_TYPE[m.quant].toUpperCase()}, .gguf ${fmt(m.mib.gguf)} MiB, .ulm ${fmt(m.mib.ulm)} MiB), ${t} thread${t > 1 ? "s" : ""}\n\n`;
  md += `| metric | ulm | ${LL.map((e) => `llama.cpp ${LABEL[e]}`).join(" | ")} | ${LL.map((e) => `ulm / ${LABEL[e]}`).join(" | ")} | target |\n|---|---|${LL.map(() => "---|---|").join("")}---|\n`;
  const metrics = [...PP.split(",").map((p) => `pp${p}`), `tg${TG}`, "ttft_ms", "rss_mib"];
  for (const k of metrics) {
    const u = pick(m, t, "ulm", k), r = LL.map((e) => median(u) / median(pick(m, t, e, k)));
    let target = "", ok = null;
    if (k.startsWith("pp")) { target = LL.map((e) => `≥ ${PP_TARGET[e]}× ${LABEL[e]}`).join(", "); ok = LL.every((e, i) => r[i] >= PP_TARGET[e]); }
    else if (k.startsWith("tg")) { target = `≥ ${TARGET.tg}× ${LL.map((e) => LABEL[e]).join(" and ")}`; ok = r.every((x) => x >= TARGET.tg); }
    else if (k === "ttft_ms") { target = `≤ ${TARGET.ttft}×`; ok = r.every((x) => x <= TARGET.ttft); }
    else { target = "≤ 1.0×"; ok = r.every((x) => x <= TARGET.rss); }
    const unit = k.startsWith("pp") || k.startsWith("tg") ? " tok/s" : k === "ttft_ms" ? " ms" : " MiB";
    const okTxt = r.every(Number.isFinite) ? (ok ? "met" : "**missed**") : "n/a";
    md += `| ${k.replace("_ms", "").replace("_mib", "")}${unit} | ${cell(u, 1)} | ${LL.map((e) => cell(pick(m, t, e, k), 1)).join(" | ")} | ${r.map((x) => `${fmt(x, 2)}×`).join(" | ")} | ${target}: ${okTxt} |\n`;
    if (t === 2) verdicts.push({ model: `${m.preset} ${m.quant}`, metric: k, r, ok });
  }
  md += `\n`;
}
if (verdicts.length) {
  md += `## Targets at 2 threads\n\n| model | metric | ${LL.map((e) => `ulm / ${LABEL[e]}`).join(" | ")} | |\n|---|---|${LL.map(() => "---|").join("")}---|\n`;
  for (const v of verdicts) md += `| ${v.model} | ${v.metric} | ${v.r.map((x) => `${fmt(x, 2)}×`).join(" | ")} | ${v.r.every(Number.isFinite) ? (v.ok ? "met" : "**missed**") : "n/a"} |\n`;
  md += `\n`;
}
fs.mkdirSync(path.dirname(OUT), { recursive: true });
const rawPath = OUT.replace(/\.md$/, "") + "-raw.json";
fs.writeFileSync(rawPath, JSON.stringify({ date, rounds: roundsDone, threads: THREADS, models, loads, samples }, null, 1) + "\n");
md += `Raw samples (every round, with the load average before each command): \`${path.relative(path.dirname(OUT), rawPath)}\`.\n`;
fs.writeFileSync(OUT, md);
log(`wrote ${OUT} and ${rawPath}`);
}
report(ROUNDS);
