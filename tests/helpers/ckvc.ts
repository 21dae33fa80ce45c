// The one way tests run the real CLI (bin/ckvc) as a child process: synchronously (`ckvc`), awaited
// (`ckvcAsync`) or started and left running (`startCkvc`), all with the same environment and the same result
// (exit code and the signal that ended it, both kept). Also the assertions on a result and the error-code
// extraction. Nothing here imports src/ or dist/.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'ckvc');

/** The outcome of one ckvc process: exit code (null when killed by a signal) and the signal. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  /** Extra environment; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /** SIGKILL after this long (default 120 s; 0: never): a hung ckvc fails its test instead of stalling the suite. */
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

/** How a blocking run is spawned, whatever it does with the output. */
function syncOptions(opts: RunOptions) {
  return {
    cwd: opts.cwd ?? os.tmpdir(),
    env: cliEnv(opts.env),
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeoutMs === 0 ? undefined : (opts.timeoutMs ?? 120_000),
  };
}

/** Runs `ckvc ARGS...` to completion, blocking. */
export function ckvc(args: string[], opts: RunOptions = {}): RunResult {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { ...syncOptions(opts), encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** A run whose output is kept as bytes. */
export interface BytesResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  ms: number;
}

/** Runs `ckvc ARGS...` to completion, keeping stdout and stderr as bytes (`cat` writes binary; a utf8 decode
 * would hide what reached a terminal). */
export function ckvcBytes(args: string[], opts: RunOptions = {}): BytesResult {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { ...syncOptions(opts), encoding: 'buffer' });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** A ckvc process started by startCkvc: its stdin/stdout are the child's, `done` resolves when it exits. */
export interface Running {
  child: ChildProcess;
  pid: number;
  kill(signal?: NodeJS.Signals): void;
  done: Promise<RunResult>;
}

/** Starts `ckvc ARGS...` without waiting. */
export function startCkvc(args: string[], opts: RunOptions = {}): Running {
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
  const limit = opts.timeoutMs ?? 120_000;
  const timer = limit > 0 ? setTimeout(() => child.kill('SIGKILL'), limit) : undefined;
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  return {
    child,
    pid: child.pid!,
    kill: (s = 'SIGKILL') => {
      child.kill(s);
    },
    done,
  };
}

/** Runs `ckvc ARGS...` to completion without blocking (for runs that must overlap). */
export const ckvcAsync = (args: string[], opts: RunOptions = {}): Promise<RunResult> => startCkvc(args, opts).done;

/** Describes a result for assertion messages. */
export function describeRun(r: RunResult): string {
  const end = r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return `${end} after ${r.ms} ms\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Throws with the output unless the result is exit 0. */
export function expectOk(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what}: ${describeRun(r)}`);
  return r;
}

/** Checks the result is exit 0 and parses its stdout as JSON. */
export function parseJson<T = any>(r: RunResult, what: string): T {
  expectOk(r, what);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${what} printed non-JSON: ${describeRun(r)}`);
  }
}

/** Runs a command that must succeed; throws with its output otherwise. */
export function ok(args: string[], opts: RunOptions = {}): RunResult {
  return expectOk(ckvc(args, opts), `ckvc ${args.join(' ')} failed`);
}

/** Runs a --json command that must succeed and parses its stdout. */
export function okJson<T = any>(args: string[], opts: RunOptions = {}): T {
  return parseJson<T>(ckvc([...args, '--json'], opts), `ckvc ${args.join(' ')} --json`);
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

/** The error codes a run printed. */
export const codesOf = (r: RunResult): string[] => errorCodes(r.stderr);
