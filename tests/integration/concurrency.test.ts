// Two experiments on one machine share a store: concurrent commits to one branch both land (one on top of the
// other), commits to different branches both land, and readers keep working while a commit runs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, readRef, type TestStore } from '../helpers/test-store.js';
import { readTree } from '../helpers/snapshots.js';
import { sleep } from '../helpers/async-tasks.js';
import { randomBytes, writeSafetensors } from '../helpers/data.js';

afterAll(cleanupTemp);

const MiB = 1024 * 1024;

function dataDir(seed: number, bytes: number): string {
  const d = tempDir('ckvc-cc-');
  fs.writeFileSync(path.join(d, 'opaque.bin'), randomBytes(seed, bytes));
  writeSafetensors(
    path.join(d, 'model.safetensors'),
    { w: { dtype: 'F32', shape: [256, 1024] }, b: { dtype: 'F32', shape: [1024] } },
    undefined,
    seed,
  );
  return d;
}

function idOf(r: RunResult): string {
  expect(r.code, describeRun(r)).toBe(0);
  const id = JSON.parse(r.stdout).id as string;
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  return id;
}

function checkoutMatches(s: TestStore, rev: string, src: string): void {
  const out = tempDir('ckvc-out-');
  s.ok(['checkout', rev, '--to', out]);
  const a = readTree(src);
  const b = readTree(out);
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  for (const [k, v] of a) expect(b.get(k)!.equals(v), k).toBe(true);
}

describe('concurrent commits', () => {
  it('two processes committing different data to the same existing branch both land, one on top of the other', async () => {
    const s = newStore();
    const base = commitId(s, [dataDir(1, 64 * 1024), '-m', 'base']);
    const d1 = dataDir(2, 6 * MiB);
    const d2 = dataDir(3, 6 * MiB);
    const p1 = s.start(['commit', d1, '-m', 'from process 1', '--json']);
    const p2 = s.start(['commit', d2, '-m', 'from process 2', '--json']);
    const [r1, r2] = await Promise.all([p1.done, p2.done]);
    const id1 = idOf(r1);
    const id2 = idOf(r2);

    const log = s.json(['log']);
    const ids = log.map((c: any) => c.id);
    expect(ids).toHaveLength(3);
    expect(ids).toContain(id1);
    expect(ids).toContain(id2);
    expect(ids[2]).toBe(base);
    // One is the parent of the other, and the older one's parent is the base.
    const [newer, older] = ids;
    expect(log[0].parents).toEqual([older]);
    expect(log[1].parents).toEqual([base]);
    expect(readRef(s.store, 'refs/heads/main')).toBe(newer);
    // The reported parents of the re-parented commit agree with the store.
    const rNewer = JSON.parse((newer === id1 ? r1 : r2).stdout);
    expect(rNewer.parents).toEqual([older]);
    expect(s.json(['reflog', 'main'])).toHaveLength(3);

    checkoutMatches(s, id1, d1);
    checkoutMatches(s, id2, d2);
    const v = s.run(['verify', '--read-data']);
    expect(v.code, describeRun(v)).toBe(0);
  });

  it('three processes creating the same new branch at once all land on one line of history', async () => {
    const s = newStore();
    const dirs = [dataDir(11, 3 * MiB), dataDir(12, 3 * MiB), dataDir(13, 3 * MiB)];
    const runs = dirs.map((d, i) => s.start(['commit', d, '-m', `p${i}`, '-b', 'race', '--json']));
    const results = await Promise.all(runs.map((r) => r.done));
    const ids = results.map(idOf);
    const log = s.json(['log', 'race']);
    expect(log.map((c: any) => c.id).sort()).toEqual([...ids].sort());
    // A single line: each commit's parent is the next one down; exactly one root.
    for (let i = 0; i < log.length - 1; i++) expect(log[i].parents).toEqual([log[i + 1].id]);
    expect(log.at(-1).parents).toEqual([]);
    expect(s.json(['status']).head).toEqual({ branch: 'race' });
    dirs.forEach((d, i) => {
      checkoutMatches(s, ids[i]!, d);
    });
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });

  it('two processes committing to different branches at once both succeed', async () => {
    const s = newStore();
    const base = commitId(s, [dataDir(20, 64 * 1024), '-m', 'base']);
    const d1 = dataDir(21, 6 * MiB);
    const d2 = dataDir(22, 6 * MiB);
    const [r1, r2] = await Promise.all([
      s.start(['commit', d1, '-m', 'lstm', '-b', 'lstm', '--parent', 'main', '--json']).done,
      s.start(['commit', d2, '-m', 'gru', '-b', 'gru', '--parent', 'main', '--json']).done,
    ]);
    const id1 = idOf(r1);
    const id2 = idOf(r2);
    expect(readRef(s.store, 'refs/heads/lstm')).toBe(id1);
    expect(readRef(s.store, 'refs/heads/gru')).toBe(id2);
    expect(readRef(s.store, 'refs/heads/main')).toBe(base);
    expect(s.json(['show', 'lstm']).parents).toEqual([base]);
    expect(s.json(['show', 'gru']).parents).toEqual([base]);
    expect(s.json(['branch']).map((b: any) => b.name)).toEqual(['gru', 'lstm', 'main']);
    checkoutMatches(s, 'lstm', d1);
    checkoutMatches(s, 'gru', d2);
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });

  it('the same data committed by two processes at once: both commits land and the data reads back', async () => {
    const s = newStore();
    const d = dataDir(30, 4 * MiB);
    const [r1, r2] = await Promise.all([
      s.start(['commit', d, '-m', 'same a', '--json']).done,
      s.start(['commit', d, '-m', 'same b', '--json']).done,
    ]);
    idOf(r1);
    idOf(r2);
    expect(s.json(['log'])).toHaveLength(2);
    checkoutMatches(s, 'main', d);
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });
});

