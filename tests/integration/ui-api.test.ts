// `ckvc ui` and the page in `ckvc serve` (spec/UI.md): each JSON endpoint against what the CLI reports for the
// same question (one implementation: the Node API), downloads byte-identical to `ckvc cat`, and the guards:
// a foreign Host header is refused, the page is read-only, a non-loopback address needs the token.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, openStore } from '../../dist/api/index.js';
import { ckvc, ckvcBytes, ok } from '../helpers/ckvc.js';
import { randomBytes } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { makeUiStore, startUi, stopUiServers, type UiStore } from '../helpers/ui-store.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: any;
}

/** A GET (or other method) with full control of the headers, Host included (fetch() may not set Host). */
function request(
  url: string,
  p: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(p, url), { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        let json: any;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const cli = (S: UiStore, args: string[]) => JSON.parse(ok([...args, '--json', '--store', S.store]).stdout);

describe('ckvc ui: JSON endpoints and guards', () => {
  let S: UiStore;
  let url: string;

  beforeAll(async () => {
    S = await makeUiStore();
    url = await startUi(S.store);
  });
  afterAll(() => {
    stopUiServers();
    cleanupTemp();
  });

  it('prints a loopback URL and serves the page, its scripts and uPlot from the installed package', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    for (const p of ['/', '/metrics?key=loss', '/commit/main', '/compare/main/lowlr']) {
      const r = await request(url, p);
      expect([p, r.status, r.headers['content-type']]).toEqual([p, 200, 'text/html; charset=utf-8']);
      expect(r.headers['content-security-policy']).toContain("script-src 'self'");
      expect(r.body.toString()).toContain('/vendor/uplot.js');
    }
    const js = await request(url, '/vendor/uplot.js');
    expect([js.status, js.body.toString().includes('uPlot')]).toEqual([200, true]);
    expect((await request(url, '/assets/app.js')).status).toBe(200);
    // Only the listed files are served: nothing reaches the file system by its path.
    for (const p of ['/assets/%2e%2e/%2e%2e/package.json', '/assets/nope.js', '/etc/passwd']) {
      const r = await request(url, p);
      expect([p, r.status, r.json?.error?.code]).toEqual([p, 400, 'CKVC_USAGE']);
    }
  });

  it("/api/overview lists branches, tags and each metric's mode as `ckvc branch` does", async () => {
    const r = (await request(url, '/api/overview')).json;
    expect(r.branches.map((b: any) => b.name)).toEqual(['hostile', 'lowlr', 'main']);
    expect(r.branches).toEqual(cli(S, ['branch']));
    expect(r.tags.map((t: any) => [t.name, t.commit])).toEqual([['best-main', S.ids.main![5]]]);
    expect(r.modes).toEqual({ acc: 'max', loss: 'min', toString: 'max' });
  });

  it('/api/stats is `ckvc stats`', async () => {
    const r = (await request(url, '/api/stats')).json;
    expect(r).toEqual(cli(S, ['stats']));
    expect(r.commits).toBe(11);
  });

  it('/api/log pages through `log --all` with graph lanes; pages join to the whole log', async () => {
    const whole = cli(S, ['log', '--all']).map((c: any) => c.id);
    const seen: string[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const r: any = (await request(url, `/api/log?all=1&offset=${offset}&limit=4`)).json;
      expect(r.commits.length).toBeLessThanOrEqual(4);
      for (const c of r.commits) expect(c.graph).toMatch(/\*/);
      seen.push(...r.commits.map((c: any) => c.id));
      offset = r.next;
      pages++;
    }
    expect([pages, seen]).toEqual([3, whole]);
    const bad = await request(url, '/api/log?limit=0');
    expect([bad.status, bad.json.error.code]).toEqual([400, 'CKVC_BAD_ARGUMENT']);
  });

  it('/api/metrics gives each branch its own points, oldest first, and its best as `ckvc best` picks it', async () => {
    const r = (await request(url, '/api/metrics?key=loss&key=acc')).json;
    expect(r.modes).toEqual({ loss: 'min', acc: 'max' });
    const by = Object.fromEntries(r.series.map((s: any) => [s.branch, s]));
    expect(Object.keys(by).sort()).toEqual(['hostile', 'lowlr', 'main']);
    expect(by.main.ids).toEqual(S.ids.main);
    expect(by.main.values.loss).toEqual([1, 2, 3, 4, 5, 6].map((i) => 2 / i));
    expect(by.lowlr.steps).toEqual([400, 500, 600, 700]);
    expect(by.hostile.values).toEqual({ loss: [3], acc: [null] });
    for (const b of ['main', 'lowlr']) {
      const best = cli(S, ['best', '--metric', 'loss', '--branch', b]);
      expect(by[b].best.loss).toEqual({ id: best.id, value: best.value });
    }
    expect((await request(url, '/api/best?metric=acc&branch=main')).json).toEqual(
      cli(S, ['best', '--metric', 'acc', '--branch', 'main']),
    );
    const none = await request(url, '/api/metrics');
    expect([none.status, none.json.error.code]).toEqual([400, 'CKVC_BAD_ARGUMENT']);
    const many = await request(url, `/api/metrics?${Array.from({ length: 9 }, (_, i) => `key=k${i}`).join('&')}`);
    expect([many.status, many.json.error.code]).toEqual([400, 'CKVC_BAD_ARGUMENT']);
  });

  it('/api/commit takes IDs, prefixes, branches and tags; shows warm starts, config, files and tensors', async () => {
    const first = S.ids.lowlr![0]!;
    const listed = cli(S, ['ls', first, '--tensors']).files;
    for (const rev of [first, first.slice(0, 10), 'lowlr~3']) {
      const r = (await request(url, `/api/commit?rev=${encodeURIComponent(rev)}`)).json;
      expect(r.id).toBe(first);
      expect(r.parents).toEqual([expect.objectContaining({ id: S.ids.main![2], warmStart: true, branch: 'main' })]);
      expect(r.config).toMatchObject({
        name: 'config.yaml',
        text: 'lr: 0.01\nlayers: 2\nwarmup: 50\n',
        truncated: false,
      });
      expect(r.files).toEqual(listed);
    }
    const tag = (await request(url, '/api/commit?rev=best-main')).json;
    expect([tag.id, tag.parents[0].warmStart]).toEqual([S.ids.main![5], false]);
    const unknown = await request(url, '/api/commit?rev=nope');
    expect([unknown.status, unknown.json.error.code]).toEqual([404, 'CKVC_UNKNOWN_REVISION']);
  });

  it('/api/compare is `ckvc diff A B`', async () => {
    const r = (await request(url, '/api/compare?a=main&b=lowlr')).json;
    expect(r).toEqual(cli(S, ['diff', 'main', 'lowlr']));
    expect(r.config.changes).toEqual([
      { path: 'lr', kind: 'changed', old: 0.1, new: 0.01 },
      { path: 'warmup', kind: 'added', new: 50 },
    ]);
    expect(r.metrics.find((m: any) => m.key === 'loss').delta).toBeCloseTo(0.4 - 2 / 6, 10);
  });

  it('/api/file streams a file byte-identical to `ckvc cat`, as an attachment', async () => {
    const r = await request(url, '/api/file?rev=main&path=model.safetensors');
    expect(r.status).toBe(200);
    expect(r.headers['content-disposition']).toBe("attachment; filename*=UTF-8''model.safetensors");
    const cat = ckvcBytes(['cat', 'main:model.safetensors', '--store', S.store]);
    expect([cat.code, cat.stdout.length > 1000, Buffer.compare(r.body, cat.stdout)]).toEqual([0, true, 0]);
    const missing = await request(url, '/api/file?rev=main&path=nope.bin');
    expect([missing.status, missing.json.error.code]).toEqual([404, 'CKVC_PATH_NOT_FOUND']);
  });

  it('refuses a foreign Host (DNS rebinding), another port, and every method but GET and HEAD', async () => {
    const port = new URL(url).port;
    for (const host of [`evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, `localhost.evil.example:${port}`]) {
      for (const p of ['/', '/api/overview', '/api/file?rev=main&path=model.safetensors']) {
        const r = await request(url, p, { headers: { host } });
        expect([host, p, r.status, r.json?.error?.code]).toEqual([host, p, 403, 'CKVC_UNAUTHORIZED']);
      }
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      expect((await request(url, '/api/overview', { headers: { host } })).status).toBe(200);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await request(url, '/api/overview', { method });
      expect([method, r.status, r.json.error.code]).toEqual([method, 403, 'CKVC_UNAUTHORIZED']);
    }
  });
});

describe('the page off loopback, and inside ckvc serve', () => {
  let S: UiStore;
  beforeAll(async () => {
    S = await makeUiStore();
  });
  afterAll(() => {
    stopUiServers();
    cleanupTemp();
  });

  it('ckvc ui on a non-loopback address without a token refuses to start', () => {
    const r = ckvc(['ui', '--host', '0.0.0.0', '--port', '0', '--store', S.store], { env: { CKVC_TOKEN: undefined } });
    expect([r.code, r.stderr]).toEqual([15, expect.stringContaining('[CKVC_BAD_ARGUMENT]')]);
  });

  it('with --host 0.0.0.0 every request needs the token: bearer, ?token= (then a cookie), or the cookie', async () => {
    const printed = await startUi(S.store, ['--host', '0.0.0.0'], { CKVC_TOKEN: 's3cret-token' });
    expect(printed).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/\?token=s3cret-token$/);
    const url = `http://127.0.0.1:${new URL(printed).port}/`;
    const refusedHeaders: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { cookie: 'ckvc_ui_token=s3cret-tokem' },
    ];
    for (const headers of refusedHeaders) {
      const r = await request(url, '/api/overview', { headers });
      expect([headers, r.status, r.json.error.code]).toEqual([headers, 403, 'CKVC_UNAUTHORIZED']);
    }
    expect((await request(url, '/api/overview', { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(
      200,
    );
    const opened = await request(url, '/metrics?key=loss&token=s3cret-token');
    expect([opened.status, opened.headers.location]).toEqual([303, '/metrics?key=loss']);
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    expect(opened.headers['set-cookie']![0]).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await request(url, '/api/overview', { headers: { cookie } })).status).toBe(200);
  });

  it('ckvc serve shows the page at / beside the remote protocol', async () => {
    const url = await startUi(S.store, ['serve']);
    const page = await request(url, '/');
    expect([page.status, page.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
    expect((await request(url, '/api/overview')).json.branches.map((b: any) => b.name)).toEqual([
      'hostile',
      'lowlr',
      'main',
    ]);
    const refs = (await request(url, '/v1/refs')).json.refs;
    expect(Object.keys(refs)).toContain('refs/heads/main');
    const foreign = await request(url, '/api/overview', { headers: { host: `evil.example:${new URL(url).port}` } });
    expect([foreign.status, foreign.json.error.code]).toEqual([403, 'CKVC_UNAUTHORIZED']);
  });

  it('ckvc serve on a non-loopback address without a token serves the protocol but never the page', async () => {
    const printed = await startUi(S.store, ['serve', '--host', '0.0.0.0'], { CKVC_TOKEN: undefined });
    const url = `http://127.0.0.1:${new URL(printed).port}/`;
    expect((await request(url, '/v1/refs')).status).toBe(200);
    const r = await request(url, '/api/overview');
    expect([r.status, r.json.error.code]).toEqual([403, 'CKVC_UNAUTHORIZED']);
  });
});

/** A download as a browser sees it: the status, the bytes that came, and whether the response ended properly. */
function download(url: string, p: string): Promise<{ status: number; bytes: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(p, url), (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', () => {}); // an aborted response: `complete` says so
      res.on('close', () => resolve({ status: res.statusCode!, bytes: Buffer.concat(parts), complete: res.complete }));
    });
    req.on('error', reject);
  });
}

describe('downloads are verified', () => {
  afterAll(() => {
    stopUiServers();
    cleanupTemp();
  });

  it('a file whose stored bytes were damaged never downloads whole: the response fails', async () => {
    const dir = tempDir('ckvc-ui-damaged-');
    const file = path.join(dir, 'weights.bin');
    const content = randomBytes(3, 2 * 1024 * 1024);
    fs.writeFileSync(file, content);
    await initStore(dir);
    const s = await openStore(dir);
    await s.commit({ paths: [file], message: 'v1', branch: 'main', author: 'test', cwd: dir });
    await s.close();
    const packs = fs.readdirSync(path.join(dir, '.ckvc', 'packs')).filter((f) => f.endsWith('.pack'));
    expect(packs).toHaveLength(1);
    const pack = path.join(dir, '.ckvc', 'packs', packs[0]!);
    const url = await startUi(path.join(dir, '.ckvc'));
    const whole = await download(url, '/api/file?rev=main&path=weights.bin');
    expect([whole.status, whole.complete, Buffer.compare(whole.bytes, content)]).toEqual([200, true, 0]);
    const fd = fs.openSync(pack, 'r+');
    const at = Math.floor((fs.statSync(pack).size * 2) / 3);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    fs.writeSync(fd, Buffer.from([b[0]! ^ 0x5a]), 0, 1, at);
    fs.closeSync(fd);
    const r = await download(url, '/api/file?rev=main&path=weights.bin');
    const seen = `status ${r.status}, ${r.bytes.length} bytes, complete ${r.complete}`;
    expect(r.status !== 200 || !r.complete, seen).toBe(true);
    expect(r.bytes.length).toBeLessThan(content.length);
  });
});
