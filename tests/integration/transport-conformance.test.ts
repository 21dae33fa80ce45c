// One behaviour for every transport (spec/PROTOCOL.md §4): the same cases, run through the real CLI against a
// folder remote, a `ckvc serve` over HTTP, a real sshd and an S3 service (s3rver behind a proxy that honours
// conditional writes as AWS S3 does). A transport is one entry of TRANSPORTS: how to reach
// a store, and (where it has them) credentials that are refused, an address that cannot be reached, and a way
// to damage the objects it sends. Each transport's own cases stay in its own file (remote.test.ts,
// ssh-remote.test.ts). Stores are shared across a transport's cases, which run in order.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, describeRun } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, hashTree, snapshotStoreExceptTmp } from '../helpers/snapshots.js';
import { optimizerStepFloat32, randomBytes, randomFloat32, safetensorsBytes, trainedFloat32 } from '../helpers/data.js';
import { proxy, relay, serve, stopServers } from '../helpers/servers.js';
import { startS3Server, type S3Server } from '../helpers/s3-server.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

type Env = Record<string, string | undefined>;

/** How a client reaches a store: `remote add NAME url ...addArgs`, and the environment its commands need. */
interface Reach {
  url: string;
  addArgs?: string[];
  env?: Env;
}

interface TransportCase {
  name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  reach(s: TestStore): Promise<Reach>;
  /**
   * Reaches `s` with credentials it refuses (transports without credentials leave this out); `reads` says
   * whether reads need them too (HTTP serves fetches without a token).
   */
  refused?(s: TestStore): Promise<Reach & { reads: boolean }>;
  /** An address where nothing answers (a folder remote has no such thing: its store is there or not). */
  unreachable?(): Promise<Reach>;
  /** A remote that takes the connection and then never answers (a hung server or far side). */
  silent?(): Promise<Reach>;
  /** Reaches `s` through something that damages one object of every bundle `s` sends. */
  damaging(s: TestStore): Promise<Reach>;
  /**
   * Where the remote for store `s` is not that store itself (S3 keeps objects in a bucket): its refs and a
   * snapshot of what it holds. Without these the remote is the store `s`, read directly.
   */
  remoteRef?(s: TestStore, name: string): string | undefined;
  remoteSnapshot?(s: TestStore): Map<string, string>;
}

const REPO_HELPERS = path.resolve(__dirname, '..', 'helpers');

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net
      .createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
  });
}

const silentServers: net.Server[] = [];

/** A TCP server on 127.0.0.1 that reads whatever it is sent and never answers. */
async function silentPort(): Promise<number> {
  const s = net.createServer((c) => c.resume());
  silentServers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as net.AddressInfo).port;
}

/** A copy of `s` with one byte flipped in the middle of each pack: every fetch from it reads damaged data. */
function damagedCopy(s: TestStore): TestStore {
  const copy = emptyCopy('ckvc-conf-damaged-');
  fs.rmSync(copy.store, { recursive: true });
  fs.cpSync(s.store, copy.store, { recursive: true });
  const packs = path.join(copy.store, 'packs');
  for (const f of fs.readdirSync(packs, { recursive: true }) as string[]) {
    const p = path.join(packs, f);
    if (!fs.statSync(p).isFile() || fs.statSync(p).size < 4096) continue;
    const b = fs.readFileSync(p);
    b[b.length >> 1]! ^= 0x10;
    fs.writeFileSync(p, b);
  }
  return copy;
}

const TOKEN = 'conformance-token-0123456789';
let tokenFile: string;
let sshd: Sshd;
let s3: S3Server;
/** An S3 remote stands for store `s` under a prefix named after it. */
const prefixOf = (s: TestStore) => path.basename(s.dir);

