// A peer cannot release data of the receiver's own history (spec/BUNDLE.md §2–§4, FORMAT.md §13, §15). Bundles
// and push bodies are crafted with the spec's encoders (src/core/store-format/bundle-format.ts, src/core/store-format/pack-format.ts via
// tests/helpers/walk-lib.ts), each with only the lie it is meant to carry: a prune record for a commit the
// bundle does not hold is refused whole (CKVC_BAD_BUNDLE, exit 12, store unchanged) from a file, a push and a
// fetch; a record for a commit the receiver already has is ignored. And locally: prune keeps tagged commits
// unless --include-tagged, gc keeps the bytes of a named commit, unprune takes a record back until gc freed the
// data (CKVC_PRUNED, exit 19, nothing changed, after that).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckvcAsync, codesOf, describeRun, expectOk, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStoreExceptTmp } from '../helpers/snapshots.js';
import { randomBytes, randomFloat32, safetensorsBytes } from '../helpers/data.js';
import {
  buildBundle,
  bundleHeader,
  checkoutPaths,
  chunkId,
  copyOf,
  expectReleased,
  holds,
  parseBundle,
  pruneRecords,
  setRemotes,
  startProxy,
  startServer,
  stopAll,
} from '../helpers/walk-lib.js';

afterAll(async () => {
  await stopAll();
  cleanupTemp();
});

const T = 60_000 * 5;
const N = 2048; // 8 KiB F32 tensors, one chunk each
let work = '';

/** A checkpoint folder: model.safetensors (two tensors of its own) and an opaque file; returns path -> bytes. */
let dirs = 0;

function writeCk(name: string, seed: number): { dir: string; files: Map<string, Buffer>; tensorData: Buffer[] } {
  const dir = path.join(work, `${name}-${dirs++}`);
  fs.mkdirSync(dir, { recursive: true });
  const tensorData = [randomFloat32(seed * 10 + 1, N), randomFloat32(seed * 10 + 2, N)];
  const files = new Map<string, Buffer>([
    [
      'model.safetensors',
      safetensorsBytes({
        w: { dtype: 'F32', shape: [N], bytes: tensorData[0]! },
        'opt.m': { dtype: 'F32', shape: [N], bytes: tensorData[1]! },
      }),
    ],
    ['extra.bin', randomBytes(seed * 10 + 3, 4096)],
  ]);
  for (const [p, b] of files) fs.writeFileSync(path.join(dir, p), b);
  return { dir, files, tensorData };
}

async function commit(
  s: TestStore,
  name: string,
  seed: number,
  branch = 'main',
): Promise<{ id: string; files: Map<string, Buffer>; tensorData: Buffer[] }> {
  const ck = writeCk(name, seed);
  const r = await s.jsonAsync<{ id: string }>(['commit', ck.dir, '-m', `${name} on ${branch}`, '-b', branch]);
  return { id: r.id, files: ck.files, tensorData: ck.tensorData };
}

const ALL = ['extra.bin', 'model.safetensors'];

async function expectCheckout(s: TestStore, rev: string, files: Map<string, Buffer>, label: string): Promise<void> {
  expect(await checkoutPaths(s, rev, files, ALL, label)).toEqual([]);
}

function expectExit(r: RunResult, code: number, errorCode: string, what: string): void {
  expect({ exit: r.code, codes: codesOf(r) }, `${what}: ${describeRun(r)}`).toEqual({
    exit: code,
    codes: [errorCode],
  });
}

/** `ckvc verify FILE` with no store. */
function verifyFile(file: string): Promise<RunResult> {
  return ckvcAsync(['verify', file, '--json'], {
    cwd: tempDir('ckvc-hp-nostore-'),
    env: { TMPDIR: tempDir('ckvc-hp-vtmp-'), CKVC_DIR: undefined },
  });
}

// ---------------------------------------------------------------------------------------------------------
// B: main = c0 -> c1, tag best -> c1 (the tagged branch tip). X: a copy of B that went on to c2 on main, and on
// a branch `other` from c1 committed x1 (the very tree of c0: same files) and x2; it pruned c0, c1 and x1 (all
// tensors, --include-tagged) and packed main and other as x.ckvb: a legitimate bundle whose records name
// commits B already has (c0, c1: to be ignored) and one it does not (x1: taken, but x1's tree is c0's, which
// B keeps unpruned: the record must not release c0's reach of it).

