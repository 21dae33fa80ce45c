// A store you may read but not write (issue 11, finding 7): a teammate's store, a shared cluster folder, a
// read-only mount. Every read command works there and writes nothing at all (every file's bytes and mtime, and
// every folder's mtime, so even a file created and removed again shows); every write command fails with one
// CKVC_IO line naming the path. `serve --read-only` serves a fetch from it. On a store the user may write, read
// commands leave the index alone too, and a damaged index is still rebuilt.
//
// The user without write access is `nobody` (runuser, as root); the read-only mount needs mount rights. Either is
// skipped, with the reason printed, only where the machine lacks it; CI runs as root and has both.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ckvc, cliEnv, describeRun, errorCodes, okJson, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { treeDifferences } from '../helpers/snapshots.js';
import { randomBytes, writeSafetensors } from '../helpers/data.js';

const LONG = 600_000;

const isRoot = process.getuid?.() === 0;
const runuserWorks =
  isRoot && spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', ''], { stdio: 'ignore' }).status === 0;
const noNobody = !isRoot ? 'not running as root' : !runuserWorks ? 'runuser -u nobody does not work here' : undefined;
if (noNobody) console.warn(`read-only-store: tests as user nobody skipped: ${noNobody}`);

/** Can this machine make a read-only bind mount? Tried once on an empty folder. */
function probeMount(): string | undefined {
  if (!isRoot) return 'not running as root';
  const a = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-mnt-probe-'));
  const b = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-mnt-probe-'));
  try {
    const bind = spawnSync('mount', ['--bind', a, b], { encoding: 'utf8' });
    if (bind.status !== 0) return `mount --bind is not permitted (${(bind.stderr || String(bind.error)).trim()})`;
    const ro = spawnSync('mount', ['-o', 'remount,ro,bind', b], { encoding: 'utf8' });
    spawnSync('umount', [b]);
    return ro.status === 0 ? undefined : `remount,ro is not permitted (${ro.stderr.trim()})`;
  } finally {
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  }
}
const noMount = probeMount();
if (noMount) console.warn(`read-only-store: read-only bind mount test skipped: ${noMount}`);

const mounts: string[] = [];
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const c of servers) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
  for (const m of mounts) spawnSync('umount', [m]);
  cleanupTemp();
});

/** Runs ckvc as the user nobody. */
function asNobody(args: string[], cwd: string): RunResult {
  const t0 = Date.now();
  const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, ...args], {
    cwd,
    env: cliEnv(),
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  if (r.status !== 0 && r.stderr.includes(`Cannot find module '${BIN}'`))
    throw new Error(
      `the user nobody cannot read ${BIN}: a folder above this clone is closed to other users (mktemp -d makes ` +
        '0700); clone where others may read, or chmod o+rx that folder',
    );
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** A folder anyone may enter (mkdtemp makes 0700); `writable`: anyone may also write in it. */
function openDir(prefix: string, writable = false): string {
  const d = tempDir(prefix);
  fs.chmodSync(d, writable ? 0o777 : 0o755);
  return d;
}

/** Folders 755 and files 644, owned by root: readable by everyone, writable by root alone. */
function readableOnly(root: string): void {
  fs.chmodSync(root, 0o755);
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    if (e.isDirectory()) readableOnly(p);
    else fs.chmodSync(p, 0o644);
  }
}

/** Every file's content hash, size, mode and mtime, and every folder's mode and mtime. */
function fullSnapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    const st = fs.statSync(dir);
    out.set(`${rel}/`, `dir ${st.mode.toString(8)} ${st.mtimeMs}`);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(p, r);
      else {
        const f = fs.statSync(p);
        out.set(
          r,
          `${createHash('sha256').update(fs.readFileSync(p)).digest('hex')} ${f.size} ${f.mode.toString(8)} ${f.mtimeMs}`,
        );
      }
    }
  };
  walk(root, '');
  return out;
}

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of before) if (after.get(k) !== v) out.push(after.has(k) ? `changed ${k}` : `removed ${k}`);
  for (const k of after.keys()) if (!before.has(k)) out.push(`added ${k}`);
  return out;
}

interface Fixture {
  s: TestStore;
  v1: string;
  v2: string;
  src1: string;
  src2: string;
  bundle: string;
}

interface Built extends Fixture {
  /** The index as it was after the first commit. */
  oldIndex: string;
}
let built: Built | undefined;