const TRANSPORTS: TransportCase[] = [
  {
    name: 'folder',
    reach: async (s) => ({ url: s.dir }),
    damaging: async (s) => ({ url: damagedCopy(s).dir }),
  },
  {
    name: 'HTTP',
    stop: stopServers,
    reach: async (s) => ({ url: (await serve(s, ['--token-file', tokenFile])).url, env: { CKVC_TOKEN: TOKEN } }),
    refused: async (s) => {
      const { url } = await serve(s, ['--token-file', tokenFile]);
      return { url, env: { CKVC_TOKEN: 'wrong-token' }, reads: false };
    },
    unreachable: async () => ({ url: `http://127.0.0.1:${await closedPort()}/` }),
    silent: async () => ({ url: `http://127.0.0.1:${await silentPort()}/` }),
    damaging: async (s) => {
      const upstream = (await serve(s, ['--token-file', tokenFile])).url;
      const url = await proxy(upstream, async (req, _body, res, pass) => {
        const up = await pass();
        if (req.url === '/v1/objects' && up.body.length > 4096) up.body[up.body.length >> 1]! ^= 0x10;
        relay(req, res, up.status, up.body);
      });
      return { url };
    },
  },
  {
    name: 'SSH',
    start: async () => {
      sshd = await startSshd();
    },
    stop: async () => sshd?.stop(),
    reach: async (s) => ({ url: sshd.url(s.store), addArgs: ['--remote-ckvc', sshd.remoteCkvc], env: sshd.env }),
    refused: async (s) => ({
      url: sshd.url(s.store),
      addArgs: ['--remote-ckvc', sshd.remoteCkvc],
      env: sshd.wrongKeyEnv,
      reads: true,
    }),
    unreachable: async () => ({ url: `ssh://127.0.0.1:${await closedPort()}/nowhere`, env: sshd.env }),
    // A real login whose far command reads the requests and never answers.
    silent: async () => ({
      url: sshd.url('/nowhere'),
      addArgs: ['--remote-ckvc', 'exec cat >/dev/null;'],
      env: sshd.env,
    }),
    damaging: async (s) => ({
      url: sshd.url(s.store),
      addArgs: ['--remote-ckvc', `${process.execPath} ${path.join(REPO_HELPERS, 'flip-stdio.mjs')} ${sshd.remoteCkvc}`],
      env: sshd.env,
    }),
  },
  {
    name: 'S3',
    start: async () => {
      s3 = await startS3Server(tempDir('ckvc-conf-s3-'), { conditional: true });
    },
    stop: async () => s3?.stop(),
    reach: async (s) => ({ url: `s3://${s3.bucket}/${prefixOf(s)}`, env: s3.env() }),
    refused: async (s) => ({
      url: `s3://${s3.bucket}/${prefixOf(s)}`,
      env: s3.env({ AWS_ACCESS_KEY_ID: 'NOT-A-KEY' }),
      reads: true,
    }),
    unreachable: async () => ({
      url: `s3://${s3.bucket}/gone`,
      env: s3.env({ AWS_ENDPOINT_URL: `http://127.0.0.1:${await closedPort()}` }),
    }),
    silent: async () => ({
      url: `s3://${s3.bucket}/hung`,
      env: s3.env({ AWS_ENDPOINT_URL: `http://127.0.0.1:${await silentPort()}` }),
    }),
    damaging: async (s) => ({ url: `s3://${s3.bucket}/${s3.damagedCopy(prefixOf(s))}`, env: s3.env() }),
    remoteRef: (s, name) => s3.refs(prefixOf(s))[name],
    remoteSnapshot: (s) => s3.snapshot(prefixOf(s)),
  },
];

// ---------------------------------------------------------------------------------------------------------
// Test data: model.safetensors with four 128 KiB F32 tensors and a 64 KiB opaque file that never changes.

const ROWS = 128;
const COLS = 256;
const TENSOR_BYTES = ROWS * COLS * 4;
const CK_BYTES = 4 * TENSOR_BYTES + 64 * 1024;
/** Elements of each tensor of the delta case: one 256 KiB chunk of F32 (delta-coded from 4 KiB up). */
const STEP_ELEMENTS = 64 * 1024;
let work: string;
let made = 0;
interface Committed {
  id: string;
  files: Map<string, string>;
}