describe('a peer that sends prune records', () => {
  let B: TestStore;
  let X: TestStore;
  let c0: Awaited<ReturnType<typeof commit>>;
  let c1: Awaited<ReturnType<typeof commit>>;
  let c2: Awaited<ReturnType<typeof commit>>;
  let x1: Awaited<ReturnType<typeof commit>>;
  let x2: Awaited<ReturnType<typeof commit>>;
  let xBundle = '';
  const token = `hp-token-${Math.random().toString(36).slice(2)}`;
  let tokenFile = '';
  /** A bundle with no refs, no pack, and one record releasing every tensor of B's tagged tip. */
  let foreign: Buffer;

  beforeAll(async () => {
    work = tempDir('ckvc-hp-work-');
    tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    B = newStore('ckvc-hp-b-');
    c0 = await commit(B, 'c0', 1);
    c1 = await commit(B, 'c1', 2);
    expectOk(await B.runAsync(['tag', 'best', c1.id]), 'tag best');
    X = copyOf(B, 'ckvc-hp-x-');
    c2 = await commit(X, 'c2', 3);
    expectOk(await X.runAsync(['branch', 'other', c1.id]), 'branch other');
    x1 = await commit(X, 'c0', 1, 'other'); // the files of c0 again: the same tree object
    x2 = await commit(X, 'x2', 4, 'other');
    const pr = await X.jsonAsync<{ pruned: { id: string }[] }>(['prune', '--keep-last', '1', '--include-tagged']);
    expect(pr.pruned.map((p) => p.id).sort()).toEqual([c0.id, c1.id].sort());
    const po = await X.jsonAsync<{ pruned: { id: string }[] }>([
      'prune',
      '--keep-last',
      '1',
      '--include-tagged',
      '-b',
      'other',
    ]);
    expect(po.pruned.map((p) => p.id)).toEqual([x1.id]); // a branch's history stops at commits made on another
    xBundle = path.join(work, 'x.ckvb');
    expectOk(await X.runAsync(['pack', 'main', 'other', '-o', xBundle]), 'pack at X');
    foreign = buildBundle(
      bundleHeader({ pruned: [{ commit: c1.id, time: Date.now(), tensors: null }] }),
      Buffer.alloc(0),
    );
  }, T);

  it(
    "(a) a bundle file with only a record for the receiver's tagged tip: verify FILE and pull exit 12 CKVC_BAD_BUNDLE, the store is unchanged, best checks out, after gc too",
    async () => {
      const file = path.join(work, 'foreign.ckvb');
      fs.writeFileSync(file, foreign);
      const R = copyOf(B, 'ckvc-hp-a-');
      const before = snapshotStoreExceptTmp(R.store);
      const [v, p] = await Promise.all([verifyFile(file), R.runAsync(['pull', file])]);
      expectExit(v, 12, 'CKVC_BAD_BUNDLE', 'verify FILE');
      expectExit(p, 12, 'CKVC_BAD_BUNDLE', 'pull FILE');
      expect(diffSnapshots(before, snapshotStoreExceptTmp(R.store))).toEqual([]);
      expect(pruneRecords(R).size).toBe(0);
      expectOk(await R.runAsync(['gc', '--grace', '0']), 'gc');
      await expectCheckout(R, 'best', c1.files, 'best after gc');
      const vr = await R.verify(true);
      expect(vr.r.code, describeRun(vr.r)).toBe(0);
    },
    T,
  );

  it(
    '(b) through an authenticated HTTP push (/v1/receive): the record alone is refused (400, CKVC_BAD_BUNDLE) and the server store is unchanged; a real bundle whose records name commits the server has is taken without them',
    async () => {
      const R = copyOf(B, 'ckvc-hp-b-srv-');
      const server = await startServer(R, ['--token-file', tokenFile]);
      const post = (body: Buffer) =>
        fetch(new URL('v1/receive', server.url), {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
          body: new Uint8Array(body),
        });
      const before = snapshotStoreExceptTmp(R.store);
      const r1 = await post(foreign);
      const j1 = (await r1.json()) as { error?: { code: string; exit: number } };
      expect({ status: r1.status, code: j1.error?.code, exit: j1.error?.exit }).toEqual({
        status: 400,
        code: 'CKVC_BAD_BUNDLE',
        exit: 12,
      });
      expect(diffSnapshots(before, snapshotStoreExceptTmp(R.store))).toEqual([]);

      // x.ckvb as a push body (no refs): c2, x1, x2 are new here, c0 and c1 are not: only x1's record is taken.
      const xb = parseBundle(fs.readFileSync(xBundle));
      expect(xb.header.pruned.map((p) => p.commit).sort()).toEqual([c0.id, c1.id, x1.id].sort());
      const r2 = await post(buildBundle({ ...xb.header, refs: [] }, xb.pack));
      expect(r2.status, await r2.clone().text()).toBe(200);
      expect(((await r2.json()) as { newObjects: number }).newObjects).toBeGreaterThan(0);
      expect([...pruneRecords(R).keys()]).toEqual([x1.id]);
      // A branch at x2 keeps x1 (and its record) alive through gc: x1's tree is c0's, which c0 still needs.
      expectOk(await R.runAsync(['branch', 'other', x2.id]), 'branch other at the server store');
      expectOk(await R.runAsync(['gc', '--grace', '0']), 'gc at the server store');
      const r3 = await Promise.all([
        checkoutPaths(R, c0.id, c0.files, ALL, 'server c0 after gc'),
        checkoutPaths(R, 'best', c1.files, ALL, 'server best after gc'),
        expectReleased(R, x1.id, ['model.safetensors'], 'server x1 (pruned by the record it received)'),
      ]);
      expect(r3.flat()).toEqual([]);
      const vr = await R.verify(true);
      expect(vr.r.code, describeRun(vr.r)).toBe(0);
    },
    T,
  );

  it(
    "(c) pull of a bundle that carries commits the receiver has, with their records: the receiver's copies stay unpruned (checkout works, after gc --grace 0 too)",
    async () => {
      const R = copyOf(B, 'ckvc-hp-c-');
      const p = await R.runAsync(['pull', xBundle, '--json']);
      // Either outcome is allowed; what matters is the receiver's own history.
      if (p.code !== 0) expectExit(p, 12, 'CKVC_BAD_BUNDLE', 'pull');
      expect(pruneRecords(R).has(c0.id) || pruneRecords(R).has(c1.id)).toBe(false);
      expectOk(await R.runAsync(['gc', '--grace', '0']), 'gc');
      const r = await Promise.all([
        checkoutPaths(R, c0.id, c0.files, ALL, 'c0 after gc'),
        checkoutPaths(R, c1.id, c1.files, ALL, 'c1 after gc'),
      ]);
      expect(r.flat()).toEqual([]);
      for (const d of [...c0.tensorData, ...c1.tensorData]) expect(holds(R, chunkId(d))).toBe(true);
      if (p.code === 0) {
        // x1 arrived with its record (it was new here): pruned, though its tree is c0's, which stays whole.
        expect([...pruneRecords(R).keys()]).toEqual([x1.id]);
        const r2 = await Promise.all([
          checkoutPaths(R, c2.id, c2.files, ALL, 'c2'),
          checkoutPaths(R, x2.id, x2.files, ALL, 'x2'),
          expectReleased(R, x1.id, ['model.safetensors'], 'x1'),
        ]);
        expect(r2.flat()).toEqual([]);
      }
      const vr = await R.verify(true);
      expect(vr.r.code, describeRun(vr.r)).toBe(0);
    },
    T,
  );

  it(
    '(d) fetch from a lying server (a proxy appends a record for the local tagged tip to /v1/objects): exit 12 CKVC_BAD_BUNDLE, the local store unchanged',
    async () => {
      const server = await startServer(X, []);
      const proxy = await startProxy(server.url, (p, body) => {
        if (p !== '/v1/objects') return undefined;
        const b = parseBundle(body);
        return buildBundle(
          { ...b.header, pruned: [...b.header.pruned, { commit: c1.id, time: Date.now(), tensors: null }] },
          b.pack,
        );
      });
      const L = copyOf(B, 'ckvc-hp-d-');
      setRemotes(L, { liar: proxy.url });
      const before = snapshotStoreExceptTmp(L.store);
      const f = await L.runAsync(['fetch', 'liar'], { env: { CKVC_TOKEN: undefined } });
      expect(proxy.hits.get('/v1/objects') ?? 0).toBeGreaterThan(0);
      expectExit(f, 12, 'CKVC_BAD_BUNDLE', 'fetch');
      expect(diffSnapshots(before, snapshotStoreExceptTmp(L.store))).toEqual([]);
      expect(L.ref('refs/remotes/liar/main')).toBeUndefined();
      await expectCheckout(L, 'best', c1.files, 'best after the refused fetch');
    },
    T,
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("prune keeps tagged commits unless --include-tagged; gc keeps a named commit's bytes; unprune until gc", () => {
  it(
    '(e) the whole story on one store',
    async () => {
      work ||= tempDir('ckvc-hp-work-');
      const E = newStore('ckvc-hp-e-');
      const e0 = await commit(E, 'e0', 10);
      const e1 = await commit(E, 'e1', 11);
      const e2 = await commit(E, 'e2', 12);
      const e3 = await commit(E, 'e3', 13);
      expectOk(await E.runAsync(['tag', 'best', e1.id]), 'tag best');

      // Plain prune: e1 is kept, and says why (human output and --json).
      const h = await E.runAsync(['prune', '--keep-last', '1']);
      expect(h.code, describeRun(h)).toBe(0);
      const keptLine = h.stdout.split('\n').find((l) => l.includes(e1.id.slice(0, 12)));
      expect(keptLine, h.stdout).toMatch(/^keep\b.*\btag best\b/);
      const pj = await E.jsonAsync<{ kept: { id: string; reasons: string[] }[]; pruned: { id: string }[] }>([
        'prune',
        '--keep-last',
        '1',
      ]);
      expect(pj.kept.find((k) => k.id === e1.id)?.reasons).toContain('tag best');
      expect(pj.pruned.map((p) => p.id).sort()).toEqual([e0.id, e2.id].sort());
      expect([...pruneRecords(E).keys()].sort()).toEqual([e0.id, e2.id].sort());

      // --include-tagged prunes it and names the tag (listing and --json).
      const dry = await E.runAsync(['prune', '--keep-last', '1', '--include-tagged', '--dry-run']);
      expect(dry.code, describeRun(dry)).toBe(0);
      expect(
        dry.stdout.split('\n').find((l) => l.includes(e1.id.slice(0, 12))),
        dry.stdout,
      ).toMatch(/would prune.*\bbest\b/);
      const it1 = await E.jsonAsync<{ pruned: { id: string; names?: string[] }[] }>([
        'prune',
        '--keep-last',
        '1',
        '--include-tagged',
      ]);
      expect(it1.pruned.find((p) => p.id === e1.id)?.names).toEqual(['tag best']);
      expectExit(
        await E.runAsync(['checkout', 'best', '--to', tempDir('ckvc-hp-co-')]),
        19,
        'CKVC_PRUNED',
        'checkout best (pruned)',
      );

      // unprune best restores it.
      const u1 = await E.jsonAsync<{ restored: { id: string }[] }>(['unprune', 'best']);
      expect(u1.restored.map((r) => r.id)).toEqual([e1.id]);
      await expectCheckout(E, 'best', e1.files, 'best after unprune');

      // Pruned again, then gc: the untagged e0's data goes, the tagged e1's bytes stay (but it is still pruned).
      expect(
        (await E.jsonAsync<{ pruned: { id: string }[] }>(['prune', '--keep-last', '1', '--include-tagged'])).pruned.map(
          (p) => p.id,
        ),
      ).toContain(e1.id);
      const g = await E.jsonAsync<{ bytesFreed: number }>(['gc', '--grace', '0']);
      expect(g.bytesFreed).toBeGreaterThan(0);
      for (const d of e0.tensorData) expect(holds(E, chunkId(d)), 'e0 data after gc').toBe(false);
      for (const d of e1.tensorData) expect(holds(E, chunkId(d)), 'tagged e1 data after gc').toBe(true);
      expectExit(
        await E.runAsync(['checkout', 'best', '--to', tempDir('ckvc-hp-co-')]),
        19,
        'CKVC_PRUNED',
        'checkout best (pruned, after gc)',
      );

      // unprune of the untagged e0 after gc: 19 CKVC_PRUNED, nothing changed.
      const before = snapshotStoreExceptTmp(E.store);
      expectExit(await E.runAsync(['unprune', e0.id]), 19, 'CKVC_PRUNED', 'unprune e0 after gc');
      expect(diffSnapshots(before, snapshotStoreExceptTmp(E.store))).toEqual([]);
      // Several revisions, one of them gone: nothing is taken back.
      expectExit(await E.runAsync(['unprune', 'best', e0.id]), 19, 'CKVC_PRUNED', 'unprune best e0 after gc');
      expect(diffSnapshots(before, snapshotStoreExceptTmp(E.store))).toEqual([]);

      // unprune of the tagged e1 works even after gc.
      const u2 = await E.jsonAsync<{ restored: { id: string }[] }>(['unprune', 'best']);
      expect(u2.restored.map((r) => r.id)).toEqual([e1.id]);
      await expectCheckout(E, 'best', e1.files, 'best after unprune after gc');
      await expectCheckout(E, e3.id, e3.files, 'tip');
      const vr = await E.verify(true);
      expect(vr.r.code, describeRun(vr.r)).toBe(0);
    },
    T,
  );
});
