// gc and prune under crashes, failing disks and concurrent commits.
//
// Template: main k1..k4 (each a folder: model.safetensors with a `base` tensor shared by all four plus `w` and
// `opt.m` of its own, extra.safetensors, an opaque notes.txt), plus a pack nothing references (a commit killed
// with its pack durable and indexed but before its ref moved, leaving a stale writer registration too). Pruned
// template: k1 released whole, k2's opt.* released. gc --grace 0 then has to rewrite k1's and k2's packs (live and
// dead records in one pack), delete the orphan pack, and keep k3/k4's. A reference copy runs gc without faults;
// gc's output is deterministic, so its pack set is what every interrupted gc must end with once re-run.
//
// After every kill (CKVC_FAULT=<step>, SIGKILL): verify --read-data is clean (the stale gc.lock of the dead pid
// does not get in the way), every kept commit checks out byte-identical, pruned data exits 19, a new commit goes
// through at once, gc run again completes and the store ends with the reference's packs (+ the new commit's).
// ENOSPC/EIO at gc steps: exit 1 CKVC_IO, store as before apart from unreferenced data, gc re-run completes.
// Finally a loop: gc --grace 0 over and over in one loop while another commits 10 checkpoints with prunes in
// between; every acknowledged commit not pruned checks out byte-identical and verify --read-data is clean.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes, parseJson, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, hashTree, snapshotStore } from '../helpers/snapshots.js';
import { Semaphore } from '../helpers/async-tasks.js';
import { writeCheckpoint } from '../helpers/reliability.js';
import { randomBytes, safetensorsBytes } from '../helpers/data.js';

const KiB = 1024;
const summary: string[] = [];

afterAll(() => {
  if (summary.length) console.log(summary.join('\n'));
  cleanupTemp();
});

// At most three CLI processes at a time across the concurrent cases of this file (a 2-core machine).
const slots = new Semaphore(3);
const run = (s: TestStore, args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> =>
  slots.use(() => s.runAsync(args, { env: { CKVC_GC_WAIT_MS: '20000', CKVC_LOCK_TIMEOUT_MS: '20000', ...env } }));

interface Ck {
  id: string;
  dir: string;
  files: Map<string, string>;
}

let T0: TestStore; // 4 commits + orphan pack, nothing pruned
let T1: TestStore; // T0 pruned: k1 whole, k2 opt.*
const ck: Ck[] = []; // ck[1..4]
let k5: { dir: string; files: Map<string, string> };
let refPacks: Set<string>;
let refReport: any;

const packSet = (s: TestStore) =>
  new Set(fs.readdirSync(path.join(s.store, 'packs')).filter((n) => n.endsWith('.pack')));
const sub = (m: Map<string, string>, keys: string[]) => new Map([...m].filter(([k]) => keys.includes(k)));
const gcLock = (s: TestStore) => path.join(s.store, 'locks', 'gc.lock');

function writeCk(dir: string, k: number, base: Buffer): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'model.safetensors'),
    safetensorsBytes({
      base: { dtype: 'F32', shape: [2048], bytes: base },
      w: { dtype: 'F32', shape: [1024], bytes: randomBytes(k * 10 + 1, 4 * KiB) },
      'opt.m': { dtype: 'F32', shape: [1024], bytes: randomBytes(k * 10 + 2, 4 * KiB) },
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'extra.safetensors'),
    safetensorsBytes({ e: { dtype: 'U8', shape: [2048], bytes: randomBytes(k * 10 + 3, 2 * KiB) } }),
  );
  fs.writeFileSync(path.join(dir, 'notes.txt'), randomBytes(k * 10 + 4, 1500));
  return hashTree(dir);
}

