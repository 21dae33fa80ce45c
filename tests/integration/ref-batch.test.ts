// Ref moves in one batch (spec/FORMAT.md §6.5, issue 11): a bundle of 5,000 refs (20,000 in `npm run soak`)
// pulls in bounded time with every ref and reflog written; one ref that cannot move refuses the whole import; a disk failing in the middle
// leaves every ref and reflog as it was; the batch lock and the per-ref locks exclude each other.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeBundleHeader,
  encodeBundleHeader,
  encodeBundlePreamble,
} from '../../src/core/store-format/bundle-format.js';
import { codesOf, describeRun } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotTree } from '../helpers/snapshots.js';
import { writeCheckpoint } from '../helpers/reliability.js';

afterAll(cleanupTemp, 300_000);

const refsAndLogs = (s: TestStore) => snapshotTree(s.store, (rel) => !/^(refs|logs)(\/|$)/.test(rel));
const quarantines = (s: TestStore) =>
  fs.readdirSync(path.join(s.store, 'tmp')).filter((n) => n.startsWith('quarantine-'));
let work: string;
let seed = 500;

async function commit(s: TestStore, branch: string): Promise<string> {
  const dir = path.join(work, `ck-${seed}`);
  writeCheckpoint(dir, { seed: seed++, tensorBytes: 16 * 1024, opaqueBytes: 8 * 1024 });
  return (await s.jsonAsync<{ id: string }>(['commit', dir, '-b', branch, '-m', `c${seed}`])).id;
}

beforeAll(() => {
  work = tempDir('ckvc-batch-work-');
});

/** A bundle holding `src`'s pack of main, with `names` as its refs, all at main's commit. */
function bundleWithRefs(file: string, names: string[]): Buffer {
  const b = fs.readFileSync(file);
  const hl = b.readUInt32LE(12);
  const header = decodeBundleHeader(b.subarray(16, 16 + hl), 'test');
  const pack = b.subarray(16 + hl, 16 + hl + header.packLength);
  const id = header.refs[0]!.id;
  const hb = encodeBundleHeader({ ...header, refs: names.map((name) => ({ name, id })) });
  const body = Buffer.concat([encodeBundlePreamble(hb.length), hb, pack]);
  const h = new Blake3Hasher();
  h.update(body);
  return Buffer.concat([body, h.digestBuffer(), Buffer.from('CKVCBEND', 'latin1')]);
}

/**
 * This machine's file system, now: microseconds per ref of the least a durable batch does (a reflog line in a new
 * file and a temp file, both fsynced in waves of 512, then a rename). Loaded machines are many times slower.
 */
async function floorPerRef(n = 1000): Promise<number> {
  const d = tempDir('ckvc-hard-floor-');
  const t0 = performance.now();
  for (let at = 0; at < n; at += 512) {
    const fds: number[] = [];
    for (let i = at; i < Math.min(n, at + 512); i++) {
      fds.push(fs.openSync(path.join(d, `log${i}`), 'a'), fs.openSync(path.join(d, `.r${i}.tmp`), 'wx'));
      fs.writeSync(fds[fds.length - 2]!, `${'0'.repeat(64)} ${'1'.repeat(64)} 1 test\tpull\n`);
      fs.writeSync(fds[fds.length - 1]!, `${'1'.repeat(64)}\n`);
    }
    await Promise.all(fds.map((fd) => new Promise((resolve) => fs.fsync(fd, resolve))));
    for (const fd of fds) fs.closeSync(fd);
  }
  for (let i = 0; i < n; i++) fs.renameSync(path.join(d, `.r${i}.tmp`), path.join(d, `r${i}`));
  const us = ((performance.now() - t0) * 1000) / n;
  fs.rmSync(d, { recursive: true, force: true });
  return us;
}

