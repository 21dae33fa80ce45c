// Shared helpers for the integration tests: run the real CLI (bin/ckvc) as a child process, make temp
// stores, snapshot a store's files, and small file-system utilities. Nothing here imports src/ or dist/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'ckvc');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** Extra environment; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** The environment a test's ckvc runs with: CKVC_DIR and CKVC_FAULT from the outside never leak in. */
export function cliEnv(extra: RunOptions['env'] = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CKVC_AUTHOR: 'test', NO_COLOR: '1' };
  delete env.CKVC_DIR;
  delete env.CKVC_FAULT;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs `ckvc ARGS...` to completion. */
export function ckvc(args: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? os.tmpdir(),
    env: cliEnv(opts.env),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? (r.signal ? 128 : -1), stdout: r.stdout, stderr: r.stderr };
}

export interface Running {
  child: ChildProcess;
  done: Promise<RunResult>;
}

/** Starts `ckvc ARGS...` without waiting; `done` resolves when it exits. */
export function ckvcAsync(args: string[], opts: RunOptions = {}): Running {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? os.tmpdir(), env: cliEnv(opts.env) });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
  return { child, done };
}

/** Describes a result for assertion messages. */
export function describeRun(r: RunResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Runs a command that must succeed; throws with its output otherwise. */
export function ok(args: string[], opts: RunOptions = {}): RunResult {
  const r = ckvc(args, opts);
  if (r.code !== 0) throw new Error(`ckvc ${args.join(' ')} failed: ${describeRun(r)}`);
  return r;
}

/** Runs a --json command that must succeed and parses its stdout. */
export function okJson<T = any>(args: string[], opts: RunOptions = {}): T {
  const r = ok([...args, '--json'], opts);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`ckvc ${args.join(' ')} --json printed non-JSON: ${describeRun(r)}`);
  }
}

/** The error codes named on stderr (`[CKVC_X]` in text mode, error.code in --json mode). */
export function errorCodes(stderr: string): string[] {
  const out: string[] = [];
  for (const m of stderr.matchAll(/\[(CKVC_[A-Z_]+)\]/g)) out.push(m[1]!);
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const code = (JSON.parse(line) as { error?: { code?: string } }).error?.code;
      if (code) out.push(code);
    } catch {
      /* not JSON */
    }
  }
  return out;
}

const tempRoots: string[] = [];

/** A fresh temp directory under os.tmpdir(); removed by cleanupTemp(). */
export function tempDir(prefix = 'ckvc-it-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempRoots.push(d);
  return d;
}

export function cleanupTemp(): void {
  while (tempRoots.length) {
    const d = tempRoots.pop()!;
    try {
      fs.chmodSync(d, 0o755);
    } catch {
      /* ignore */
    }
    fs.rmSync(d, { recursive: true, force: true });
  }
}

export interface TempStore {
  /** The folder holding .ckvc. */
  dir: string;
  /** The .ckvc folder itself. */
  store: string;
  /** Runs ckvc against this store (adds --store). */
  run(args: string[], opts?: RunOptions): RunResult;
  ok(args: string[], opts?: RunOptions): RunResult;
  json<T = any>(args: string[], opts?: RunOptions): T;
  async(args: string[], opts?: RunOptions): Running;
}

/** Creates DIR/.ckvc under a fresh temp dir with `ckvc init`. */
export function newStore(prefix = 'ckvc-store-'): TempStore {
  const dir = tempDir(prefix);
  ok(['init', dir]);
  const store = path.join(dir, '.ckvc');
  if (!fs.existsSync(path.join(store, 'config.json'))) throw new Error(`ckvc init ${dir} did not create ${store}`);
  const withStore = (args: string[]) => [...args, '--store', store];
  return {
    dir,
    store,
    run: (args, opts) => ckvc(withStore(args), opts),
    ok: (args, opts) => ok(withStore(args), opts),
    json: (args, opts) => okJson(withStore(args), opts),
    async: (args, opts) => ckvcAsync(withStore(args), opts),
  };
}

/** Commits with --json and returns the new commit ID. */
export function commitId(s: TempStore, args: string[], opts?: RunOptions): string {
  const r = s.json<{ id: string }>(['commit', ...args], opts);
  if (!/^[0-9a-f]{64}$/.test(r.id)) throw new Error(`commit printed no ID: ${JSON.stringify(r)}`);
  return r.id;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Every file and folder under `root` (relative '/'-paths), files mapped to sha256, folders to 'dir'. */
export function snapshotTree(root: string, exclude: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (exclude(r)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        out.set(r, 'dir');
        walk(p, r);
      } else
        out.set(
          r,
          e.isFile() ? sha256(fs.readFileSync(p)) : `special:${e.isSymbolicLink() ? fs.readlinkSync(p) : '?'}`,
        );
    }
  };
  walk(root, '');
  return out;
}

/** A store's files except the index cache: what must not change when a command fails. */
export function snapshotStore(store: string): Map<string, string> {
  return snapshotTree(store, (rel) => rel === 'index' || rel.startsWith('index/'));
}

/** Differences between two snapshots (or any two maps), for readable assertion failures ([] when equal). */
export function diffSnapshots(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of before) {
    if (!after.has(k)) out.push(`removed ${k}`);
    else if (after.get(k) !== v) out.push(`changed ${k}: ${v} -> ${after.get(k)}`);
  }
  for (const k of after.keys()) if (!before.has(k)) out.push(`added ${k}`);
  return out;
}

/** Total bytes of the files in `dir` (not recursive). */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    if (e.isFile()) n += fs.statSync(path.join(dir, e.name)).size;
  return n;
}

/** Bytes of all pack files in a store. */
export function packBytes(store: string): number {
  return dirBytes(path.join(store, 'packs'));
}

export function packFiles(store: string): string[] {
  return fs
    .readdirSync(path.join(store, 'packs'))
    .filter((n) => n.endsWith('.pack'))
    .map((n) => path.join(store, 'packs', n));
}

/** Every regular file under `root` as relative '/'-path -> contents. */
export function readTree(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, r);
      else out.set(r, fs.readFileSync(p));
    }
  };
  walk(root, '');
  return out;
}

/** Asserts two folders hold the same files with the same bytes; returns a list of differences. */
export function treeDifferences(expected: string, actual: string): string[] {
  const a = readTree(expected);
  const b = readTree(actual);
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) out.push(`missing ${k}`);
    else if (!v.equals(w)) out.push(`differs ${k} (${v.length} vs ${w.length} bytes)`);
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`extra ${k}`);
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Reads a ref file of a store (trimmed), or undefined. */
export function readRef(store: string, full: string): string | undefined {
  try {
    return fs.readFileSync(path.join(store, ...full.split('/')), 'utf8').trim();
  } catch {
    return undefined;
  }
}
