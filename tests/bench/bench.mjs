// npm run bench: commit/checkout throughput, dedup and peak memory on generated safetensors checkpoints.
// Not a test: it prints a table (and writes JSON with --json). Sizes: BENCH_STEPS (default 8) checkpoints of
// BENCH_MB (default 512) MB, half of the tensors frozen, half changing every step; BENCH_BIG_MB (default 2304,
// 0 to skip) for one file over 2 GiB. Runs bin/ckvc in child processes so RSS is the command's own (GNU time).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './real/measure.mjs';
import { startRemotes } from './transports.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const STEPS = Number(process.env.BENCH_STEPS ?? 8);
const MB = Number(process.env.BENCH_MB ?? 512);
const BIG_MB = Number(process.env.BENCH_BIG_MB ?? 2304);
const TENSORS = 16;
const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'ckvc-bench-'));
const MiB = 1024 * 1024;

// Plausible float32 weights: random sign and mantissa, exponents in a narrow band (like trained weights).
function fillWeights(buf, seed) {
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < u32.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const exp = 118 + (x & 7);
    u32[i] = ((x >>> 31) << 31) | (exp << 23) | ((x * 2654435761) >>> 9);
  }
}

function safetensorsHeader(tensors) {
  const h = {};
  let off = 0;
  for (const t of tensors) {
    h[t.name] = { dtype: 'F32', shape: [t.bytes / 4], data_offsets: [off, off + t.bytes] };
    off += t.bytes;
  }
  let json = Buffer.from(JSON.stringify(h));
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

function writeCheckpoint(file, step, frozen) {
  const per = Math.floor((MB * MiB) / TENSORS / 4) * 4;
  const tensors = Array.from({ length: TENSORS }, (_, i) => ({ name: `layer.${i}.weight`, bytes: per }));
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, safetensorsHeader(tensors));
  const buf = Buffer.allocUnsafe(per);
  for (let i = 0; i < TENSORS; i++) {
    if (i % 2 === 0) fs.writeSync(fd, frozen[i / 2]);
    else {
      fillWeights(buf, step * 1000 + i + 1);
      fs.writeSync(fd, buf);
    }
  }
  fs.closeSync(fd);
}

/**
 * Runs bin/ckvc (the bundle users run) in a child (on `store`, but for `init`); returns seconds and the child's
 * peak RSS in MiB from GNU time (null without it: Debian's `time` package).
 */
async function ckvc(args, store = path.join(work, 'store'), env = {}) {
  // Flush the bench's own freshly written files first, so their writeback does not compete with the command.
  spawnSync('sync');
  const onStore = args[0] === 'init' ? [] : ['--store', store];
  return run(path.join(repo, 'bin/ckvc'), [...args, ...onStore], { env: { CKVC_AUTHOR: 'bench', ...env } });
}

