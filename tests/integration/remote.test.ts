// Remotes (spec/PROTOCOL.md): push, fetch and pull REMOTE BRANCH to another store on the filesystem and over
// HTTP (`ckvc serve`). Only what the other side lacks travels (a re-push sends nothing, a one-tensor change
// sends about one tensor); every store checks out byte-identical and verifies clean; writes need the token and
// a read-only server refuses them; an unreachable server is exit 22; racing pushers never both win; a push
// killed mid-transfer never leaves the remote's branch pointing at an incomplete commit, and a re-run completes.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, codesOf, describeRun, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, hashTree, snapshotStoreExceptTmp, snapshotTree } from '../helpers/snapshots.js';
import { pool, sleep } from '../helpers/async-tasks.js';
import { MiB } from '../helpers/reliability.js';
import { randomBytes, randomFloat32, safetensorsBytes } from '../helpers/data.js';

// ---------------------------------------------------------------------------------------------------------
// Servers started here are killed at the end whatever happens.

interface Server {
  url: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  /** SIGKILL and wait for the process to be gone. */
  kill: () => Promise<void>;
}

const servers: ChildProcess[] = [];

afterAll(async () => {
  for (const c of servers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  cleanupTemp();
});

async function startServer(s: TestStore, extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...extra, '--store', s.store], {
    cwd: tempDir('ckvc-serve-cwd-'),
    env: cliEnv({ CKVC_TOKEN: undefined }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // The first stdout line is the URL; with --json, stdout starts with the object {"url", "store"}.
  const json = extra.includes('--json');
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ckvc serve printed no URL within 15 s: ${out}\n${err}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      let got: string | undefined;
      if (json) {
        try {
          JSON.parse(out);
          got = out;
        } catch {
          /* not complete yet */
        }
      } else if (out.includes('\n')) got = out.slice(0, out.indexOf('\n')).trim();
      if (got !== undefined) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`ckvc serve exited (${JSON.stringify(e)}) before printing its URL: ${err}`));
    });
  });
  let url = first;
  if (json) {
    const j = JSON.parse(first) as { url: string; store: string };
    expect(j.store).toBe(s.store);
    url = j.url;
  }
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  return {
    url,
    child,
    exited,
    stderr: () => err,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * An HTTP proxy in this process in front of a real `ckvc serve`: `tamper` may replace the reply to a path
 * (a damaged bundle, a reply outside the protocol).
 */
async function startProxy(
  upstream: string,
  tamper: (path: string, body: Buffer) => { status?: number; body: Buffer } | undefined,
): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = http.createServer((req, res) => {
    void (async () => {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/json' };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      const up = await fetch(new URL(req.url!.replace(/^\//, ''), upstream), {
        method: req.method,
        headers,
        body: req.method === 'GET' ? undefined : Buffer.concat(parts),
      });
      const body = Buffer.from(await up.arrayBuffer());
      const t = tamper(new URL(req.url!, 'http://x').pathname, body);
      res.writeHead(t?.status ?? up.status, {
        'content-type': up.headers.get('content-type') ?? 'application/octet-stream',
      });
      res.end(t?.body ?? body);
    })().catch((e) => {
      res.writeHead(599);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Test data: model.safetensors with four 128 KiB F32 tensors, an opaque 64 KiB optimizer file that never
// changes, and a YAML config snapshot.

const ROWS = 128;
const COLS = 256;
const TENSOR_BYTES = ROWS * COLS * 4; // 128 KiB
const NAMES = ['embed', 'layer1', 'layer2', 'head'];
const CK_BYTES = 4 * TENSOR_BYTES + 64 * 1024;

let work: string;
let dirs = 0;

function writeModel(seeds: number[], opts: { opaque?: boolean } = {}): { dir: string; files: Map<string, string> } {
  const dir = path.join(work, `ck-${dirs++}`);
  fs.mkdirSync(dir, { recursive: true });
  const tensors = Object.fromEntries(
    seeds.map((seed, i) => [
      NAMES[i] ?? `t${i}`,
      { dtype: 'F32', shape: [ROWS, COLS], bytes: randomFloat32(seed, ROWS * COLS) },
    ]),
  );
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  if (opts.opaque !== false) fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(4242, 64 * 1024));
  return { dir, files: hashTree(dir) };
}

async function commit(
  s: TestStore,
  seeds: number[],
  msg: string,
  branch = 'main',
  opts: { opaque?: boolean } = {},
): Promise<{ id: string; files: Map<string, string> }> {
  const { dir, files } = writeModel(seeds, opts);
  const cfg = path.join(work, `cfg-${dirs}.yaml`);
  fs.writeFileSync(cfg, `lr: 0.01\nseeds: [${seeds.join(', ')}]\n`);
  const r = await s.jsonAsync<{ id: string }>([
    'commit',
    dir,
    '-b',
    branch,
    '-m',
    msg,
    '--config',
    cfg,
    '--metric',
    `loss=${(1 / (dirs + 1)).toFixed(4)}`,
  ]);
  return { id: r.id, files };
}

const NO_TOKEN = { CKVC_TOKEN: undefined };

/** Refs and reflogs only (a refused push may still have stored the objects it sent, by design). */
function snapRefs(s: TestStore): Map<string, string> {
  return snapshotTree(
    s.store,
    (rel) =>
      !(rel === 'refs' || rel.startsWith('refs/') || rel === 'logs' || rel.startsWith('logs/') || rel === 'HEAD'),
  );
}

function quarantines(s: TestStore): string[] {
  return fs.readdirSync(path.join(s.store, 'tmp')).filter((n) => n.startsWith('quarantine-'));
}

/** Bytes of the packs being received in a store's quarantine folders (0 when none). */
function incomingBytes(s: TestStore): number {
  let n = 0;
  for (const q of quarantines(s)) {
    const walk = (d: string) => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        /* removed meanwhile */
      }
      for (const e of entries) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else n += fs.statSync(p, { throwIfNoEntry: false })?.size ?? 0;
      }
    };
    walk(path.join(s.store, 'tmp', q));
  }
  return n;
}

