// npm run bench:real — ckvc against borg and restic on checkpoints of real (small) PyTorch training runs.
// Not a test and never needed by one. Trains once (python3 with Debian's python3-torch) and caches the
// checkpoints in BENCH_REAL_DIR; then, per scenario and tool, stores every checkpoint with one process each,
// restores the last one from a cold page cache, checks it byte for byte, and prints a markdown table.
//
// Options: --out FILE (also write the table there), --json FILE (also write the results there).
// Environment: BENCH_REAL_DIR (work dir, default $TMPDIR/ckvc-bench-real), BENCH_REAL_CHECKPOINTS (8),
// BENCH_REAL_STEPS (optimizer steps between checkpoints, 3), BENCH_REAL_LAYERS (8) and BENCH_REAL_DIM (256)
// for the GPT, BENCH_REAL_SCENARIOS (e.g. full,lora), BENCH_REAL_ONLY (e.g. ckvc: skip the peers),
// BENCH_REAL_PYTHON (a python3 that imports torch), BENCH_REAL_KEEP=1 (keep stores and restores).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deltaLimit } from './delta-limit.mjs';
import { assertSameTree, dirBytes, dropCaches, haveGnuTime, stage, warm } from './measure.mjs';
import { markdown } from './report.mjs';
import { borgTool, ckvcTool, resticTool } from './tools.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const SCENARIOS = ['full', 'finetune', 'lora', 'bf16', 'sparse', 'json'];
const INSTALL = 'apt-get update && apt-get install -y python3-torch libopenblas0-pthread borgbackup restic time';

function fail(msg) {
  console.error(`bench:real: ${msg}`);
  process.exit(1);
}

function argValue(name) {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  if (!process.argv[i + 1]) fail(`${name} needs a file name`);
  return path.resolve(process.argv[i + 1]);
}

function envList(name, allowed) {
  const v = process.env[name];
  if (!v) return allowed;
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((s) => !allowed.includes(s));
  if (bad.length) fail(`${name}=${v}: unknown ${bad.join(', ')}; choose from ${allowed.join(', ')}`);
  return list;
}

function envInt(name, dflt) {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(v) || v < 1) fail(`${name}=${process.env[name]} is not a positive whole number`);
  return v;
}

const work = path.resolve(process.env.BENCH_REAL_DIR ?? path.join(os.tmpdir(), 'ckvc-bench-real'));
const scenarios = envList('BENCH_REAL_SCENARIOS', SCENARIOS);
const only = envList('BENCH_REAL_ONLY', ['ckvc', 'borg', 'restic']);
const outFile = argValue('--out');
const jsonFile = argValue('--json');
const keep = process.env.BENCH_REAL_KEEP === '1';

// What the training produces; its hash names the cache folder, so another configuration never reuses it.
const genConfig = {
  version: 1,
  threads: 2,
  seed: 1234,
  checkpoints: envInt('BENCH_REAL_CHECKPOINTS', 8),
  steps: envInt('BENCH_REAL_STEPS', 3),
  layers: envInt('BENCH_REAL_LAYERS', 8),
  dim: envInt('BENCH_REAL_DIM', 256),
  heads: 8,
  ctx: 64,
  batch: 4,
  lr: 1e-3,
  lora_rank: 8,
  sg_vocab: 20000,
  sg_dim: 128,
  sg_batch: 4096,
  mlp_hidden: 128,
};
if (genConfig.dim % genConfig.heads)
  fail(`BENCH_REAL_DIM=${genConfig.dim} must be a multiple of ${genConfig.heads} (attention heads)`);

function findPython() {
  const candidates = [process.env.BENCH_REAL_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

/** The cached checkpoints for genConfig, generating them first when missing. */
function checkpoints() {
  const key = createHash('sha256').update(JSON.stringify(genConfig)).digest('hex').slice(0, 12);
  const dir = path.join(work, 'checkpoints', key);
  const manifestFile = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifestFile)) {
    console.error(`bench:real: using cached checkpoints in ${dir}`);
    return { dir, manifest: JSON.parse(fs.readFileSync(manifestFile, 'utf8')) };
  }
  const py = findPython();
  if (!py) {
    fail(
      `no python3 that imports torch and numpy (tried ${['BENCH_REAL_PYTHON', '/usr/bin/python3', 'python3'].join(', ')}).\n` +
        `  Install Debian's packages: ${INSTALL}\n  (or point BENCH_REAL_PYTHON at a python3 with torch).`,
    );
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  console.error(`bench:real: training the checkpoints with ${py} into ${dir} (once; later runs reuse them)`);
  const r = spawnSync(py, [path.join(here, 'generate.py'), '--out', tmp, '--config', JSON.stringify(genConfig)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the source tree
  });
  if (r.status !== 0) fail(`generate.py failed (exit ${r.status}); nothing cached. Partial output left in ${tmp}`);
  fs.renameSync(tmp, dir);
  return { dir, manifest: JSON.parse(fs.readFileSync(manifestFile, 'utf8')) };
}

async function benchTool(tool, scenario, ckpts, ckptRoot) {
  const runDir = path.join(work, 'runs', scenario, tool.name);
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true });
  await tool.init(runDir);
  const live = path.join(runDir, 'live');
  for (const c of ckpts) warm(path.join(ckptRoot, c.dir));
  let ingestSecs = 0;
  const perCheckpointSecs = [];
  let peakRss = null;
  const maxRss = (rss) => (peakRss = rss == null ? peakRss : Math.max(peakRss ?? 0, rss));
  for (const [i, c] of ckpts.entries()) {
    stage(path.join(ckptRoot, c.dir), live);
    spawnSync('sync'); // the last tool's writeback must not land on this command's clock
    const r = await tool.ingest(runDir, live, { scenario, n: i + 1, step: (i + 1) * genConfig.steps });
    ingestSecs += r.secs;
    perCheckpointSecs.push(Number(r.secs.toFixed(3)));
    maxRss(r.rss);
  }
  const storedBytes = dirBytes(tool.store(runDir));
  const last = ckpts.at(-1);
  const to = path.join(runDir, 'restore');
  const cold = dropCaches();
  const r = await tool.restore(runDir, to, { scenario, n: ckpts.length, live });
  maxRss(r.rss);
  assertSameTree(path.join(ckptRoot, last.dir), r.files, `${tool.name} restore of ${scenario} ${last.dir}`);
  if (!keep) fs.rmSync(runDir, { recursive: true, force: true });
  const logicalBytes = ckpts.reduce((a, c) => a + c.bytes, 0);
  return {
    logicalBytes,
    storedBytes,
    ingestSecs,
    perCheckpointSecs,
    restoreBytes: last.bytes,
    restoreSecs: r.secs,
    peakRssMiB: peakRss,
    coldCache: cold,
  };
}