async function commit(s: TestStore, seeds: number[], msg: string, branch = 'main'): Promise<Committed> {
  const dir = path.join(work, `ck-${made++}`);
  fs.mkdirSync(dir);
  const tensor = (seed: number) => ({ dtype: 'F32', shape: [ROWS, COLS], bytes: randomFloat32(seed, ROWS * COLS) });
  const tensors = Object.fromEntries(seeds.map((seed, i) => [`t${i}`, tensor(seed)]));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(4242, 64 * 1024));
  const loss = `loss=${(1 / made).toFixed(4)}`;
  const r = await s.jsonAsync<{ id: string }>(['commit', dir, '-b', branch, '-m', msg, '--metric', loss]);
  return { id: r.id, files: hashTree(dir) };
}

async function addRemote(s: TestStore, name: string, r: Reach): Promise<void> {
  await s.jsonAsync(['remote', 'add', name, r.url, ...(r.addArgs ?? [])]);
}

/** An empty store made once by `ckvc init`; every store here starts as a copy of it (one process fewer each). */
let empty: TestStore;
const emptyCopy = (prefix: string) => copyStore(empty, prefix);
/** A store's files but the index cache and tmp/. */

beforeAll(() => {
  work = tempDir('ckvc-conf-work-');
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  empty = newStore('ckvc-conf-empty-');
});
afterAll(() => {
  for (const s of silentServers) s.close();
  cleanupTemp();
});