/** The history every test starts from, made once (as root, through the CLI); fixture() hands out copies. */
function build(): Built {
  const s = newStore('ckvc-ro-');
  const src1 = openDir('ckvc-ro-src-');
  const src2 = openDir('ckvc-ro-src-');
  const cfgDir = openDir('ckvc-ro-cfg-');
  const cfg = path.join(cfgDir, 'train.yaml');
  fs.writeFileSync(cfg, 'lr: 0.001\nlayers: 4\n');
  writeSafetensors(
    path.join(src1, 'model.safetensors'),
    { w: { dtype: 'F32', shape: [64, 96] }, b: { dtype: 'F16', shape: [96] } },
    undefined,
    1,
  );
  fs.writeFileSync(path.join(src1, 'notes.txt'), 'first run\n');
  writeSafetensors(
    path.join(src2, 'model.safetensors'),
    { w: { dtype: 'F32', shape: [64, 96] }, b: { dtype: 'F16', shape: [96] } },
    undefined,
    2,
  );
  fs.writeFileSync(path.join(src2, 'notes.txt'), randomBytes(3, 5000).toString('hex'));
  const v1 = commitId(s, [src1, '-m', 'v1', '--metric', 'loss=1', '--step', '1', '--config', cfg]);
  const oldIndex = path.join(tempDir('ckvc-ro-idx-'), 'index');
  fs.cpSync(path.join(s.store, 'index'), oldIndex, { recursive: true });
  const v2 = commitId(s, [src2, '-m', 'v2', '--metric', 'loss=0.5', '--step', '2', '--config', cfg]);
  s.ok(['tag', 'first', v1, '-m', 'the first']);
  s.ok(['branch', 'exp', v2]);
  const bundle = path.join(openDir('ckvc-ro-bundle-'), 'main.ckvb');
  s.ok(['pack', 'main', '-o', bundle]);
  fs.chmodSync(bundle, 0o644);
  return { s, v1, v2, src1, src2, bundle, oldIndex };
}

/**
 * Two commits with tensors, a config and metrics; a tag and a second branch; a bundle of main. `behind`: the
 * index is put back to what it was after the first commit, so the later packs are in no index. A copy of one
 * store per test; the sources and the bundle are shared (read only).
 */
function fixture(opts: { behind?: boolean } = {}): Fixture {
  built ??= build();
  const { oldIndex, ...f } = built;
  const s = copyStore(f.s, 'ckvc-ro-');
  if (opts.behind) {
    fs.rmSync(path.join(s.store, 'index'), { recursive: true });
    fs.cpSync(oldIndex, path.join(s.store, 'index'), { recursive: true });
  }
  fs.chmodSync(s.dir, 0o755);
  readableOnly(s.store);
  return { ...f, s };
}

/** Every read command, each with a check of what it printed. `run` runs ckvc with --store added. */
function readCommands(f: Fixture, run: (args: string[]) => RunResult, checkoutTo: string): void {
  const { v1, v2 } = f;
  const json = (args: string[]) => {
    const r = run([...args, '--json']);
    expect(r.code, `ckvc ${args.join(' ')}: ${describeRun(r)}`).toBe(0);
    return JSON.parse(r.stdout);
  };
  expect(json(['status'])).toMatchObject({ head: { branch: 'main' }, tip: { id: v2 }, branches: 2, tags: 1 });
  expect(json(['log']).map((c: { id: string }) => c.id)).toEqual([v2, v1]);
  expect(json(['show', v1.slice(0, 10)]).id).toBe(v1); // an ID prefix: looked up in the index
  expect(
    json(['ls', 'HEAD'])
      .files.map((x: { path: string }) => x.path)
      .sort(),
  ).toEqual(['model.safetensors', 'notes.txt']);
  expect(json(['branch']).map((b: { name: string; id: string }) => `${b.name}=${b.id}`)).toEqual([
    `exp=${v2}`,
    `main=${v2}`,
  ]);
  expect(json(['tag']).map((t: { name: string; commit: string }) => `${t.name}=${t.commit}`)).toEqual([`first=${v1}`]);
  expect(json(['stats'])).toMatchObject({ commits: 2, objects: { commit: 2, tag: 1 } });
  expect(json(['verify', '--read-data']).problems).toEqual([]);
  expect(json(['diff', 'first', 'main']).b.id).toBe(v2);
  expect(json(['best', '--metric', 'loss']).id).toBe(v2);
  expect(json(['config', 'show', 'first']).hash).toMatch(/^[0-9a-f]{64}$/);
  expect(json(['reflog', 'main']).map((e: { new: string }) => e.new)).toEqual([v2, v1]);
  expect(
    json(['prune', '--keep-last', '1', '--dry-run', '--include-tagged']).pruned.map((p: { id: string }) => p.id),
  ).toEqual([v1]);
  const cat = run(['cat', 'first:notes.txt']);
  expect(cat.code, describeRun(cat)).toBe(0);
  expect(cat.stdout).toBe('first run\n');
  const co = run(['checkout', 'first', '--to', checkoutTo]);
  expect(co.code, describeRun(co)).toBe(0);
  expect(treeDifferences(f.src1, checkoutTo)).toEqual([]);
}

