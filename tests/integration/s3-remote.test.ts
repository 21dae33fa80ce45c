// S3 remotes (spec/S3.md) against s3rver, a real S3-protocol server on 127.0.0.1 (tests/helpers/s3-server.ts),
// which ignores conditional writes: the probe must find that out and refuse pushes unless --single-writer. Round
// trips are byte-identical, a re-push uploads nothing, a fetch into an empty store works, a corrupted pack object
// is exit 12 with the store unchanged, refused credentials are 21, an unreachable endpoint 22, and an interrupted
// multipart upload resumes without re-sending the parts already acknowledged. The ref race needs a service that
// honours conditional writes: it runs when CKVC_TEST_S3_URL names one (with AWS_* for it) and is skipped otherwise.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStore, snapshotTree } from '../helpers/snapshots.js';
import { writeCheckpoint } from '../helpers/reliability.js';
import { startS3Server, type S3Server } from '../helpers/s3-server.js';

let srv: S3Server;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  srv = await startS3Server(tempDir('ckvc-s3rver-'));
  env = srv.env();
});

afterAll(async () => {
  await srv?.stop();
  cleanupTemp();
});

/** A store with remote `s3` at s3://ckvc-test/PREFIX (--single-writer unless told otherwise). */
function storeWithRemote(prefix: string, singleWriter = true): TestStore {
  const s = newStore('ckvc-s3-');
  s.ok(['remote', 'add', 's3', `s3://${srv.bucket}/${prefix}`, ...(singleWriter ? ['--single-writer'] : [])]);
  return s;
}

function commitCheckpoint(
  s: TestStore,
  seed: number,
  opts: { family?: number; opaqueBytes?: number } = {},
): { id: string; files: Map<string, string>; dir: string } {
  const dir = path.join(s.dir, `ck-${seed}`);
  const files = writeCheckpoint(dir, {
    seed,
    family: opts.family ?? 1,
    tensorBytes: 128 * 1024,
    opaqueBytes: opts.opaqueBytes ?? 64 * 1024,
  });
  return { id: commitId(s, [dir, '-m', `seed ${seed}`]), files, dir };
}

function checkedOut(s: TestStore, rev: string): Map<string, string> {
  const to = tempDir('ckvc-s3-out-');
  s.ok(['checkout', rev, '--to', to]);
  return snapshotTree(to);
}

const remotes = (s: TestStore) =>
  JSON.parse(fs.readFileSync(path.join(s.store, 'remotes.json'), 'utf8')) as Record<string, Record<string, unknown>>;
const ref = (s: TestStore, full: string) => {
  const f = path.join(s.store, ...full.split('/'));
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : undefined;
};
const packUploads = () => srv.requests().filter((l) => /^PUT \S*\/packs\/[0-9a-f]{64}\.bundle/.test(l));

describe('remote add s3://', () => {
  it('stores the canonical URL and --single-writer; refuses bad names, --single-writer elsewhere (15)', () => {
    const s = newStore('ckvc-s3-add-');
    expect(s.json(['remote', 'add', 'a', 's3://my-bucket/some/prefix'])).toEqual({
      name: 'a',
      url: 's3://my-bucket/some/prefix/',
    });
    s.ok(['remote', 'add', 'b', 's3://my-bucket', '--single-writer']);
    expect(remotes(s)).toEqual({
      a: { url: 's3://my-bucket/some/prefix/' },
      b: { url: 's3://my-bucket/', singleWriter: true },
    });
    for (const [url, extra] of [
      ['s3://Bad_Bucket/x', []],
      ['s3://my-bucket/a/../b', []],
      ['s3://my-bucket/a//b', []],
      [s.dir, ['--single-writer']],
    ] as const) {
      const r = s.run(['remote', 'add', 'c', url, ...extra]);
      expect(r.code, describeRun(r)).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    }
  });
});