describe('readers during a commit', () => {
  it('log keeps working (exit 0, valid JSON) while a commit runs', async () => {
    const s = newStore();
    const base = commitId(s, [dataDir(40, 64 * 1024), '-m', 'base']);
    const big = dataDir(41, 48 * MiB);
    const commit = s.start(['commit', big, '-m', 'big', '--json']);
    let finished = false;
    const committed = commit.done.then((r) => {
      finished = true;
      return r;
    });
    const logs: RunResult[] = [];
    let duringCommit = 0;
    while (!finished || logs.length === 0) {
      const wasRunning = !finished;
      const r = await s.start(['log', '--json']).done;
      logs.push(r);
      if (wasRunning && !finished) duringCommit++;
      if (logs.length > 200) break;
    }
    const done = await committed;
    const id = idOf(done);
    for (const r of logs) {
      expect(r.code, describeRun(r)).toBe(0);
      const ids = JSON.parse(r.stdout).map((c: any) => c.id);
      // Every reader sees either the old history or the new one, never anything else.
      expect([JSON.stringify([base]), JSON.stringify([id, base])]).toContain(JSON.stringify(ids));
    }
    expect(duringCommit, 'at least one log ran while the commit was running').toBeGreaterThan(0);
    expect(s.json(['log']).map((c: any) => c.id)).toEqual([id, base]);
    expect(s.run(['verify']).code).toBe(0);
  });

  it('status, branch and show keep working while two commits run', async () => {
    const s = newStore();
    commitId(s, [dataDir(50, 64 * 1024), '-m', 'base']);
    const c1 = s.start(['commit', dataDir(51, 16 * MiB), '-m', 'one', '-b', 'one', '--json']);
    const c2 = s.start(['commit', dataDir(52, 16 * MiB), '-m', 'two', '-b', 'two', '--json']);
    const readers: RunResult[] = [];
    for (const args of [
      ['status', '--json'],
      ['branch', '--json'],
      ['show', 'main', '--json'],
      ['stats', '--json'],
    ]) {
      readers.push(await s.start(args).done);
    }
    const [r1, r2] = await Promise.all([c1.done, c2.done]);
    idOf(r1);
    idOf(r2);
    for (const r of readers) {
      expect(r.code, describeRun(r)).toBe(0);
      JSON.parse(r.stdout);
    }
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });
});