/** Every write command fails with exactly one CKVC_IO line naming a path in the store. */
function writeCommands(f: Fixture, run: (args: string[]) => RunResult, storePath: string, errno: string): void {
  const cases: string[][] = [
    ['commit', f.src1, '-m', 'again'],
    ['tag', 'another'],
    ['branch', 'another'],
    ['index', 'rebuild'],
    ['pull', f.bundle],
    ['gc'],
    ['prune', '--keep-last', '1', '--include-tagged'],
  ];
  for (const args of cases) {
    const r = run(args);
    const what = `ckvc ${args.join(' ')}: ${describeRun(r)}`;
    expect(r.code, what).toBe(1);
    expect(errorCodes(r.stderr), what).toEqual(['CKVC_IO']);
    expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
    expect(r.stderr, what).toContain(`cannot `);
    expect(r.stderr, what).toContain(storePath);
    expect(r.stderr, what).toContain(errno);
  }
}

describe.skipIf(noNobody !== undefined)('a store the user may read but not write (user nobody)', () => {
  it(
    'every read command works, prints the right thing, and changes nothing at all',
    () => {
      const f = fixture();
      const cwd = openDir('ckvc-ro-cwd-');
      const before = fullSnapshot(f.s.store);
      readCommands(
        f,
        (args) => asNobody([...args, '--store', f.s.store], cwd),
        path.join(openDir('ckvc-ro-out-', true), 'out'),
      );
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );

  it(
    'every write command fails with one CKVC_IO line naming the path, and changes nothing',
    () => {
      const f = fixture();
      const cwd = openDir('ckvc-ro-cwd-');
      const before = fullSnapshot(f.s.store);
      writeCommands(f, (args) => asNobody([...args, '--store', f.s.store], cwd), f.s.store, 'EACCES');
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );

  it(
    'an index that is behind the packs is caught up in memory only',
    () => {
      const f = fixture({ behind: true });
      const cwd = openDir('ckvc-ro-cwd-');
      const before = fullSnapshot(f.s.store);
      readCommands(
        f,
        (args) => asNobody([...args, '--store', f.s.store], cwd),
        path.join(openDir('ckvc-ro-out-', true), 'out'),
      );
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );

  it(
    'a damaged index is read around, not deleted, when it is not ours to rebuild',
    () => {
      const f = fixture();
      const idx = path.join(f.s.store, 'index');
      for (const n of fs.readdirSync(idx)) if (n !== 'LOCK') fs.writeFileSync(path.join(idx, n), randomBytes(9, 200));
      const before = fullSnapshot(f.s.store);
      const cwd = openDir('ckvc-ro-cwd-');
      const log = asNobody(['log', '--json', '--store', f.s.store], cwd);
      expect(log.code, describeRun(log)).toBe(0);
      expect(JSON.parse(log.stdout).map((c: { id: string }) => c.id)).toEqual([f.v2, f.v1]);
      const show = asNobody(['show', f.v1.slice(0, 10), '--json', '--store', f.s.store], cwd);
      expect(show.code, describeRun(show)).toBe(0);
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );

  it(
    'serve --read-only as nobody serves a fetch; a store folder is fetched from directly too',
    async () => {
      const f = fixture();
      const before = fullSnapshot(f.s.store);
      const child = spawn(
        'runuser',
        ['-u', 'nobody', '--', process.execPath, BIN, 'serve', '--read-only', '--port', '0', '--store', f.s.store],
        {
          cwd: openDir('ckvc-ro-cwd-'),
          env: cliEnv(),
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        },
      );
      servers.push(child);
      let err = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`ckvc serve printed no URL within 60 s: ${err}`)), 60_000);
        child.stdout!.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolve(out.slice(0, out.indexOf('\n')).trim());
          }
        });
        child.once('exit', (code) => reject(new Error(`ckvc serve exited (${code}): ${err}`)));
      });
      try {
        const mine = newStore('ckvc-ro-dst-');
        mine.ok(['remote', 'add', 'origin', url]);
        mine.ok(['fetch', 'origin']);
        expect(mine.json(['log', 'origin/main']).map((c: { id: string }) => c.id)).toEqual([f.v2, f.v1]);
        expect(mine.run(['verify', '--read-data']).code).toBe(0);
      } finally {
        process.kill(-child.pid!, 'SIGTERM');
      }
      // A teammate's store folder as a remote: nobody fetches from it into a store of its own.
      const home = openDir('ckvc-ro-home-', true);
      const cwd = openDir('ckvc-ro-cwd-');
      const own = path.join(home, '.ckvc');
      for (const args of [
        ['init', home],
        ['remote', 'add', 'team', f.s.store, '--store', own],
        ['fetch', 'team', '--store', own],
      ]) {
        const r = asNobody(args, cwd);
        expect(r.code, `ckvc ${args.join(' ')}: ${describeRun(r)}`).toBe(0);
      }
      const log = asNobody(['log', 'team/main', '--json', '--store', own], cwd);
      expect(JSON.parse(log.stdout).map((c: { id: string }) => c.id)).toEqual([f.v2, f.v1]);
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );
});