describe.each(TRANSPORTS)('$name transport', (tc) => {
  let A: TestStore; // pushes
  let R: TestStore; // the remote
  let C: TestStore; // fetches
  let reach: Reach;
  const commits: Committed[] = [];
  const env = () => reach.env ?? {};
  /** The remote's refs and contents: the store R itself, or what the transport keeps for it. */
  const remoteRef = (s: TestStore, name: string) => (tc.remoteRef ? tc.remoteRef(s, name) : s.ref(name));
  const remoteSnap = (s: TestStore) => (tc.remoteSnapshot ? tc.remoteSnapshot(s) : snapshotStoreExceptTmp(s.store));
  const remoteIsStore = !tc.remoteSnapshot;

  beforeAll(async () => {
    await tc.start?.();
    [A, R, C] = [emptyCopy('ckvc-conf-a-'), emptyCopy('ckvc-conf-r-'), emptyCopy('ckvc-conf-c-')];
    reach = await tc.reach(R);
    await Promise.all([addRemote(A, 'origin', reach), addRemote(C, 'origin', reach)]);
    commits.push(await commit(A, [1, 2, 3, 4], 'c1'));
  });
  afterAll(async () => tc.stop?.());

  it('push then fetch and pull elsewhere: byte-identical checkouts, every store verifies clean', async () => {
    const p = await A.jsonAsync(['push', 'origin', 'main'], { env: env() });
    expect(p.refs).toEqual([{ name: 'refs/heads/main', old: null, new: commits[0]!.id, forced: false }]);
    expect(p.bytesSent).toBeGreaterThan(CK_BYTES / 2);
    expect(remoteRef(R, 'refs/heads/main')).toBe(commits[0]!.id);
    expect(A.ref('refs/remotes/origin/main')).toBe(commits[0]!.id);
    const f = await C.jsonAsync(['pull', 'origin', 'main'], { env: env() });
    expect(f.branch).toMatchObject({ name: 'refs/heads/main', old: null, new: commits[0]!.id });
    expect(await checkoutDiff(C, 'main', commits[0]!.files)).toEqual([]);
    const [vr, vc] = await Promise.all([remoteIsStore ? R.verify(false) : undefined, C.verify(true)]);
    expect([vr?.r.code ?? 0, vc.r.code]).toEqual([0, 0]);
  });

  it('a re-push sends 0 objects and changes nothing on the remote', async () => {
    const before = remoteSnap(R);
    const p = await A.jsonAsync(['push', 'origin', 'main'], { env: env() });
    expect([p.objectsSent, p.bytesSent]).toEqual([0, 0]);
    expect(diffSnapshots(before, remoteSnap(R))).toEqual([]);
  });

  it('a one-tensor change sends about one tensor; the fetch receives about as much', async () => {
    commits.push(await commit(A, [1, 2, 33, 4], 'c2'));
    const p = await A.jsonAsync(['push', 'origin', 'main'], { env: env() });
    expect(p.bytesSent).toBeGreaterThan(TENSOR_BYTES / 2);
    expect(p.bytesSent).toBeLessThan(TENSOR_BYTES * 1.5);
    const f = await C.jsonAsync(['fetch', 'origin'], { env: env() });
    expect(f.bytesReceived).toBeLessThan(TENSOR_BYTES * 1.5);
    expect(C.ref('refs/remotes/origin/main')).toBe(commits[1]!.id);
  });

  it('a non-fast-forward push is refused with 13 and moves nothing; --force replaces the branch', async () => {
    await C.jsonAsync(['pull', 'origin', 'main'], { env: env() });
    const side = await commit(C, [1, 2, 33, 5], 'side');
    commits.push(await commit(A, [1, 2, 33, 6], 'c3'));
    await A.jsonAsync(['push', 'origin', 'main'], { env: env() });
    const r = await C.runAsync(['push', 'origin', 'main'], { env: env() });
    expect(r.code, describeRun(r)).toBe(13);
    expect(codesOf(r)).toEqual(['CKVC_NON_FAST_FORWARD']);
    expect(remoteRef(R, 'refs/heads/main')).toBe(commits[2]!.id);
    const f = await C.jsonAsync(['push', 'origin', 'main', '--force'], { env: env() });
    expect(f.refs).toEqual([expect.objectContaining({ old: commits[2]!.id, new: side.id, forced: true })]);
    expect(remoteRef(R, 'refs/heads/main')).toBe(side.id);
    commits.push(side);
  });

  it('racing pushers of diverged commits: exactly one wins, the other is told to fetch first (13)', async () => {
    await A.jsonAsync(['pull', 'origin', 'main'], { env: env() }).catch(() => undefined);
    const base = remoteRef(R, 'refs/heads/main')!;
    await A.runAsync(['branch', 'race', base]);
    await C.runAsync(['branch', 'race', base]);
    // The remote's race branch starts at base, set the one way every transport has: a push.
    await A.jsonAsync(['push', 'origin', 'race'], { env: env() });
    const mk = async (s: TestStore, seed: number) => commit(s, [1, 2, 33, seed], `race ${seed}`, 'race');
    const [x, y] = await Promise.all([mk(A, 70), mk(C, 80)]);
    const [rx, ry] = await Promise.all([
      A.runAsync(['push', 'origin', 'race'], { env: env() }),
      C.runAsync(['push', 'origin', 'race'], { env: env() }),
    ]);
    expect([rx.code, ry.code].sort(), `${describeRun(rx)}\n${describeRun(ry)}`).toEqual([0, 13]);
    expect(remoteRef(R, 'refs/heads/race')).toBe(rx.code === 0 ? x.id : y.id);
    const lost = rx.code === 0 ? ry : rx;
    expect(['CKVC_REF_CONFLICT', 'CKVC_NON_FAST_FORWARD']).toContain(codesOf(lost)[0]);
    expect(lost.stderr).toMatch(/fetch/);
  });

  it.runIf(Boolean(tc.refused))(
    'refused credentials: a push exits 21 (and a fetch too where reads need them); nothing changes',
    async () => {
      const bad = await tc.refused!(R);
      await addRemote(A, 'bad', bad);
      await commit(A, [9, 9, 9, 9], 'refused', 'refused');
      const [beforeA, beforeR] = [snapshotStoreExceptTmp(A.store), remoteSnap(R)];
      const p = await A.runAsync(['push', 'bad', 'refused'], { env: bad.env });
      expect(p.code, describeRun(p)).toBe(21);
      expect(codesOf(p)).toEqual(['CKVC_UNAUTHORIZED']);
      if (bad.reads) {
        const f = await A.runAsync(['fetch', 'bad'], { env: bad.env });
        expect(f.code, describeRun(f)).toBe(21);
      }
      expect(diffSnapshots(beforeA, snapshotStoreExceptTmp(A.store))).toEqual([]);
      expect(remoteRef(R, 'refs/heads/refused')).toBeUndefined();
      expect(diffSnapshots(beforeR, remoteSnap(R)).filter((d) => !d.includes('packs/'))).toEqual([]);
    },
  );

  it.runIf(Boolean(tc.unreachable))('an address where nothing answers: fetch and push exit 22', async () => {
    const u = await tc.unreachable!();
    await addRemote(A, 'gone', u);
    for (const args of [
      ['fetch', 'gone'],
      ['push', 'gone', 'main'],
    ]) {
      const r = await A.runAsync(args, { env: u.env ?? env() });
      expect(r.code, describeRun(r)).toBe(22);
      expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
    }
  });

  it.runIf(Boolean(tc.silent))(
    'a remote that stops answering: fetch and push exit 22 after CKVC_REMOTE_TIMEOUT_MS, nothing changes',
    async () => {
      const u = await tc.silent!();
      await addRemote(A, 'hung', u);
      const before = snapshotStoreExceptTmp(A.store);
      for (const args of [
        ['fetch', 'hung'],
        ['push', 'hung', 'main'],
      ]) {
        const t0 = Date.now();
        const r = await A.runAsync(args, { env: { ...(u.env ?? env()), CKVC_REMOTE_TIMEOUT_MS: '1000' } });
        expect(r.code, describeRun(r)).toBe(22);
        expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
        expect(r.stderr).toMatch(/sent and took nothing for 1000 ms.*CKVC_REMOTE_TIMEOUT_MS/s);
        // S3 asks three times, with the SDK's back-off in between.
        expect(Date.now() - t0).toBeLessThan(20_000);
      }
      expect(diffSnapshots(before, snapshotStoreExceptTmp(A.store))).toEqual([]);
    },
  );

  it('a damaged object in a reply: fetch exits 12 and the fetching store is unchanged', async () => {
    const F = emptyCopy('ckvc-conf-f-');
    const d = await tc.damaging(R);
    await addRemote(F, 'evil', d);
    const before = snapshotStoreExceptTmp(F.store);
    const r = await F.runAsync(['fetch', 'evil'], { env: d.env ?? env() });
    expect(r.code, describeRun(r)).toBe(12);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(F.store))).toEqual([]);
    expect(F.ref('refs/remotes/evil/main')).toBeUndefined();
  });

  it('config labels and annotated tags travel with push and fetch; a label the fetcher has is kept', async () => {
    const [S, Q, G] = ['src', 'remote', 'get'].map((n) => emptyCopy(`ckvc-conf-label-${n}-`)) as [
      TestStore,
      TestStore,
      TestStore,
    ];
    const q = await tc.reach(Q);
    await Promise.all([addRemote(S, 'q', q), addRemote(G, 'q', q)]);
    const dir = path.join(work, `labels-${made++}`);
    fs.mkdirSync(dir);
    const configs: string[] = [];
    for (const lr of [1, 2]) {
      fs.writeFileSync(path.join(dir, 'w.bin'), randomBytes(lr, 1024));
      fs.writeFileSync(path.join(dir, 'config.yaml'), `lr: ${lr}\n`);
      const args = [path.join(dir, 'w.bin'), '-b', 'main', '-m', `lr ${lr}`, '--config', path.join(dir, 'config.yaml')];
      const c = await S.jsonAsync<{ configHash: string }>(['commit', ...args]);
      configs.push(c.configHash);
      await S.jsonAsync(['config', 'label', c.configHash, `lr ${lr} from S`]);
    }
    await Promise.all([
      S.jsonAsync(['tag', 'v1', 'main', '-m', 'release one']),
      G.jsonAsync(['config', 'label', configs[0]!, 'from G']),
    ]);
    await S.jsonAsync(['push', 'q', 'main', 'v1'], { env: q.env ?? {} });
    const f = await G.jsonAsync(['fetch', 'q'], { env: q.env ?? {} });
    const message = expect.stringContaining('"lr 1 from S"');
    const warned = { config: configs[0], code: 'CKVC_WOULD_OVERWRITE', message };
    expect(f.warnings).toEqual([warned]);
    const [kept, taken, tag] = await Promise.all([
      G.jsonAsync(['config', 'show', 'q/main~1']),
      G.jsonAsync(['config', 'show', 'q/main']),
      G.jsonAsync(['show', 'v1']),
    ]);
    expect([kept.label, taken.label]).toEqual(['from G', 'lr 2 from S']);
    expect(tag.tags).toEqual([expect.objectContaining({ name: 'v1', message: 'release one' })]);
  });

  it("prune records travel with push and fetch; the remote's aliases are not fetched", async () => {
    const S = emptyCopy('ckvc-conf-prune-src-');
    const Q = emptyCopy('ckvc-conf-prune-remote-');
    const G = emptyCopy('ckvc-conf-prune-get-');
    const q = await tc.reach(Q);
    await Promise.all([addRemote(S, 'q', q), addRemote(G, 'q', q)]);
    const old = await commit(S, [41, 42, 43, 44], 'old');
    await commit(S, [41, 42, 43, 45], 'kept');
    await S.jsonAsync(['prune', '-b', 'main', '--keep-last', '1']);
    await S.jsonAsync(['push', 'q', 'main'], { env: q.env ?? {} });
    // Where the remote is a store, it has an alias that must not come along (an S3 remote holds none).
    if (remoteIsStore) await Q.jsonAsync(['alias', 'best', '--track', 'loss', '--min', '-b', 'main']);
    const f = await G.jsonAsync(['fetch', 'q'], { env: q.env ?? {} });
    expect(f.refs.map((u: { name: string }) => u.name)).toEqual(['refs/remotes/q/main']);
    expect(f.warnings).toEqual([]);
    expect(G.refFiles()).toEqual(['refs/remotes/q/main']); // no refs/aliases/best
    expect((await G.verify(true)).r.code).toBe(0);
    const r = await G.runAsync(['checkout', old.id, '--to', tempDir('ckvc-conf-released-')]);
    expect(r.code, describeRun(r)).toBe(19);
    expect(codesOf(r)).toEqual(['CKVC_PRUNED']);
  });

  it('an optimizer step pushed and fetched after its parent travels as a delta (thin; an S3 pack stands alone)', async () => {
    const S = emptyCopy('ckvc-conf-thin-src-');
    const Q = emptyCopy('ckvc-conf-thin-remote-');
    const G = emptyCopy('ckvc-conf-thin-get-');
    const q = await tc.reach(Q);
    await Promise.all([addRemote(S, 'q', q), addRemote(G, 'q', q)]);
    const dir = path.join(work, `thin-${made++}`);
    fs.mkdirSync(dir);
    const file = path.join(dir, 'model.safetensors');
    let weights = [1, 2, 3].map((seed) => trainedFloat32(seed, STEP_ELEMENTS));
    const sent: number[] = [];
    const received: number[] = [];
    const written: Buffer[] = [];
    for (let k = 0; k < 2; k++) {
      if (k > 0) weights = weights.map((w, i) => optimizerStepFloat32(w, 10 + i));
      const bytes = safetensorsBytes(
        Object.fromEntries(weights.map((w, i) => [`w${i}`, { dtype: 'F32', shape: [STEP_ELEMENTS], bytes: w }])),
      );
      fs.writeFileSync(file, bytes);
      written.push(bytes);
      await S.jsonAsync(['commit', file, '-m', `step ${k}`]);
      sent.push((await S.jsonAsync(['push', 'q', 'main'], { env: q.env ?? {} })).bytesSent);
      received.push((await G.jsonAsync(['fetch', 'q'], { env: q.env ?? {} })).bytesReceived);
    }
    if (remoteIsStore) {
      expect(sent[1]).toBeLessThan(sent[0]! * 0.75);
      expect(received[1]).toBeLessThan(received[0]! * 0.75);
      expect(((await Q.jsonAsync(['stats'])) as { deltas: { chunks: number } }).deltas.chunks).toBe(3);
      expect(((await G.jsonAsync(['stats'])) as { deltas: { chunks: number } }).deltas.chunks).toBe(3);
    } else {
      expect(sent[1]).toBeGreaterThan(sent[0]! * 0.9);
      expect(received[1]).toBeGreaterThan(received[0]! * 0.9);
    }
    const out = tempDir('ckvc-conf-thin-out-');
    await G.jsonAsync(['checkout', 'q/main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(written[1]!)).toBe(true);
    expect((await G.verify(true)).r.code).toBe(0);
  });

  it('repair --from the remote mends a damaged store; a reply damaged on the way is refused (12), the store no worse', async () => {
    const S = emptyCopy('ckvc-conf-repair-src-');
    const Q = emptyCopy('ckvc-conf-repair-remote-');
    const q = await tc.reach(Q);
    await addRemote(S, 'q', q);
    const dir = path.join(work, `repair-${made++}`);
    fs.mkdirSync(dir);
    const file = path.join(dir, 'model.safetensors');
    let weights = [5, 6].map((seed) => trainedFloat32(seed, STEP_ELEMENTS));
    const kept: Committed[] = [];
    for (let k = 0; k < 2; k++) {
      if (k > 0) weights = weights.map((w, i) => optimizerStepFloat32(w, 20 + i));
      const tensors = weights.map((w, i) => [`w${i}`, { dtype: 'F32', shape: [STEP_ELEMENTS], bytes: w }]);
      fs.writeFileSync(file, safetensorsBytes(Object.fromEntries(tensors)));
      const { id } = await S.jsonAsync<{ id: string }>(['commit', file, '-m', `step ${k}`]);
      kept.push({ id, files: hashTree(dir) });
    }
    await S.jsonAsync(['push', 'q', 'main'], { env: q.env ?? {} });
    // Every pack of S damaged in its middle: the first step's chunks, and the deltas on them, no longer read.
    for (const f of fs.readdirSync(path.join(S.store, 'packs'))) {
      const p = path.join(S.store, 'packs', f);
      const b = fs.readFileSync(p);
      if (b.length < 4096) continue;
      b[b.length >> 1]! ^= 0x10;
      fs.writeFileSync(p, b);
    }
    expect((await S.verify(true)).r.code).toBe(12);

    const d = await tc.damaging(Q);
    await addRemote(S, 'evil', d);
    const bad = await S.runAsync(['repair', '--from', 'evil'], { env: d.env ?? {} });
    // A copy damaged at rest (folder, S3) may hold sound copies of what is asked; on the wire, every reply is hit.
    const atRest = tc.name === 'folder' || tc.name === 'S3';
    if (!atRest || bad.code !== 0) {
      expect(bad.code, describeRun(bad)).toBe(12);
      expect(codesOf(bad)).toEqual(['CKVC_NOT_REPAIRED']);
      expect(bad.stderr).toContain(
        "ckvc: warning (CKVC_BAD_BUNDLE): remote 'evil' failed, so it was asked nothing more",
      );
    }

    const r = await S.jsonAsync(['repair', '--from', 'q'], { env: q.env ?? {} });
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    if (bad.code !== 0) expect(r.sources[0].restored).toBeGreaterThan(0);
    for (const c of kept) expect(await checkoutDiff(S, c.id, c.files)).toEqual([]);
    expect((await S.verify(true)).r.code).toBe(0);
  });

  it('fetch REMOTE BRANCH takes that branch alone (no other branch, no tag); a branch the remote lacks fetches nothing', async () => {
    const one = await commit(A, [91, 92, 93, 94], 'only', 'only');
    const other = await commit(A, [95, 96, 97, 98], 'other', 'other');
    await A.runAsync(['tag', 'v-other', other.id]);
    await A.jsonAsync(['push', 'origin', 'only', 'other', 'v-other'], { env: env() });
    const F = emptyCopy('ckvc-conf-fetch-one-');
    await addRemote(F, 'origin', reach);
    const none = await F.runAsync(['fetch', 'origin', 'onyl'], { env: env() });
    expect(none.code, describeRun(none)).toBe(14);
    expect(codesOf(none)).toEqual(['CKVC_UNKNOWN_REVISION']);
    expect(none.stderr).toContain("remote 'origin' has no branch 'onyl'");
    expect(F.refFiles()).toEqual([]);
    const f = await F.jsonAsync(['fetch', 'origin', 'only'], { env: env() });
    expect(f.refs).toEqual([{ name: 'refs/remotes/origin/only', old: null, new: one.id, forced: false }]);
    // About one commit's data: not the other branch's four fresh tensors.
    expect(f.bytesReceived).toBeLessThan(CK_BYTES * 1.5);
    expect(F.refFiles()).toEqual(['refs/remotes/origin/only']);
    expect(await checkoutDiff(F, 'origin/only', one.files)).toEqual([]);
    expect((await F.runAsync(['log', other.id, '-n', '1'])).code).toBe(14);
    // pull REMOTE BRANCH takes that branch alone too.
    const p = await F.jsonAsync(['pull', 'origin', 'other'], { env: env() });
    expect(p.branch).toMatchObject({ name: 'refs/heads/other', new: other.id });
    expect(F.refFiles().sort()).toEqual(['refs/heads/other', 'refs/remotes/origin/only', 'refs/remotes/origin/other']);
  });

  it('push --delete deletes a branch and a tag on the remote; the remote keeps their commits, a local tag stays', async () => {
    const tip = A.ref('refs/heads/main')!;
    await A.runAsync(['branch', 'doomed', tip]);
    await A.runAsync(['tag', 'v-doomed', tip]);
    await A.jsonAsync(['push', 'origin', 'doomed', 'v-doomed'], { env: env() });
    expect([remoteRef(R, 'refs/heads/doomed'), remoteRef(R, 'refs/tags/v-doomed')]).toEqual([tip, tip]);
    expect(A.ref('refs/remotes/origin/doomed')).toBe(tip);
    // Names the remote lacks delete nothing, not even the names it has.
    const before = remoteSnap(R);
    const missing = await A.runAsync(['push', 'origin', 'doomed', 'nosuch', '--delete'], { env: env() });
    expect(missing.code, describeRun(missing)).toBe(14);
    expect(codesOf(missing)).toEqual(['CKVC_UNKNOWN_REVISION']);
    expect(missing.stderr).toContain("remote 'origin' has no branch or tag named 'nosuch'");
    expect(diffSnapshots(before, remoteSnap(R))).toEqual([]);
    const d = await A.jsonAsync(['push', 'origin', 'doomed', 'tags/v-doomed', '--delete'], { env: env() });
    expect(d.deleted).toEqual([
      { name: 'refs/heads/doomed', old: tip },
      { name: 'refs/tags/v-doomed', old: tip },
    ]);
    expect([remoteRef(R, 'refs/heads/doomed'), remoteRef(R, 'refs/tags/v-doomed')]).toEqual([undefined, undefined]);
    expect([A.ref('refs/remotes/origin/doomed'), A.ref('refs/tags/v-doomed')]).toEqual([undefined, tip]);
    // A fetch elsewhere no longer lists it; with --prune its remote-tracking branch goes there too.
    await C.jsonAsync(['fetch', 'origin', '--prune'], { env: env() });
    expect(C.ref('refs/remotes/origin/doomed')).toBeUndefined();
    if (remoteIsStore) {
      // The remote's reflog keeps the deleted branch's commit through a gc, as a local deletion's does.
      const log = await R.jsonAsync<{ message: string; new: string | null }[]>(['reflog', 'doomed']);
      expect(log.map((e) => e.message)).toContain('push --delete');
      await R.jsonAsync(['gc', '--grace', '0']);
      expect((await R.runAsync(['log', tip, '-n', '1'])).code).toBe(0);
      // The branch the remote's HEAD is on stays: refused, nothing changed.
      const head = (await R.jsonAsync<{ head: { branch: string } }>(['status'])).head.branch;
      expect(head).toBe('main');
      if (!remoteRef(R, 'refs/heads/main')) await A.jsonAsync(['push', 'origin', 'main'], { env: env() }); // run alone
      const snap = remoteSnap(R);
      const r = await A.runAsync(['push', 'origin', head, '--delete'], { env: env() });
      expect(r.code, describeRun(r)).toBe(15);
      expect(codesOf(r)).toEqual(['CKVC_BAD_ARGUMENT']);
      expect(r.stderr).toContain("its store's HEAD is on it");
      expect(diffSnapshots(snap, remoteSnap(R))).toEqual([]);
    }
  });
});
