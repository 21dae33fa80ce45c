// `ckvc ui`, and the page `ckvc serve` shows at `/` (spec/UI.md): static files, the addressable views (all one
// HTML page that reads its route from the URL) and the JSON endpoints. Read-only: GET and HEAD only. Every
// request opens the store afresh, so the page sees what training runs committed since.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { openStore, type Store } from '../api/index.js';
import { CkvcError } from '../core/errors.js';
import { listenOn } from '../remote/http-listen.js';
import { httpStatus } from '../remote/http-server.js';
import { checkAccess, isLoopback, presentedToken, requireToken, TOKEN_COOKIE, type UiAccess } from './ui-access.js';
import { CommitCache } from './commit-cache.js';
import { JSON_ROUTES, warmCommits } from './ui-api.js';
import { assetTable, type Asset } from './ui-assets.js';

export interface UiHandlerOptions extends UiAccess {
  /** The store's root folder. */
  store: string;
  log?: (line: string) => void;
}

export type UiHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

/** Page routes: each answers the same HTML; the page's script renders the view the path names. */
const PAGE_ROUTE = /^\/(?:$|metrics$|commit\/.+|compare\/[^/]+\/[^/]+$)/;

// The page runs only its own scripts and styles and talks only to this server; nothing can frame it.
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

function send(
  res: http.ServerResponse,
  code: number,
  type: string,
  body: Buffer,
  headers: Record<string, string> = {},
) {
  res.writeHead(code, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(body.length), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  send(res, code, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(body)));
}

function sendAsset(res: http.ServerResponse, asset: Asset): void {
  send(res, 200, asset.type, fs.readFileSync(asset.file));
}

/** Writes `bytes` to the response, waiting while the client is slow; fails when the client goes away. */
function writer(res: http.ServerResponse, start: () => void): (bytes: Uint8Array) => Promise<void> {
  return (bytes) =>
    new Promise<void>((resolve, reject) => {
      start();
      if (res.destroyed) return reject(new Error('the client closed the connection'));
      // A copy: the response queues what it is given until the socket takes it, and `bytes` goes back to the
      // reader's pool when this resolves: a slow client could get a later chunk's bytes in its place (the test
      // run's poisoned pool showed it, BufferPool.poisonReleased).
      if (res.write(Buffer.from(bytes))) return resolve();
      const done = () => {
        res.off('close', gone);
        resolve();
      };
      const gone = () => {
        res.off('drain', done);
        reject(new Error('the client closed the connection'));
      };
      res.once('drain', done).once('close', gone);
    });
}

/** GET /api/file?rev=R&path=P: the file's bytes, streamed and verified chunk by chunk as `ckvc cat` does. */
async function sendFile(s: Store, res: http.ServerResponse, params: URLSearchParams): Promise<void> {
  const rev = params.get('rev');
  const file = params.get('path');
  if (!rev || !file) throw new CkvcError('CKVC_BAD_ARGUMENT', 'a download needs ?rev=REV&path=PATH', {});
  const start = () => {
    if (res.headersSent) return;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(path.posix.basename(file))}`,
    });
  };
  // A chunk that fails verification mid-file ends the response without its final chunk: the download fails.
  await s.cat(`${await s.resolve(rev)}:${file}`, writer(res, start));
  start();
  res.end();
}

/** A browser that opened `?token=T` keeps the token as a cookie for the page's own requests, then sees the URL
 * without it. */
function tokenRedirect(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean {
  if (!url.searchParams.has('token') || req.method !== 'GET') return false;
  const token = presentedToken(req, url)!;
  url.searchParams.delete('token');
  res.writeHead(303, {
    ...SECURITY_HEADERS,
    location: `/${url.pathname.replace(/^\/+/, '')}${url.search}`,
    'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`,
  });
  res.end();
  return true;
}

interface Served {
  assets: Map<string, Asset>;
  cache: CommitCache;
}

async function route(opts: UiHandlerOptions, served: Served, req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://page.invalid');
  checkAccess(opts, req, url);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new CkvcError('CKVC_UNAUTHORIZED', `the page is read-only: ${req.method} is refused; use GET`, {});
  }
  if (tokenRedirect(req, res, url)) return;
  // Browsers ask for it on every page; the page has none.
  if (url.pathname === '/favicon.ico') return send(res, 204, 'image/x-icon', Buffer.alloc(0));
  const { assets, cache } = served;
  const asset =
    assets.get(url.pathname) ?? (PAGE_ROUTE.test(url.pathname) ? assets.get('/assets/index.html') : undefined);
  if (asset) return sendAsset(res, asset);
  const endpoint = JSON_ROUTES[url.pathname];
  if (!endpoint && url.pathname !== '/api/file') {
    throw new CkvcError('CKVC_USAGE', `no such page or endpoint: ${url.pathname}; the page starts at /`, {});
  }
  const store = await openStore(opts.store);
  try {
    if (endpoint) return sendJson(res, 200, await endpoint(store, url.searchParams, cache));
    await sendFile(store, res, url.searchParams);
  } finally {
    await store.close().catch(() => {});
  }
}

export function createUiHandler(opts: UiHandlerOptions, cache = new CommitCache()): UiHandler {
  const served = { assets: assetTable(), cache };
  return async (req, res) => {
    try {
      await route(opts, served, req, res);
    } catch (e) {
      const err =
        e instanceof CkvcError
          ? e
          : new CkvcError('CKVC_INTERNAL', `page error: ${(e as Error)?.message ?? String(e)}`, {});
      opts.log?.(`${req.method} ${req.url}: ${err.code} ${err.message}`);
      if (res.headersSent) res.destroy(err);
      else sendJson(res, httpStatus(err), { error: err.toJSON() });
    }
  };
}

/** Reads the history in the background once the server listens; a failure here is only logged (requests report
 * their own). */
async function warm(opts: UiHandlerOptions, cache: CommitCache): Promise<void> {
  try {
    const store = await openStore(opts.store);
    try {
      await warmCommits(store, cache);
    } finally {
      await store.close();
    }
  } catch (e) {
    opts.log?.(`reading the history ahead failed: ${(e as Error).message}`);
  }
}

export interface UiOptions extends UiHandlerOptions {
  port: number;
}

/** `ckvc ui`: serves the page until the server is closed; the URL carries the token when one is needed. */
export async function startUi(opts: UiOptions): Promise<{ server: http.Server; url: string }> {
  requireToken(opts.host, opts.token);
  const cache = new CommitCache();
  const handler = createUiHandler(opts, cache);
  const server = http.createServer((req, res) => void handler(req, res));
  await listenOn(server, opts.port, opts.host);
  cache.warming = warm(opts, cache).finally(() => {
    cache.warming = undefined;
  });
  const port = (server.address() as import('node:net').AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const query = opts.token && !isLoopback(opts.host) ? `?token=${encodeURIComponent(opts.token)}` : '';
  const url = `http://${host}:${port}/${query}`;
  return { server, url };
}