describe('a service that ignores conditional writes (s3rver)', () => {
  it('is probed once and remembered; a push is refused before any upload (22) unless --single-writer', () => {
    const s = storeWithRemote('probe', false);
    commitCheckpoint(s, 1);
    srv.clearLog();
    const r = s.run(['push', 's3'], { env });
    expect(r.code, describeRun(r)).toBe(22);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_NO_CONDITIONAL_WRITES']);
    expect(r.stderr).toContain("'ckvc remote set s3 --single-writer'");
    expect(remotes(s).s3).toEqual({ url: `s3://${srv.bucket}/probe/`, conditionalWrites: false });
    expect(srv.requests().filter((l) => l.includes('/.ckvc-probe/')).length).toBeGreaterThan(0);
    expect(srv.requests().filter((l) => /^PUT /.test(l) && !l.includes('/.ckvc-probe/'))).toEqual([]);

    srv.clearLog();
    expect(s.run(['push', 's3'], { env }).code).toBe(22);
    expect(srv.requests().filter((l) => l.includes('/.ckvc-probe/'))).toEqual([]);

    // The advice works as given: the remote keeps its name and what was learnt about it.
    s.ok(['remote', 'set', 's3', '--single-writer']);
    expect(s.run(['remote', 'list']).stdout).toContain('(single writer)');
    const p = s.json(['push', 's3'], { env });
    expect(p.objectsSent).toBeGreaterThan(0);
    expect(remotes(s).s3).toEqual({ url: `s3://${srv.bucket}/probe/`, singleWriter: true, conditionalWrites: false });
  });
});

