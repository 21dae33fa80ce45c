// Remotes under stress and misuse (issue 11): a push moves all its refs or none and the remote-tracking refs
// follow what the remote did; a server holds a bounded amount of request bodies however many junk bodies arrive
// at once, and says "busy" with Retry-After (the client retries a bounded number of times); a fetch skips refs
// the remote advertises under invalid names; request bodies are validated field by field (400, never 500); a
// client that goes away mid-push is logged as such and leaves no quarantine. (Bundles of many refs: ref-batch.)
// Servers are real `ckvc serve` processes on 127.0.0.1; fake servers are node:http proxies in this process.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, describeRun } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotTree } from '../helpers/snapshots.js';
import { sleep } from '../helpers/async-tasks.js';
import { MiB, writeCheckpoint } from '../helpers/reliability.js';
import { memory, post, proxy, relay, serve, stopServers, type Server } from '../helpers/servers.js';

afterAll(async () => {
  await stopServers();
  cleanupTemp();
}, 300_000);

const refsAndLogs = (s: TestStore) => snapshotTree(s.store, (rel) => !/^(refs|logs)(\/|$)/.test(rel));
const quarantines = (s: TestStore) =>
  fs.readdirSync(path.join(s.store, 'tmp')).filter((n) => n.startsWith('quarantine-'));
let work: string;
let seed = 100;

async function commit(s: TestStore, branch: string): Promise<string> {
  const dir = path.join(work, `ck-${seed}`);
  writeCheckpoint(dir, { seed: seed++, tensorBytes: 16 * 1024, opaqueBytes: 8 * 1024 });
  return (await s.jsonAsync<{ id: string }>(['commit', dir, '-b', branch, '-m', `c${seed}`])).id;
}

beforeAll(() => {
  work = tempDir('ckvc-hard-work-');
});

/** Writes `piece` to `res` until the client goes away, as fast as it reads; `sent` hears the running total. */
function sendForever(res: http.ServerResponse, piece: Buffer, sent: (bytes: number) => void): void {
  let total = 0;
  const more = () => {
    while (!res.destroyed && res.write(piece)) sent((total += piece.length));
    if (!res.destroyed) res.once('drain', more);
  };
  more();
}

function writeMetricCheckpoint(): string {
  const dir = path.join(work, `ck-${seed}`);
  writeCheckpoint(dir, { seed: seed++, tensorBytes: 16 * 1024, opaqueBytes: 8 * 1024 });
  return dir;
}

describe('push moves all its refs or none', () => {
  it('push d1 c where c is not a fast-forward: 13 naming c, d1 not created on the remote, no tracking ref for either; tracking refs follow what the remote did, also when its disk fails after the refs moved', async () => {
    const A = newStore('ckvc-hard-a-');
    const R = newStore('ckvc-hard-r-');
    const O = newStore('ckvc-hard-o-');
    const token = 'hardening-token';
    const tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, token);
    const srv = await serve(R, ['--token-file', tokenFile]);
    const env = { CKVC_TOKEN: token };
    for (const [s, name] of [
      [A, 'srv'],
      [O, 'srv'],
    ] as const)
      await s.jsonAsync(['remote', 'add', name, srv.url]);
    await commit(A, 'c');
    await A.jsonAsync(['push', 'srv', 'c'], { env });
    // Someone else replaces c on the remote; A does not know and commits d1 and more on c.
    await O.jsonAsync(['pull', 'srv', 'c'], { cwd: work });
    const theirs = await commit(O, 'c');
    await O.jsonAsync(['push', 'srv', 'c'], { env });
    const d1 = await commit(A, 'd1');
    const mine = await commit(A, 'c');
    const before = refsAndLogs(R);
    const trackingBefore = A.ref('refs/remotes/srv/c');

    const r = await A.runAsync(['push', 'srv', 'd1', 'c', '--json'], { env });
    expect(r.code, describeRun(r)).toBe(13);
    expect(codesOf(r)).toEqual(['CKVC_NON_FAST_FORWARD']);
    const err = JSON.parse(r.stderr.trim().split('\n').pop()!).error;
    expect(err.message).toContain('refs/heads/c');
    expect(err.message).toMatch(/nothing was changed on the remote/);
    expect(err.data.refused.map((x: any) => x.ref)).toEqual(['refs/heads/c']);
    expect(diffSnapshots(before, refsAndLogs(R))).toEqual([]);
    expect(R.ref('refs/heads/d1')).toBeUndefined();
    expect(R.ref('refs/heads/c')).toBe(theirs);
    expect(A.ref('refs/remotes/srv/d1')).toBeUndefined();
    expect(A.ref('refs/remotes/srv/c')).toBe(trackingBefore);

    // The same over a folder remote (the store side in-process).
    await A.jsonAsync(['remote', 'add', 'dir', R.store]);
    const f = await A.runAsync(['push', 'dir', 'd1', 'c'], { env });
    expect(f.code, describeRun(f)).toBe(13);
    expect(diffSnapshots(before, refsAndLogs(R))).toEqual([]);
    expect(A.ref('refs/remotes/dir/d1')).toBeUndefined();

    // Both acceptable: both move, both tracking refs set (one batch each side).
    const ok = await A.jsonAsync(['push', 'srv', 'd1', 'c', '--force'], { env });
    expect(ok.refs.map((u: any) => [u.name, u.new, u.forced])).toEqual([
      ['refs/heads/d1', d1, false],
      ['refs/heads/c', mine, true],
    ]);
    expect([R.ref('refs/heads/d1'), R.ref('refs/heads/c')]).toEqual([d1, mine]);
    expect([A.ref('refs/remotes/srv/d1'), A.ref('refs/remotes/srv/c')]).toEqual([d1, mine]);
    expect(srv.log()).not.toContain('CKVC_INTERNAL');

    // A server whose disk fails after its refs moved (fsync of their folder): the push fails with CKVC_IO
    // and data.moved, and the tracking refs here follow the refs that moved there.
    const faulty = await serve(R, ['--token-file', tokenFile], { CKVC_FAULT: 'ref.dirsync=eio' });
    await A.jsonAsync(['remote', 'add', 'faulty', faulty.url]);
    const [d2, c2] = [await commit(A, 'd1'), await commit(A, 'c')];
    const p = await A.runAsync(['push', 'faulty', 'd1', 'c', '--json'], { env });
    expect(p.code, describeRun(p)).toBe(1);
    const perr = JSON.parse(p.stderr.trim().split('\n').pop()!).error;
    expect([perr.code, perr.data.moved, perr.data.notMoved]).toEqual([
      'CKVC_IO',
      ['refs/heads/d1', 'refs/heads/c'],
      [],
    ]);
    expect([R.ref('refs/heads/d1'), R.ref('refs/heads/c')]).toEqual([d2, c2]);
    expect([A.ref('refs/remotes/faulty/d1'), A.ref('refs/remotes/faulty/c')]).toEqual([d2, c2]);
  });
});