describe('locks', () => {
  it('a stale ref lock left by a dead process is broken: the commit succeeds', () => {
    const s = newStore();
    const base = commitId(s, [dataDir(60, 4096), '-m', 'base']);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // has exited
    const lock = path.join(s.store, 'refs', 'heads', 'main.lock');
    fs.writeFileSync(
      lock,
      JSON.stringify({ pid: dead, host: os.hostname(), nonce: 'deadbeef', time: Date.now() - 60_000 }),
    );
    const id = commitId(s, [dataDir(61, 4096), '-m', 'after crash'], { env: { CKVC_LOCK_TIMEOUT_MS: '5000' } });
    expect(s.json(['show', id]).parents).toEqual([base]);
    expect(readRef(s.store, 'refs/heads/main')).toBe(id);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('a ref lock held by a live process: exit 11 CKVC_LOCKED after the wait limit, branch not moved', () => {
    const s = newStore();
    const base = commitId(s, [dataDir(62, 4096), '-m', 'base']);
    const lock = path.join(s.store, 'refs', 'heads', 'main.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), nonce: 'alive', time: Date.now() }));
    const r = s.run(['commit', dataDir(63, 4096), '-m', 'blocked'], { env: { CKVC_LOCK_TIMEOUT_MS: '500' } });
    expect(r.code, describeRun(r)).toBe(11);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_LOCKED']);
    expect(readRef(s.store, 'refs/heads/main')).toBe(base);
    expect(fs.readFileSync(lock, 'utf8')).toContain('alive'); // someone else's lock is not removed
    fs.rmSync(lock);
    expect(s.run(['verify']).code).toBe(0);
  });
});

describe('TIMING-DEPENDENT: interruption', () => {
  it('SIGINT during a commit: exit 130 (or 0 if it had already finished); no half-moved branch, no temp files', async () => {
    const s = newStore();
    const base = commitId(s, [dataDir(70, 4096), '-m', 'base']);
    const big = dataDir(71, 96 * MiB);
    const run = s.start(['commit', big, '-m', 'interrupted']);
    // Give it time to start reading, then interrupt.
    const file = path.join(big, 'opaque.bin');
    const deadline = Date.now() + 20_000;
    let opened = false;
    while (!opened && Date.now() < deadline) {
      try {
        opened = fs.readdirSync(`/proc/${run.child.pid}/fd`).some((fd) => {
          try {
            return fs.readlinkSync(`/proc/${run.child.pid}/fd/${fd}`) === file;
          } catch {
            return false;
          }
        });
      } catch {
        break;
      }
      if (!opened) await sleep(2);
    }
    run.child.kill('SIGINT');
    const r = await run.done;
    if (r.code === 0) {
      console.log('[sigint] the commit finished before the signal arrived');
      return;
    }
    expect(r.code, describeRun(r)).toBe(130);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_INTERRUPTED']);
    expect(readRef(s.store, 'refs/heads/main')).toBe(base);
    expect(fs.readdirSync(path.join(s.store, 'tmp'))).toEqual([]);
    expect(s.run(['verify']).code).toBe(0);
    // and the next commit works normally
    const id = commitId(s, [dataDir(72, 4096), '-m', 'after interrupt']);
    expect(s.json(['show', id]).parents).toEqual([base]);
  });

  it('SIGINT during a checkout after some files are in place: it names them and says the rest of the folder is as it was', async () => {
    const s = newStore();
    const src = tempDir('ckvc-cc-two-');
    fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(81, 100_000)); // written first: the files go in name order
    fs.writeFileSync(path.join(src, 'z.bin'), randomBytes(82, 96 * MiB));
    const id = commitId(s, [src, '-m', 'two']);
    const dir = tempDir('ckvc-cc-mixed-');
    const run = s.start(['checkout', id, '--to', dir]);
    const deadline = Date.now() + 20_000;
    const writingZ = () => fs.readdirSync(dir).some((f) => f.startsWith('.z.bin.'));
    while (!writingZ() && Date.now() < deadline) await sleep(2);
    expect(writingZ(), "z.bin's temp file appeared").toBe(true);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect([r.code, r.signal], describeRun(r)).toEqual([null, 'SIGINT']);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_INTERRUPTED']);
    expect(r.stderr).toContain(
      '1 file(s) were written before it, each whole and verified (a.bin); the other files there are as they were: run the checkout again to complete it',
    );
    expect(fs.readdirSync(dir)).toEqual(['a.bin']);
  });

  // Checkout, pack and pull write temp files where nothing else removes them soon (beside the checked-out file,
  // beside `pack -o`, a quarantine as large as the bundle): Ctrl-C must remove them, as commit does its own.
  describe('SIGINT while a temp file is being written: exit 130, the temp file removed, nothing else changed', () => {
    let s: TestStore;
    let src: string;
    let id: string;
    let bundle: string;
    beforeAll(() => {
      s = newStore();
      // One file: with a second, a checkout could rename the first into place before the signal arrives.
      src = tempDir('ckvc-cc-one-');
      fs.writeFileSync(path.join(src, 'opaque.bin'), randomBytes(80, 96 * MiB));
      id = commitId(s, [src, '-m', 'big']);
      bundle = path.join(tempDir('ckvc-cc-bundle-'), 'big.ckvb');
      s.ok(['pack', 'main', '-o', bundle]);
    });
    const cases = [
      { what: 'checkout', args: (dir: string) => ['checkout', id, '--to', dir], store: () => s },
      { what: 'pack', args: (dir: string) => ['pack', 'main', '-o', path.join(dir, 'out.ckvb')], store: () => s },
      { what: 'pull', args: () => ['pull', bundle], store: () => newStore() },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        const store = c.store();
        const dir = tempDir('ckvc-cc-interrupted-');
        // Where its temp file appears: in the target folder, or the receiving store's tmp/ (a quarantine).
        const watched = c.what === 'pull' ? path.join(store.store, 'tmp') : dir;
        const run = store.start(c.args(dir));
        const deadline = Date.now() + 20_000;
        const temps = () => (fs.existsSync(watched) ? fs.readdirSync(watched) : []);
        while (temps().length === 0 && Date.now() < deadline) await sleep(2);
        expect(temps(), 'a temp file appeared').not.toEqual([]);
        run.child.kill('SIGINT');
        const r = await run.done;
        // It says why it stopped, then ends by the signal itself (a shell shows 130), so that a script stops too.
        expect([r.code, r.signal], describeRun(r)).toEqual([null, 'SIGINT']);
        expect(errorCodes(r.stderr)).toEqual(['CKVC_INTERRUPTED']);
        // Checkout and pack write their temp file until the end; a pull's quarantine is gone once promoted, and on
        // a busy machine the signal can land after that (nothing left to remove then, which temps() checks).
        if (c.what !== 'pull') expect(r.stderr).toContain('removed 1 temp file(s)');
        expect(temps()).toEqual([]);
        expect(store.run(['verify']).code).toBe(0);
        // And the command, run again, does its work.
        expect(store.run(c.args(dir)).code).toBe(0);
        if (c.what === 'checkout') checkoutMatches(s, id, src);
      });
    }
  });
});