describe.skipIf(noMount !== undefined)('a store on a read-only mount', () => {
  it(
    'read commands work and write nothing; write commands fail with CKVC_IO (EROFS)',
    () => {
      const f = fixture();
      const mnt = openDir('ckvc-ro-mnt-');
      expect(spawnSync('mount', ['--bind', f.s.dir, mnt]).status).toBe(0);
      mounts.push(mnt);
      expect(spawnSync('mount', ['-o', 'remount,ro,bind', mnt]).status).toBe(0);
      const store = path.join(mnt, '.ckvc');
      const before = fullSnapshot(f.s.store);
      const run = (args: string[]) => runAsRoot([...args, '--store', store]);
      readCommands(f, run, path.join(openDir('ckvc-ro-out-'), 'out'));
      writeCommands(f, run, store, 'EROFS');
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );
});

function runAsRoot(args: string[]): RunResult {
  return ckvc(args, { timeoutMs: 300_000 });
}

describe('a store the user may write', () => {
  it(
    'read commands leave every file alone, the index included',
    () => {
      const f = fixture();
      const before = fullSnapshot(f.s.store);
      readCommands(f, (args) => runAsRoot([...args, '--store', f.s.store]), path.join(openDir('ckvc-ro-out-'), 'out'));
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );

  it(
    'an index that is behind the packs is left for the next writer to catch up',
    () => {
      const f = fixture({ behind: true });
      const before = fullSnapshot(f.s.store);
      expect(okJson(['log', '--store', f.s.store]).map((c: { id: string }) => c.id)).toEqual([f.v2, f.v1]);
      expect(okJson(['show', f.v2.slice(0, 10), '--store', f.s.store]).id).toBe(f.v2);
      expect(okJson(['verify', '--store', f.s.store]).problems).toEqual([]);
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );

  it(
    'a damaged index is still rebuilt, and reads work meanwhile',
    () => {
      const f = fixture();
      const idx = path.join(f.s.store, 'index');
      for (const n of fs.readdirSync(idx)) if (n !== 'LOCK') fs.writeFileSync(path.join(idx, n), randomBytes(9, 200));
      expect(okJson(['log', '--store', f.s.store]).map((c: { id: string }) => c.id)).toEqual([f.v2, f.v1]);
      // Rebuilt: a LevelDB database again, which the next read uses as it is.
      expect(fs.readFileSync(path.join(idx, 'CURRENT'), 'latin1')).toMatch(/^MANIFEST-\d+\n$/);
      const before = fullSnapshot(f.s.store);
      expect(okJson(['show', f.v1.slice(0, 10), '--store', f.s.store]).id).toBe(f.v1);
      expect(changes(before, fullSnapshot(f.s.store))).toEqual([]);
    },
    LONG,
  );
});
