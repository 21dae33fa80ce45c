// npm run bench:scale: how everyday commands behave as a store grows (issue 12: "as fast at 10,000 commits as
// at 10"). Builds stores of SCALE_COMMITS (default "10,10000") small commits spread over 20 branches through the
// Node API, once: they are cached in SCALE_DIR (default $TMPDIR/ckvc-scale-cache) keyed by size and by the
// generator's version, so later runs only time. Then times each command by spawning bin/ckvc (median of
// SCALE_RUNS, default 5) and prints a table (--json for JSON). A command that changes the store (commit, checkout
// into a folder) runs against a scratch copy, so the cached store stays as built.
//
// SCALE_PROFILE=DIR adds `node --cpu-prof --cpu-prof-dir DIR` to every timed run, to see where time goes.
// SCALE_ONLY=commit,log restricts the commands timed. Generation prints progress; 10,000 commits take minutes.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repo, 'bin', 'ckvc');
const SIZES = (process.env.SCALE_COMMITS ?? '10,10000').split(',').map(Number);
const RUNS = Number(process.env.SCALE_RUNS ?? 5);
const BRANCHES = 20;
const GENERATOR_VERSION = 2;
const cacheDir = process.env.SCALE_DIR ?? path.join(os.tmpdir(), 'ckvc-scale-cache');
const ONLY = process.env.SCALE_ONLY?.split(',');
const PROFILE = process.env.SCALE_PROFILE;

const { initStore, openStore } = await import(path.join(repo, 'dist/api/index.js'));

/** Builds (or reuses) a store of `n` commits: branch b{i % 20}, a small checkpoint file that changes each time. */
async function buildStore(n) {
  const dir = path.join(cacheDir, `v${GENERATOR_VERSION}-${n}`);
  if (fs.existsSync(path.join(dir, 'done'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  await initStore(dir);
  const store = await openStore(path.join(dir, '.ckvc'));
  const ckpt = path.join(dir, 'ckpt');
  fs.mkdirSync(ckpt);
  const started = Date.now();
  try {
    for (let i = 0; i < n; i++) {
      const branch = `b${String(i % BRANCHES).padStart(2, '0')}`;
      fs.writeFileSync(path.join(ckpt, 'state.json'), JSON.stringify({ step: i, branch, w: Array.from({ length: 16 }, (_, k) => (i * 31 + k) % 97) }));
      await store.commit({ paths: [ckpt], branch, message: `step ${i}`, metrics: { loss: 1 / (1 + i) }, step: i, cwd: dir });
      if ((i + 1) % 500 === 0) process.stderr.write(`  built ${i + 1}/${n} commits (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
    }
  } finally {
    await store.close();
  }
  fs.writeFileSync(path.join(dir, 'done'), '');
  return dir;
}

function ckvc(args, cwd) {
  const pre = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : [];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [...pre, cli, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`ckvc ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function packCount(store) {
  return fs.readdirSync(path.join(store, 'packs')).filter((f) => f.endsWith('.pack')).length;
}

/** Each command: a name and a function that runs it once (in `dir`, whose store is `dir/.ckvc`) and returns ms. */
function commands(dir, scratch) {
  const store = path.join(dir, '.ckvc');
  const s = ['--store', store];
  let k = 0;
  return [
    ['log -n 1', () => ckvc(['log', '-n', '1', ...s], dir).ms],
    ['branch', () => ckvc(['branch', ...s], dir).ms],
    ['best', () => ckvc(['best', '--metric', 'loss', '--min', '-b', 'b00', ...s], dir).ms],
    ['checkout', () => {
      const to = path.join(scratch, `co-${k++}`);
      const ms = ckvc(['checkout', 'b01', '--to', to, ...s], dir).ms;
      fs.rmSync(to, { recursive: true, force: true });
      return ms;
    }],
    ['commit', () => {
      const ck = path.join(scratch, 'ckpt');
      fs.mkdirSync(ck, { recursive: true });
      fs.writeFileSync(path.join(ck, 'state.json'), JSON.stringify({ bench: k++, t: process.hrtime.bigint().toString() }));
      return ckvc(['commit', ck, '-b', 'b02', '-m', 'bench', '--store', path.join(scratch, '.ckvc')], scratch).ms;
    }],
    ['stats', () => ckvc(['stats', ...s], dir).ms],
    ['verify', () => ckvc(['verify', ...s], dir).ms],
    ['gc --dry-run', () => ckvc(['gc', '--dry-run', ...s], dir).ms],
  ].filter(([name]) => !ONLY || ONLY.some((o) => name.startsWith(o)));
}

const results = [];
for (const n of SIZES) {
  process.stderr.write(`store of ${n} commits...\n`);
  const dir = await buildStore(n);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-scale-run-'));
  try {
    // commit writes: it gets its own copy of the store so the cached one stays as built.
    fs.cpSync(path.join(dir, '.ckvc'), path.join(scratch, '.ckvc'), { recursive: true });
    const row = { commits: n, packsBefore: packCount(path.join(dir, '.ckvc')) };
    for (const [name, run] of commands(dir, scratch)) {
      run(); // warm the page cache
      row[name] = median(Array.from({ length: RUNS }, run));
    }
    row.packsAfterCommits = packCount(path.join(scratch, '.ckvc'));
    results.push(row);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
else {
  const names = Object.keys(results[0] ?? {}).filter((k) => !['commits', 'packsBefore', 'packsAfterCommits'].includes(k));
  console.log(['commits', 'packs', ...names.map((n) => `${n} (ms)`), 'packs after'].join('\t'));
  for (const r of results) console.log([r.commits, r.packsBefore, ...names.map((n) => r[n].toFixed(0)), r.packsAfterCommits].join('\t'));
}
