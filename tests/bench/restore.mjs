// npm run bench:restore: verified checkout speed on a training-like series, A/B against other builds.
// Not a test: it prints a table. A series of RESTORE_STEPS (default 8) safetensors checkpoints of about
// RESTORE_MB (default 100) MB, float32 weights with Adam moments, every element changed a little each step (an
// optimizer step: changed tensors are stored as deltas against their parent's chunks), committed one process per
// commit; then `checkout` of the last and of the first, from the page cache and from a cold cache (when root can
// drop caches), and of a one-tensor commit (the fixed cost of a checkout command). Wall, user+sys CPU and peak RSS
// come from GNU time.
//
//   node tests/bench/restore.mjs [--rounds N] [--store DIR] [BIN...]
// BIN: ckvc launchers to compare (default: this repo's bin/ckvc), run alternately, N rounds (default 3). The
// store is made by the first BIN, or reused with --store (made there when missing). Medians are reported.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv, dropCaches } from './real/measure.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const STEPS = Number(process.env.RESTORE_STEPS ?? 8);
const MB = Number(process.env.RESTORE_MB ?? 100);
const MiB = 1024 * 1024;

const args = process.argv.slice(2);
let rounds = 3;
let storeArg;
const bins = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else if (args[i] === '--store') storeArg = path.resolve(args[++i]);
  else bins.push(path.resolve(args[i]));
}
if (!bins.length) bins.push(path.join(repo, 'bin/ckvc'));

const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'ckvc-restore-'));
const store = storeArg ?? path.join(work, 'store');

/** xorshift32 normal-ish noise in [-1, 1): the sum of two uniforms, cheap and deterministic. */
function noise(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const a = x / 4294967296;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return a + x / 4294967296 - 1;
  };
}

/** Layer sizes (elements) adding up to about MB megabytes of weights + exp_avg + exp_avg_sq. */
function model() {
  const params = Math.floor((MB * MiB) / 12);
  const shares = [0.25, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.04, 0.01];
  return shares.map((s, i) => {
    const n = Math.max(64, Math.floor((params * s) / 64) * 64);
    return { name: i === 0 ? 'embed.weight' : `layers.${i - 1}.weight`, shape: [n / 64, 64] };
  });
}

function initState(layers) {
  const rnd = noise(12345);
  return layers.map((l) => {
    const n = l.shape[0] * l.shape[1];
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = rnd() * 0.05;
    return { ...l, w, m: new Float32Array(n), v: new Float32Array(n) };
  });
}

/** One AdamW step with noise for gradients: every element of every tensor changes a little. */
function adamStep(state, step) {
  const rnd = noise(step * 7919);
  const [b1, b2, lr, eps] = [0.9, 0.999, 1e-3, 1e-8];
  for (const t of state) {
    for (let i = 0; i < t.w.length; i++) {
      const g = rnd() * 0.01 + t.w[i] * 0.001;
      t.m[i] = b1 * t.m[i] + (1 - b1) * g;
      t.v[i] = b2 * t.v[i] + (1 - b2) * g * g;
      const mh = t.m[i] / (1 - b1 ** step);
      const vh = t.v[i] / (1 - b2 ** step);
      t.w[i] -= lr * (mh / (Math.sqrt(vh) + eps) + 0.01 * t.w[i]);
    }
  }
}

function writeSafetensors(file, tensors) {
  const header = {};
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.concat([len, json]));
  for (const t of tensors) fs.writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  fs.closeSync(fd);
}

function checkpointTensors(state) {
  return state.flatMap((t) => [
    { name: `model.${t.name}`, shape: t.shape, data: t.w },
    { name: `optimizer.${t.name}.exp_avg`, shape: t.shape, data: t.m },
    { name: `optimizer.${t.name}.exp_avg_sq`, shape: t.shape, data: t.v },
  ]);
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Runs BIN ARGS (on the store, but for `init`) under GNU time: wall and CPU seconds, peak RSS in MiB. */
function timed(bin, argv) {
  const onStore = argv[0] === 'init' ? [] : ['--store', store];
  const r = spawnSync('/usr/bin/time', ['-f', '@@ %e %U %S %M', bin, ...argv, ...onStore], {
    encoding: 'utf8',
    env: benchEnv({ CKVC_AUTHOR: 'bench' }),
    maxBuffer: 64 * MiB,
  });
  const m = /@@ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${bin} ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rss: Number(m[4]) / 1024 };
}