describe('bundle imports move their refs as one batch', () => {
  // 5,000 refs are ten waves of 512 fsyncs, as 20,000 are forty: the bound per ref is the same. The soak pulls
  // 20,000, the size issue 11 was about.
  const soak = Number(process.env.CKVC_SOAK_SCALE ?? 1) > 1;
  const N = Number(process.env.CKVC_TEST_BUNDLE_REFS ?? (soak ? 20_000 : 5_000));
  let src: TestStore;
  let full: string;
  let tip: string;

  beforeAll(async () => {
    src = newStore('ckvc-hard-src-');
    tip = await commit(src, 'main');
    full = path.join(work, 'main.bundle');
    await src.jsonAsync(['pack', 'main', '-o', full]);
  });

  it(`a bundle of ${N} refs pulls in bounded time: every ref set, every reflog written`, async () => {
    const names = Array.from({ length: N }, (_, i) => `refs/heads/sweep/g${i % 20}/run-${String(i).padStart(6, '0')}`);
    const file = path.join(work, 'many.bundle');
    fs.writeFileSync(file, bundleWithRefs(full, names));
    const S = newStore('ckvc-hard-many-');
    const floorBefore = await floorPerRef();
    const t0 = Date.now();
    const r = await S.runAsync(['pull', file, '--json'], { timeoutMs: 900_000 });
    const ms = Date.now() - t0;
    // The load of a full test run (other files beside this one) comes and goes: the floor is taken before and
    // after, and the larger counts (a pull at 5x the floor before it failed a full run once the load rose).
    const floor = Math.max(floorBefore, await floorPerRef());
    // 30 s for 20,000 refs on a machine whose floor is under 375 us/ref (an idle one is near 100); on a loaded
    // one, five times the floor. One move after another costs three serial fsyncs per ref: over 10 times the floor.
    const bound = Math.max(30_000 * (N / 20_000), (5 * N * floor) / 1000);
    console.log(
      `pull of a bundle with ${N} refs: ${ms} ms (${((ms * 1000) / N).toFixed(0)} us/ref; this file system's floor now: ${floor.toFixed(0)} us/ref; bound ${bound.toFixed(0)} ms)`,
    );
    expect(r.code, describeRun(r)).toBe(0);
    expect(ms).toBeLessThan(bound);
    const out = JSON.parse(r.stdout);
    expect(out.refs).toHaveLength(N);
    const files = S.refFiles().filter((f) => f.startsWith('refs/heads/bundle/sweep/'));
    expect(files).toHaveLength(N);
    for (const n of [names[0]!, names[N >> 1]!, names[N - 1]!]) {
      const local = n.replace('refs/heads/', 'refs/heads/bundle/');
      expect(S.ref(local)).toBe(tip);
      const log = fs.readFileSync(path.join(S.store, 'logs', ...local.split('/')), 'utf8');
      expect(log).toMatch(
        new RegExp(`^${'0'.repeat(64)} ${tip} \\d+ test\\tpull: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`),
      );
    }
    let logs = 0;
    for (let g = 0; g < 20; g++)
      logs += fs.readdirSync(path.join(S.store, 'logs', 'refs', 'heads', 'bundle', 'sweep', `g${g}`)).length;
    expect(logs).toBe(N);
    expect(fs.existsSync(path.join(S.store, 'locks', 'refs.lock'))).toBe(false);
    // Again: nothing moves.
    const again = await S.jsonAsync(['pull', file], { timeoutMs: 900_000 });
    expect(again.refs.filter((u: any) => !u.skipped)).toEqual([]);
    fs.rmSync(S.dir, { recursive: true, force: true });
  }, 1_800_000);

  it('one ref that cannot be stored (its bundle/ name is too long) refuses the whole import: 15, store unchanged', async () => {
    const S = newStore('ckvc-hard-long-');
    const before = snapshotTree(S.store, (rel) => /^(index|tmp)(\/|$)/.test(rel));
    const file = path.join(work, 'long.bundle');
    fs.writeFileSync(file, bundleWithRefs(full, ['refs/heads/a', `refs/heads/${'x'.repeat(196)}`, 'refs/heads/z']));
    const r = await S.runAsync(['pull', file]);
    expect(r.code, describeRun(r)).toBe(15);
    expect(codesOf(r)).toEqual(['CKVC_BAD_REF_NAME']);
    expect(
      diffSnapshots(
        before,
        snapshotTree(S.store, (rel) => /^(index|tmp)(\/|$)/.test(rel)),
      ),
    ).toEqual([]);
    expect(quarantines(S)).toEqual([]);
  });

  it('--update-refs where one of three is not a fast-forward: 13 naming it, none of the three moved', async () => {
    const S = newStore('ckvc-hard-ff-');
    const other = await commit(S, 'b');
    const before = refsAndLogs(S);
    const file = path.join(work, 'three.bundle');
    fs.writeFileSync(file, bundleWithRefs(full, ['refs/heads/a', 'refs/heads/b', 'refs/heads/c']));
    const r = await S.runAsync(['pull', file, '--update-refs', '--json']);
    expect(r.code, describeRun(r)).toBe(13);
    const err = JSON.parse(r.stderr.trim().split('\n').pop()!).error;
    expect(err.code).toBe('CKVC_NON_FAST_FORWARD');
    expect(err.data.refused).toEqual(['refs/heads/b']);
    expect(diffSnapshots(before, refsAndLogs(S))).toEqual([]);
    expect([S.ref('refs/heads/a'), S.ref('refs/heads/b'), S.ref('refs/heads/c')]).toEqual([
      undefined,
      other,
      undefined,
    ]);
  });
});