describe('push, fetch and pull through s3rver (--single-writer)', () => {
  let A: TestStore;
  const commits: { id: string; files: Map<string, string> }[] = [];

  beforeAll(() => {
    A = storeWithRemote('team/run');
    commits.push(commitCheckpoint(A, 10));
  });

  it('push uploads packs, their listings, index.json and refs.json; a re-push uploads nothing', () => {
    const r = A.json(['push', 's3'], { env });
    expect(r.refs).toEqual([{ name: 'refs/heads/main', old: null, new: commits[0]!.id, forced: false }]);
    expect(r.objectsSent).toBeGreaterThan(3);
    expect(ref(A, 'refs/remotes/s3/main')).toBe(commits[0]!.id);
    expect(srv.refs('team/run')).toEqual({ 'refs/heads/main': commits[0]!.id });
    srv.clearLog();
    const again = A.json(['push', 's3'], { env });
    expect(again.objectsSent).toBe(0);
    expect(srv.requests().filter((l) => l.startsWith('PUT '))).toEqual([]);
  });

  it('a fetch into an empty store, then pull: byte-identical checkout, verify clean', () => {
    const B = storeWithRemote('team/run');
    const f = B.json(['fetch', 's3'], { env });
    expect(f.refs).toEqual([expect.objectContaining({ name: 'refs/remotes/s3/main', old: null, new: commits[0]!.id })]);
    B.ok(['pull', 's3', 'main'], { env });
    expect(diffSnapshots(commits[0]!.files, checkedOut(B, 'main'))).toEqual([]);
    B.ok(['verify', '--read-data']);
    expect(fs.readdirSync(path.join(B.store, 'tmp'))).toEqual([]);
  });

  it('a new commit where one tensor changed uploads about one tensor; a second fetch receives only that', () => {
    const B = storeWithRemote('team/run');
    B.ok(['pull', 's3', 'main'], { env });
    commits.push(commitCheckpoint(A, 11, { opaqueBytes: 0 }));
    const r = A.json(['push', 's3'], { env });
    expect(r.bytesSent).toBeGreaterThan(60 * 1024);
    expect(r.bytesSent).toBeLessThan(128 * 1024 * 1.5);
    expect(packUploads().length).toBeGreaterThan(0);
    const f = B.json(['fetch', 's3'], { env });
    expect(f.bytesReceived).toBeLessThan(128 * 1024 * 1.5);
    B.ok(['pull', 's3', 'main'], { env });
    expect(diffSnapshots(commits[1]!.files, checkedOut(B, 'main'))).toEqual([]);
    B.ok(['verify', '--read-data']);
  });

  it('a fetch after a prune does not download the data the prune released, unless a new commit needs it', () => {
    const A = storeWithRemote('pruned/run');
    const made = [21, 22, 23].map((seed) => {
      const c = commitCheckpoint(A, seed);
      A.ok(['push', 's3'], { env }); // a pack per commit
      return c;
    });
    const B = storeWithRemote('pruned/run');
    B.ok(['pull', 's3', 'main'], { env });
    B.ok(['prune', '--keep-last', '1']);
    B.ok(['gc', '--grace', '0']);
    const bundleGets = () => srv.requests().filter((l) => /^GET \S*\/packs\/[0-9a-f]{64}\.bundle/.test(l)).length;

    const next = commitCheckpoint(A, 24);
    A.ok(['push', 's3'], { env });
    let gets = bundleGets();
    const f = B.json(['fetch', 's3'], { env });
    expect(bundleGets() - gets).toBe(1); // the new commit's pack alone: not the packs of the released data
    expect(f.bytesReceived).toBeLessThan(1.5 * (128 + 64) * 1024);
    B.ok(['pull', 's3', 'main'], { env });
    expect(diffSnapshots(next.files, checkedOut(B, 'main'))).toEqual([]);
    B.ok(['verify', '--read-data']);

    // The same bytes as the first, released commit: its data comes back, from that commit's pack.
    const again = commitCheckpoint(A, 21);
    A.ok(['push', 's3'], { env });
    gets = bundleGets();
    B.ok(['pull', 's3', 'main'], { env });
    // The new commit's pack, and that commit's pack: its first 64 KiB (which say how large it is), then the whole
    // of it, as it is small (spec/S3.md §3).
    expect(bundleGets() - gets).toBe(3);
    expect(diffSnapshots(made[0]!.files, again.files)).toEqual([]);
    expect(diffSnapshots(again.files, checkedOut(B, 'main'))).toEqual([]);
    B.ok(['verify', '--read-data']);
    const released = B.run(['checkout', made[1]!.id, '--to', tempDir('ckvc-s3-out-')]);
    expect(released.code, describeRun(released)).toBe(19);
  });

  it('a partial store with a prune completes its partial commits from S3 (held-back data a promise covers is fetched)', () => {
    const A = storeWithRemote('pruned/partial');
    commitCheckpoint(A, 31);
    const tip = commitCheckpoint(A, 32); // shares the frozen tensor with the first
    A.ok(['push', 's3'], { env });
    const B = storeWithRemote('pruned/partial');
    B.ok(['fetch', 's3', '--filter', 'tensors:*.head'], { env });
    B.ok(['branch', 'main', 's3/main']);
    B.ok(['prune', '-b', 'main', '--keep-last', '1']);
    const r = B.run(['fetch', 's3', '--no-filter'], { env });
    expect(r.code, describeRun(r)).toBe(0);
    expect(diffSnapshots(tip.files, checkedOut(B, 'main'))).toEqual([]);
    B.ok(['verify', '--read-data']);
  });

  it('a non-fast-forward push is refused (exit 13, no remote ref moves); --force replaces it', () => {
    const C = storeWithRemote('team/run');
    const other = commitCheckpoint(C, 99, { family: 2 });
    const before = srv.refs('team/run');
    const r = C.run(['push', 's3'], { env });
    expect(r.code, describeRun(r)).toBe(13);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_NON_FAST_FORWARD']);
    // Its packs were uploaded (as a server stores a refused push's objects); no ref moved.
    expect(srv.refs('team/run')).toEqual(before);
    expect(C.json(['push', 's3', '--force'], { env }).refs[0]).toMatchObject({ new: other.id, forced: true });
  });
});

