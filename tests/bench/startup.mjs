// npm run bench:startup: how long the CLI takes to start, against a bare `node -e 0` (issue 12: within 60 ms).
// Not a test: it prints the median wall time of STARTUP_RUNS (default 20) runs of each command, interleaved so
// that a busy moment on the machine hits all of them alike, and each command's cost over bare node.
// `log -n 1` runs on a one-commit store created in a temp folder. On Linux it also prints the mean CPU time
// (user + system) of each command: on a busy machine that moves much less than wall time does.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// STARTUP_CKVC=/other/checkout/bin/ckvc measures another build (e.g. before a change) the same way.
const ckvc = process.env.STARTUP_CKVC ? path.resolve(process.env.STARTUP_CKVC) : path.join(repo, 'bin', 'ckvc');
const RUNS = Number(process.env.STARTUP_RUNS ?? 20);
const TARGET_MS = 60;

if (!process.env.STARTUP_CKVC && !fs.existsSync(path.join(repo, 'dist', 'bundle'))) {
  console.error('no dist/bundle: run `npm run build` first');
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-startup-'));
const env = { ...process.env, CKVC_AUTHOR: 'bench', NO_COLOR: '1' };
delete env.CKVC_DIR;

function run(args, extraEnv = {}) {
  const r = spawnSync(process.execPath, args, { cwd: work, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r;
}

run([ckvc, 'init', '.']);
fs.writeFileSync(path.join(work, 'weights.bin'), Buffer.alloc(64 * 1024, 7));
run([ckvc, 'commit', 'weights.bin', '-m', 'first']);

const cases = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'ckvc --version', args: [ckvc, '--version'] },
  { name: 'ckvc log -n 1', args: [ckvc, 'log', '-n', '1'] },
  // What a command's first run after an install or a build pays: compiled code not yet kept (bin/compiled-code-cache.cjs).
  { name: '--version, first', args: [ckvc, '--version'], env: { NODE_DISABLE_COMPILE_CACHE: '1' } },
  { name: 'log -n 1, first', args: [ckvc, 'log', '-n', '1'], env: { NODE_DISABLE_COMPILE_CACHE: '1' } },
];

// Children's CPU time so far, in ms: fields 16 and 17 of /proc/self/stat (clock ticks, 100 a second on Linux).
function childCpuMs() {
  try {
    const fields = fs
      .readFileSync('/proc/self/stat', 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return undefined;
  }
}

const times = cases.map(() => []);
const cpu = cases.map(() => 0);
try {
  // One warm-up round: the first run of each pays for a cold file cache.
  for (const c of cases) run(c.args, c.env);
  for (let i = 0; i < RUNS; i++) {
    cases.forEach((c, j) => {
      const c0 = childCpuMs();
      const t0 = process.hrtime.bigint();
      run(c.args, c.env);
      times[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
      cpu[j] += (childCpuMs() ?? NaN) - (c0 ?? NaN);
    });
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const medians = times.map(median);
const base = medians[0];
const cpuMean = cpu.map((t) => t / RUNS);
console.log(`node ${process.version}, ${RUNS} runs each: median wall time (min), mean CPU time`);
cases.forEach((c, i) => {
  const over = medians[i] - base;
  const verdict =
    i === 0
      ? ''
      : `  wall +${over.toFixed(1)} ms over node${over <= TARGET_MS || c.env ? '' : ` (target: +${TARGET_MS} ms)`}`;
  const cpuText = Number.isFinite(cpuMean[i])
    ? `  cpu ${cpuMean[i].toFixed(0).padStart(4)} ms${i ? ` (+${(cpuMean[i] - cpuMean[0]).toFixed(0)})` : ''}`
    : '';
  console.log(
    `${c.name.padEnd(16)} ${medians[i].toFixed(1).padStart(7)} ms (${Math.min(...times[i]).toFixed(1)})${cpuText}${verdict}`,
  );
});
