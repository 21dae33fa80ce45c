// `ckvc serve`: the store-side service over HTTP (spec/PROTOCOL.md §3). Loopback by default; writes need the
// bearer token (none given: read-only). Every request opens the store afresh, so it sees what other processes
// committed, and every failure is answered as a JSON CkvcError the client re-raises with the same code.
import { timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import { CkvcError, ERROR_CODES } from '../core/errors.js';
import { ObjectStore } from '../store/object-store.js';
import { checkIds } from './request-body.js';
import { StoreService, type RefChange } from './store-service.js';

export interface ServeOptions {
  store: string;
  host: string;
  port: number;
  token?: string;
  readOnly?: boolean;
  log?: (line: string) => void;
}

const MAX_JSON_BYTES = 64 * 1024 * 1024;

function status(e: CkvcError): number {
  const exit = ERROR_CODES[e.code].exit;
  if (e.code === 'CKVC_UNAUTHORIZED') return 403;
  if (e.code === 'CKVC_REF_CONFLICT' || e.code === 'CKVC_NON_FAST_FORWARD') return 409;
  if (exit === 14) return 404;
  if (exit === 12 || exit === 15 || exit === 2) return 400;
  if (exit === 11) return 503;
  return 500;
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_JSON_BYTES) throw new CkvcError('CKVC_BAD_BUNDLE', `request body over ${MAX_JSON_BYTES} bytes`, {});
    parts.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(parts).toString('utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new CkvcError('CKVC_BAD_BUNDLE', 'request body is not a JSON object', {});
  }
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': b.length });
  res.end(b);
}

export function createServer(opts: ServeOptions): http.Server {
  const tokenBuf = opts.token ? Buffer.from(opts.token) : undefined;
  const authorised = (req: http.IncomingMessage) => {
    if (opts.readOnly || !tokenBuf) return false;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const given = m ? Buffer.from(m[1]!) : Buffer.alloc(0);
    return given.length === tokenBuf.length && timingSafeEqual(given, tokenBuf);
  };
  const needWrite = (req: http.IncomingMessage) => {
    if (authorised(req)) return;
    const why = opts.readOnly ? 'this server is read-only' : !tokenBuf ? 'this server was started without --token-file, so it takes no writes' : 'a write needs the server\'s token (set CKVC_TOKEN or --token-file)';
    throw new CkvcError('CKVC_UNAUTHORIZED', `the remote refused the write: ${why}`, {});
  };
  return http.createServer((req, res) => {
    void (async () => {
      let store: ObjectStore | undefined;
      try {
        const url = new URL(req.url ?? '/', 'http://x');
        const route = `${req.method} ${url.pathname}`;
        const writes = route === 'POST /v1/receive' || route === 'POST /v1/update-refs';
        if (writes) needWrite(req);
        store = await ObjectStore.open(opts.store);
        const svc = new StoreService(store);
        switch (route) {
          case 'GET /v1/refs':
            return sendJson(res, 200, { refs: await svc.refs() });
          case 'POST /v1/has': {
            const body = await readJson(req);
            return sendJson(res, 200, { has: await svc.has(checkIds(body.ids, 'ids')) });
          }
          case 'POST /v1/plan': {
            const body = await readJson(req);
            return sendJson(res, 200, await svc.plan(checkIds(body.wants, 'wants'), checkIds(body.haves, 'haves')));
          }
          case 'POST /v1/objects': {
            const body = await readJson(req);
            const ids = checkIds(body.ids, 'ids');
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            await svc.sendObjects(ids, res);
            res.end();
            return;
          }
          case 'POST /v1/receive':
            return sendJson(res, 200, await svc.receiveObjects(req, 'objects pushed over HTTP'));
          case 'POST /v1/update-refs': {
            const body = await readJson(req);
            const changes = body.changes;
            if (!Array.isArray(changes) || changes.length > 10_000) throw new CkvcError('CKVC_BAD_BUNDLE', 'changes must be a list of ref updates', {});
            const who = typeof body.who === 'string' ? body.who.slice(0, 200) : 'remote';
            return sendJson(res, 200, { refs: await svc.updateRefs(changes as RefChange[], body.force === true, who) });
          }
          default:
            throw new CkvcError('CKVC_USAGE', `no such endpoint: ${route}`, {});
        }
      } catch (e) {
        const err = e instanceof CkvcError ? e : new CkvcError('CKVC_INTERNAL', `server error: ${(e as Error)?.message ?? String(e)}`, {});
        opts.log?.(`${req.method} ${req.url}: ${err.code} ${err.message}`);
        if (res.headersSent) res.destroy(err); // the client sees a truncated bundle and refuses it
        else {
          req.resume(); // drain what the client is still sending
          sendJson(res, status(err), { error: err.toJSON() });
        }
      } finally {
        await store?.close().catch(() => {});
      }
    })();
  });
}