describe('ckvc serve under junk', () => {
  let S: TestStore;
  let srv: Server;
  let token: string;
  beforeAll(async () => {
    S = newStore('ckvc-hard-srv-');
    await commit(S, 'main');
    token = 'junk-token';
    const tf = path.join(work, 'junk-token');
    fs.writeFileSync(tf, token);
    srv = await serve(S, ['--token-file', tf]);
  });

  it('concurrent large junk bodies: memory stays bounded, the surplus is told 503 busy with Retry-After, the server answers afterwards', async () => {
    await post(srv.url, '/v1/has', Buffer.from('{"ids":[]}'));
    const base = memory(srv.pid);
    const junk = (n: number) => Buffer.alloc(n, 'x');
    const replies = await Promise.all([
      ...Array.from({ length: 4 }, () => post(srv.url, '/v1/has', junk(30 * MiB))),
      ...Array.from({ length: 8 }, () => post(srv.url, '/v1/has', junk(12 * MiB), { chunked: true })),
      ...Array.from({ length: 4 }, () => post(srv.url, '/v1/plan', junk(12 * MiB))),
    ]);
    const peak = memory(srv.pid);
    const grew = (peak.hwm - base.rss) / MiB;
    console.log(
      `serve: VmRSS ${(base.rss / MiB).toFixed(0)} MiB before, VmHWM ${(peak.hwm / MiB).toFixed(0)} MiB after 16 junk bodies (${16 * 30 + 96 + 48} MiB sent)`,
    );
    expect(grew).toBeLessThan(150);
    for (const r of replies) {
      expect([400, 503]).toContain(r.status);
      expect(r.json.error.code).toBe(r.status === 503 ? 'CKVC_REMOTE_BUSY' : 'CKVC_BAD_BUNDLE');
      if (r.status === 503) expect(r.headers['retry-after']).toBe('1');
    }
    expect(replies.slice(0, 4).map((r) => r.json.error.message)).toEqual(
      Array(4).fill(expect.stringMatching(/over 16 MiB/)),
    );
    expect(replies.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    const after = await fetch(new URL('v1/refs', srv.url));
    expect(after.status).toBe(200);
    expect(Object.keys(((await after.json()) as any).refs)).toEqual(['refs/heads/main']);
    expect(srv.log()).not.toContain('CKVC_INTERNAL');
  }, 120_000);

  it('every field of every body is checked: malformed requests get 400 with a CkvcError, never a 500', async () => {
    const id = 'a'.repeat(64);
    const cases: [string, unknown, string][] = [
      ['/v1/update-refs', { changes: [null] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/update-refs', { changes: [{ name: 'refs/heads/x', old: null, new: 'zz' }] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/update-refs', { changes: [{ name: 'refs/heads/x', old: 7, new: id }] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/update-refs', { changes: [{ name: 42, old: null, new: id }] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/update-refs', { changes: [{ name: 'refs/heads/a b', old: null, new: id }] }, 'CKVC_BAD_REF_NAME'],
      ['/v1/update-refs', { changes: [{ name: 'refs/heads/../x', old: null, new: id }] }, 'CKVC_BAD_REF_NAME'],
      ['/v1/update-refs', { changes: [{ name: 'refs/aliases/best', old: id, new: null }] }, 'CKVC_BAD_REF_NAME'],
      ['/v1/update-refs', { changes: [{ name: 'refs/aliases/best', old: null, new: id }] }, 'CKVC_BAD_REF_NAME'],
      [
        '/v1/update-refs',
        {
          changes: [
            { name: 'refs/heads/x', old: null, new: id },
            { name: 'refs/heads/x', old: null, new: id },
          ],
        },
        'CKVC_BAD_BUNDLE',
      ],
      ['/v1/update-refs', { changes: [{ name: 'refs/heads/x', old: null, new: id, extra: 1 }] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/update-refs', { changes: [{ name: 'refs/heads/x', old: null, new: id }], force: 'yes' }, 'CKVC_BAD_BUNDLE'],
      [
        '/v1/update-refs',
        { changes: [{ name: 'refs/heads/x', old: null, new: id }], who: 'w'.repeat(201) },
        'CKVC_BAD_BUNDLE',
      ],
      [
        '/v1/update-refs',
        { changes: Array.from({ length: 10_001 }, (_, i) => ({ name: `refs/heads/b${i}`, old: null, new: id })) },
        'CKVC_BAD_BUNDLE',
      ],
      ['/v1/update-refs', { changes: 'all' }, 'CKVC_BAD_BUNDLE'],
      ['/v1/update-refs', [1, 2], 'CKVC_BAD_BUNDLE'],
      ['/v1/has', { ids: [1] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/has', { ids: 'x' }, 'CKVC_BAD_BUNDLE'],
      ['/v1/has', { ids: [id.toUpperCase()] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/has', null, 'CKVC_BAD_BUNDLE'],
      ['/v1/plan', { wants: [id] }, 'CKVC_BAD_BUNDLE'],
      ['/v1/objects', { ids: [id], more: true }, 'CKVC_BAD_BUNDLE'],
    ];
    for (const [p, body, code] of cases) {
      const r = await post(srv.url, p, Buffer.from(JSON.stringify(body)), { token });
      expect([p, body === null ? null : JSON.stringify(body).slice(0, 80), r.status, r.json?.error?.code]).toEqual([
        p,
        body === null ? null : JSON.stringify(body).slice(0, 80),
        400,
        code,
      ]);
      expect(r.json.error).toEqual({
        code,
        message: expect.any(String),
        exit: expect.any(Number),
        data: expect.any(Object),
      });
    }
    const notJson = await post(srv.url, '/v1/has', Buffer.from('{"ids": ['), { token });
    expect([notJson.status, notJson.json.error.code]).toEqual([400, 'CKVC_BAD_BUNDLE']);
    // The status comes from the code: unknown want 404, a write without the token 403, no such endpoint 400.
    expect((await post(srv.url, '/v1/plan', Buffer.from(JSON.stringify({ wants: [id], haves: [] })))).status).toBe(404);
    expect((await post(srv.url, '/v1/update-refs', Buffer.from('{}'))).status).toBe(403);
    expect((await post(srv.url, '/v1/nothing', Buffer.from('{}'))).status).toBe(400);
    expect(S.refFiles()).toEqual(['refs/heads/main']);
    expect(srv.log()).not.toContain('CKVC_INTERNAL');
  });

  it('a client that disconnects mid-receive is logged as gone (not CKVC_INTERNAL) and leaves no quarantine', async () => {
    const bundle = path.join(work, 'push.bundle');
    await S.jsonAsync(['pack', 'main', '-o', bundle]);
    const bytes = fs.readFileSync(bundle);
    const req = http.request(new URL('v1/receive', srv.url), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` },
    });
    req.on('error', () => {
      /* we cut it */
    });
    req.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
    for (let i = 0; i < 200 && quarantines(S).length === 0; i++) await sleep(25);
    expect(quarantines(S).length).toBe(1);
    req.destroy();
    for (let i = 0; i < 200 && !/connection ended mid-request/.test(srv.log()); i++) await sleep(25);
    expect(srv.log()).toMatch(/POST \/v1\/receive: the connection ended mid-request \(the client went away/);
    expect(srv.log()).not.toContain('CKVC_INTERNAL');
    for (let i = 0; i < 200 && quarantines(S).length; i++) await sleep(25);
    expect(quarantines(S)).toEqual([]);
    expect((await fetch(new URL('v1/refs', srv.url))).status).toBe(200);
  });
});

describe('fetch from a remote that misbehaves', () => {
  let R: TestStore;
  let srv: Server;
  let main: string;
  beforeAll(async () => {
    R = newStore('ckvc-hard-up-');
    main = await commit(R, 'main');
    await commit(R, 'side');
    srv = await serve(R);
  });

  it('refs advertised under invalid names are skipped with a warning (stderr and --json); the rest is fetched', async () => {
    const url = await proxy(srv.url, async (req, _body, res, pass) => {
      const up = await pass();
      let out = up.body;
      if (req.url === '/v1/refs') {
        const refs = JSON.parse(up.body.toString()).refs;
        refs['refs/heads/has space'] = refs['refs/heads/side'];
        refs['refs/heads/../escape'] = refs['refs/heads/side'];
        refs['refs/heads/bad-id'] = 'zz';
        out = Buffer.from(JSON.stringify({ refs }));
      }
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(out);
    });
    const F = newStore('ckvc-hard-f-');
    await F.jsonAsync(['remote', 'add', 'evil', url]);
    const r = await F.runAsync(['fetch', 'evil', '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.warnings.map((w: any) => [w.ref, w.code]).sort()).toEqual([
      ['refs/heads/../escape', 'CKVC_BAD_REF_NAME'],
      ['refs/heads/bad-id', 'CKVC_REMOTE'],
      ['refs/heads/has space', 'CKVC_BAD_REF_NAME'],
    ]);
    expect(r.stderr).toMatch(/warning \(CKVC_BAD_REF_NAME\): left out "refs\/heads\/has space"/);
    expect(codesOf(r)).toEqual([]);
    expect(out.refs.map((u: any) => u.name).sort()).toEqual(['refs/remotes/evil/main', 'refs/remotes/evil/side']);
    expect(F.ref('refs/remotes/evil/main')).toBe(main);
    expect(F.refFiles()).toEqual(['refs/remotes/evil/main', 'refs/remotes/evil/side']);
  });

  it("tags that would hide another ref in revisions (R/NAME for a remote R, a local alias's name) are left out with a warning", async () => {
    // The remote's own tags, made the ordinary way: one named like the fetcher's other remote's branch, one like
    // its alias, one like the fetched remote's own branch, and an innocent one.
    const E = newStore('ckvc-hard-evil-');
    const evil = await commit(E, 'main');
    for (const t of ['origin/main', 'best-loss', 'evil/main', 'v1']) await E.jsonAsync(['tag', t, evil]);
    const O = newStore('ckvc-hard-origin-');
    const trusted = await commit(O, 'main');
    const F = newStore('ckvc-hard-victim-');
    await F.jsonAsync(['commit', writeMetricCheckpoint(), '-b', 'main', '-m', 'scored', '--metric', 'loss=0.5']);
    await F.jsonAsync(['alias', 'best-loss', '--track', 'loss', '--min', '-b', 'main']);
    const mine = F.ref('refs/aliases/best-loss')!;
    expect(mine).toBe(F.ref('refs/heads/main'));
    await F.jsonAsync(['remote', 'add', 'origin', O.dir]);
    await F.jsonAsync(['fetch', 'origin']);
    await F.jsonAsync(['remote', 'add', 'evil', E.dir]);
    const r = await F.runAsync(['fetch', 'evil', '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.warnings.map((w: any) => [w.ref, w.code]).sort()).toEqual([
      ['refs/tags/best-loss', 'CKVC_BAD_REF_NAME'],
      ['refs/tags/evil/main', 'CKVC_BAD_REF_NAME'],
      ['refs/tags/origin/main', 'CKVC_BAD_REF_NAME'],
    ]);
    expect(r.stderr).toMatch(/left out refs\/tags\/origin\/main of .*remote 'origin''s branch main/);
    expect(r.stderr).toMatch(/left out refs\/tags\/best-loss of .*the local alias 'best-loss'/);
    expect(F.refFiles().filter((f) => f.startsWith('refs/tags/'))).toEqual(['refs/tags/v1']);
    // Every name still means what it meant before the fetch.
    const id = async (rev: string) => (await F.jsonAsync<{ id: string }>(['show', rev])).id;
    expect(await id('origin/main')).toBe(trusted);
    expect(await id('best-loss')).toBe(mine);
    expect(await id('evil/main')).toBe(evil);
  });

  it('a bundle declaring a terabyte and sending zeros for ever is refused (12) within a few MiB, nothing kept', async () => {
    // The server's real reply, its header rewritten to declare a 1 TiB pack (CBOR: pack_length as a u64), then its
    // records, then zeros without end: before, the receiver copied whatever the header declared into tmp/.
    let sentZeros = 0;
    const url = await proxy(srv.url, async (req, _body, res, pass) => {
      const up = await pass();
      if (req.url !== '/v1/objects') return relay(req, res, up.status, up.body);
      const b = up.body;
      const headerLength = b.readUInt32LE(12);
      const h = b.subarray(16, 16 + headerLength);
      const at = h.indexOf(Buffer.from('pack_length')) + 'pack_length'.length;
      const was = h[at]! < 0x18 ? 1 : 1 + 2 ** (h[at]! - 0x18); // the length of the CBOR integer it replaces
      const huge = Buffer.concat([
        h.subarray(0, at),
        Buffer.from([0x1b, 0, 0, 1, 0, 0, 0, 0, 0]),
        h.subarray(at + was),
      ]);
      const preamble = Buffer.from(b.subarray(0, 16));
      preamble.writeUInt32LE(huge.length, 12);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.concat([preamble, huge, b.subarray(16 + headerLength, b.length - 40)]));
      sendForever(res, Buffer.alloc(MiB), (n) => {
        sentZeros = n;
      });
    });
    const F = newStore('ckvc-hard-endless-');
    await F.jsonAsync(['remote', 'add', 'evil', url]);
    const before = refsAndLogs(F);
    const r = await F.runAsync(['fetch', 'evil']);
    expect(r.code, describeRun(r)).toBe(12);
    expect(codesOf(r)).toEqual(['CKVC_BAD_BUNDLE']);
    // Its last record ends where the declared count says the TOC must start: the pack cannot be what it declares.
    expect(r.stderr).toMatch(
      /its pack is not the one its header declares: record (\d+) ends at byte \d+, but the header's \1 records must end at byte 1099511/,
    );
    // Socket buffers and the receiver's 4 MiB writes: far from the terabyte.
    expect(sentZeros).toBeLessThan(64 * MiB);
    expect(quarantines(F)).toEqual([]);
    expect(diffSnapshots(before, refsAndLogs(F))).toEqual([]);
  });

  it('a reply that never ends is refused at its cap (22) instead of filling memory', async () => {
    // An error answer (whose cap is 1 MiB; JSON replies share the reader, with a cap of 500 MiB) sent for ever.
    let sent = 0;
    const url = await proxy(srv.url, async (_req, _body, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      sendForever(res, Buffer.alloc(64 * 1024, 0x20), (n) => {
        sent = n;
      });
    });
    const F = newStore('ckvc-hard-endless-json-');
    await F.jsonAsync(['remote', 'add', 'evil', url]);
    const r = await F.runAsync(['fetch', 'evil']);
    expect(r.code, describeRun(r)).toBe(22);
    expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toMatch(/sent a reply of more than 1048576 bytes/);
    expect(sent).toBeLessThan(64 * MiB);
  });

  it('an error answer naming no error code of the protocol (an Object property, a message not a string) is 22', async () => {
    for (const error of [
      { code: 'constructor', message: 'x', data: {} },
      { code: '__proto__', message: 'x', data: {} },
      { code: 'CKVC_UNAUTHORIZED', message: { not: 'a string' }, data: {} },
      { code: 'CKVC_UNAUTHORIZED', message: 'x', data: 'not an object' },
      { code: 'CKVC_UNAUTHORIZED', message: 'x', data: null },
    ]) {
      const url = await proxy(srv.url, async (_req, _body, res) => {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error }));
      });
      const F = newStore('ckvc-hard-proto-');
      await F.jsonAsync(['remote', 'add', 'evil', url]);
      const r = await F.runAsync(['fetch', 'evil']);
      expect(r.code, `${JSON.stringify(error)}: ${describeRun(r)}`).toBe(22);
      expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
      expect(r.stderr).toMatch(/answered HTTP 403 outside the protocol/);
    }
  });

  it("a push's ref update reply is believed only about the refs pushed, never about where they went", async () => {
    const P = newStore('ckvc-hard-pusher-');
    const tip = await commit(P, 'main');
    const Rp = newStore('ckvc-hard-pushed-');
    const tokenFile = path.join(work, 'push-token');
    fs.writeFileSync(tokenFile, 'push-token-0123456789');
    const up = await serve(Rp, ['--token-file', tokenFile]);
    // The server does the push, then claims main went elsewhere, a ref nobody pushed moved, and another is junk.
    const lying = await proxy(up.url, async (req, _body, res, pass) => {
      const r = await pass();
      if (req.url !== '/v1/update-refs') return relay(req, res, r.status, r.body);
      const refs = [
        { name: 'refs/heads/main', old: null, new: 'ab'.repeat(32), forced: false },
        { name: 'refs/heads/x', old: null, new: 'cd'.repeat(32), forced: false },
        { name: 'refs/heads/y', old: null, new: 'not-an-id', forced: false },
      ];
      relay(req, res, 200, Buffer.from(JSON.stringify({ refs })));
    });
    const junk = await proxy(up.url, async (req, _body, res, pass) => {
      const r = await pass();
      relay(req, res, r.status, req.url === '/v1/update-refs' ? Buffer.from('{"refs":"moved"}') : r.body);
    });
    await P.jsonAsync(['remote', 'add', 'evil', lying]);
    await P.jsonAsync(['remote', 'add', 'junk', junk]);
    const env = { CKVC_TOKEN: 'push-token-0123456789' };
    const r = await P.runAsync(['push', 'evil', 'main', '--json'], { env });
    expect(r.code, describeRun(r)).toBe(0);
    expect(JSON.parse(r.stdout).refs).toEqual([{ name: 'refs/heads/main', old: null, new: tip, forced: false }]);
    expect(P.refFiles().filter((f) => f.startsWith('refs/remotes/'))).toEqual(['refs/remotes/evil/main']);
    expect(P.ref('refs/remotes/evil/main')).toBe(tip);
    const j = await P.runAsync(['push', 'junk', 'main'], { env });
    expect(j.code, describeRun(j)).toBe(22);
    expect(codesOf(j)).toEqual(['CKVC_REMOTE']);
    expect(P.refFiles().filter((f) => f.startsWith('refs/remotes/junk'))).toEqual([]);
    expect((await P.runAsync(['verify'])).code).toBe(0);
  });

  it('push --delete: a stale value is refused (13), an older server says so (22), a deletion naming no value is 400', async () => {
    const P = newStore('ckvc-hard-deleter-');
    const tip = await commit(P, 'gone');
    const Rp = newStore('ckvc-hard-deleted-');
    const tokenFile = path.join(work, 'delete-token');
    fs.writeFileSync(tokenFile, 'delete-token-0123456789');
    const up = await serve(Rp, ['--token-file', tokenFile]);
    const env = { CKVC_TOKEN: 'delete-token-0123456789' };
    await P.jsonAsync(['remote', 'add', 'origin', up.url]);
    await P.jsonAsync(['push', 'origin', 'gone'], { env });
    // Another pusher moves the branch between this client's refs request and its update: the deletion names the
    // value it saw, so the remote refuses it rather than delete commits the client never saw.
    const other = 'ab'.repeat(32);
    const moved = await proxy(up.url, async (req, body, res, pass) => {
      if (req.url !== '/v1/update-refs') {
        const r = await pass();
        return relay(req, res, r.status, r.body);
      }
      const b = JSON.parse(body.toString());
      b.changes[0].old = other;
      const r = await fetch(new URL('v1/update-refs', up.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
        body: JSON.stringify(b),
      });
      relay(req, res, r.status, Buffer.from(await r.arrayBuffer()));
    });
    // The answer of a server that predates deletions: `new: null` is a malformed request there.
    const older = await proxy(up.url, async (req, _body, res, pass) => {
      if (req.url !== '/v1/update-refs') {
        const r = await pass();
        return relay(req, res, r.status, r.body);
      }
      const message = 'the update-refs request: changes[0]: new (of refs/heads/gone) is not an object ID';
      relay(req, res, 400, Buffer.from(JSON.stringify({ error: { code: 'CKVC_BAD_BUNDLE', message, data: {} } })));
    });
    await P.jsonAsync(['remote', 'add', 'moved', moved]);
    await P.jsonAsync(['remote', 'add', 'older', older]);
    await P.jsonAsync(['fetch', 'older'], { env });
    const before = Rp.refFiles();
    const m = await P.runAsync(['push', 'moved', 'gone', '--delete'], { env });
    expect(m.code, describeRun(m)).toBe(13);
    expect(codesOf(m)).toEqual(['CKVC_REF_CONFLICT']);
    const o = await P.runAsync(['push', 'older', 'gone', '--delete'], { env });
    expect(o.code, describeRun(o)).toBe(22);
    expect(codesOf(o)).toEqual(['CKVC_REMOTE']);
    expect(o.stderr).toContain('runs a ckvc that cannot delete refs by push; nothing was deleted there');
    expect(Rp.refFiles()).toEqual(before);
    expect([Rp.ref('refs/heads/gone'), P.ref('refs/remotes/older/gone')]).toEqual([tip, tip]);
    const bad = await post(
      up.url,
      '/v1/update-refs',
      Buffer.from(JSON.stringify({ changes: [{ name: 'refs/heads/gone', old: null, new: null }] })),
      {
        token: 'delete-token-0123456789',
      },
    );
    expect([bad.status, bad.json?.error?.code]).toEqual([400, 'CKVC_BAD_BUNDLE']);
    expect(Rp.ref('refs/heads/gone')).toBe(tip);
    // A server that lists the ref at something that is no ID: refused before it is printed or sent back.
    const junk = await proxy(up.url, async (req, _body, res, pass) => {
      const r = await pass();
      if (req.url !== '/v1/refs') return relay(req, res, r.status, r.body);
      relay(req, res, 200, Buffer.from(JSON.stringify({ refs: { 'refs/heads/gone': '\u001b[31mEVIL' } })));
    });
    await P.jsonAsync(['remote', 'add', 'junk', junk]);
    const j = await P.runAsync(['push', 'junk', 'gone', '--delete'], { env });
    expect(j.code, describeRun(j)).toBe(22);
    expect(codesOf(j)).toEqual(['CKVC_REMOTE']);
    expect(j.stdout + j.stderr).not.toContain('\u001b');
    // Deleted there, but the remote-tracking branch cannot be dropped here (a failing disk): a warning, exit 0.
    await P.jsonAsync(['fetch', 'origin'], { env });
    await commit(P, 'gone2');
    await P.jsonAsync(['push', 'origin', 'gone2'], { env });
    const half = await P.runAsync(['push', 'origin', 'gone2', '--delete'], {
      env: { ...env, CKVC_TEST_FAULTS: '1', CKVC_FAULT: 'reflog.append=eio' },
    });
    expect(half.code, describeRun(half)).toBe(0);
    expect(half.stdout).toContain('refs/heads/gone2');
    expect(half.stderr).toContain("ckvc: warning (CKVC_IO): deleted on 'origin' (that stands); dropping its");
    expect(half.stderr).toContain("'ckvc fetch origin --prune' drops those that remain");
    expect(Rp.ref('refs/heads/gone2')).toBeUndefined();
    expect(P.ref('refs/remotes/origin/gone2')).toBeDefined();
    const pruned = await P.runAsync(['fetch', 'origin', '--prune'], { env });
    expect(pruned.code, describeRun(pruned)).toBe(0);
    expect(P.ref('refs/remotes/origin/gone2')).toBeUndefined();
    // A damaged HEAD on the server blocks no push that deletes no branch.
    fs.writeFileSync(path.join(Rp.store, 'HEAD'), 'garbage\n');
    await commit(P, 'more');
    expect((await P.runAsync(['push', 'origin', 'more'], { env })).code).toBe(0);
    expect(Rp.ref('refs/heads/more')).toBe(P.ref('refs/heads/more'));
  });

  it('plan replies outside the protocol are 22 before any object is asked for; a bundle short of what was asked is 22', async () => {
    const asked: string[] = [];
    const plans = [
      null,
      {},
      { objects: [1, 2, null] },
      { objects: 'abc' },
      { objects: ['../../etc/passwd'] },
      { objects: ['ab'.repeat(32)], sizes: [-1] },
      { objects: ['ab'.repeat(32)], sizes: [1, 2] },
      { objects: ['ab'.repeat(32)], sizes: [2 ** 40] },
    ];
    let next = 0;
    const url = await proxy(srv.url, async (req, _body, res, pass) => {
      asked.push(req.url!);
      const up = await pass();
      if (req.url === '/v1/plan' && next < plans.length)
        return relay(req, res, 200, Buffer.from(JSON.stringify(plans[next++])));
      relay(req, res, up.status, up.body);
    });
    const F = newStore('ckvc-hard-plan-');
    await F.jsonAsync(['remote', 'add', 'evil', url]);
    const before = refsAndLogs(F);
    for (let i = 0; i < plans.length; i++) {
      const r = await F.runAsync(['fetch', 'evil']);
      expect(r.code, describeRun(r)).toBe(22);
      expect(r.stderr).toMatch(/answered the plan request outside the protocol/);
    }
    expect(asked.filter((u) => u === '/v1/objects' || u === '/v1/chains')).toEqual([]);
    expect(diffSnapshots(before, refsAndLogs(F))).toEqual([]);
    // An objects-only bundle of fewer objects than asked: a pack of none, as the server would send for none.
    const short = await proxy(srv.url, async (req, body, res, pass) => {
      if (req.url !== '/v1/objects') {
        const up = await pass();
        return relay(req, res, up.status, up.body);
      }
      const ids = JSON.parse(body.toString()).ids as string[];
      const r = await fetch(new URL('v1/objects', srv.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ids: ids.slice(1) }),
      });
      relay(req, res, r.status, Buffer.from(await r.arrayBuffer()));
    });
    const G = newStore('ckvc-hard-short-');
    await G.jsonAsync(['remote', 'add', 'evil', short]);
    const g = await G.runAsync(['fetch', 'evil']);
    expect(g.code, describeRun(g)).toBe(22);
    expect(g.stderr).toMatch(/sent \d+ of the \d+ objects asked for \(outside the protocol/);
    expect(quarantines(G)).toEqual([]);
  });

  it('a ref naming a tree instead of a commit is left out with a warning; the other refs are fetched', async () => {
    const tree = (await R.jsonAsync<{ tree: string }>(['show', main])).tree;
    const url = await proxy(srv.url, async (req, _body, res, pass) => {
      const up = await pass();
      if (req.url !== '/v1/refs') return relay(req, res, up.status, up.body);
      const refs = JSON.parse(up.body.toString()).refs;
      refs['refs/heads/not-a-commit'] = tree;
      relay(req, res, 200, Buffer.from(JSON.stringify({ refs })));
    });
    // The fetcher holds the tree already (an honest fetch brought it; a tree it lacks, the server itself refuses
    // to plan for): the ref is left out instead of the fetch failing as if this store were damaged.
    const F = newStore('ckvc-hard-tree-');
    await F.jsonAsync(['remote', 'add', 'honest', srv.url]);
    await F.jsonAsync(['fetch', 'honest']);
    await F.jsonAsync(['remote', 'add', 'evil', url]);
    const r = await F.runAsync(['fetch', 'evil', '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.warnings.map((w: any) => [w.ref, w.code])).toEqual([['refs/heads/not-a-commit', 'CKVC_REMOTE']]);
    expect(r.stderr).toMatch(/left out refs\/heads\/not-a-commit of .*: it names a tree/);
    expect(F.refFiles().filter((f) => f.startsWith('refs/remotes/evil/'))).toEqual([
      'refs/remotes/evil/main',
      'refs/remotes/evil/side',
    ]);
    expect(F.ref('refs/remotes/evil/main')).toBe(main);
  });

  it('nothing usable advertised: 22, and no object was asked for', async () => {
    const asked: string[] = [];
    const url = await proxy(srv.url, async (req, _body, res, pass) => {
      asked.push(req.url!);
      const up = await pass();
      const out =
        req.url === '/v1/refs'
          ? Buffer.from(JSON.stringify({ refs: { 'refs/heads/a b': main, 'refs/tags/~x': main } }))
          : up.body;
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(out);
    });
    const F = newStore('ckvc-hard-g-');
    await F.jsonAsync(['remote', 'add', 'evil', url]);
    const before = snapshotTree(F.store, (rel) => /^(index|tmp)(\/|$)/.test(rel));
    const r = await F.runAsync(['fetch', 'evil']);
    expect(r.code, describeRun(r)).toBe(22);
    expect(codesOf(r)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toMatch(/none can be stored here/);
    expect(asked).toEqual(['/v1/refs']);
    expect(
      diffSnapshots(
        before,
        snapshotTree(F.store, (rel) => /^(index|tmp)(\/|$)/.test(rel)),
      ),
    ).toEqual([]);
  });

  it('a server that stays busy: the client tries a bounded number of times, then 22 CKVC_REMOTE_BUSY; one that clears up is waited for', async () => {
    let busyLeft = 2;
    let plans = 0;
    const url = await proxy(srv.url, async (req, _body, res, pass) => {
      if (req.url === '/v1/plan') {
        plans++;
        if (busyLeft-- > 0) {
          res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' });
          res.end(JSON.stringify({ error: { code: 'CKVC_REMOTE_BUSY', message: 'busy', exit: 22, data: {} } }));
          return;
        }
      }
      const up = await pass();
      relay(req, res, up.status, up.body);
    });
    const F = newStore('ckvc-hard-b-');
    await F.jsonAsync(['remote', 'add', 'b', url]);
    const ok = await F.jsonAsync(['fetch', 'b']);
    expect(plans).toBe(3);
    expect(ok.refs.map((u: any) => u.name).sort()).toEqual(['refs/remotes/b/main', 'refs/remotes/b/side']);

    busyLeft = 1000;
    plans = 0;
    const G = newStore('ckvc-hard-b2-');
    await G.jsonAsync(['remote', 'add', 'b', url]);
    const r = await G.runAsync(['fetch', 'b']);
    expect(r.code, describeRun(r)).toBe(22);
    expect(codesOf(r)).toEqual(['CKVC_REMOTE_BUSY']);
    expect(plans).toBe(6);
    expect(G.refFiles()).toEqual([]);
  });
});
