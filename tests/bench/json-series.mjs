// npm run bench:json — JSON agent snapshots (spec/JSON.md): a small MLP policy trained with NumPy
// (tests/bench/json-snapshots.py) writes 10 json.dump snapshots; each is committed over the last as agent.json,
// one process per commit, then every commit is checked out and compared byte for byte. Prints the stored ratio
// (sum of snapshot bytes / store bytes), zstd -19 of the texts for comparison when zstd is installed, commit
// throughput (wall, including process start; and in this process through the API, wall and CPU time, which
// counts the thread pool's zstd and hashing too), and the JSON reader's own throughput in this process. CPU
// seconds per MB (the CLI commits' too, from /proc on Linux) are the figure to compare across runs on a shared
// machine.
// Environment: BENCH_JSON_DIR (snapshots; generated once), BENCH_JSON_HIDDEN (e.g. 256,256).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv } from './real/measure.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(repo, 'bin', 'ckvc');
const snapDir = process.env.BENCH_JSON_DIR ?? path.join(os.tmpdir(), 'ckvc-bench-json');
const hidden = process.env.BENCH_JSON_HIDDEN ?? '256,256';

if (!fs.existsSync(snapDir) || fs.readdirSync(snapDir).filter((f) => f.endsWith('.json')).length < 10) {
  const generator = path.join(repo, 'tests/bench/json-snapshots.py');
  execFileSync('python3', [generator, snapDir, '--hidden', hidden], { stdio: 'inherit' });
}
const snaps = fs
  .readdirSync(snapDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => path.join(snapDir, f));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-bench-json-'));