/** Checks out REV (some paths, or all) and compares with `expected`; problems as lines. */
async function checkout(
  s: TestStore,
  rev: string,
  expected: Map<string, string>,
  paths: string[] = [],
): Promise<string[]> {
  const out = tempDir('ckvc-gcc-co-');
  const r = await run(s, ['checkout', rev, '--to', out, ...paths.flatMap((p) => ['--path', p])]);
  try {
    if (r.code !== 0) return [`checkout ${rev.slice(0, 12)} ${paths.join(' ')}: ${describeRun(r)}`];
    return diffSnapshots(expected, hashTree(out)).map((d) => `checkout ${rev.slice(0, 12)}: ${d}`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Checkout of REV (some paths, or all) must exit 19 CKVC_PRUNED. */
async function refused(s: TestStore, rev: string, paths: string[] = []): Promise<string[]> {
  const out = tempDir('ckvc-gcc-co-');
  const r = await run(s, ['checkout', rev, '--to', out, ...paths.flatMap((p) => ['--path', p])]);
  fs.rmSync(out, { recursive: true, force: true });
  return r.code === 19 && errorCodes(r.stderr).join() === 'CKVC_PRUNED'
    ? []
    : [`checkout ${rev.slice(0, 12)} ${paths.join(' ')} should exit 19 CKVC_PRUNED: ${describeRun(r)}`];
}

async function verifyClean(s: TestStore, when: string): Promise<string[]> {
  const r = await run(s, ['verify', '--read-data', '--json']);
  return r.code === 0 ? [] : [`verify --read-data ${when}: ${describeRun(r)}`];
}

/** What the pruned template promises: k4 (k3) whole, k2's extra + notes, k1 refused whole (its notes too), k2's tensors refused. */
async function keptIntact(s: TestStore, full: boolean | 'all' = false): Promise<string[]> {
  const keep = ['extra.safetensors', 'notes.txt'];
  const checks = [checkout(s, ck[4]!.id, ck[4]!.files), checkout(s, ck[2]!.id, sub(ck[2]!.files, keep), keep)];
  if (full) {
    checks.push(
      refused(s, ck[1]!.id, ['notes.txt']), // prune without --tensors releases opaque files too (FORMAT.md §13)
      refused(s, ck[1]!.id),
    );
  }
  if (full === 'all') checks.push(checkout(s, ck[3]!.id, ck[3]!.files), refused(s, ck[2]!.id, ['model.safetensors']));
  return (await Promise.all(checks)).flat();
}

beforeAll(async () => {
  const work = tempDir('ckvc-gcc-in-');
  T0 = newStore('ckvc-gcc-t0-');
  const base = randomBytes(4242, 8 * KiB);
  for (let k = 1; k <= 4; k++) {
    const dir = path.join(work, `k${k}`);
    const files = writeCk(dir, k, base);
    const r = parseJson<{ id: string }>(
      await T0.runAsync(['commit', dir, '-m', `k${k}`, '--metric', `loss=${5 - k}`, '--step', String(k), '--json']),
      `commit k${k}`,
    );
    ck[k] = { id: r.id, dir, files };
  }
  // An orphan pack: durable and indexed, but the process died before the ref moved (and left its writer file).
  const orphan = path.join(work, 'orphan');
  writeCk(orphan, 9, randomBytes(9999, 8 * KiB));
  const killed = await T0.runAsync(['commit', orphan, '-m', 'never lands'], { env: { CKVC_FAULT: 'ref.lock' } });
  expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
  expect(T0.ref('refs/heads/main')).toBe(ck[4]!.id);
  k5 = { dir: path.join(work, 'k5'), files: new Map() };
  k5.files = writeCk(k5.dir, 5, base);

  T1 = copyStore(T0, 'ckvc-gcc-t1-');
  parseJson(await T1.runAsync(['prune', '--keep-last', '3', '--json']), 'prune k1');
  parseJson(await T1.runAsync(['prune', '--keep-last', '2', '--tensors', 'opt*', '--json']), 'prune k2 opt*');
  expect(fs.readdirSync(path.join(T1.store, 'pruned')).sort()).toEqual(
    [`${ck[1]!.id}.json`, `${ck[2]!.id}.json`].sort(),
  );

  // The reference: gc without faults.
  const ref = copyStore(T1, 'ckvc-gcc-ref-');
  refReport = parseJson(await ref.runAsync(['gc', '--grace', '0', '--json']), 'reference gc');
  refPacks = packSet(ref);
  // The template really needs what the test claims: 2 packs rewritten (live + dead), 1 deleted outright.
  expect(refReport.packsRewritten).toBe(2);
  expect(refReport.packsDeleted).toBe(3);
  expect(refReport.bytesFreed).toBeGreaterThan(0);
  expect(refPacks.size).toBe(refReport.packsAfter);
  expect([...(await verifyClean(ref, 'of the reference')), ...(await keptIntact(ref, 'all'))]).toEqual([]);
}, 120_000);

// ---------------------------------------------------------------------------------------------------------------

describe.concurrent('gc killed at each of its fault steps', () => {
  for (const step of ['gc.locked', 'gc.packed', 'gc.indexed', 'gc.delete']) {
    it(`kill at ${step}: verify clean, kept data intact, next commit fine, gc re-run finishes the job`, {
      timeout: 120_000,
    }, async ({ expect }) => {
      const s = copyStore(T1, 'ckvc-gcc-case-');
      const problems: string[] = [];
      const killed = await run(s, ['gc', '--grace', '0', '--json'], { CKVC_FAULT: step });
      expect(killed.signal, `CKVC_FAULT=${step}: ${describeRun(killed)}`).toBe('SIGKILL');
      if (!fs.existsSync(gcLock(s))) problems.push('no stale gc.lock left by the killed gc (the case tests nothing)');

      // verify walks every object the refs need (down to chunks) and re-hashes every pack; one checkout besides.
      problems.push(...(await verifyClean(s, 'after the kill')));
      problems.push(...(await checkout(s, ck[4]!.id, ck[4]!.files)));

      const c = await run(s, ['commit', k5.dir, '-m', 'k5 after the crash', '--json']);
      if (c.code !== 0) problems.push(`commit after the kill: ${describeRun(c)}`);
      else if (c.ms > 10_000) problems.push(`commit after the kill took ${c.ms} ms (waited on the dead gc's lock?)`);
      const k5id = c.code === 0 ? (JSON.parse(c.stdout) as { id: string }).id : undefined;

      const again = await run(s, ['gc', '--grace', '0', '--json']);
      if (again.code !== 0) problems.push(`gc re-run: ${describeRun(again)}`);
      else {
        const rep = JSON.parse(again.stdout);
        if (!(rep.bytesFreed > 0)) problems.push(`gc re-run freed nothing: ${again.stdout}`);
        const now = packSet(s);
        const missing = [...refPacks].filter((p) => !now.has(p));
        const extra = [...now].filter((p) => !refPacks.has(p));
        if (missing.length) problems.push(`packs of the fault-free gc missing after the re-run: ${missing.join(' ')}`);
        if (extra.length !== 1)
          problems.push(
            `expected exactly the new commit's pack beyond the reference, found ${extra.length}: ${extra.join(' ')}`,
          );
      }
      if (fs.existsSync(gcLock(s))) problems.push('gc.lock still there after a successful gc');
      problems.push(...(await verifyClean(s, 'after the gc re-run')));
      problems.push(...(await keptIntact(s, true)));
      if (k5id) problems.push(...(await checkout(s, k5id, k5.files)));
      summary.push(`gc crash ${step}: ${problems.length ? `${problems.length} problem(s)` : 'ok'}`);
      expect(problems).toEqual([]);
    });
  }

  for (const fault of ['prune.record', 'prune.record@2']) {
    it(`prune killed at ${fault}: records complete or absent, verify clean, re-run fine (and gc after it)`, async ({
      expect,
    }) => {
      const s = copyStore(T0, 'ckvc-gcc-prune-');
      const problems: string[] = [];
      const args = ['prune', '--keep-last', '2', '--tensors', 'opt*', '--json'];
      const killed = await run(s, args, { CKVC_FAULT: fault });
      expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
      const dir = path.join(s.store, 'pruned');
      const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      // Records go newest commit first: @2 dies after k2's record is durable, before k1's.
      const want = fault.endsWith('@2') ? [`${ck[2]!.id}.json`] : [];
      const records = names.filter((n) => /^[0-9a-f]{64}\.json$/.test(n));
      if (records.join() !== want.join())
        problems.push(`records after the kill: ${names.join(' ') || 'none'}, expected ${want.join(' ') || 'none'}`);
      for (const n of records) {
        const rec = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8'));
        if (rec.commit !== n.slice(0, 64) || JSON.stringify(rec.tensors) !== '["opt*"]')
          problems.push(`record ${n}: ${JSON.stringify(rec)}`);
      }
      problems.push(...(await verifyClean(s, 'after the kill')));
      const keep = ['extra.safetensors', 'notes.txt'];
      problems.push(
        ...(
          await Promise.all([
            checkout(s, ck[1]!.id, ck[1]!.files), // not pruned yet in either case
            ...(fault.endsWith('@2') ? [refused(s, ck[2]!.id, ['model.safetensors'])] : []),
          ])
        ).flat(),
      );

      const again = await run(s, args);
      if (again.code !== 0) problems.push(`prune re-run: ${describeRun(again)}`);
      if (!fault.endsWith('@2')) {
        // Nothing had been written: the re-run is a plain prune (the @2 case goes on through gc).
        summary.push(`prune crash ${fault}: ${problems.length ? `${problems.length} problem(s)` : 'ok'}`);
        return void expect(problems).toEqual([]);
      }
      const gc = await run(s, ['gc', '--grace', '0', '--json']);
      if (gc.code !== 0 || !(JSON.parse(gc.stdout).bytesFreed > 0))
        problems.push(`gc after the prune: ${describeRun(gc)}`);
      problems.push(...(await verifyClean(s, 'after prune + gc')));
      problems.push(
        ...(
          await Promise.all([
            refused(s, ck[1]!.id, ['model.safetensors']),
            refused(s, ck[2]!.id, ['model.safetensors']),
            checkout(s, ck[1]!.id, sub(ck[1]!.files, keep), keep),
            checkout(s, ck[2]!.id, sub(ck[2]!.files, keep), keep),
            checkout(s, ck[4]!.id, ck[4]!.files),
          ])
        ).flat(),
      );
      summary.push(`prune crash ${fault}: ${problems.length ? `${problems.length} problem(s)` : 'ok'}`);
      expect(problems).toEqual([]);
    });
  }

  it('ENOSPC at gc.packed: exit 1 CKVC_IO, store as before apart from unreferenced data; gc re-run ends like the reference', async ({
    expect,
  }) => {
    const s = copyStore(T1, 'ckvc-gcc-enospc-');
    const before = snapshotStore(s.store);
    const r = await run(s, ['gc', '--grace', '0'], { CKVC_FAULT: 'gc.packed=enospc' });
    expect(r.signal).toBeNull();
    expect(r.code, describeRun(r)).toBe(1);
    expect.soft(errorCodes(r.stderr), describeRun(r)).toEqual(['CKVC_IO']);
    expect(fs.existsSync(gcLock(s)), 'gc.lock released').toBe(false);
    // Allowed: the durable copy pack nothing references yet, and the stale writer file of the dead commit.
    const changes = diffSnapshots(before, snapshotStore(s.store)).filter(
      (d) => !/^added packs\/[0-9a-f]{64}\.pack$/.test(d) && !/^removed locks\/writers\//.test(d),
    );
    expect(changes).toEqual([]);
    expect(await verifyClean(s, 'after ENOSPC')).toEqual([]);
    const again = await run(s, ['gc', '--grace', '0', '--json']);
    expect(again.code, describeRun(again)).toBe(0);
    expect([...packSet(s)].sort()).toEqual([...refPacks].sort());
    const after = [...(await verifyClean(s, 'after the gc re-run')), ...(await keptIntact(s, true))];
    summary.push(
      `gc gc.packed=enospc: exit ${r.code} ${errorCodes(r.stderr).join(' ')}; ${after.length ? `${after.length} problem(s) after the re-run` : 're-run ok'}`,
    );
    expect(after).toEqual([]);
  });

  for (const fault of ['gc.locked=eio', 'gc.indexed=enospc', 'gc.delete=eio']) {
    it(`${fault}: exit 1 CKVC_IO, lock released, verify clean`, async ({ expect }) => {
      const s = copyStore(T1, 'ckvc-gcc-io-');
      const r = await run(s, ['gc', '--grace', '0'], { CKVC_FAULT: fault });
      summary.push(`gc ${fault}: exit ${r.code} ${errorCodes(r.stderr).join(' ')}`);
      expect(r.code, describeRun(r)).toBe(1);
      expect.soft(errorCodes(r.stderr), describeRun(r)).toEqual(['CKVC_IO']);
      expect(fs.existsSync(gcLock(s)), 'gc.lock released').toBe(false);
      expect(await verifyClean(s, `after ${fault}`)).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------

describe('gc in a loop beside a committing loop with prunes', () => {
  it('every acknowledged commit not pruned checks out byte-identical; pruned ones refuse (19), whole ones their opaque files too; verify clean', async () => {
    const s = newStore('ckvc-gcc-loop-');
    const work = tempDir('ckvc-gcc-loop-in-');
    const acks: { id: string; files: Map<string, string> }[] = [];
    const released = new Map<string, 'all' | 'head'>();
    const problems: string[] = [];
    let committing = true;
    let gcRuns = 0;
    let gcOk = 0;
    let freed = 0;
    const env = { CKVC_GC_WAIT_MS: '60000', CKVC_LOCK_TIMEOUT_MS: '60000' };

    const prune = async (args: string[], what: 'all' | 'head') => {
      const r = await s.runAsync(['prune', ...args, '--json'], { env });
      if (r.code !== 0) return void problems.push(`prune ${args.join(' ')}: ${describeRun(r)}`);
      for (const p of JSON.parse(r.stdout).pruned as { id: string }[])
        if (released.get(p.id) !== 'all') released.set(p.id, what);
    };
    const committer = async () => {
      try {
        for (let i = 0; i < 10; i++) {
          const dir = path.join(work, `c${i}`);
          const files = writeCheckpoint(dir, { seed: 700 + i, family: 0, tensorBytes: 16 * KiB, opaqueBytes: 8 * KiB });
          const r = await s.runAsync(['commit', dir, '-m', `c${i}`, '--metric', `loss=${10 - i}`, '--json'], { env });
          if (r.code === 0) acks.push({ id: JSON.parse(r.stdout).id, files });
          else problems.push(`commit c${i}: ${describeRun(r)}`);
          if (i === 3) await prune(['--keep-last', '2'], 'all'); // c0 c1
          if (i === 6) await prune(['--keep-last', '2', '--tensors', 'head'], 'head'); // c2 c3 c4
          if (i === 8) await prune(['--keep-last', '6'], 'all'); // c2 c1 c0
        }
      } finally {
        committing = false;
      }
    };
    const collector = async () => {
      while (committing) {
        const r = await s.runAsync(['gc', '--grace', '0', '--json'], { env });
        gcRuns++;
        if (r.code === 0) {
          gcOk++;
          freed += JSON.parse(r.stdout).bytesFreed;
        } else problems.push(`gc run ${gcRuns}: ${describeRun(r)}`);
      }
    };
    await Promise.all([committer(), collector()]);
    const last = parseJson(await s.runAsync(['gc', '--grace', '0', '--json']), 'final gc');
    freed += last.bytesFreed;

    const log = parseJson<{ id: string }[]>(await s.runAsync(['log', '--json']), 'log');
    const logged = new Set(log.map((c) => c.id));
    for (const a of acks) if (!logged.has(a.id)) problems.push(`acknowledged commit ${a.id} is not in the log`);
    let intact = 0;
    let refusedOk = 0;
    // Every unpruned commit whole; of the pruned ones, the oldest (all released) and the newest (head only).
    const prunedAcks = acks.filter((a) => released.has(a.id));
    const sample = new Set([prunedAcks[0]?.id, prunedAcks.at(-1)?.id]);
    const checks = await Promise.all(
      acks
        .filter((a) => !released.has(a.id) || sample.has(a.id))
        .map(async (a) => {
          const state = released.get(a.id);
          if (!state) {
            const p = await checkout(s, a.id, a.files);
            if (!p.length) intact++;
            return p;
          }
          // Released whole ('all'): the opaque optimizer.bin too; only the head tensor: optimizer.bin intact.
          const opaque =
            state === 'all'
              ? await refused(s, a.id, ['optimizer.bin'])
              : await checkout(s, a.id, sub(a.files, ['optimizer.bin']), ['optimizer.bin']);
          const p = [...(await refused(s, a.id)), ...opaque];
          if (!p.length) refusedOk++;
          return p;
        }),
    );
    problems.push(...checks.flat());
    problems.push(...(await verifyClean(s, 'after the loop')));
    const line =
      `gc loop: ${gcRuns} gc runs (${gcOk} exit 0, ${freed} bytes freed) beside ${acks.length}/10 acknowledged commits and 3 prunes; ` +
      `${intact} unpruned commits byte-identical, ${refusedOk} pruned commits refuse checkout (19) as released; ${problems.length} problem(s)`;
    summary.push(line);
    expect(acks).toHaveLength(10);
    expect(released.size).toBe(5);
    expect([...released.values()].filter((v) => v === 'head')).toHaveLength(2); // c3 c4
    expect(gcRuns).toBeGreaterThanOrEqual(2);
    expect(problems).toEqual([]);
  }, 120_000);
});
