// Helpers for the reliability tests (tests/reliability, tests/soak): run the CLI keeping the signal that ended
// it (the shared helpers fold it into an exit code), read the fault-step table from spec/FAULTS.md, copy
// prepared stores, fingerprint input files, a small concurrency pool, and the concurrency soak itself (shared
// by the short CI version and the long soak). Like tests/helpers/ckvc.ts, nothing here imports src/ or dist/.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { BIN, cliEnv, diffSnapshots, REPO_ROOT, readTree, type RunOptions, sha256, tempDir } from './ckvc.js';
import { prng, randomBytes, randomFloat32, safetensorsBytes } from './data.js';

export const MiB = 1024 * 1024;

/** The outcome of one ckvc process: exit code (null when killed by a signal) and the signal. */
export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function describeOutcome(r: Outcome): string {
  return `${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`} after ${r.ms} ms\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Runs `ckvc ARGS...` synchronously, keeping the signal. */
export function runSync(args: string[], opts: RunOptions = {}): Outcome {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? os.tmpdir(),
    env: cliEnv(opts.env),
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
    timeout: opts.timeoutMs ?? 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

export interface Started {
  pid: number;
  kill(signal?: NodeJS.Signals): void;
  done: Promise<Outcome>;
}

/** Starts `ckvc ARGS...`; `done` resolves with the outcome (signal kept). */
export function start(args: string[], opts: RunOptions = {}): Started {
  const t0 = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? os.tmpdir(), env: cliEnv(opts.env) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const done = new Promise<Outcome>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  return {
    pid: child.pid!,
    kill: (s = 'SIGKILL') => {
      child.kill(s);
    },
    done,
  };
}

export const runAsync = (args: string[], opts: RunOptions = {}): Promise<Outcome> => start(args, opts).done;

/** Throws with the output unless the outcome is exit 0. */
export function expectOk(r: Outcome, what: string): Outcome {
  if (r.code !== 0) throw new Error(`${what}: ${describeOutcome(r)}`);
  return r;
}

export function parseJson<T = any>(r: Outcome, what: string): T {
  expectOk(r, what);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${what} printed non-JSON: ${describeOutcome(r)}`);
  }
}

/** A store at `dir/.ckvc` with async and sync runners that add --store. */
export class Store {
  readonly store: string;
  constructor(readonly dir: string) {
    this.store = path.join(dir, '.ckvc');
  }

  private with(args: string[]): string[] {
    return [...args, '--store', this.store];
  }

  run(args: string[], opts?: RunOptions): Promise<Outcome> {
    return runAsync(this.with(args), opts);
  }

  start(args: string[], opts?: RunOptions): Started {
    return start(this.with(args), opts);
  }

  runSync(args: string[], opts?: RunOptions): Outcome {
    return runSync(this.with(args), opts);
  }

  async json<T = any>(args: string[], opts?: RunOptions): Promise<T> {
    return parseJson<T>(await this.run([...args, '--json'], opts), `ckvc ${args.join(' ')}`);
  }

  jsonSync<T = any>(args: string[], opts?: RunOptions): T {
    return parseJson<T>(this.runSync([...args, '--json'], opts), `ckvc ${args.join(' ')}`);
  }

  /** Reads a ref file (trimmed), or undefined. */
  ref(full: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.store, ...full.split('/')), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  head(): string | undefined {
    try {
      return fs.readFileSync(path.join(this.store, 'HEAD'), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** Every ref file under refs/ (heads/... and tags/...), lock, temp and dot files excluded. */
  refFiles(): string[] {
    const out: string[] = [];
    const walk = (dir: string, rel: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (
          e.name.startsWith('.') ||
          e.name.endsWith('.lock') ||
          e.name.endsWith('.tmp') ||
          e.name.includes('.lock.stale.')
        )
          continue;
        const r = `${rel}/${e.name}`;
        if (e.isDirectory()) walk(path.join(dir, e.name), r);
        else out.push(r);
      }
    };
    walk(path.join(this.store, 'refs'), 'refs');
    return out.sort();
  }

  /** `ckvc verify [--read-data] --json`: the outcome and the parsed report (when there is one). */
  async verify(readData = true): Promise<{ r: Outcome; report: any }> {
    const r = await this.run(['verify', ...(readData ? ['--read-data'] : []), '--json']);
    let report: any;
    try {
      report = JSON.parse(r.stdout);
    } catch {
      /* none */
    }
    return { r, report };
  }
}

/** Creates a fresh store with `ckvc init` in a new temp dir. */
export function initStore(prefix = 'ckvc-rel-'): Store {
  const dir = tempDir(prefix);
  expectOk(runSync(['init', dir]), 'ckvc init');
  return new Store(dir);
}

/** A copy of a prepared store (the folder holding .ckvc), in a new temp dir. */
export function copyStore(template: Store, prefix = 'ckvc-case-'): Store {
  const dir = tempDir(prefix);
  fs.cpSync(template.dir, dir, { recursive: true });
  return new Store(dir);
}

/** The step names of the table in spec/FAULTS.md, in table order. */
export function faultSteps(): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'spec', 'FAULTS.md'), 'utf8');
  const steps = [...text.matchAll(/^\|\s*`([a-z][a-z.]*)`\s*\|/gm)].map((m) => m[1]!);
  if (steps.length < 5) throw new Error(`spec/FAULTS.md: found only ${steps.length} steps in the table`);
  return steps;
}

/** sha256 of a file. */
export function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** Every regular file under `root` as relative path -> sha256. */
export function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of readTree(root)) out.set(k, sha256(v));
  return out;
}

/** What must not change about a user's input file: content, size, mtime, mode, inode. */
export function fingerprint(paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const add = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      out.set(p, `dir ${st.mode}`);
      for (const n of fs.readdirSync(p).sort()) add(path.join(p, n));
    } else out.set(p, `${st.isFile() ? sha256File(p) : 'special'} ${st.size} ${st.mtimeMs} ${st.mode} ${st.ino}`);
  };
  for (const p of paths) add(p);
  return out;
}

/** Checks out REV into a fresh temp dir and returns what differs from `expected` (path -> sha256); [] when equal. */
export async function checkoutDiff(s: Store, rev: string, expected: Map<string, string>): Promise<string[]> {
  const out = tempDir('ckvc-co-');
  const r = await s.run(['checkout', rev, '--to', out]);
  if (r.code !== 0) return [`checkout ${rev} failed: ${describeOutcome(r)}`];
  const got = hashTree(out);
  fs.rmSync(out, { recursive: true, force: true });
  return diffSnapshots(expected, got).map((d) => `${rev}: ${d}`);
}

/** Runs `fn` over `items` with at most `limit` running at once; results in input order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A counting semaphore: `use(fn)` runs fn when a slot is free. */
export class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const w = this.waiting.shift();
      if (w) w();
      else this.free++;
    }
  }
}

/** CKVC_SOAK_SCALE (default 1): multiplies round counts of the soak-like tests. */
export function soakScale(): number {
  const v = Number(process.env.CKVC_SOAK_SCALE ?? 1);
  return Number.isFinite(v) && v > 0 ? v : 1;
}

/** Temp files a checkout may leave when killed: `.NAME.ckvc-*.tmp`. */
export const CHECKOUT_TEMP = /^\..+\.ckvc-[0-9a-f]+\.tmp$/;

/**
 * Writes a checkpoint folder: model.safetensors (a `frozen` tensor shared by every checkpoint of a `family`, a
 * `head` tensor new for every seed) and an opaque optimizer.bin of random bytes. Returns path -> sha256.
 */
export function writeCheckpoint(
  dir: string,
  opts: { seed: number; family?: number; tensorBytes?: number; opaqueBytes?: number },
): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const tb = opts.tensorBytes ?? 256 * 1024;
  const cols = 256;
  const rows = Math.max(1, Math.floor(tb / 4 / cols));
  const st = safetensorsBytes(
    {
      frozen: { dtype: 'F32', shape: [rows, cols], bytes: randomFloat32(1_000_000 + (opts.family ?? 0), rows * cols) },
      head: { dtype: 'F32', shape: [rows, cols], bytes: randomFloat32(opts.seed, rows * cols) },
    },
    { step: String(opts.seed) },
  );
  fs.writeFileSync(path.join(dir, 'model.safetensors'), st);
  fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(opts.seed ^ 0x5a5a5a, opts.opaqueBytes ?? 128 * 1024));
  return hashTree(dir);
}

// ---------------------------------------------------------------------------------------------------------
// Concurrency soak: N committer loops (each commit is its own ckvc process) on B branches, and a reader loop
// running log + checkout beside them. Afterwards every acknowledged commit must be on its branch and check out
// byte-identical, and verify --read-data must be clean.

export interface SoakOptions {
  processes: number;
  commitsEach: number;
  branches: number;
  /** Bytes of the changing tensor per checkpoint (the frozen one is as big and shared). */
  tensorBytes: number;
  opaqueBytes: number;
  seed: number;
  readers: number;
  /** Loops running `ckvc gc --grace 0` beside the committers (each commit's re-parented leftovers are its garbage). */
  gcLoops?: number;
  log?: (msg: string) => void;
}

export interface SoakResult {
  store: Store;
  acknowledged: number;
  failedCommits: string[];
  readerRuns: number;
  readerCheckouts: number;
  readerProblems: string[];
  gcRuns: number;
  gcBytesFreed: number;
  gcProblems: string[];
  missing: string[];
  extra: string[];
  mismatches: string[];
  verify: { r: Outcome; report: any };
  seconds: number;
}

interface Ack {
  id: string;
  branch: string;
  files: Map<string, string>;
}

export async function concurrencySoak(o: SoakOptions): Promise<SoakResult> {
  const t0 = Date.now();
  const s = initStore('ckvc-soak-');
  const work = tempDir('ckvc-soak-in-');
  const acks = new Map<string, Ack>();
  const failedCommits: string[] = [];
  const readerProblems: string[] = [];
  const seenByReaders: { id: string; files: Map<string, string> }[] = [];
  let readerRuns = 0;
  let readerCheckouts = 0;
  let running = o.processes;
  const branchName = (b: number) => `soak-${b}`;

  const committer = async (p: number) => {
    const branch = branchName(p % o.branches);
    for (let c = 0; c < o.commitsEach; c++) {
      const seed = o.seed * 100_000 + p * 1000 + c;
      const dir = path.join(work, `p${p}-c${c}`);
      const files = writeCheckpoint(dir, {
        seed,
        family: p % o.branches,
        tensorBytes: o.tensorBytes,
        opaqueBytes: o.opaqueBytes,
      });
      const r = await s.run([
        'commit',
        dir,
        '-b',
        branch,
        '-m',
        `p${p} c${c}`,
        '--metric',
        `loss=${(1 / (c + 1)).toFixed(4)}`,
        '--step',
        String(c),
        '--json',
      ]);
      if (r.code !== 0) failedCommits.push(`p${p} c${c} on ${branch}: ${describeOutcome(r)}`);
      else {
        const id = (JSON.parse(r.stdout) as { id: string }).id;
        acks.set(id, { id, branch, files });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    running--;
  };

  const reader = async (k: number) => {
    const rnd = prng(o.seed * 7 + k);
    while (running > 0) {
      const branch = branchName(rnd() % o.branches);
      const acked = [...acks.values()].some((a) => a.branch === branch);
      const r = await s.run(['log', branch, '-n', '5', '--json']);
      readerRuns++;
      if (r.code !== 0) {
        // Before a branch's first commit lands, it does not exist: exit 14. After that, log must work.
        if (!(r.code === 14 && !acked)) readerProblems.push(`log ${branch}: ${describeOutcome(r)}`);
        continue;
      }
      const log = JSON.parse(r.stdout) as { id: string }[];
      if (log.length === 0) continue;
      const pick = log[rnd() % log.length]!.id;
      const out = path.join(work, `reader-${k}-${readerRuns}`);
      const co = await s.run(['checkout', pick, '--to', out]);
      readerCheckouts++;
      if (co.code !== 0) readerProblems.push(`checkout ${pick} (seen in log ${branch}): ${describeOutcome(co)}`);
      else seenByReaders.push({ id: pick, files: hashTree(out) });
      fs.rmSync(out, { recursive: true, force: true });
    }
  };

  let gcRuns = 0;
  let gcBytesFreed = 0;
  const gcProblems: string[] = [];
  const collector = async () => {
    while (running > 0) {
      const r = await s.run(['gc', '--grace', '0', '--json']);
      gcRuns++;
      if (r.code !== 0) gcProblems.push(`gc: ${describeOutcome(r)}`);
      else gcBytesFreed += (JSON.parse(r.stdout) as { bytesFreed: number }).bytesFreed;
      await new Promise((res) => setTimeout(res, 200));
    }
  };

  await Promise.all([
    ...Array.from({ length: o.processes }, (_, p) => committer(p)),
    ...Array.from({ length: o.readers }, (_, k) => reader(k)),
    ...Array.from({ length: o.gcLoops ?? 0 }, () => collector()),
  ]);
  o.log?.(
    `soak: ${acks.size} commits acknowledged, ${failedCommits.length} failed, ${readerRuns} reader logs, ${readerCheckouts} reader checkouts, ${gcRuns} gc runs (${gcBytesFreed} bytes freed) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );

  // What readers checked out mid-run must be what the committer gave (every commit a reader saw was acknowledged).
  for (const seen of seenByReaders) {
    const a = acks.get(seen.id);
    if (!a) readerProblems.push(`reader saw ${seen.id}, which no committer acknowledged`);
    else for (const d of diffSnapshots(a.files, seen.files)) readerProblems.push(`reader checkout of ${seen.id}: ${d}`);
  }

  const missing: string[] = [];
  const extra: string[] = [];
  for (let b = 0; b < o.branches; b++) {
    const branch = branchName(b);
    const want = [...acks.values()].filter((a) => a.branch === branch).map((a) => a.id);
    const r = await s.run(['log', branch, '--json']);
    if (r.code !== 0) {
      if (want.length) missing.push(`log ${branch} failed: ${describeOutcome(r)}`);
      continue;
    }
    const got = new Set((JSON.parse(r.stdout) as { id: string }[]).map((c) => c.id));
    for (const id of want) if (!got.has(id)) missing.push(`${branch}: acknowledged commit ${id} is not in its log`);
    for (const id of got) if (!acks.has(id)) extra.push(`${branch}: ${id} in the log was never acknowledged`);
  }
  const mismatches = (await pool([...acks.values()], 2, (a) => checkoutDiff(s, a.id, a.files))).flat();
  const verify = await s.verify(true);
  o.log?.(
    `soak: checked ${acks.size} commits, verify exit ${verify.r.code}, ${((Date.now() - t0) / 1000).toFixed(1)} s in all`,
  );
  return {
    store: s,
    acknowledged: acks.size,
    failedCommits,
    readerRuns,
    readerCheckouts,
    readerProblems,
    gcRuns,
    gcBytesFreed,
    gcProblems,
    missing,
    extra,
    mismatches,
    verify,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Everything a concurrency soak must end with: all acknowledged, nothing lost, nothing extra, verify clean. */
export function expectSoakClean(r: SoakResult, acknowledged: number): void {
  expect(r.failedCommits).toEqual([]);
  expect(r.acknowledged).toBe(acknowledged);
  expect(r.missing).toEqual([]);
  expect(r.extra).toEqual([]);
  expect(r.mismatches).toEqual([]);
  expect(r.readerProblems).toEqual([]);
  expect(r.gcProblems).toEqual([]);
  expect(r.gcRuns).toBeGreaterThan(0);
  expect(r.verify.r.code, describeOutcome(r.verify.r)).toBe(0);
}
