// Shallow history (spec/FORMAT.md §17, BUNDLE.md §2 `shallow`, PROTOCOL.md §4 "Shallow pushes"): `pack --depth N`
// and `push --depth N` send the last N commits of each ref; the receiver records where history stops as a graft,
// log and verify say so, gc keeps everything, a later full pull removes the graft, a bundle cannot declare a
// boundary inside history the receiver has, and a shallow store refuses a plain push the remote cannot complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeBundleHeader,
  encodeBundleHeader,
  encodeBundlePreamble,
  type BundleHeader,
} from '../../src/core/store-format/bundle-format.js';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { diffSnapshots, snapshotTree, treeDifferences } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { copyStore, newStore, TestStore } from '../helpers/test-store.js';
import { randomBytes, randomFloat32, safetensorsBytes } from '../helpers/data.js';
import { serve, stopServers } from '../helpers/servers.js';

let S: TestStore;
let work: string;
/** Commits of `main`, oldest first. */
const commits: string[] = [];
let full: string;
let depth1: string;
let depth2: string;
/** What `main` checks out to, for byte-identical comparisons. */
let expected: string;

afterAll(async () => {
  await stopServers();
  cleanupTemp();
});

beforeAll(() => {
  S = newStore('ckvc-shallow-src-');
  work = tempDir('ckvc-shallow-work-');
  const ckpt = path.join(S.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  // Each commit changes one tensor and the optimizer file, so every commit holds data of its own.
  for (let i = 1; i <= 5; i++) {
    const model = {
      embed: { dtype: 'F32', shape: [16384], bytes: randomFloat32(1, 16384) },
      layer: { dtype: 'F32', shape: [16384], bytes: randomFloat32(100 + i, 16384) },
    };
    fs.writeFileSync(path.join(ckpt, 'model.safetensors'), safetensorsBytes(model));
    fs.writeFileSync(path.join(ckpt, 'optim.bin'), randomBytes(200 + i, 50_000));
    commits.push(S.ok(['commit', ckpt, '-b', 'main', '-m', `step ${i}`, '--metric', `loss=${1 / i}`]).stdout.trim());
  }
  full = path.join(work, 'full.ckvb');
  depth1 = path.join(work, 'd1.ckvb');
  depth2 = path.join(work, 'd2.ckvb');
  S.ok(['pack', 'main', '-o', full]);
  S.ok(['pack', 'main', '-o', depth1, '--depth', '1']);
  S.ok(['pack', 'main', '-o', depth2, '--depth', '2']);
  expected = path.join(work, 'expected');
  S.ok(['checkout', 'main', '--to', expected]);
}, 60_000);

/** The bundle with its header changed and its trailer recomputed (a sender that lies on purpose). */
function withHeader(file: string, change: (h: BundleHeader) => BundleHeader): string {
  const b = fs.readFileSync(file);
  const headerLength = b.readUInt32LE(12);
  const header = decodeBundleHeader(b.subarray(16, 16 + headerLength), 'test');
  const pack = b.subarray(16 + headerLength, 16 + headerLength + header.packLength);
  const hb = encodeBundleHeader(change(header));
  const body = Buffer.concat([encodeBundlePreamble(hb.length), hb, pack]);
  const h = new Blake3Hasher();
  h.update(body);
  const out = path.join(work, `edited-${fs.readdirSync(work).length}.ckvb`);
  fs.writeFileSync(out, Buffer.concat([body, h.digestBuffer(), Buffer.from('CKVCBEND', 'latin1')]));
  return out;
}

const grafts = (s: TestStore) =>
  fs.existsSync(path.join(s.store, 'shallow')) ? fs.readdirSync(path.join(s.store, 'shallow')) : [];
const logIds = (s: TestStore, rev: string) => s.json<{ id: string }[]>(['log', rev]).map((c) => c.id);

function expectCheckoutIdentical(s: TestStore, rev: string): void {
  const to = tempDir('ckvc-shallow-out-');
  s.ok(['checkout', rev, '--to', to]);
  expect(treeDifferences(expected, to)).toEqual([]);
}

describe('pack --depth', () => {
  it('writes a smaller bundle that verifies on its own and says where history stops', () => {
    const sizes = [depth1, depth2, full].map((f) => fs.statSync(f).size);
    expect(sizes[0]).toBeLessThan(sizes[1]!);
    expect(sizes[1]).toBeLessThan(sizes[2]!);
    for (const [file, n] of [
      [depth1, 1],
      [depth2, 2],
    ] as const) {
      const r = S.json<{ shallow: string[]; commits: { id: string }[]; prerequisites: string[] }>(['verify', file]);
      const stop = commits[5 - n]!;
      expect(r.shallow).toEqual([stop]);
      expect(r.commits.map((c) => c.id)).toEqual(commits.slice(5 - n).reverse());
      expect(r.prerequisites).toEqual([]);
      expect(S.ok(['verify', file]).stderr).toContain(`history stops at ${stop.slice(0, 12)} (shallow)`);
    }
    expect(S.json<{ shallow: string[] }>(['verify', full]).shallow).toEqual([]);
  });

  it('refuses a depth of 0 or not a number (exit 15), writing nothing', () => {
    for (const bad of ['0', 'two', '-1']) {
      const out = path.join(work, `bad-${bad}.ckvb`);
      const r = S.run(['pack', 'main', '-o', out, `--depth=${bad}`]);
      expect(r.code, describeRun(r)).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
      expect(fs.existsSync(out)).toBe(false);
    }
  });
});

describe('a store filled from a shallow bundle', () => {
  let T: TestStore;
  beforeAll(() => {
    T = newStore('ckvc-shallow-dst-');
    T.ok(['pull', depth2]);
  });

  it('checks out byte-identical, logs down to the boundary and verifies clean', () => {
    expectCheckoutIdentical(T, 'bundle/main');
    expect(grafts(T)).toEqual([commits[3]]);
    const log = T.json<{ id: string; shallow?: { parents: string[] } }[]>(['log', 'bundle/main']);
    expect(log.map((c) => c.id)).toEqual([commits[4], commits[3]]);
    expect(log[1]!.shallow).toEqual({ parents: [commits[2]] });
    expect(log[0]!.shallow).toBeUndefined();
    expect(T.ok(['log', 'bundle/main', '--oneline']).stdout).toMatch(
      new RegExp(`${commits[3]!.slice(0, 12)} .*\\[history stops here \\(shallow\\)\\]`),
    );
    expect(T.ok(['log', 'bundle/main']).stdout).toContain('Shallow: history stops here');
    const v = T.json<{ ok: boolean; problems: unknown[]; shallow: { commit: string; parents: string[] }[] }>([
      'verify',
      '--read-data',
    ]);
    expect(v.problems).toEqual([]);
    expect(v.shallow).toEqual([{ commit: commits[3], parents: [commits[2]] }]);
    expect(T.ok(['verify']).stderr).toContain(`history stops at ${commits[3]!.slice(0, 12)} (shallow)`);
  });

  it('stats, best and revisions stop at the boundary too', () => {
    expect(T.json<{ commits: number }>(['stats']).commits).toBe(2);
    const U = newStore('ckvc-shallow-best-');
    U.ok(['pull', depth2, '--update-refs']);
    expect(U.ok(['best', '--metric', 'loss', '--max', '-b', 'main']).stdout.trim()).toBe(commits[3]);
    // The metric summary a commit on the shallow branch stores holds only while the graft stops the walk
    // (FORMAT.md §8): once the history below it arrives, best sees that history.
    const ckpt = tempDir('ckvc-shallow-best-ckpt-');
    fs.writeFileSync(path.join(ckpt, 'w.bin'), randomBytes(7, 1000));
    U.ok(['commit', ckpt, '-b', 'main', '-m', 'on top', '--metric', 'loss=0.01']);
    expect(U.ok(['best', '--metric', 'loss', '--max', '-b', 'main']).stdout.trim()).toBe(commits[3]);
    U.ok(['pull', full]);
    expect(grafts(U)).toEqual([]);
    expect(
      U.json<{ id: string; candidates: number }>(['best', '--metric', 'loss', '--max', '-b', 'main']),
    ).toMatchObject({ id: commits[0], candidates: 6 });
    const r = T.run(['show', 'bundle/main~2']);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_UNKNOWN_REVISION']);
    expect(r.stderr).toContain(`history stops at commit ${commits[3]!.slice(0, 12)} (shallow)`);
  });

  it('gc frees nothing the shallow history needs', () => {
    T.ok(['gc', '--grace', '0']);
    expect(T.json<{ problems: unknown[] }>(['verify', '--read-data']).problems).toEqual([]);
    expectCheckoutIdentical(T, 'bundle/main');
    T.ok(['checkout', 'bundle/main~1', '--to', tempDir('ckvc-shallow-parent-')]);
  });

  it('a later pull of the full bundle removes the graft', () => {
    T.ok(['pull', full]);
    expect(grafts(T)).toEqual([]);
    expect(logIds(T, 'bundle/main')).toEqual([...commits].reverse());
    const v = T.json<{ problems: unknown[]; shallow: unknown[] }>(['verify', '--read-data']);
    expect(v.problems).toEqual([]);
    expect(v.shallow).toEqual([]);
  });
});

describe('a shallow store fetching from a remote with the full history', () => {
  it('gets the history below the boundary and a branch forked there; the graft goes', () => {
    // The remote: main, plus a branch forked below the boundary the shallow store holds (at commit 2 of 5).
    const R = copyStore(S);
    R.ok(['branch', 'side', commits[1]!]);
    const T = newStore('ckvc-shallow-fetch-');
    T.ok(['pull', depth2]);
    expect(grafts(T)).toEqual([commits[3]]);
    T.ok(['remote', 'add', 'origin', R.store]);
    const r = T.run(['fetch', 'origin']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(logIds(T, 'origin/main')).toEqual([...commits].reverse());
    expect(logIds(T, 'origin/side')).toEqual([commits[1], commits[0]]);
    expect(grafts(T)).toEqual([]);
    expect(T.json<{ problems: unknown[]; shallow: unknown[] }>(['verify', '--read-data'])).toMatchObject({
      problems: [],
      shallow: [],
    });
    expectCheckoutIdentical(T, 'origin/main');
  });
});

describe('a shallow header from a hostile sender', () => {
  let R: TestStore;
  beforeAll(() => {
    R = newStore('ckvc-shallow-hostile-');
    R.ok(['pull', full]);
  });

  const refused = (file: string, target: TestStore) => {
    const before = snapshotTree(target.store);
    const r = target.run(['pull', file]);
    expect(r.code, describeRun(r)).toBe(12);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(diffSnapshots(before, snapshotTree(target.store))).toEqual([]);
    return r;
  };

  it('a boundary at a commit the bundle does not carry (one the receiver has, with its parents) is refused', () => {
    const r = refused(
      withHeader(depth2, (h) => ({ ...h, shallow: [commits[1]!] })),
      R,
    );
    expect(r.stderr).toContain(`declares commit ${commits[1]!.slice(0, 16)} shallow, but it is not a commit in it`);
    expect(grafts(R)).toEqual([]);
  });

  it('a bogus ID, or a commit whose parents all travel, is refused', () => {
    refused(
      withHeader(depth2, (h) => ({ ...h, shallow: ['ab'.repeat(32)] })),
      R,
    );
    const r = refused(
      withHeader(depth2, (h) => ({ ...h, shallow: [commits[4]!] })),
      newStore('ckvc-shallow-empty-'),
    );
    expect(r.stderr).toContain('it cuts no parent');
  });

  it('a shallow bundle pulled where the history is present records no graft and hides nothing', () => {
    R.ok(['pull', depth1]);
    expect(grafts(R)).toEqual([]);
    expect(logIds(R, 'bundle/main')).toEqual([...commits].reverse());
    expect(R.json<{ shallow: unknown[] }>(['verify']).shallow).toEqual([]);
  });
});

describe('push --depth', () => {
  it('to a folder remote: the remote records the graft; a plain push from a shallow store is refused', () => {
    const remote = newStore('ckvc-shallow-remote-');
    const T = newStore('ckvc-shallow-pusher-');
    T.ok(['pull', depth2, '--update-refs']);
    T.ok(['remote', 'add', 'r', remote.store]);
    const before = snapshotTree(remote.store);
    const r = T.run(['push', 'r', 'main']);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_SHALLOW_HISTORY']);
    expect(r.stderr).toContain(`stops at commit ${commits[3]!.slice(0, 12)} (shallow)`);
    expect(diffSnapshots(before, snapshotTree(remote.store))).toEqual([]);

    T.ok(['push', 'r', 'main', '--depth', '1']);
    expect(grafts(remote)).toEqual([commits[4]]);
    expect(logIds(remote, 'main')).toEqual([commits[4]]);
    expect(
      remote.json<{ problems: unknown[]; shallow: { commit: string }[] }>(['verify', '--read-data']),
    ).toMatchObject({ problems: [], shallow: [{ commit: commits[4] }] });
    // A fetch from a shallow remote brings its boundary along.
    const F = newStore('ckvc-shallow-fetcher-');
    F.ok(['remote', 'add', 'r', remote.store]);
    F.ok(['fetch', 'r']);
    expect(grafts(F)).toEqual([commits[4]]);
    expectCheckoutIdentical(F, 'r/main');
    expect(F.json<{ problems: unknown[] }>(['verify', '--read-data']).problems).toEqual([]);
  });

  it('to an S3 remote is refused before anything is contacted (nothing there records a boundary)', () => {
    S.ok(['remote', 'add', 'bucket', 's3://ckvc-nowhere/shallow']);
    const r = S.run(['push', 'bucket', 'main', '--depth', '1']);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(r.stderr).toContain('push --depth is not supported for S3 remotes');
  });

  it('to an HTTP remote: the last two commits arrive, checked out byte-identical', async () => {
    const remote = newStore('ckvc-shallow-http-');
    const tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, 'shallow-token\n');
    const { url } = await serve(new TestStore(remote.dir), ['--token-file', tokenFile]);
    const env = { CKVC_TOKEN: 'shallow-token' };
    S.ok(['remote', 'add', 'web', url]);
    const pushed = S.json<{ commits: number }>(['push', 'web', 'main', '--depth', '2'], { env });
    expect(pushed.commits).toBe(2);
    expect(grafts(remote)).toEqual([commits[3]]);
    expect(logIds(remote, 'main')).toEqual([commits[4], commits[3]]);
    expectCheckoutIdentical(remote, 'main');
    expect(remote.json<{ problems: unknown[] }>(['verify', '--read-data']).problems).toEqual([]);
    // A full push of the older history completes the remote's and ends its graft.
    S.ok(['branch', 'old', commits[2]!]);
    S.ok(['push', 'web', 'old'], { env });
    expect(grafts(remote)).toEqual([]);
    expect(logIds(remote, 'main')).toEqual([...commits].reverse());
  });
});
