// A store made for one test (`ckvc init` in a temp folder) and the ways to run ckvc against it. The runners add
// --store; each has a blocking form (run, ok, json) and a non-blocking one (runAsync, jsonAsync, start), named
// apart so a reader can tell which one a test waits on. The blocking ones, `jsonAsync` and `check` go to the
// worker's helper-server, which answers as a process would (./warm-ckvc.ts); `runAsync` and `start` (commands run
// side by side, killed or signalled) start a bin/ckvc process, as do runs with CKVC_FAULT or a time limit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ckvc,
  ckvcAsync,
  describeRun,
  expectOk,
  parseJson,
  type RunOptions,
  type RunResult,
  type Running,
  startCkvc,
} from './ckvc.js';
import { diffSnapshots, hashTree } from './snapshots.js';
import { tempDir } from './temp-dirs.js';
import { ckvcWarm, ckvcWarmSync } from './warm-ckvc.js';

/** A store at `dir/.ckvc`. */
export class TestStore {
  readonly store: string;
  constructor(readonly dir: string) {
    this.store = path.join(dir, '.ckvc');
  }

  private with(args: string[]): string[] {
    return [...args, '--store', this.store];
  }

  /** Runs ckvc to completion, blocking. */
  run(args: string[], opts: RunOptions = {}): RunResult {
    const all = this.with(args);
    // A time limit is there to catch a hang, which would stall a shared server: those run as processes.
    if (opts.timeoutMs !== undefined) return ckvc(all, opts);
    return ckvcWarmSync(all, opts, () => ckvc(all, opts));
  }

  /** Runs a command that must succeed, blocking (as `run`). */
  ok(args: string[], opts: RunOptions = {}): RunResult {
    return expectOk(this.run(args, opts), `ckvc ${this.with(args).join(' ')} failed`);
  }

  /** Runs a --json command that must succeed, blocking (as `run`), and parses its output. */
  json<T = any>(args: string[], opts: RunOptions = {}): T {
    return parseJson<T>(this.run([...args, '--json'], opts), `ckvc ${this.with([...args, '--json']).join(' ')}`);
  }

  /** Runs ckvc to completion without blocking. */
  runAsync(args: string[], opts?: RunOptions): Promise<RunResult> {
    return ckvcAsync(this.with(args), opts);
  }

  /** Runs a --json command that must succeed without blocking, and parses its output (in the helper-server). */
  async jsonAsync<T = any>(args: string[], opts?: RunOptions): Promise<T> {
    return parseJson<T>(await this.check([...args, '--json'], opts), `ckvc ${args.join(' ')}`);
  }

  /** Runs a check (verify, checkout to compare, ls...) in the worker's helper-server: ./warm-ckvc.ts. */
  check(args: string[], opts?: RunOptions): Promise<RunResult> {
    return ckvcWarm(this.with(args), opts);
  }

  /** Starts ckvc and returns at once (to kill it, or to talk to it). */
  start(args: string[], opts?: RunOptions): Running {
    return startCkvc(this.with(args), opts);
  }

  /** Reads a ref file (trimmed), or undefined. */
  ref(full: string): string | undefined {
    return readRef(this.store, full);
  }

  head(): string | undefined {
    return readRef(this.store, 'HEAD');
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
        const n = e.name;
        if (n.startsWith('.') || n.endsWith('.lock') || n.endsWith('.tmp') || n.includes('.lock.stale.')) continue;
        const r = `${rel}/${n}`;
        if (e.isDirectory()) walk(path.join(dir, n), r);
        else out.push(r);
      }
    };
    walk(path.join(this.store, 'refs'), 'refs');
    return out.sort();
  }

  /** `ckvc verify [--read-data] --json`: the result and the parsed report (when there is one). */
  async verify(readData = true): Promise<{ r: RunResult; report: any }> {
    const r = await this.check(['verify', ...(readData ? ['--read-data'] : []), '--json']);
    let report: any;
    try {
      report = JSON.parse(r.stdout);
    } catch {
      /* none */
    }
    return { r, report };
  }
}

let emptyStore: TestStore | undefined;

/**
 * A store as `ckvc init` leaves it, made by a real `ckvc init` once per test file and copied from then on: init
 * writes the same bytes every time (no store ID, no clock), and a process start costs more than the copy. `ckvc
 * init` itself is tested in refs.test.ts and by every file's first store. Made again when a cleanupTemp() took it.
 */
function initTemplate(): TestStore {
  if (emptyStore && fs.existsSync(path.join(emptyStore.store, 'config.json'))) return emptyStore;
  const dir = tempDir('ckvc-init-template-');
  expectOk(ckvc(['init', dir]), 'ckvc init');
  const s = new TestStore(dir);
  if (!fs.existsSync(path.join(s.store, 'config.json'))) throw new Error(`ckvc init ${dir} did not create ${s.store}`);
  emptyStore = s;
  return s;
}

/** Creates DIR/.ckvc under a fresh temp dir: an empty store, as `ckvc init` makes it. */
export function newStore(prefix = 'ckvc-store-'): TestStore {
  return copyStore(initTemplate(), prefix);
}

/** A copy of a prepared store (the folder holding .ckvc), in a new temp dir. */
export function copyStore(template: TestStore, prefix = 'ckvc-case-'): TestStore {
  const dir = tempDir(prefix);
  fs.cpSync(template.dir, dir, { recursive: true });
  return new TestStore(dir);
}

/** Commits with --json and returns the new commit ID. */
export function commitId(s: TestStore, args: string[], opts?: RunOptions): string {
  const r = s.json<{ id: string }>(['commit', ...args], opts);
  if (!/^[0-9a-f]{64}$/.test(r.id)) throw new Error(`commit printed no ID: ${JSON.stringify(r)}`);
  return r.id;
}

/** Reads a ref file of a store (trimmed), or undefined. */
export function readRef(store: string, full: string): string | undefined {
  try {
    return fs.readFileSync(path.join(store, ...full.split('/')), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Checks out REV into a fresh temp dir and returns what differs from `expected` (path -> sha256); [] when equal. */
export async function checkoutDiff(s: TestStore, rev: string, expected: Map<string, string>): Promise<string[]> {
  const out = tempDir('ckvc-co-');
  const r = await s.check(['checkout', rev, '--to', out]);
  if (r.code !== 0) return [`checkout ${rev} failed: ${describeRun(r)}`];
  const got = hashTree(out);
  fs.rmSync(out, { recursive: true, force: true });
  return diffSnapshots(expected, got).map((d) => `${rev}: ${d}`);
}