const run = (...args) => {
  const argv = [bin, ...args, ...(args[0] === 'init' ? [] : ['--store', path.join(work, '.ckvc')])];
  const r = spawnSync(process.execPath, argv, { encoding: 'buffer', maxBuffer: 1 << 30, env: benchEnv() });
  if (r.status !== 0) throw new Error(`ckvc ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
run('init', work);
const dir = path.join(work, 'run');
fs.mkdirSync(dir);
// CPU seconds of this process's finished children (user + sys; Linux's /proc, else undefined): what the CLI
// commits cost whatever the machine's load does to their wall time.
const childCpu = () => {
  try {
    const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // cutime, cstime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
};
let textBytes = 0;
let commitSeconds = 0;
let commitCpu = 0;
const ids = [];
for (const f of snaps) {
  fs.copyFileSync(f, path.join(dir, 'agent.json'));
  textBytes += fs.statSync(f).size;
  const c0 = childCpu();
  const t0 = performance.now();
  ids.push(JSON.parse(run('commit', dir, '-m', path.basename(f), '--json').toString()).id);
  commitSeconds += (performance.now() - t0) / 1000;
  commitCpu += (childCpu() ?? Number.NaN) - (c0 ?? Number.NaN);
}
ids.forEach((id, i) => {
  if (!run('cat', `${id}:agent.json`).equals(fs.readFileSync(snaps[i]))) {
    throw new Error(`${snaps[i]} did not check out byte-identical`);
  }
});
const stats = JSON.parse(run('stats', '--json').toString());
const packsDir = path.join(work, '.ckvc', 'packs');
const packBytes = fs.readdirSync(packsDir).reduce((a, f) => a + fs.statSync(path.join(packsDir, f)).size, 0);

// The same series committed in this process: no process start, module loading once. Then once more into a
// fresh store in the same process: the same data and work with modules loaded and the JIT warm, what a long-lived
// committer (ckvc watch, the Python helper's server) sees after its first series.
const api = await import(path.join(repo, 'dist/api/index.js'));
async function inProcessSeries() {
  const inWork = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-bench-json-api-'));
  await api.initStore(inWork);
  const store = await api.openStore(path.join(inWork, '.ckvc'));
  const inDir = path.join(inWork, 'run');
  fs.mkdirSync(inDir);
  let seconds = 0;
  let cpu = 0;
  for (const f of snaps) {
    fs.copyFileSync(f, path.join(inDir, 'agent.json'));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await store.commit({ paths: [inDir], message: path.basename(f), cwd: inWork });
    seconds += (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1e6;
  }
  await store.close();
  fs.rmSync(inWork, { recursive: true, force: true });
  return { seconds, cpu };
}
const { seconds: apiSeconds, cpu: apiCpu } = await inProcessSeries();
const { seconds: warmSeconds, cpu: warmCpu } = await inProcessSeries();

const { findJsonArrays } = await import(path.join(repo, 'dist/core/input-formats/json-arrays.js'));
// The machine's speed right now, for scale: V8's native JSON.parse of the same texts. Three passes (the first
// one compiles), the fastest reported.
let readerSeconds = Infinity;
let readerCpu = Infinity;
let parseSeconds = Infinity;
let parseCpu = Infinity;
const files = snaps.map((f) => fs.readFileSync(f));
const texts = files.map((b) => b.toString('latin1'));
for (let pass = 0; pass < 3; pass++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const bytes of files) findJsonArrays(bytes, 'agent');
  readerSeconds = Math.min(readerSeconds, (performance.now() - t0) / 1000);
  const c = process.cpuUsage(c0);
  readerCpu = Math.min(readerCpu, (c.user + c.system) / 1e6);
  const c1 = process.cpuUsage();
  const t1 = performance.now();
  for (const text of texts) JSON.parse(text);
  parseSeconds = Math.min(parseSeconds, (performance.now() - t1) / 1000);
  const c2 = process.cpuUsage(c1);
  parseCpu = Math.min(parseCpu, (c2.user + c2.system) / 1e6);
}
let zstd = 'zstd not installed';
if (spawnSync('zstd', ['--version']).status === 0) {
  const cat = `cat ${snaps.map((s) => `'${s}'`).join(' ')}`;
  const z = spawnSync('sh', ['-c', `${cat} | zstd -19 -q -c | wc -c`], { encoding: 'utf8' });
  zstd = `${(textBytes / Number(z.stdout.trim())).toFixed(2)}x`;
}
const mb = (b) => (b / 1e6).toFixed(1);
console.log(`| snapshots | ${snaps.length} of ${mb(textBytes / snaps.length)} MB (hidden ${hidden}) |`);
const ratio = `${(textBytes / packBytes).toFixed(2)}x (ckvc stats: ${stats.totalRatio.toFixed(2)}x)`;
console.log(`| stored ratio (snapshot bytes / pack bytes) | ${ratio} |`);
console.log(`| zstd -19 of the concatenated texts | ${zstd} |`);
const perMb = (cpu) => `${(cpu / (textBytes / 1e6)).toFixed(4)} CPU-s/MB`;
const cliCpu = Number.isNaN(commitCpu) ? '' : `, ${mb(textBytes / commitCpu)} MB/s of CPU time (${perMb(commitCpu)})`;
console.log(`| commit, wall incl. process start | ${mb(textBytes / commitSeconds)} MB/s${cliCpu} |`);
const inProcess = `${mb(textBytes / apiSeconds)} MB/s wall, ${mb(textBytes / apiCpu)} MB/s of CPU time (${perMb(apiCpu)})`;
console.log(`| commit in process (API), first one loads modules | ${inProcess} |`);
const warm = `${mb(textBytes / warmSeconds)} MB/s wall, ${mb(textBytes / warmCpu)} MB/s of CPU time (${perMb(warmCpu)})`;
console.log(`| the same again in a fresh store, same process (warm) | ${warm} |`);
const reader = `${mb(textBytes / readerSeconds)} MB/s wall, ${mb(textBytes / readerCpu)} MB/s of CPU time (${perMb(readerCpu)})`;
console.log(`| JSON reader alone, in process | ${reader} |`);
const parse = `${mb(textBytes / parseSeconds)} MB/s wall, ${mb(textBytes / parseCpu)} MB/s of CPU time`;
console.log(`| V8 JSON.parse of the same texts, for scale | ${parse} |`);
console.log(`| every snapshot byte-identical | yes |`);
const load = os
  .loadavg()
  .map((x) => x.toFixed(1))
  .join(' ');
console.log(`| load average at the end | ${load} (${os.cpus().length} CPUs) |`);
fs.rmSync(work, { recursive: true, force: true });