function dropCaches() {
  // Best effort (needs root); without it, "cold" reads come from the page cache.
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function sha256(file) {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 * MiB);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

const rows = [];
const row = (what, bytes, r) => {
  rows.push({
    what,
    MB: +(bytes / MiB).toFixed(0),
    seconds: +r.secs.toFixed(2),
    'MB/s': +(bytes / MiB / r.secs).toFixed(0),
    'peak RSS MiB': r.rss === null ? null : +r.rss.toFixed(0),
  });
  console.error(`  ${what}: ${(bytes / MiB / r.secs).toFixed(0)} MB/s, RSS ${r.rss?.toFixed(0) ?? '–'} MiB`);
};

console.error(
  `ckvc bench in ${work}: ${STEPS} x ${MB} MB safetensors, ${TENSORS} tensors, half frozen; ${os.cpus().length} cores`,
);
fs.mkdirSync(path.join(work, 'store'), { recursive: true });
await ckvc(['init', path.join(work, 'store')]);
const perTensor = Math.floor((MB * MiB) / TENSORS / 4) * 4;
const frozen = Array.from({ length: TENSORS / 2 }, (_, i) => {
  const b = Buffer.allocUnsafe(perTensor);
  fillWeights(b, 7 + i);
  return b;
});
const ck = path.join(work, 'ckpt');
fs.mkdirSync(ck);
// The last steps are also kept as separate files, to measure re-committing a folder of known checkpoints.
const kept = path.join(work, 'kept');
fs.mkdirSync(kept);
const KEEP = Math.min(4, STEPS);
let logical = 0;
const mixed = { secs: 0, rss: 0, bytes: 0 };
for (let step = 1; step <= STEPS; step++) {
  const file = path.join(ck, 'model.safetensors');
  writeCheckpoint(file, step, frozen);
  const size = fs.statSync(file).size;
  logical += size;
  dropCaches();
  const r = await ckvc([
    'commit',
    ck,
    '-m',
    `step ${step}`,
    '-b',
    'train',
    '--step',
    String(step * 1000),
    '--metric',
    `loss=${(1 / step).toFixed(4)}`,
  ]);
  if (step > STEPS - KEEP) fs.copyFileSync(file, path.join(kept, `step_${step}.safetensors`));
  if (step === 1) row('commit, all new data', size, r);
  else {
    mixed.secs += r.secs;
    mixed.rss = r.rss === null ? null : Math.max(mixed.rss ?? 0, r.rss);
    mixed.bytes += size;
  }
}
if (STEPS > 1) row(`commit, half changed (steps 2-${STEPS})`, mixed.bytes, mixed);
const last = path.join(ck, 'model.safetensors');
const size = fs.statSync(last).size;
// Read and hashed (--reread: as before the files cache), then taken from the files cache unread (FORMAT.md §19).
row(
  'commit, unchanged data, read again (--reread, warm cache)',
  size,
  await ckvc(['commit', ck, '-m', 'again', '-b', 'train', '--reread']),
);
row('commit, unchanged data, files cache (not read)', size, await ckvc(['commit', ck, '-m', 'again', '-b', 'train']));
const keptBytes = fs.readdirSync(kept).reduce((a, f) => a + fs.statSync(path.join(kept, f)).size, 0);
row(
  `commit, unchanged data: folder of ${KEEP} known checkpoints`,
  keptBytes,
  await ckvc(['commit', kept, '-m', 'kept', '-b', 'kept']),
);
fs.rmSync(kept, { recursive: true });
const cold = dropCaches();
row(
  `commit, unchanged data, read again (--reread, ${cold ? 'cold cache' : 'page cache'})`,
  size,
  await ckvc(['commit', ck, '-m', 'again 2', '-b', 'train', '--reread']),
);
const outDir = path.join(work, 'out');
dropCaches();
row('checkout', size, await ckvc(['checkout', 'train', '--to', outDir]));
if (sha256(path.join(outDir, 'model.safetensors')) !== sha256(last)) throw new Error('checkout is not byte-identical');
fs.rmSync(outDir, { recursive: true });
const stats = JSON.parse((await ckvc(['stats', '--json'])).out);
row('verify --read-data', stats.storedBytes, await ckvc(['verify', '--read-data']));

// Sharing, per transport (folder, HTTP, SSH, S3; one whose server cannot start is skipped with the reason): the
// train branch pushed to an empty remote, pushed again unchanged, and fetched into an empty store; then, over
// HTTP, one more half-changed checkpoint pushed.
const share = [];
{
  const { remotes, skipped } = await startRemotes(repo, work);
  for (const s of skipped) {
    console.error(`  ${s.name}: skipped (${s.reason})`);
    share.push(`${s.name} skipped: ${s.reason}`);
  }
  try {
    for (const r of remotes) {
      const name = `bench-${r.name.toLowerCase()}`;
      await ckvc(['remote', 'add', name, r.url, ...r.addArgs]);
      const first = await ckvc(['push', name, 'train', '--json'], undefined, r.env);
      const f = JSON.parse(first.out);
      row(`push over ${r.name}: train branch (${f.commits} commits) to an empty store`, f.bytesSent, first);
      share.push(`${r.name} push: ${(f.bytesSent / MiB).toFixed(0)} MiB sent in ${f.objectsSent} objects`);
      const again = JSON.parse((await ckvc(['push', name, 'train', '--json'], undefined, r.env)).out);
      share.push(`${r.name} re-push unchanged: ${again.bytesSent} bytes, ${again.objectsSent} objects`);
      const into = path.join(work, `fetched-${r.name.toLowerCase()}`);
      spawnSync(process.execPath, [path.join(repo, 'bin/ckvc'), 'init', into]);
      const intoStore = path.join(into, '.ckvc');
      await ckvc(['remote', 'add', name, r.url, ...r.addArgs], intoStore);
      const fetched = await ckvc(['fetch', name, '--json'], intoStore, r.env);
      row(`fetch over ${r.name} into an empty store`, JSON.parse(fetched.out).bytesReceived, fetched);
      fs.rmSync(into, { recursive: true, force: true });
    }
    const http = remotes.find((r) => r.name === 'HTTP');
    writeCheckpoint(path.join(ck, 'model.safetensors'), STEPS + 1, frozen);
    await ckvc(['commit', ck, '-m', 'one more', '-b', 'train']);
    const inc = JSON.parse((await ckvc(['push', 'bench-http', 'train', '--json'], undefined, http.env)).out);
    share.push(`HTTP push of one more half-changed ${MB} MB checkpoint: ${(inc.bytesSent / MiB).toFixed(1)} MiB sent`);
    share.push(`(the store holds ${(stats.storedBytes / MiB).toFixed(0)} MiB)`);
  } finally {
    for (const r of remotes) await r.stop();
  }
}

// NumPy: np.savez (stored members, cut at each array) and np.savez_compressed (deflated members, inflated once
// under the caps to be checked, then kept as they are), written by the real numpy when python3 has it.
const npz = [];
if (spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0) {
  const writeNpz = (file, step, compressed, mb) => {
    const script = `import numpy as np, sys
n = ${Math.floor((1024 * 1024) / 4)} * ${mb} // ${TENSORS}
arrays = {f"layer{i}.weight": np.random.default_rng(7 + i if i < ${TENSORS / 2} else ${step} * 1000 + i).standard_normal(n, dtype=np.float32) for i in range(${TENSORS})}
(np.savez_compressed if ${compressed ? 'True' : 'False'} else np.savez)(sys.argv[1], **arrays)`;
    const r = spawnSync('python3', ['-c', script, file], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('python3 could not write the .npz');
  };
  const dir = path.join(work, 'npz');
  fs.mkdirSync(dir);
  const f = path.join(dir, 'weights.npz');
  writeNpz(f, 1, false, MB);
  const npzSize = fs.statSync(f).size;
  const first = await ckvc(['commit', f, '-m', 'npz 1', '-b', 'npz', '--json']);
  row('commit .npz (np.savez), all new data', npzSize, first);
  writeNpz(f, 2, false, MB);
  const second = await ckvc(['commit', f, '-m', 'npz 2', '-b', 'npz', '--json']);
  row('commit .npz, half the arrays changed', npzSize, second);
  npz.push(
    `np.savez ${MB} MB with half the arrays changed: ${(JSON.parse(second.out).newBytes / MiB).toFixed(0)} MiB new`,
  );
  const cmb = Math.min(MB, 128);
  writeNpz(f, 3, true, cmb);
  const cSize = fs.statSync(f).size;
  row(
    `commit .npz (np.savez_compressed, ${cmb} MB of arrays)`,
    cSize,
    await ckvc(['commit', f, '-m', 'npz c', '-b', 'npz-c', '--json']),
  );
  // Read again (--reread): whether the files cache would take it unread depends on how soon after writing it runs.
  const again = await ckvc(['commit', f, '-m', 'npz c again', '-b', 'npz-c', '--json', '--reread']);
  row('commit of it again, unchanged (--reread)', cSize, again);
  npz.push(`np.savez_compressed re-committed unchanged: ${JSON.parse(again.out).newBytes} bytes new`);
  fs.rmSync(dir, { recursive: true });
}

if (BIG_MB > 0) {
  // One file over 2 GiB (readFileSync's limit): must stream in bounded memory.
  fs.rmSync(ck, { recursive: true });
  fs.mkdirSync(ck);
  const big = path.join(ck, 'big.bin');
  const fd = fs.openSync(big, 'w');
  const buf = Buffer.allocUnsafe(64 * MiB);
  for (let i = 0; i < BIG_MB / 64; i++) {
    fillWeights(buf, 99 + i);
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
  const bigSize = fs.statSync(big).size;
  row(
    `commit, one ${(bigSize / 2 ** 30).toFixed(2)} GiB opaque file`,
    bigSize,
    await ckvc(['commit', ck, '-m', 'big', '-b', 'big']),
  );
  row('checkout of it', bigSize, await ckvc(['checkout', 'big', '--to', outDir]));
  if (sha256(path.join(outDir, 'big.bin')) !== sha256(big)) throw new Error('big checkout is not byte-identical');
}

const storeBytes = stats.storedBytes;
console.log(
  `\nckvc bench: ${STEPS} x ${MB} MB safetensors checkpoints (${TENSORS} F32 tensors, half frozen), ${os.cpus().length} cores, node ${process.version}\n`,
);
console.log('| operation | MB | seconds | MB/s | peak RSS MiB |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(`| ${r.what} | ${r.MB} | ${r.seconds} | ${r['MB/s']} | ${r['peak RSS MiB'] ?? '–'} |`);
console.log(
  `\nTimes are whole commands, including process start (~0.14 s: Node and the modules a command loads) and the fsyncs of a commit.`,
);
console.log(`\nsharing (bytes sent are the bundles on the wire): ${share.join('; ')}`);
if (npz.length) console.log(`\nnumpy: ${npz.join('; ')}`);
console.log(
  `\nseries: logical ${(logical / MiB).toFixed(0)} MiB (+ the unchanged re-commits), stored ${(storeBytes / MiB).toFixed(0)} MiB; stats: dedup ${stats.dedupRatio.toFixed(2)}x, compression ${stats.compressionRatio.toFixed(2)}x, overall ${stats.totalRatio.toFixed(2)}x`,
);
fs.rmSync(work, { recursive: true, force: true });