describe('failures', () => {
  it('a corrupted pack object fails the fetch with exit 12 and leaves the store exactly as it was', () => {
    const A = storeWithRemote('corrupt');
    commitCheckpoint(A, 20);
    A.ok(['push', 's3'], { env });
    const B = storeWithRemote(srv.damagedCopy('corrupt'));
    const before = snapshotStore(B.store);
    const r = B.run(['fetch', 's3'], { env });
    expect(r.code, describeRun(r)).toBe(12);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(diffSnapshots(before, snapshotStore(B.store))).toEqual([]);
  });

  it('refused credentials are exit 21 (CKVC_UNAUTHORIZED) for fetch and push', () => {
    const s = storeWithRemote('creds');
    commitCheckpoint(s, 30);
    // s3rver checks the access key ID (it does not check SigV4 signatures): an unknown key is its refusal.
    const bad = srv.env({ AWS_ACCESS_KEY_ID: 'NOT-A-KEY' });
    const [before, beforeRemote] = [snapshotStore(s.store), srv.snapshot('creds')];
    for (const cmd of [
      ['fetch', 's3'],
      ['push', 's3'],
    ]) {
      const r = s.run(cmd, { env: bad });
      expect(r.code, describeRun(r)).toBe(21);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_UNAUTHORIZED']);
      expect(r.stderr).toMatch(/SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId/);
    }
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    expect(diffSnapshots(beforeRemote, srv.snapshot('creds'))).toEqual([]);
  });

  it('a pack download that stops mid-object is exit 22 after the stall time, and keeps nothing of it', () => {
    const A = storeWithRemote('stall');
    commitCheckpoint(A, 21);
    A.ok(['push', 's3'], { env });
    const B = storeWithRemote('stall');
    const before = snapshotStore(B.store);
    srv.stallBodiesOf('.bundle');
    try {
      const r = B.run(['fetch', 's3'], { env: { ...env, CKVC_REMOTE_TIMEOUT_MS: '1000' } });
      expect(r.code, describeRun(r)).toBe(22);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_REMOTE']);
      expect(r.stderr).toMatch(/cannot read s3:\/\/.*\.bundle: S3 sent and took nothing for 1000 ms/);
      expect(srv.requests().some((l) => / STALLED/.test(l))).toBe(true);
    } finally {
      srv.stallBodiesOf(undefined);
    }
    expect(diffSnapshots(before, snapshotStore(B.store))).toEqual([]);
  });

  it('a pack object longer than its bundle says, or one that holds other objects than its listing names, is exit 12', async () => {
    const A = storeWithRemote('lies');
    commitCheckpoint(A, 22);
    A.ok(['push', 's3'], { env });
    const { packName } = await import('../../src/remote/s3-catalogue.js');
    const index = JSON.parse(fs.readFileSync(srv.objectFile('lies/index.json'), 'utf8')) as { packs: string[] };
    const [name] = index.packs;
    const bundle = fs.readFileSync(srv.objectFile(`lies/packs/${name}.bundle`));
    const ids = fs
      .readFileSync(srv.objectFile(`lies/packs/${name}.ids`), 'latin1')
      .split('\n')
      .filter(Boolean);
    // (1) The same pack with bytes after its end; (2) a listing with one ID swapped for another, published under
    // the name it hashes to, with the unchanged pack. Each is the one pack of its own prefix.
    const publish = (prefix: string, packIds: string[], packBytes: Buffer) => {
      const { name: n, listing } = packName(packIds);
      const put = (key: string, b: Buffer | string) => {
        const f = srv.objectFile(`${prefix}/${key}`);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, b);
      };
      put(`packs/${n}.bundle`, packBytes);
      put(`packs/${n}.ids`, listing);
      put('index.json', `${JSON.stringify({ version: 1, packs: [n] })}\n`);
      put('refs.json', fs.readFileSync(srv.objectFile('lies/refs.json')));
    };
    publish('lies-long', ids, Buffer.concat([bundle, Buffer.alloc(1000)]));
    // (The ID swapped out is not the commit refs.json names: that would be a different failure, an absent tip.)
    const tips = new Set(Object.values(srv.refs('lies')));
    expect(tips.size).toBe(1);
    const dropped = ids.find((id) => !tips.has(id))!;
    publish('lies-listing', [...ids.filter((id) => id !== dropped), 'ab'.repeat(32)].sort(), bundle);
    for (const prefix of ['lies-long', 'lies-listing']) {
      const B = storeWithRemote(prefix);
      const before = snapshotStore(B.store);
      const r = B.run(['fetch', 's3'], { env });
      expect(r.code, describeRun(r)).toBe(12);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
      expect(r.stderr).toMatch(prefix === 'lies-long' ? /bytes but its header accounts for/ : /its listing names/);
      expect(diffSnapshots(before, snapshotStore(B.store))).toEqual([]);
    }
  });

  it('a catalogue listing more objects than a reader keeps is exit 22 before any pack is read', () => {
    const A = storeWithRemote('big');
    commitCheckpoint(A, 23);
    A.ok(['push', 's3'], { env });
    const B = storeWithRemote('big');
    const before = snapshotStore(B.store);
    srv.clearLog();
    const r = B.run(['fetch', 's3'], { env: { ...env, CKVC_TEST_S3_CATALOGUE_IDS: '2' } });
    expect(r.code, describeRun(r)).toBe(22);
    expect(r.stderr).toMatch(/lists more than 2 objects in its packs/);
    expect(srv.requests().filter((l) => /\.bundle/.test(l))).toEqual([]);
    expect(diffSnapshots(before, snapshotStore(B.store))).toEqual([]);
  });

  it('an unreachable endpoint is exit 22 (CKVC_REMOTE), naming the endpoint', () => {
    const s = storeWithRemote('gone');
    const r = s.run(['fetch', 's3'], { env: srv.env({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }) });
    expect(r.code, describeRun(r)).toBe(22);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toContain('127.0.0.1:9');
  });
});