async function verifyClean(stores: TestStore[], readData = true): Promise<void> {
  const results = await pool(stores, 2, (s) => s.verify(readData));
  results.forEach((v, i) => {
    expect(v.r.code, `verify ${stores[i]!.store}: ${describeRun(v.r)}`).toBe(0);
  });
}

beforeAll(() => {
  work = tempDir('ckvc-remote-work-');
});

// ---------------------------------------------------------------------------------------------------------

describe('folder remote', () => {
  let A: TestStore; // local
  let B: TestStore; // the remote
  let T: TestStore; // a third site
  const commits: { id: string; files: Map<string, string> }[] = [];

  beforeAll(async () => {
    A = newStore('ckvc-remote-a-');
    B = newStore('ckvc-remote-b-');
    T = newStore('ckvc-remote-t-');
    commits.push(await commit(A, [1, 2, 3, 4], 'a1'));
  });

  it('push to an empty store sends everything and sets the branch there and the remote-tracking ref here', async () => {
    const add = await A.jsonAsync(['remote', 'add', 'origin', B.dir]);
    expect(add).toMatchObject({ name: 'origin', url: B.dir });
    const r = await A.jsonAsync(['push', 'origin']);
    expect(r.remote).toBe('origin');
    expect(r.refs).toEqual([{ name: 'refs/heads/main', old: null, new: commits[0]!.id, forced: false }]);
    expect(r.commits).toBe(1);
    expect(r.objectsSent).toBeGreaterThan(5);
    expect(r.bytesSent).toBeGreaterThan(CK_BYTES * 0.5);
    expect(B.ref('refs/heads/main')).toBe(commits[0]!.id);
    expect(A.ref('refs/remotes/origin/main')).toBe(commits[0]!.id);
    const log = await A.jsonAsync<{ id: string }[]>(['log', 'origin/main']);
    expect(log.map((c) => c.id)).toEqual([commits[0]!.id]);
    expect(quarantines(B)).toEqual([]);
  });

  it('pushing again sends nothing (objectsSent 0)', async () => {
    const before = snapshotStoreExceptTmp(B.store);
    const r = await A.jsonAsync(['push', 'origin', 'main']);
    expect(r.objectsSent).toBe(0);
    expect(r.bytesSent).toBe(0);
    expect(r.commits).toBe(0);
    expect(r.refs).toEqual([
      expect.objectContaining({
        name: 'refs/heads/main',
        old: commits[0]!.id,
        new: commits[0]!.id,
        skipped: 'unchanged',
      }),
    ]);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(B.store))).toEqual([]);
  });

  it("a new commit where one tensor changed sends about one tensor's worth", async () => {
    commits.push(await commit(A, [1, 2, 33, 4], 'a2'));
    const r = await A.jsonAsync(['push', 'origin']);
    expect(r.refs).toEqual([{ name: 'refs/heads/main', old: commits[0]!.id, new: commits[1]!.id, forced: false }]);
    expect(r.commits).toBe(1);
    expect(r.bytesSent).toBeLessThan(CK_BYTES / 3);
    expect(r.bytesSent).toBeGreaterThan(TENSOR_BYTES / 2);
    expect(r.bytesSent).toBeLessThan(TENSOR_BYTES * 1.5);
    expect(B.ref('refs/heads/main')).toBe(commits[1]!.id);
  });

  it('fetch into a third store lands origin/BRANCH; pull REMOTE BRANCH sets the branch; checkouts byte-identical, verify clean everywhere', async () => {
    await T.jsonAsync(['remote', 'add', 'origin', B.store]);
    const f = await T.jsonAsync(['fetch', 'origin'], { env: NO_TOKEN });
    expect(f.refs).toEqual([
      expect.objectContaining({ name: 'refs/remotes/origin/main', old: null, new: commits[1]!.id }),
    ]);
    expect(f.objectsReceived).toBeGreaterThan(5);
    expect(T.ref('refs/remotes/origin/main')).toBe(commits[1]!.id);
    expect(T.ref('refs/heads/main')).toBeUndefined();
    const log = await T.jsonAsync<{ id: string }[]>(['log', 'origin/main']);
    expect(log.map((c) => c.id)).toEqual([commits[1]!.id, commits[0]!.id]);

    const p = await T.jsonAsync(['pull', 'origin', 'main'], { cwd: tempDir('ckvc-empty-') });
    expect(p.branch).toMatchObject({ name: 'refs/heads/main', old: null, new: commits[1]!.id });
    expect(p.objectsReceived).toBe(0); // already fetched
    expect(T.ref('refs/heads/main')).toBe(commits[1]!.id);

    const checks = [B, T].flatMap((s) => commits.map((c) => ({ s, c })));
    expect((await pool(checks, 2, ({ s, c }) => checkoutDiff(s, c.id, c.files))).flat()).toEqual([]);
    await verifyClean([A, B, T]);
  });

  it('diverged histories: pull REMOTE BRANCH and push both refuse with 13 (refs unchanged) until push --force', async () => {
    // Local commits on top of what was pulled (in a copy of T): up to date, nothing moves.
    const X = copyStore(T, 'ckvc-ahead-');
    const ahead = await commit(X, [1, 2, 33, 6], 't2 (ahead)');
    const up = await X.jsonAsync(['pull', 'origin', 'main'], { env: NO_TOKEN, cwd: tempDir('ckvc-empty-') });
    expect(up.branch).toMatchObject({ old: ahead.id, new: commits[1]!.id, skipped: 'behind' });
    expect(X.ref('refs/heads/main')).toBe(ahead.id);
    commits.push(await commit(A, [1, 2, 33, 44], 'a3'));
    await A.jsonAsync(['push', 'origin']);
    const side = await commit(T, [1, 2, 33, 5], 't3 (diverged)');

    const pl = await T.runAsync(['pull', 'origin', 'main'], { cwd: tempDir('ckvc-empty-') });
    expect(pl.code, describeRun(pl)).toBe(13);
    expect(codesOf(pl)).toEqual(['CKVC_NON_FAST_FORWARD']);
    expect(T.ref('refs/heads/main')).toBe(side.id);
    expect(T.ref('refs/remotes/origin/main')).toBe(commits[2]!.id); // the fetch half did its work

    const before = snapRefs(B);
    const ps = await T.runAsync(['push', 'origin', 'main']);
    expect(ps.code, describeRun(ps)).toBe(13);
    expect(codesOf(ps)).toEqual(['CKVC_NON_FAST_FORWARD']);
    expect(diffSnapshots(before, snapRefs(B))).toEqual([]);
    expect(B.ref('refs/heads/main')).toBe(commits[2]!.id);

    const f = await T.jsonAsync(['push', 'origin', 'main', '--force']);
    expect(f.refs).toEqual([
      expect.objectContaining({ name: 'refs/heads/main', old: commits[2]!.id, new: side.id, forced: true }),
    ]);
    expect(B.ref('refs/heads/main')).toBe(side.id);
    expect(await checkoutDiff(B, 'main', side.files)).toEqual([]);
    await verifyClean([B], false);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('HTTP remote (ckvc serve)', () => {
  let H: TestStore; // the served store
  let server: Server; // with --token-file
  let ro: Server; // --read-only (and the token file)
  let noTok: Server; // no --token-file at all
  let token: string;
  let tokenFile: string;
  let L: TestStore;
  let T: TestStore;
  const commits: { id: string; files: Map<string, string> }[] = [];
  const WITH_TOKEN = () => ({ CKVC_TOKEN: token });
  let refusedRuns: { what: string; r: RunResult }[] = [];
  let termed: { server: Server; sentAt: number };

  beforeAll(async () => {
    H = newStore('ckvc-remote-h-');
    L = newStore('ckvc-remote-l-');
    T = newStore('ckvc-remote-t2-');
    token = `tok-${randomBytes(Date.now() % 100000, 16).toString('hex')}`;
    tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    let term: Server;
    [server, ro, noTok, term] = await Promise.all([
      startServer(H, ['--token-file', tokenFile]),
      startServer(H, ['--read-only', '--token-file', tokenFile]),
      startServer(H, []),
      startServer(H, ['--token-file', tokenFile]),
      commit(L, [11, 12, 13, 14], 'l1').then((c) => commits.push(c)),
    ]);
    // One server is sent SIGTERM now and checked later (so the wait overlaps the other tests).
    term.child.kill('SIGTERM');
    termed = { server: term, sentAt: Date.now() };
    await L.jsonAsync(['remote', 'add', 'origin', server.url]);
    await L.jsonAsync(['remote', 'add', 'ro', ro.url]);
    await L.jsonAsync(['remote', 'add', 'notoken', noTok.url]);
    await L.jsonAsync(['remote', 'add', 'termed', term.url]);
  });

  it('writes without a valid token, or to a read-only server, are refused with 21 and change nothing on the remote', async () => {
    const before = snapshotStoreExceptTmp(H.store);
    const wrongFile = path.join(work, 'wrong-token');
    fs.writeFileSync(wrongFile, `${token}x\n`);
    const runs: [string, string[], Record<string, string | undefined>][] = [
      ['no token', ['push', 'origin'], NO_TOKEN],
      ['wrong CKVC_TOKEN', ['push', 'origin'], { CKVC_TOKEN: token.slice(0, -1) }],
      ['wrong --token-file', ['push', 'origin', '--token-file', wrongFile], NO_TOKEN],
      ['--read-only server, right token', ['push', 'ro', 'main'], WITH_TOKEN()],
      ['server without --token-file, a token', ['push', 'notoken', 'main'], WITH_TOKEN()],
    ];
    // One after another: each run's time is then its own (the check below tells a prompt exit from one that
    // waits out the server's 5 s keep-alive), not five processes sharing two cores.
    refusedRuns = [];
    for (const [what, args, env] of runs) refusedRuns.push({ what, r: await L.runAsync(args, { env }) });
    for (const { what, r } of refusedRuns) {
      expect(r.code, `${what}: ${describeRun(r)}`).toBe(21);
      expect(codesOf(r), what).toEqual(['CKVC_UNAUTHORIZED']);
    }
    // A wrong token is told apart from none.
    expect(refusedRuns[0]!.r.stderr).toContain("a write needs the server's token");
    for (const i of [1, 2]) expect(refusedRuns[i]!.r.stderr).toContain("the token sent is not the server's");
    expect(diffSnapshots(before, snapshotStoreExceptTmp(H.store))).toEqual([]);
    expect(quarantines(H)).toEqual([]);
    expect(L.ref('refs/remotes/origin/main')).toBeUndefined();
  });

  it("a refused push exits promptly (it does not wait out the server's keep-alive)", () => {
    expect(refusedRuns).toHaveLength(5);
    const slow = refusedRuns.filter((e) => e.r.ms > 4000).map((e) => `${e.what}: ${e.r.ms} ms`);
    expect(slow).toEqual([]);
  });

  it('push with CKVC_TOKEN (or --token-file) succeeds', async () => {
    const r = await L.jsonAsync(['push', 'origin'], { env: WITH_TOKEN() });
    expect(r.refs).toEqual([{ name: 'refs/heads/main', old: null, new: commits[0]!.id, forced: false }]);
    expect(H.ref('refs/heads/main')).toBe(commits[0]!.id);
    expect(L.ref('refs/remotes/origin/main')).toBe(commits[0]!.id);
    commits.push(await commit(L, [11, 12, 13, 15], 'l2'));
    const r2 = await L.jsonAsync(['push', 'origin', 'main', '--token-file', tokenFile], { env: NO_TOKEN });
    expect(r2.refs).toEqual([{ name: 'refs/heads/main', old: commits[0]!.id, new: commits[1]!.id, forced: false }]);
    expect(r2.bytesSent).toBeLessThan(TENSOR_BYTES * 1.5);
    expect(H.ref('refs/heads/main')).toBe(commits[1]!.id);
    expect(quarantines(H)).toEqual([]);
  });

  it('fetch and pull need no token (also from the read-only server); checkouts are byte-identical and both stores verify clean', async () => {
    await T.jsonAsync(['remote', 'add', 'origin', server.url]);
    await T.jsonAsync(['remote', 'add', 'ro', ro.url]);
    const f = await T.jsonAsync(['fetch', 'origin'], { env: NO_TOKEN });
    expect(f.refs).toEqual([expect.objectContaining({ name: 'refs/remotes/origin/main', new: commits[1]!.id })]);
    const p = await T.jsonAsync(['pull', 'origin', 'main'], { env: NO_TOKEN, cwd: tempDir('ckvc-empty-') });
    expect(p.branch).toMatchObject({ name: 'refs/heads/main', new: commits[1]!.id });
    expect(T.ref('refs/heads/main')).toBe(commits[1]!.id);
    const rf = await T.runAsync(['fetch', 'ro', '--json'], { env: NO_TOKEN });
    expect(rf.code, describeRun(rf)).toBe(0);
    expect(T.ref('refs/remotes/ro/main')).toBe(commits[1]!.id);
    const checks = [{ s: H, c: commits[1]! }, ...commits.map((c) => ({ s: T, c }))];
    expect((await pool(checks, 2, ({ s, c }) => checkoutDiff(s, c.id, c.files))).flat()).toEqual([]);
    await verifyClean([H, T]);
  });

  it('fetch trusts nothing: damaged objects from the server are refused with 12 (store unchanged); a reply outside the protocol is 22', async () => {
    const flip = await startProxy(server.url, (p, b) => {
      if (p !== '/v1/objects') return undefined;
      const c = Buffer.from(b);
      c[Math.floor(c.length / 2)]! ^= 0x04;
      return { body: c };
    });
    const junk = await startProxy(server.url, (p) =>
      p === '/v1/refs' ? { status: 200, body: Buffer.from('<html>not the protocol</html>') } : undefined,
    );
    try {
      const F = newStore('ckvc-remote-f-');
      await F.jsonAsync(['remote', 'add', 'evil', flip.url]);
      await F.jsonAsync(['remote', 'add', 'junk', junk.url]);
      const before = snapshotStoreExceptTmp(F.store);
      const [a, b] = await Promise.all([
        F.runAsync(['fetch', 'evil'], { env: NO_TOKEN }),
        F.runAsync(['fetch', 'junk'], { env: NO_TOKEN }),
      ]);
      expect(a.code, describeRun(a)).toBe(12);
      expect(codesOf(a)).toEqual(['CKVC_BAD_BUNDLE']);
      expect(b.code, describeRun(b)).toBe(22);
      expect(codesOf(b)).toEqual(['CKVC_REMOTE']);
      expect(diffSnapshots(before, snapshotStoreExceptTmp(F.store))).toEqual([]);
      expect(quarantines(F)).toEqual([]);
      expect(F.ref('refs/remotes/evil/main')).toBeUndefined();
    } finally {
      await Promise.all([flip.close(), junk.close()]);
    }
  });

  it('two pushers racing to one branch from diverged histories: exactly one wins, the other gets 13 (fetch first); --force then wins', async () => {
    // X (= T, at l2) and Y (a fresh clone at l2) each commit something else on main.
    const Y = newStore('ckvc-remote-y-');
    await Y.jsonAsync(['remote', 'add', 'origin', server.url]);
    await Y.jsonAsync(['pull', 'origin', 'main'], { env: NO_TOKEN, cwd: tempDir('ckvc-empty-') });
    expect(Y.ref('refs/heads/main')).toBe(commits[1]!.id);
    const [x, y] = await Promise.all([commit(T, [11, 12, 13, 70], 'x'), commit(Y, [11, 12, 13, 80], 'y')]);
    const [rx, ry] = await Promise.all([
      T.runAsync(['push', 'origin', 'main', '--json'], { env: WITH_TOKEN() }),
      Y.runAsync(['push', 'origin', 'main', '--json'], { env: WITH_TOKEN() }),
    ]);
    const results = [
      { who: T, c: x, r: rx },
      { who: Y, c: y, r: ry },
    ];
    expect(results.map((e) => e.r.code).sort(), `${describeRun(rx)}\n${describeRun(ry)}`).toEqual([0, 13]);
    const winner = results.find((e) => e.r.code === 0)!;
    const loser = results.find((e) => e.r.code !== 0)!;
    expect(H.ref('refs/heads/main')).toBe(winner.c.id);
    const lc = codesOf(loser.r);
    expect(lc).toHaveLength(1);
    expect(['CKVC_REF_CONFLICT', 'CKVC_NON_FAST_FORWARD']).toContain(lc[0]);
    expect(loser.r.stderr).toMatch(/fetch/i);
    expect(loser.who.ref('refs/remotes/origin/main')).toBe(commits[1]!.id); // not moved by the refused push

    const f = await loser.who.jsonAsync(['push', 'origin', 'main', '--force'], { env: WITH_TOKEN() });
    expect(f.refs).toEqual([
      expect.objectContaining({ name: 'refs/heads/main', old: winner.c.id, new: loser.c.id, forced: true }),
    ]);
    expect(H.ref('refs/heads/main')).toBe(loser.c.id);
    expect(await checkoutDiff(H, 'main', loser.c.files)).toEqual([]);
    await verifyClean([H], false);
  });

  it('a stopped server: fetch and push fail with 22', async () => {
    const s = await startServer(H, ['--token-file', tokenFile, '--json']);
    await L.jsonAsync(['remote', 'add', 'gone', s.url]);
    await s.kill();
    const [f, p] = await Promise.all([
      L.runAsync(['fetch', 'gone'], { env: NO_TOKEN }),
      L.runAsync(['push', 'gone', 'main'], { env: WITH_TOKEN() }),
    ]);
    for (const r of [f, p]) {
      expect(r.code, describeRun(r)).toBe(22);
      expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
    }
  });

  it('ckvc serve stops on SIGTERM (it says "Ctrl-C stops") and then refuses connections', async () => {
    // SIGTERM was sent in beforeAll; allow it 3 s in all.
    const left = Math.max(0, 3000 - (Date.now() - termed.sentAt));
    const e = await Promise.race([termed.server.exited, sleep(left).then(() => 'still running' as const)]);
    expect(e, `ckvc serve ignored SIGTERM for 3 s; its stderr:\n${termed.server.stderr()}`).not.toBe('still running');
    const f = await L.runAsync(['fetch', 'termed'], { env: NO_TOKEN });
    expect(f.code, describeRun(f)).toBe(22);
    expect(codesOf(f)).toEqual(['CKVC_REMOTE']);
  });

  it('remote list shows the remotes; remove drops one (then it is unknown: 14); adding a name twice is 13', async () => {
    const list = await L.jsonAsync<{ name: string; url: string }[]>(['remote', 'list']);
    expect(list.map((r) => r.name).sort()).toEqual(['gone', 'notoken', 'origin', 'ro', 'termed']);
    expect(list.find((r) => r.name === 'ro')!.url).toBe(ro.url);
    expect(list.find((r) => r.name === 'origin')!.url).toBe(server.url);
    const dup = await L.runAsync(['remote', 'add', 'origin', server.url]);
    expect(dup.code, describeRun(dup)).toBe(13);
    expect(codesOf(dup)).toEqual(['CKVC_REF_CONFLICT']);
    const rm = await L.jsonAsync(['remote', 'remove', 'gone']);
    expect(rm).toMatchObject({ name: 'gone' });
    const after = await L.jsonAsync<{ name: string }[]>(['remote', 'list']);
    expect(after.map((r) => r.name)).not.toContain('gone');
    expect(after.map((r) => r.name)).toContain('origin');
    const [p, again] = await Promise.all([
      L.runAsync(['push', 'gone', 'main'], { env: WITH_TOKEN() }),
      L.runAsync(['remote', 'remove', 'gone']),
    ]);
    for (const r of [p, again]) {
      expect(r.code, describeRun(r)).toBe(14);
      expect(codesOf(r)).toEqual(['CKVC_UNKNOWN_REMOTE']);
    }
  });

  it('bytes on the wire: 4 checkpoints with half the tensors frozen, then a re-push of the unchanged branch', async () => {
    const Q = newStore('ckvc-remote-q-');
    await Q.jsonAsync(['remote', 'add', 'origin', server.url]);
    for (let i = 0; i < 4; i++)
      await commit(Q, [501, 502, 600 + i, 700 + i], `series ${i}`, 'series', { opaque: false });
    const logical = 4 * 4 * TENSOR_BYTES;
    const first = await Q.jsonAsync(['push', 'origin', 'series'], { env: WITH_TOKEN() });
    const again = await Q.jsonAsync(['push', 'origin', 'series'], { env: WITH_TOKEN() });
    console.log(
      `push bytes sent: first push of 4 checkpoints (half of the tensors frozen; ${logical} logical tensor bytes) ${first.bytesSent} bytes, ${first.objectsSent} objects; re-push of the unchanged branch ${again.bytesSent} bytes, ${again.objectsSent} objects`,
    );
    expect(first.commits).toBe(4);
    // Unique tensor data: 2 frozen + 4 x 2 changing = 10 of the 16 tensors.
    expect(first.bytesSent).toBeLessThan(logical * 0.75);
    expect(first.bytesSent).toBeGreaterThan(10 * TENSOR_BYTES * 0.5);
    expect(again.objectsSent).toBe(0);
    expect(again.bytesSent).toBe(0);
    expect(H.ref('refs/heads/series')).toBe(Q.ref('refs/heads/series'));
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('interrupted push over HTTP', () => {
  it('a push killed mid-transfer leaves the remote branch at its old value; re-run, it completes byte-identical', async () => {
    const I = newStore('ckvc-remote-i-');
    const K = newStore('ckvc-remote-k-');
    const token = 'interrupt-token';
    const tokenFile = path.join(work, 'token-i');
    fs.writeFileSync(tokenFile, token);
    const server = await startServer(I, ['--token-file', tokenFile]);
    try {
      await K.jsonAsync(['remote', 'add', 'origin', server.url]);
      const k0 = await commit(K, [1, 2, 3, 4], 'k0');
      await K.jsonAsync(['push', 'origin'], { env: { CKVC_TOKEN: token } });
      expect(I.ref('refs/heads/main')).toBe(k0.id);

      // ~48 MiB of incompressible data in several files: 5 opaque files and a safetensors file of 2 U8 tensors.
      const big = path.join(work, 'big');
      fs.mkdirSync(path.join(big, 'shards'), { recursive: true });
      for (let i = 0; i < 5; i++)
        fs.writeFileSync(path.join(big, 'shards', `part-${i}.bin`), randomBytes(9000 + i, 8 * MiB));
      fs.writeFileSync(
        path.join(big, 'model.safetensors'),
        safetensorsBytes({
          a: { dtype: 'U8', shape: [4 * MiB], bytes: randomBytes(9100, 4 * MiB) },
          b: { dtype: 'U8', shape: [4 * MiB], bytes: randomBytes(9101, 4 * MiB) },
        }),
      );
      const files = hashTree(big);
      const k1 = (await K.jsonAsync<{ id: string }>(['commit', big, '-m', 'k1 (48 MiB)'])).id;

      // The client first builds the bundle locally, then uploads it; kill it once the upload is under way (the
      // server's quarantine holds part of the pack), or after 20 s at the latest.
      const t0 = Date.now();
      const child = K.start(['push', 'origin', '--json'], { env: { CKVC_TOKEN: token } });
      let uploaded = 0;
      let uploadSeenAt = 0;
      while (Date.now() - t0 < 20_000) {
        uploaded = incomingBytes(I);
        if (uploaded > 0 && !uploadSeenAt) uploadSeenAt = Date.now() - t0;
        if (uploaded >= 2 * MiB) break;
        await sleep(5);
      }
      child.kill('SIGKILL');
      const killed = await child.done;
      const killedAt = Date.now() - t0;
      expect(killed.signal, `the push finished before it could be killed: ${describeRun(killed)}`).toBe('SIGKILL');
      const when = `upload reached the server ${uploadSeenAt} ms after the start; killed at ${killedAt} ms with ${uploaded} bytes in the server's quarantine`;
      expect(uploaded, `the upload never reached the server (${when})`).toBeGreaterThan(0);
      // Never pointing at an incomplete commit: the branch is still the old value.
      expect(I.ref('refs/heads/main'), when).toBe(k0.id);
      expect(K.ref('refs/remotes/origin/main'), when).toBe(k0.id);
      // The server notices the broken upload and removes its quarantine.
      const deadline = Date.now() + 10_000;
      while (quarantines(I).length && Date.now() < deadline) await sleep(50);
      expect(quarantines(I), `server stderr:\n${server.stderr()}`).toEqual([]);
      const mid = await I.verify(false);
      expect(mid.r.code, describeRun(mid.r)).toBe(0);
      expect(I.ref('refs/heads/main')).toBe(k0.id);

      const again = await K.jsonAsync(['push', 'origin'], { env: { CKVC_TOKEN: token } });
      expect(again.refs).toEqual([{ name: 'refs/heads/main', old: k0.id, new: k1, forced: false }]);
      expect(again.bytesSent).toBeGreaterThan(40 * MiB);
      expect(I.ref('refs/heads/main')).toBe(k1);
      const [d, v] = await Promise.all([checkoutDiff(I, k1, files), I.verify(true)]);
      expect(d).toEqual([]);
      expect(v.r.code, describeRun(v.r)).toBe(0);
    } finally {
      await server.kill();
    }
  });
});