function makeStore(bin) {
  fs.mkdirSync(store, { recursive: true });
  timed(bin, ['init', store]);
  const ck = path.join(work, 'ckpt');
  fs.mkdirSync(ck);
  const state = initState(model());
  const files = {};
  for (let step = 1; step <= STEPS; step++) {
    adamStep(state, step);
    const file = path.join(ck, 'model.safetensors');
    writeSafetensors(file, checkpointTensors(state));
    const r = timed(bin, ['commit', ck, '-b', 'train', '-m', `step ${step}`, '--step', String(step)]);
    const mb = fs.statSync(file).size / MiB;
    console.error(`  commit step ${step}: ${mb.toFixed(0)} MB in ${r.wall}s (${(mb / r.wall).toFixed(0)} MB/s)`);
    if (step === 1 || step === STEPS) {
      files[step === 1 ? 'first' : 'last'] = { sha: sha256(file), bytes: fs.statSync(file).size };
    }
  }
  const tiny = path.join(work, 'tiny');
  fs.mkdirSync(tiny);
  writeSafetensors(path.join(tiny, 'model.safetensors'), [
    { name: 'w', shape: [1024], data: new Float32Array(1024).fill(0.5) },
  ]);
  timed(bin, ['commit', tiny, '-b', 'tiny', '-m', 'tiny']);
  files.tiny = { sha: sha256(path.join(tiny, 'model.safetensors')), bytes: 4096 + 64 };
  fs.rmSync(ck, { recursive: true });
  fs.writeFileSync(path.join(store, 'bench-restore.json'), JSON.stringify(files));
  return files;
}

let files;
if (fs.existsSync(path.join(store, 'bench-restore.json')))
  files = JSON.parse(fs.readFileSync(path.join(store, 'bench-restore.json'), 'utf8'));
else {
  console.error(`making ${STEPS} checkpoints of ~${MB} MB in ${store}`);
  files = makeStore(bins[0]);
}

const cases = [
  { name: `last (${STEPS - 1} deltas deep), page cache`, rev: 'train', file: files.last, cold: false },
  { name: 'last, cold cache', rev: 'train', file: files.last, cold: true },
  { name: 'first (no deltas), page cache', rev: `train~${STEPS - 1}`, file: files.first, cold: false },
  { name: 'one 4 KB tensor (fixed cost)', rev: 'tiny', file: files.tiny, cold: false },
];
const results = new Map(); // case -> bin -> runs
const out = path.join(work, 'out');
for (let round = 0; round < rounds; round++) {
  for (const c of cases) {
    for (const bin of round % 2 ? [...bins].reverse() : bins) {
      fs.rmSync(out, { recursive: true, force: true });
      if (c.cold) dropCaches();
      else timed(bin, ['checkout', c.rev, '--to', out]); // warm the store's pages (and check it works)
      fs.rmSync(out, { recursive: true, force: true });
      const r = timed(bin, ['checkout', c.rev, '--to', out]);
      if (sha256(path.join(out, 'model.safetensors')) !== c.file.sha) throw new Error(`${bin}: not byte-identical`);
      const byBin = results.get(c.name) ?? new Map();
      byBin.set(bin, [...(byBin.get(bin) ?? []), r]);
      results.set(c.name, byBin);
    }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const c of cases) {
  for (const bin of bins) {
    const runs = results.get(c.name).get(bin);
    const wall = median(runs.map((r) => r.wall));
    const cpu = median(runs.map((r) => r.cpu));
    const mb = c.file.bytes / MiB;
    rows.push({
      case: c.name,
      build: path.relative(process.cwd(), bin) || bin,
      'wall s': wall,
      'CPU s': +cpu.toFixed(2),
      'MB/s': c.file.bytes > MiB ? +(mb / wall).toFixed(0) : '-',
      'MB per CPU s': c.file.bytes > MiB ? +(mb / cpu).toFixed(0) : '-',
      'peak RSS MiB': +Math.max(...runs.map((r) => r.rss)).toFixed(0),
    });
  }
}
console.table(rows);
console.error(`${rounds} rounds, medians; ${os.cpus().length} cores; load ${os.loadavg()[0].toFixed(1)}; work ${work}`);
if (!process.env.KEEP && !storeArg) fs.rmSync(work, { recursive: true, force: true });
else fs.rmSync(out, { recursive: true, force: true });