describe('multipart uploads', () => {
  it('an interrupted upload, run again, sends only the parts not acknowledged; it fetches byte-identical', () => {
    const A = storeWithRemote('multipart');
    const ck = commitCheckpoint(A, 40, { opaqueBytes: 640 * 1024 });
    const small = srv.env({ CKVC_S3_PART_SIZE: String(64 * 1024) });
    srv.failPartsAfter(5);
    srv.clearLog();
    const r = A.run(['push', 's3'], { env: small });
    expect(r.code, describeRun(r)).toBe(22);
    const okParts = () => srv.requests().filter((l) => /^PUT \S*partNumber=\d+\S* 200$/.test(l));
    expect(okParts().length).toBe(5);
    expect(ref(A, 'refs/remotes/s3/main')).toBeUndefined();
    expect(fs.existsSync(srv.objectFile('multipart/refs.json'))).toBe(false);

    srv.failPartsAfter(undefined);
    srv.clearLog();
    A.ok(['push', 's3'], { env: small });
    const resent = okParts();
    const total = Math.ceil(fs.statSync(srv.objectFile(`multipart/packs/${packName(A)}.bundle`)).size / (64 * 1024));
    expect(total).toBeGreaterThan(10);
    expect(resent.length).toBe(total - 5);
    expect(resent.some((l) => /partNumber=[1-5](?!\d)/.test(l))).toBe(false);
    expect(fs.readdirSync(path.join(A.store, 'tmp')).filter((n) => n.startsWith('s3-upload-'))).toEqual([]);

    const B = storeWithRemote('multipart');
    B.ok(['pull', 's3', 'main'], { env });
    expect(diffSnapshots(ck.files, checkedOut(B, 'main'))).toEqual([]);
    B.ok(['verify', '--read-data']);
  });
});

/** The one pack pushed under PREFIX (from index.json as the server stores it). */
function packName(s: TestStore): string {
  const prefix = String(remotes(s).s3!.url).replace(`s3://${srv.bucket}/`, '');
  const index = JSON.parse(fs.readFileSync(srv.objectFile(`${prefix}index.json`), 'utf8')) as { packs: string[] };
  expect(index.packs.length).toBe(1);
  return index.packs[0]!;
}

