// npm run bench:scale: how everyday commands behave as a store grows (issue 12: "as fast at 10,000 commits as
// at 10"). Builds stores of SCALE_COMMITS (default "10,10000") small commits spread over 20 branches through the
// Node API, once: they are cached in SCALE_DIR (default $TMPDIR/ckvc-scale-cache) keyed by size and by the
// generator's version, so later runs only time. Then times each command by spawning bin/ckvc (median of
// SCALE_RUNS, default 5, the sizes interleaved) and prints a table (--json for JSON). A command that changes the store (commit, checkout
// into a folder) runs against a scratch copy, so the cached store stays as built.
//
// The cache is keyed by GENERATOR_VERSION only: delete SCALE_DIR to rebuild the stores with the code under
// test (a store built by an older ckvc shows what an existing store looks like on upgrade).
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
      fs.writeFileSync(
        path.join(ckpt, 'state.json'),
        JSON.stringify({ step: i, branch, w: Array.from({ length: 16 }, (_, k) => (i * 31 + k) % 97) }),
      );
      await store.commit({
        paths: [ckpt],
        branch,
        message: `step ${i}`,
        metrics: { loss: 1 / (1 + i) },
        step: i,
        cwd: dir,
      });
      if ((i + 1) % 500 === 0)
        process.stderr.write(`  built ${i + 1}/${n} commits (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
    }
  } finally {
    await store.close();
  }
  fs.writeFileSync(path.join(dir, 'done'), '');
  return dir;
}

// CPU time (user + sys) of the child, from GNU time when present: on a machine shared with other work it varies
// much less than wall time, which is reported too.
const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const timeFile = path.join(os.tmpdir(), `ckvc-scale-time-${process.pid}`);

function ckvc(args, cwd) {
  const pre = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : [];
  const argv = [process.execPath, ...pre, cli, ...args];
  const t0 = process.hrtime.bigint();
  const r = TIME
    ? spawnSync(TIME, ['-f', '%U %S', '-o', timeFile, ...argv], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 })
    : spawnSync(argv[0], argv.slice(1), { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`ckvc ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const cpu = TIME
    ? fs
        .readFileSync(timeFile, 'utf8')
        .trim()
        .split('\n')
        .pop()
        .split(' ')
        .reduce((a, x) => a + Number(x) * 1000, 0)
    : NaN;
  return { ms, cpu, out: r.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function packCount(store) {
  return fs.readdirSync(path.join(store, 'packs')).filter((f) => f.endsWith('.pack')).length;
}

/** Each command: a name and a function that runs it once (in `dir`, whose store is `dir/.ckvc`): { ms, cpu }. */
function commands(dir, scratch) {
  const store = path.join(dir, '.ckvc');
  const s = ['--store', store];
  let k = 0;
  return [
    ['log -n 1', () => ckvc(['log', '-n', '1', ...s], dir)],
    ['branch', () => ckvc(['branch', ...s], dir)],
    ['best', () => ckvc(['best', '--metric', 'loss', '--min', '-b', 'b00', ...s], dir)],
    [
      'checkout',
      () => {
        const to = path.join(scratch, `co-${k++}`);
        const t = ckvc(['checkout', 'b01', '--to', to, ...s], dir);
        fs.rmSync(to, { recursive: true, force: true });
        return t;
      },
    ],
    [
      'commit',
      () => {
        const ck = path.join(scratch, 'ckpt');
        fs.mkdirSync(ck, { recursive: true });
        fs.writeFileSync(
          path.join(ck, 'state.json'),
          JSON.stringify({ bench: k++, t: process.hrtime.bigint().toString() }),
        );
        return ckvc(['commit', ck, '-b', 'b02', '-m', 'bench', '--store', path.join(scratch, '.ckvc')], scratch);
      },
    ],
    ['stats', () => ckvc(['stats', ...s], dir)],
    ['verify', () => ckvc(['verify', ...s], dir)],
    ['gc --dry-run', () => ckvc(['gc', '--dry-run', ...s], dir)],
  ].filter(([name]) => !ONLY || ONLY.some((o) => name.startsWith(o)));
}

// The sizes' runs are interleaved (10, 10000, 10, 10000, ...) so that both see the same load on a shared machine.
const stores = [];
for (const n of SIZES) {
  process.stderr.write(`store of ${n} commits...\n`);
  const dir = await buildStore(n);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-scale-run-'));
  // commit writes: it gets its own copy of the store so the cached one stays as built.
  fs.cpSync(path.join(dir, '.ckvc'), path.join(scratch, '.ckvc'), { recursive: true });
  const objects = Object.values(
    JSON.parse(ckvc(['stats', '--json', '--store', path.join(dir, '.ckvc')], dir).out).objects,
  ).reduce((a, b) => a + b, 0);
  stores.push({
    n,
    dir,
    scratch,
    objects,
    packs: packCount(path.join(dir, '.ckvc')),
    cmds: commands(dir, scratch),
    times: {},
  });
}
try {
  const names = stores[0]?.cmds.map(([name]) => name) ?? [];
  for (const [i, name] of names.entries()) {
    process.stderr.write(`  ${name}\n`);
    for (const st of stores) st.cmds[i][1](); // warm the page cache
    for (let r = 0; r < RUNS; r++) {
      for (const st of stores) (st.times[name] ??= []).push(st.cmds[i][1]());
    }
  }
  const results = stores.map((st) => {
    const row = {
      commits: st.n,
      objects: st.objects,
      packs: st.packs,
      packsAfterCommits: packCount(path.join(st.scratch, '.ckvc')),
    };
    for (const name of names) {
      row[name] = { ms: median(st.times[name].map((t) => t.ms)), cpu: median(st.times[name].map((t) => t.cpu)) };
      // verify and gc walk every object: their cost per object says whether they stay linear.
      if (name === 'verify' || name.startsWith('gc')) row[name].usPerObject = (row[name].ms * 1000) / st.objects;
    }
    return row;
  });
  if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
  else {
    console.log(
      `median of ${RUNS} runs; wall ms / CPU ms (user+sys)${results.length > 1 ? '; last column: difference of the largest store from the smallest, wall / CPU' : ''}`,
    );
    console.log(
      [
        'command',
        ...results.map((r) => `${r.commits} commits (${r.packs} packs)`),
        ...(results.length > 1 ? ['difference'] : []),
      ].join('\t'),
    );
    const fmt = (t) =>
      `${t.ms.toFixed(0)} / ${Number.isNaN(t.cpu) ? '-' : t.cpu.toFixed(0)}${t.usPerObject ? ` (${t.usPerObject.toFixed(0)} µs/object)` : ''}`;
    for (const name of names) {
      const first = results[0][name];
      const last = results[results.length - 1][name];
      const diff =
        results.length > 1 ? [`${(last.ms - first.ms).toFixed(0)} / ${(last.cpu - first.cpu).toFixed(0)}`] : [];
      console.log([name, ...results.map((r) => fmt(r[name])), ...diff].join('\t'));
    }
    console.log(['objects', ...results.map((r) => r.objects)].join('\t'));
    console.log(['packs after the timed commits', ...results.map((r) => r.packsAfterCommits)].join('\t'));
  }
} finally {
  for (const st of stores) fs.rmSync(st.scratch, { recursive: true, force: true });
  fs.rmSync(timeFile, { force: true });
}
