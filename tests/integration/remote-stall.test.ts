// A connection that carries nothing (spec/PROTOCOL.md §3.1): a client gives up on a silent server after
// CKVC_REMOTE_TIMEOUT_MS with exit 22 and keeps nothing of the reply; a server working on a request keeps it alive
// with `102 Processing`, so a short stall time does not cut a server that is merely waiting; `ckvc serve` drops a
// client that went silent mid-request, with its quarantine, but not one that is only slow. A server that never
// answers at all is in transport-conformance.test.ts, for every transport.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, describeRun, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStoreExceptTmp } from '../helpers/snapshots.js';
import { randomFloat32, safetensorsBytes } from '../helpers/data.js';
import { proxy, relay, serve, stopServers } from '../helpers/servers.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const TOKEN = 'stall-token-0123456789abcdef';
let tokenFile: string;
let empty: TestStore;
let A: TestStore; // holds two commits on main
let sshd: Sshd;

beforeAll(async () => {
  const work = tempDir('ckvc-stall-work-');
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  empty = newStore('ckvc-stall-empty-');
  A = copyStore(empty, 'ckvc-stall-a-');
  const dir = path.join(work, 'ck');
  fs.mkdirSync(dir);
  for (const seed of [1, 2]) {
    const t = (k: number) => ({ dtype: 'F32', shape: [128, 256], bytes: randomFloat32(seed * 10 + k, 128 * 256) });
    fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes({ a: t(1), b: t(2), c: t(3) }));
    await A.jsonAsync(['commit', dir, '-b', 'main', '-m', `c${seed}`]);
  }
  sshd = await startSshd();
});
afterAll(async () => {
  await stopServers();
  await sshd?.stop();
  cleanupTemp();
});

/** Whether `store` holds an unfinished receive (a quarantine folder under tmp/). */
const leftovers = (store: string) =>
  (fs.readdirSync(path.join(store, 'tmp'), { recursive: true }) as string[]).filter((f) => /quarantine/i.test(f));

it('a reply that stops part way: fetch exits 22 after the stall time and keeps nothing of it', async () => {
  const R = copyStore(A, 'ckvc-stall-r-');
  const upstream = (await serve(R)).url;
  const url = await proxy(upstream, async (req, _body, res, pass) => {
    const up = await pass();
    if (req.url !== '/v1/objects') return relay(req, res, up.status, up.body);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(up.body.subarray(0, up.body.length >> 1)); // and never the rest
  });
  const C = copyStore(empty, 'ckvc-stall-c-');
  await C.jsonAsync(['remote', 'add', 'r', url]);
  const before = snapshotStoreExceptTmp(C.store);
  const r = await C.runAsync(['fetch', 'r'], { env: { CKVC_REMOTE_TIMEOUT_MS: '1500' } });
  expect(r.code, describeRun(r)).toBe(22);
  expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
  expect(r.stderr).toMatch(/sent and took nothing for 1500 ms/);
  expect(diffSnapshots(before, snapshotStoreExceptTmp(C.store))).toEqual([]);
  expect(leftovers(C.store)).toEqual([]);
});

/**
 * Runs `command` while R's gc.lock is held for 6.5 s (a gc.lock that cannot be read counts as held, FORMAT.md §15:
 * a server receiving or sending objects waits until it is gone); its result and how long it took.
 */
async function whileGcRuns(R: TestStore, command: () => Promise<RunResult>): Promise<[RunResult, number]> {
  const lock = path.join(R.store, 'locks', 'gc.lock');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  fs.writeFileSync(lock, 'held by the test');
  const t0 = Date.now();
  const running = command();
  await new Promise((r) => setTimeout(r, 6500));
  fs.rmSync(lock);
  const r = await running;
  return [r, Date.now() - t0];
}

describe.each(['HTTP', 'SSH'])('%s: a server waiting out a gc', (transport) => {
  /** Remote `r` of `client`, reaching R over the transport (HTTP: with the token, and the server's stall time). */
  async function addRemote(client: TestStore, R: TestStore): Promise<Record<string, string>> {
    const [url, args, env] =
      transport === 'HTTP'
        ? [
            (await serve(R, ['--token-file', tokenFile], { CKVC_REMOTE_TIMEOUT_MS: '3000' })).url,
            [],
            { CKVC_TOKEN: TOKEN },
          ]
        : [sshd.url(R.store), ['--remote-ckvc', sshd.remoteCkvc], sshd.env];
    await client.jsonAsync(['remote', 'add', 'r', url, ...args]);
    return { ...env, CKVC_REMOTE_TIMEOUT_MS: '3000' };
  }

  it('sends keep-alives, so a push with a 3 s stall time waits 6.5 s for it and succeeds', async () => {
    const R = copyStore(empty, 'ckvc-stall-gc-');
    const P = copyStore(A, 'ckvc-stall-p-');
    const env = await addRemote(P, R);
    const [r, took] = await whileGcRuns(R, () => P.runAsync(['push', 'r', 'main'], { env }));
    expect(r.code, describeRun(r)).toBe(0);
    expect(took).toBeGreaterThanOrEqual(6500);
    expect(R.ref('refs/heads/main')).toBe(A.ref('refs/heads/main'));
  });

  it('sends keep-alives before the bundle too, so a fetch with a 3 s stall time waits 6.5 s for it and succeeds', async () => {
    const R = copyStore(A, 'ckvc-stall-fgc-');
    const F = copyStore(empty, 'ckvc-stall-f-');
    const env = await addRemote(F, R);
    const [r, took] = await whileGcRuns(R, () => F.runAsync(['fetch', 'r'], { env }));
    expect(r.code, describeRun(r)).toBe(0);
    expect(took).toBeGreaterThanOrEqual(6500);
    expect(F.ref('refs/remotes/r/main')).toBe(A.ref('refs/heads/main'));
  });
});