async function main() {
  const tools = { ckvc: ckvcTool(repoRoot, work), borg: borgTool(), restic: resticTool() };
  const toolInfo = {};
  for (const [name, tool] of Object.entries(tools)) {
    if (!only.includes(name)) toolInfo[name] = { skipped: 'not selected (BENCH_REAL_ONLY)' };
    else {
      const c = tool.check();
      toolInfo[name] = c.ok ? { version: c.version } : { skipped: c.why };
      if (!c.ok) console.error(`bench:real: skipping ${name}: ${c.why}`);
      else await tool.prepare?.();
    }
  }
  if (toolInfo.ckvc.skipped && only.includes('ckvc')) fail(toolInfo.ckvc.skipped);
  if (!haveGnuTime)
    console.error(
      `bench:real: /usr/bin/time (GNU time) is missing, so peak RSS is not measured (Debian: apt-get install -y time)`,
    );
  const { dir: ckptRoot, manifest } = checkpoints();
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      loadAvgStart: os.loadavg()[0],
    },
    checkpointsDir: ckptRoot,
    generation: {
      config: manifest.config,
      torch: manifest.torch,
      seconds: manifest.seconds,
      timings: manifest.timings,
      summary: `${manifest.config.checkpoints} per scenario, ${manifest.config.steps} optimizer steps apart, trained in ${Math.round(manifest.seconds)} s`,
    },
    tools: toolInfo,
    coldCache: true,
    scenarios: [],
  };
  for (const scenario of scenarios) {
    const ckpts = manifest.scenarios[scenario];
    if (!ckpts?.length) fail(`the cache ${ckptRoot} has no checkpoints for ${scenario}; delete it to train again`);
    const entry = {
      name: scenario,
      checkpoints: ckpts.length,
      logicalBytes: ckpts.reduce((a, c) => a + c.bytes, 0),
      files: Object.keys(ckpts[0].files),
      tools: {},
    };
    for (const [name, tool] of Object.entries(tools)) {
      if (toolInfo[name].skipped) {
        entry.tools[name] = { skipped: toolInfo[name].skipped };
        continue;
      }
      console.error(`bench:real: ${scenario}: ${name} ...`);
      const r = await benchTool(tool, scenario, ckpts, ckptRoot);
      results.coldCache &&= r.coldCache;
      entry.tools[name] = r;
      const mb = r.logicalBytes / 2 ** 20;
      console.error(
        `bench:real: ${scenario}: ${name}: ratio ${(r.logicalBytes / r.storedBytes).toFixed(2)}, ingest ${(mb / r.ingestSecs).toFixed(1)} MB/s, restore ${(r.restoreBytes / 2 ** 20 / r.restoreSecs).toFixed(1)} MB/s, peak RSS ${r.peakRssMiB?.toFixed(0) ?? '?'} MiB`,
      );
    }
    entry.deltaLimit = await deltaLimit(ckptRoot, ckpts);
    if (entry.deltaLimit != null)
      console.error(`bench:real: ${scenario}: lossless limit of XOR delta coding ${entry.deltaLimit.toFixed(2)}`);
    results.scenarios.push(entry);
  }
  results.machine.loadAvgEnd = os.loadavg()[0];
  const table = markdown(results);
  console.log(table);
  fs.writeFileSync(path.join(work, 'results.md'), `${table}\n`);
  fs.writeFileSync(path.join(work, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  if (outFile) fs.writeFileSync(outFile, `${table}\n`);
  if (jsonFile) fs.writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  console.error(
    `bench:real: results in ${path.join(work, 'results.md')} and results.json; checkpoints cached in ${ckptRoot}`,
  );
}

main().catch((e) => fail(e.stack ?? String(e)));