describe('a service that honours conditional writes (the proxy in its conditional mode)', () => {
  let cond: S3Server;
  beforeAll(async () => {
    cond = await startS3Server(tempDir('ckvc-s3cond-'), { conditional: true });
  });
  afterAll(async () => {
    await cond?.stop();
  });

  it('is probed as honouring them: pushes need no --single-writer, and refs.json is written with If-Match', () => {
    const s = newStore('ckvc-s3-cond-');
    s.ok(['remote', 'add', 's3', `s3://${cond.bucket}/cond`]);
    const ck = commitCheckpoint(s, 60);
    s.ok(['push', 's3'], { env: cond.env() });
    expect(remotes(s).s3).toEqual({ url: `s3://${cond.bucket}/cond/`, conditionalWrites: true });
    expect(cond.requests().filter((l) => l.includes('/.ckvc-probe/') && l.endsWith(' 412'))).toHaveLength(1);
    const refsWrites = () =>
      cond
        .requests()
        .filter((l) => /^PUT \S*\/cond\/refs\.json/.test(l))
        .map((l) => l.split(' ').slice(2).join(' '));
    expect(refsWrites()).toEqual(['200 if-none-match']);
    const next = commitCheckpoint(s, 61);
    cond.clearLog();
    s.ok(['push', 's3'], { env: cond.env() });
    expect(refsWrites()).toEqual(['200 if-match']);
    const B = newStore('ckvc-s3-cond-');
    B.ok(['remote', 'add', 's3', `s3://${cond.bucket}/cond`]);
    B.ok(['pull', 's3', 'main'], { env: cond.env() });
    expect(ref(B, 'refs/heads/main')).toBe(next.id);
    expect(diffSnapshots(next.files, checkedOut(B, 'main'))).toEqual([]);
    expect(ck.id).not.toBe(next.id);
  });

  it('refs.json replaced between the read and the conditional write: exit 13, no ref moved; a re-run lands', () => {
    const s = newStore('ckvc-s3-cas-');
    s.ok(['remote', 'add', 's3', `s3://${cond.bucket}/cas`]);
    const first = commitCheckpoint(s, 70);
    s.ok(['push', 's3'], { env: cond.env() });
    const second = commitCheckpoint(s, 71);
    cond.replaceBeforeWrite('/cas/refs.json');
    const r = s.run(['push', 's3'], { env: cond.env() });
    cond.replaceBeforeWrite(undefined);
    expect(r.code, describeRun(r)).toBe(13);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_REF_CONFLICT']);
    expect(r.stderr).toContain('changed while this push checked them');
    expect(cond.refs('cas')).toEqual({ 'refs/heads/main': first.id });
    expect(ref(s, 'refs/remotes/s3/main')).toBe(first.id);
    expect(s.json(['push', 's3'], { env: cond.env() }).objectsSent).toBe(0);
    expect(cond.refs('cas')).toEqual({ 'refs/heads/main': second.id });
  });

  it('of two pushers racing on one branch, one wins; the loser exits 13, the remote names the winner', async () => {
    await racingPushers(`s3://${cond.bucket}/race`, cond.env());
  });
});

/** Two stores push different histories to the same new branch at once: one lands, the other is refused. */
async function racingPushers(url: string, env: Record<string, string | undefined>): Promise<void> {
  const stores = [0, 1].map((i) => {
    const s = newStore('ckvc-s3-race-');
    s.ok(['remote', 'add', 's3', url]);
    return { s, id: commitCheckpoint(s, 50 + i, { family: 3 + i }).id };
  });
  const results = await Promise.all(stores.map(({ s }) => s.start(['push', 's3', '--json'], { env }).done));
  expect(results.map((r) => r.code).sort(), results.map(describeRun).join('\n')).toEqual([0, 13]);
  const loser = results.find((r) => r.code === 13)!;
  // Refused by the conditional write, or (when the winner had finished before the loser read the refs) as a
  // non-fast-forward: either way told to fetch first.
  expect(['CKVC_REF_CONFLICT', 'CKVC_NON_FAST_FORWARD']).toContain(errorCodes(loser.stderr)[0]);
  expect(loser.stderr).toMatch(/fetch/);
  const winner = stores[results.findIndex((r) => r.code === 0)]!;
  const check = newStore('ckvc-s3-race-check-');
  check.ok(['remote', 'add', 's3', url]);
  check.ok(['fetch', 's3'], { env });
  expect(ref(check, 'refs/remotes/s3/main')).toBe(winner.id);
  for (const { s } of stores) expect(remotes(s).s3!.conditionalWrites).toBe(true);
}

// A real service with conditional writes (AWS S3, MinIO, R2...): CKVC_TEST_S3_URL=s3://BUCKET/PREFIX, with the
// AWS_* variables for it in the environment.
const REAL = process.env.CKVC_TEST_S3_URL;

describe.skipIf(!REAL)('racing pushers on a real service (CKVC_TEST_S3_URL)', () => {
  it('of two pushers racing on one branch, exactly one wins', async () => {
    await racingPushers(`${REAL!.replace(/\/?$/, '/')}race-${Date.now()}-${process.pid}`, {});
  });
});
