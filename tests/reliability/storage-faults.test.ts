// A full or failing disk, a damaged ref file, and locks left behind. (Damaged packs and indexes are covered by
// tests/integration/integrity.test.ts; a stale lock with a made-up dead pid on main and a lock held by the
// test's own pid by tests/integration/concurrency.test.ts: here the stale lock comes from a real killed ckvc,
// the live holder is another process, and a lock of another host is left alone.)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes, parseJson, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, fingerprint, hashTree, sha256File, snapshotStore } from '../helpers/snapshots.js';
import { sleep } from '../helpers/async-tasks.js';
import { writeCheckpoint } from '../helpers/reliability.js';

afterAll(cleanupTemp);

let T: TestStore; // main: c1
let c1 = '';
let c1Files: Map<string, string>;
let src = '';
let inDir = '';
let inFiles: Map<string, string>;

beforeAll(() => {
  src = tempDir('ckvc-sf-src-');
  T = newStore('ckvc-sf-t-');
  c1Files = writeCheckpoint(path.join(src, 'c1'), { seed: 1 });
  c1 = T.json<{ id: string }>(['commit', path.join(src, 'c1'), '-m', 'c1', '--metric', 'loss=1']).id;
  inDir = path.join(src, 'in');
  inFiles = writeCheckpoint(inDir, { seed: 2 }); // shares the frozen tensor with c1: partly dedups
});

/** Files a clean failure must not leave: temp packs, ref temp files, lock files. */
function leftovers(s: TestStore): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === 'index') continue;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else if (
        r.startsWith('tmp/') ||
        e.name.endsWith('.tmp') ||
        e.name.endsWith('.lock') ||
        e.name.includes('.lock.stale.')
      )
        out.push(r);
    }
  };
  walk(s.store, '');
  return out;
}

/** Store changes other than new pack files (unreferenced data) and the index cache. */
function storeChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  return diffSnapshots(before, after).filter((d) => !/^added packs\/[0-9a-f]{64}\.pack$/.test(d));
}

function stderrLines(r: RunResult): string[] {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  return lines;
}