/**
 * A TCP relay to `upstream` that passes what the client sends in pieces of `piece` bytes every `everyMs`, and
 * nothing more once `stopAfter` bytes have passed (the connection stays open); replies pass as they come.
 */
async function slowRelay(upstream: string, piece: number, everyMs: number, stopAfter = Infinity): Promise<string> {
  const up = new URL(upstream);
  const srv = net.createServer((client) => {
    const server = net.connect(Number(up.port), up.hostname);
    const queue: Buffer[] = [];
    let passed = 0;
    client.on('data', (d: Buffer) => queue.push(d));
    const timer = setInterval(() => {
      if (passed >= stopAfter || !queue.length) return;
      const all = Buffer.concat(queue.splice(0));
      const n = Math.min(piece, all.length, stopAfter - passed);
      server.write(all.subarray(0, n));
      passed += n;
      if (n < all.length) queue.push(all.subarray(n));
    }, everyMs);
    server.pipe(client);
    const end = () => {
      clearInterval(timer);
      client.destroy();
      server.destroy();
    };
    for (const s of [client, server]) s.on('error', end).on('close', end);
  });
  relays.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`;
}
const relays: net.Server[] = [];
afterAll(() => {
  for (const r of relays) r.close();
});

describe('ckvc serve and a client that sends slowly or stops', () => {
  it('a push through a slow link is taken whole: 32 KiB every 250 ms for 6 s, with a 3 s stall time both ends', async () => {
    const R = copyStore(empty, 'ckvc-stall-slow-');
    const srv = await serve(R, ['--token-file', tokenFile], { CKVC_REMOTE_TIMEOUT_MS: '3000' });
    const P = copyStore(A, 'ckvc-stall-sp-');
    // The relay takes the whole push at once, as a kernel's buffers would: the client then waits for an answer
    // while its bytes trickle on, and the server's keep-alives say they are arriving.
    await P.jsonAsync(['remote', 'add', 'r', await slowRelay(srv.url, 32 * 1024, 250)]);
    const t0 = Date.now();
    const r = await P.runAsync(['push', 'r', 'main', '--json'], {
      env: { CKVC_TOKEN: TOKEN, CKVC_REMOTE_TIMEOUT_MS: '3000' },
    });
    expect(r.code, describeRun(r)).toBe(0);
    expect(JSON.parse(r.stdout).bytesSent).toBeGreaterThan(20 * 32 * 1024);
    expect(Date.now() - t0).toBeGreaterThan(5000);
    expect(R.ref('refs/heads/main')).toBe(A.ref('refs/heads/main'));
  });

  it('a client silent mid-request is dropped after the stall time, and its quarantine with it', async () => {
    const R = copyStore(empty, 'ckvc-stall-drop-');
    const srv = await serve(R, ['--token-file', tokenFile], { CKVC_REMOTE_TIMEOUT_MS: '1000' });
    const before = snapshotStoreExceptTmp(R.store);
    const P = copyStore(A, 'ckvc-stall-dp-');
    // Everything up to the middle of the bundle, then nothing: the relay keeps the client's connection open.
    await P.jsonAsync(['remote', 'add', 'r', await slowRelay(srv.url, 1 << 20, 20, 300 * 1024)]);
    const r = await P.runAsync(['push', 'r', 'main'], { env: { CKVC_TOKEN: TOKEN, CKVC_REMOTE_TIMEOUT_MS: '0' } });
    expect(r.code, describeRun(r)).toBe(22);
    await expect.poll(() => srv.log(), { timeout: 5000 }).toMatch(/POST \/v1\/receive: .*dropped/);
    await expect.poll(() => leftovers(R.store), { timeout: 5000 }).toEqual([]);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(R.store))).toEqual([]);
  });
});

it('a CKVC_REMOTE_TIMEOUT_MS that is not a whole number of milliseconds is refused (15) before anything happens', async () => {
  const R = copyStore(A, 'ckvc-stall-bad-');
  const { url } = await serve(R);
  const C = copyStore(empty, 'ckvc-stall-badc-');
  await C.jsonAsync(['remote', 'add', 'r', url]);
  const before = snapshotStoreExceptTmp(C.store);
  for (const v of ['soon', '-1', '1.5']) {
    const r = await C.runAsync(['fetch', 'r'], { env: { CKVC_REMOTE_TIMEOUT_MS: v } });
    expect(r.code, describeRun(r)).toBe(15);
    expect(codesOf(r)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(r.stderr).toContain('CKVC_REMOTE_TIMEOUT_MS');
  }
  expect(diffSnapshots(before, snapshotStoreExceptTmp(C.store))).toEqual([]);
  const s = await R.runAsync(['serve', '--port', '0'], { env: { CKVC_REMOTE_TIMEOUT_MS: 'soon' } });
  expect(s.code, describeRun(s)).toBe(15);
});