const files = (s: TestStore) => new Map([...refsAndLogs(s)].filter(([, v]) => v !== 'dir'));

describe('batch ref updates fail cleanly and share the locks', () => {
  let file: string;
  beforeAll(async () => {
    const src = newStore('ckvc-hard-src2-');
    await commit(src, 'main');
    const full = path.join(work, 'main2.bundle');
    await src.jsonAsync(['pack', 'main', '-o', full]);
    file = path.join(work, 'three-new.bundle');
    fs.writeFileSync(file, bundleWithRefs(full, ['refs/heads/p', 'refs/heads/q/r', 'refs/tags/t']));
  });

  it('a disk that fails while the refs are written leaves every ref and reflog as it was (exit 1, CKVC_IO); the re-run completes', async () => {
    for (const fault of ['reflog.append@3=enospc', 'ref.tmp@2=enospc', 'ref.fsync@3=eio', 'ref.rename=eio']) {
      const S = newStore('ckvc-hard-fault-');
      const before = files(S);
      const r = await S.runAsync(['pull', file], { env: { CKVC_FAULT: fault } });
      expect(r.code, `${fault}: ${describeRun(r)}`).toBe(1);
      expect(codesOf(r)).toEqual(['CKVC_IO']);
      expect(r.stderr).toMatch(/disk/);
      expect(diffSnapshots(before, files(S)), fault).toEqual([]);
      expect(fs.readdirSync(path.join(S.store, 'locks'))).toEqual(['writers']);
      const again = await S.jsonAsync(['pull', file]);
      expect(again.refs.map((u: any) => u.name)).toEqual([
        'refs/heads/bundle/p',
        'refs/heads/bundle/q/r',
        'refs/tags/bundle/t',
      ]);
      expect(S.refFiles()).toEqual(['refs/heads/bundle/p', 'refs/heads/bundle/q/r', 'refs/tags/bundle/t']);
    }
  });

  it("a batch waits for a held ref lock and a single update for a held batch lock (11 when they stay held); a dead holder's lock is broken", async () => {
    const S = newStore('ckvc-hard-locks-');
    const tip = await commit(S, 'main');
    const env = { CKVC_LOCK_TIMEOUT_MS: '1500' };
    const live = JSON.stringify({ pid: process.pid, host: os.hostname(), nonce: 'held-by-the-test', time: Date.now() });
    const batchLock = path.join(S.store, 'locks', 'refs.lock');
    fs.writeFileSync(batchLock, live);
    const b = await S.runAsync(['branch', 'x', tip], { env });
    expect(b.code, describeRun(b)).toBe(11);
    expect(codesOf(b)).toEqual(['CKVC_LOCKED']);
    expect(b.stderr).toContain('refs.lock');
    fs.rmSync(batchLock);
    const refLock = path.join(S.store, 'refs', 'heads', 'bundle', 'p.lock');
    fs.mkdirSync(path.dirname(refLock), { recursive: true });
    fs.writeFileSync(refLock, live);
    const before = files(S);
    const p = await S.runAsync(['pull', file], { env });
    expect(p.code, describeRun(p)).toBe(11);
    expect(p.stderr).toContain('p.lock');
    expect(diffSnapshots(before, files(S))).toEqual([]);
    // Held by processes that are gone: both locks are broken and the commands go ahead.
    const dead = JSON.stringify({
      pid: spawnSync(process.execPath, ['-e', '0']).pid,
      host: os.hostname(),
      nonce: 'dead',
      time: Date.now(),
    });
    fs.writeFileSync(refLock, dead);
    fs.writeFileSync(batchLock, dead);
    expect((await S.runAsync(['branch', 'x', tip], { env })).code).toBe(0);
    expect((await S.runAsync(['pull', file], { env })).code).toBe(0);
    expect(S.refFiles()).toEqual([
      'refs/heads/bundle/p',
      'refs/heads/bundle/q/r',
      'refs/heads/main',
      'refs/heads/x',
      'refs/tags/bundle/t',
    ]);
    expect(fs.existsSync(refLock) || fs.existsSync(batchLock)).toBe(false);
  });
});