describe.concurrent('a full or failing disk (CKVC_FAULT=STEP=enospc|eio): exit 1, one CKVC_IO line, the store as it was', () => {
  const steps = ['pack.write', 'pack.fsync', 'pack.rename', 'index.update', 'reflog.append', 'ref.tmp', 'ref.rename'];
  for (const step of steps) {
    for (const action of ['enospc', 'eio'] as const) {
      it(`${step}=${action}`, async ({ expect }) => {
        const s = copyStore(T);
        const before = snapshotStore(s.store);
        const input = fingerprint([inDir]);
        const r = await s.runAsync(['commit', inDir, '-m', 'c2', '--metric', 'loss=0.5'], {
          env: { CKVC_FAULT: `${step}=${action}` },
        });
        const problems: string[] = [];
        const lines = stderrLines(r);
        if (r.code !== 1) problems.push(`exit ${r.code} (signal ${r.signal}), expected 1`);
        if (lines.length !== 1) problems.push(`stderr has ${lines.length} lines, expected one`);
        const last = lines.at(-1) ?? '';
        if (!last.endsWith('[CKVC_IO]'))
          problems.push(`the error does not end with [CKVC_IO]: ${JSON.stringify(lines[0]?.slice(0, 300))}`);
        if (!/disk/i.test(last) || (action === 'enospc' && !/space/i.test(last)))
          problems.push(
            `the error does not point at the disk${action === 'enospc' ? ' / free space' : ''}: ${JSON.stringify(last.slice(0, 300))}`,
          );
        if (s.ref('refs/heads/main') !== c1) problems.push(`main moved to ${s.ref('refs/heads/main')}`);
        problems.push(...storeChanges(before, snapshotStore(s.store)).map((d) => `store ${d}`));
        problems.push(...leftovers(s).map((f) => `left behind: ${f}`));
        problems.push(...diffSnapshots(input, fingerprint([inDir])).map((d) => `input ${d}`));
        const v = await s.verify(true);
        if (v.r.code !== 0) problems.push(`verify --read-data: ${describeRun(v.r)}`);
        const again = await s.runAsync(['commit', inDir, '-m', 'c2', '--metric', 'loss=0.5', '--json']);
        if (again.code !== 0) problems.push(`re-run: ${describeRun(again)}`);
        else {
          const id = JSON.parse(again.stdout).id;
          if (s.ref('refs/heads/main') !== id)
            problems.push(`after the re-run main is ${s.ref('refs/heads/main')}, not ${id}`);
          problems.push(...(await checkoutDiff(s, 'main', inFiles)));
        }
        expect(problems, describeRun(r)).toEqual([]);
      });
    }
  }

  for (const fault of ['checkout.write=enospc', 'checkout.rename=eio']) {
    it(`checkout with ${fault}: exit 1 CKVC_IO, the user's file kept, no temp file left; the re-run succeeds`, async ({
      expect,
    }) => {
      const s = copyStore(T);
      const out = tempDir('ckvc-sf-co-');
      fs.writeFileSync(path.join(out, 'model.safetensors'), 'an older file the user has here');
      const r = await s.runAsync(['checkout', c1, '--to', out, '--force'], { env: { CKVC_FAULT: fault } });
      expect({ exit: r.code, codes: errorCodes(r.stderr), lines: stderrLines(r).length }, describeRun(r)).toEqual({
        exit: 1,
        codes: ['CKVC_IO'],
        lines: 1,
      });
      expect(fs.readdirSync(out).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      // The user's file is the old one or the complete new one (files are written one by one).
      const model = fs.readFileSync(path.join(out, 'model.safetensors'));
      const old = model.toString('utf8') === 'an older file the user has here';
      expect(old || sha256File(path.join(out, 'model.safetensors')) === c1Files.get('model.safetensors')).toBe(true);
      const again = await s.runAsync(['checkout', c1, '--to', out, '--force']);
      expect(again.code, describeRun(again)).toBe(0);
      expect(diffSnapshots(c1Files, hashTree(out))).toEqual([]);
    });
  }

  it('head.write=eio on a first commit -b NEW from an unborn HEAD: the exit status tells the truth about the branch', async ({
    expect,
  }) => {
    // The branch ref moves before HEAD is rewritten. Either the commit counts (exit 0: branch moved, HEAD may
    // stay) or it failed (exit 1 CKVC_IO: then the branch must not have moved, or a re-run makes a second commit).
    const s = newStore('ckvc-sf-head-');
    const r = await s.runAsync(['commit', inDir, '-b', 'first', '-m', 'first'], {
      env: { CKVC_FAULT: 'head.write=eio' },
    });
    const moved = s.ref('refs/heads/first');
    const summary = { exit: r.code, codes: errorCodes(r.stderr), branchMoved: moved !== undefined };
    const ok =
      (r.code === 0 && moved !== undefined) ||
      (r.code === 1 && summary.codes.join() === 'CKVC_IO' && moved === undefined);
    expect(ok, `${JSON.stringify(summary)}\n${describeRun(r)}`).toBe(true);
    expect((await s.verify(true)).r.code).toBe(0);
  });

  it('a stray CKVC_FAULT without CKVC_TEST_FAULTS=1 is ignored: the commit lands (spec/FAULTS.md)', async ({
    expect,
  }) => {
    const s = newStore('ckvc-sf-stray-');
    const env = { CKVC_FAULT: 'pack.create,ref.lock', CKVC_TEST_FAULTS: undefined };
    const r = await s.runAsync(['commit', inDir, '-b', 'stray', '-m', 'stray fault variable'], { env });
    expect(r.code, describeRun(r)).toBe(0);
    expect(s.ref('refs/heads/stray')).toBeDefined();
  });
});

let broken: TestStore;

describe('a ref file holding garbage', () => {
  let s: TestStore;
  let x2 = '';
  let x2Files: Map<string, string>;

  beforeAll(() => {
    s = copyStore(T);
    s.json(['branch', 'x', c1]);
    x2Files = writeCheckpoint(path.join(src, 'x2'), { seed: 22 });
    x2 = s.json<{ id: string }>(['commit', path.join(src, 'x2'), '-b', 'x', '-m', 'x2']).id;
    fs.writeFileSync(path.join(s.store, 'refs', 'heads', 'x'), 'this is not an object id\n\x00\x01');
    broken = s;
  });

  const commands: [string, (out: string) => string[]][] = [
    ['log x', () => ['log', 'x']],
    ['show x', () => ['show', 'x']],
    ['show x~1', () => ['show', 'x~1']],
    ['checkout x --to DIR', (out) => ['checkout', 'x', '--to', out]],
    ['branch y x', () => ['branch', 'y', 'x']],
    ['tag t x', () => ['tag', 't', 'x']],
    ['commit DIR -b x', () => ['commit', inDir, '-b', 'x', '-m', 'onto a broken ref']],
  ];
  for (const [what, args] of commands) {
    it.concurrent(`${what}: exit 12 CKVC_CORRUPT_REF, one line pointing at 'ckvc reflog x', store unchanged`, async ({
      expect,
    }) => {
      const s = copyStore(broken);
      const before = snapshotStore(s.store);
      const out = tempDir('ckvc-sf-out-');
      const r = await s.runAsync(args(out));
      expect(r.code, describeRun(r)).toBe(12);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_CORRUPT_REF']);
      expect(stderrLines(r)).toHaveLength(1);
      expect(r.stderr).toContain('ckvc reflog x');
      expect(storeChanges(before, snapshotStore(s.store))).toEqual([]);
      expect(leftovers(s)).toEqual([]);
      expect(fs.readdirSync(out)).toEqual([]);
    });
  }

  it("'ckvc reflog x' lists the previous tip and 'ckvc branch x2 <id>' recovers it byte-identical", async () => {
    const text = await s.runAsync(['reflog', 'x']);
    expect(text.code, describeRun(text)).toBe(0);
    expect(text.stdout).toContain(x2.slice(0, 12));
    const log = parseJson<{ old: string | null; new: string | null }[]>(
      await s.runAsync(['reflog', 'x', '--json']),
      'reflog x',
    );
    expect(log[0]!.new).toBe(x2); // newest first
    expect(log.map((e) => e.new)).toContain(c1);
    const b = await s.runAsync(['branch', 'x2', log[0]!.new!, '--json']);
    expect(b.code, describeRun(b)).toBe(0);
    expect(s.ref('refs/heads/x2')).toBe(x2);
    expect(await checkoutDiff(s, 'x2', x2Files)).toEqual([]);
  });

  it('does not take the other branches down: log/show/status/checkout/commit on main still work', async () => {
    const t = copyStore(s);
    const results: Record<string, string> = {};
    for (const args of [
      ['log', 'main'],
      ['show', 'main'],
      ['show', c1],
      ['status'],
      ['checkout', 'main', '--to', tempDir('ckvc-sf-other-')],
    ]) {
      const r = await t.runAsync(args);
      results[args.slice(0, 2).join(' ')] = r.code === 0 ? 'ok' : `exit ${r.code}: ${r.stderr.trim().slice(0, 160)}`;
    }
    const r = await t.runAsync(['commit', inDir, '-m', 'main goes on', '--json']);
    results.commit = r.code === 0 ? 'ok' : `exit ${r.code}: ${r.stderr.trim().slice(0, 160)}`;
    expect(results).toEqual({
      'log main': 'ok',
      'show main': 'ok',
      [`show ${c1}`]: 'ok',
      status: 'ok',
      'checkout main': 'ok',
      commit: 'ok',
    });
  });
});

describe.concurrent('locks left behind', () => {
  it('a ref lock left by a ckvc killed while holding it is broken by the next commit (and verify is clean meanwhile)', async ({
    expect,
  }) => {
    const s = copyStore(T);
    const lock = path.join(s.store, 'refs', 'heads', 'main.lock');
    const killed = s.start(['commit', inDir, '-m', 'killed holding the lock'], { env: { CKVC_FAULT: 'ref.lock' } });
    const r = await killed.done;
    expect(r.signal, describeRun(r)).toBe('SIGKILL');
    const owner = JSON.parse(fs.readFileSync(lock, 'utf8'));
    expect(owner).toMatchObject({ pid: killed.pid, host: os.hostname() });
    expect(s.ref('refs/heads/main')).toBe(c1);
    const v = await s.verify(true);
    expect(v.r.code, describeRun(v.r)).toBe(0);
    const t0 = Date.now();
    const again = await s.runAsync(['commit', inDir, '-m', 'after the crash', '--json'], {
      env: { CKVC_LOCK_TIMEOUT_MS: '10000' },
    });
    expect(again.code, describeRun(again)).toBe(0);
    expect(Date.now() - t0, 'the stale lock is broken at once, not waited out').toBeLessThan(8000);
    const id = JSON.parse(again.stdout).id;
    expect(s.ref('refs/heads/main')).toBe(id);
    expect(parseJson(await s.runAsync(['show', id, '--json']), 'show').parents).toEqual([c1]);
    expect(fs.existsSync(lock)).toBe(false);
    expect(await checkoutDiff(s, id, inFiles)).toEqual([]);
  });

  it('a stale tag lock (dead pid, this host) is broken: an annotated tag is created', async ({ expect }) => {
    const s = copyStore(T);
    fs.mkdirSync(path.join(s.store, 'refs', 'tags'), { recursive: true });
    const dead = await deadPid();
    const lock = path.join(s.store, 'refs', 'tags', 'rel.lock');
    fs.writeFileSync(
      lock,
      JSON.stringify({ pid: dead, host: os.hostname(), nonce: 'stale0001', time: Date.now() - 3_600_000 }),
    );
    const r = await s.runAsync(['tag', 'rel', c1, '-m', 'release'], { env: { CKVC_LOCK_TIMEOUT_MS: '10000' } });
    expect(r.code, describeRun(r)).toBe(0);
    expect(fs.existsSync(lock)).toBe(false);
    expect(parseJson(await s.runAsync(['show', 'rel', '--json']), 'show rel').id).toBe(c1);
  });

  it('a ref lock held by another live process: the commit waits, then exit 11 CKVC_LOCKED; nothing moves, the lock is kept', async ({
    expect,
  }) => {
    const s = copyStore(T);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const lock = path.join(s.store, 'refs', 'heads', 'main.lock');
      const content = JSON.stringify({ pid: holder.pid, host: os.hostname(), nonce: 'live0001', time: Date.now() });
      fs.writeFileSync(lock, content);
      const before = snapshotStore(s.store);
      const t0 = Date.now();
      const r = await s.runAsync(['commit', inDir, '-m', 'blocked'], { env: { CKVC_LOCK_TIMEOUT_MS: '500' } });
      expect(r.code, describeRun(r)).toBe(11);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_LOCKED']);
      expect(stderrLines(r)).toHaveLength(1);
      expect(r.stderr).toContain(String(holder.pid));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
      expect(fs.readFileSync(lock, 'utf8')).toBe(content);
      expect(s.ref('refs/heads/main')).toBe(c1);
      expect(storeChanges(before, snapshotStore(s.store))).toEqual([]);
      expect(fs.readdirSync(path.join(s.store, 'tmp'))).toEqual([]);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('a branch command waiting on a live holder goes ahead once the holder dies (its lock is then stale)', async ({
    expect,
  }) => {
    const s = copyStore(T);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const exited = new Promise((r) => holder.on('exit', r));
    const lock = path.join(s.store, 'refs', 'heads', 'side.lock');
    fs.writeFileSync(
      lock,
      JSON.stringify({ pid: holder.pid, host: os.hostname(), nonce: 'live0002', time: Date.now() }),
    );
    const run = s.start(['branch', 'side', c1], { env: { CKVC_LOCK_TIMEOUT_MS: '15000' } });
    await sleep(700);
    expect(s.ref('refs/heads/side'), 'the branch was created while the lock was held').toBeUndefined();
    holder.kill('SIGKILL');
    await exited;
    const r = await run.done;
    expect(r.code, describeRun(r)).toBe(0);
    expect(s.ref('refs/heads/side')).toBe(c1);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('a lock owned by a process on another host is not broken (its pid means nothing here): exit 11', async ({
    expect,
  }) => {
    const s = copyStore(T);
    const lock = path.join(s.store, 'refs', 'heads', 'main.lock');
    const content = JSON.stringify({
      pid: await deadPid(),
      host: `${os.hostname()}-elsewhere`,
      nonce: 'remote01',
      time: Date.now(),
    });
    fs.writeFileSync(lock, content);
    const r = await s.runAsync(['commit', inDir, '-m', 'blocked by a remote lock'], {
      env: { CKVC_LOCK_TIMEOUT_MS: '500' },
    });
    expect(r.code, describeRun(r)).toBe(11);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_LOCKED']);
    expect(fs.readFileSync(lock, 'utf8')).toBe(content);
    expect(s.ref('refs/heads/main')).toBe(c1);
  });
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}
