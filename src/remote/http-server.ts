// `ckvc serve`: the store-side service over HTTP (spec/PROTOCOL.md §3). Loopback by default; writes need the
// bearer token (none given: read-only). Every request opens the store afresh, so it sees what other processes
// committed, and every failure is answered as a JSON CkvcError the client re-raises with the same code.
import { timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { bad } from '../core/store-format/bundle-format.js';
import { CkvcError, EXIT } from '../core/errors.js';
import { ObjectStore } from '../store/object-store.js';
import { parseIdsBody, parseObjectsBody, parsePlanBody, parseUpdateRefsBody } from './request-body.js';
import { KEEPALIVE_MS, stallTimeoutMs } from './stall-timeout.js';
import { StoreService } from './store-service.js';

export interface ServeOptions {
  store: string;
  host: string;
  port: number;
  token?: string;
  readOnly?: boolean;
  /** The connection was authenticated before it reached the server (SSH): writes need no token. */
  authenticatedConnection?: boolean;
  log?: (line: string) => void;
  /** Bytes of JSON request bodies held at once across all requests (default JSON_BUDGET). */
  jsonBudget?: number;
  /** Answers every request outside /v1/: the web page (src/ui), which does its own access checks. */
  page?: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
}

const MiB = 1024 * 1024;
/** Per-request caps on JSON bodies: 200,000 IDs are 13.4 MB as JSON; plan carries two such lists. */
export const JSON_CAPS: Readonly<Record<string, number>> = {
  has: 16 * MiB,
  chains: 16 * MiB,
  objects: 16 * MiB,
  plan: 32 * MiB,
  'update-refs': 4 * MiB,
};
/** JSON request bodies held at once, all requests together: each is buffered and parsed whole. */
export const JSON_BUDGET = 32 * MiB;
/** Seconds a client told "busy" should wait before trying again. */
const RETRY_AFTER_S = 1;

// Status by code first, then by exit code (spec/PROTOCOL.md §3); anything else is the server's fault: 500.
const STATUS_BY_CODE: Partial<Record<CkvcError['code'], number>> = {
  CKVC_UNAUTHORIZED: 403,
  CKVC_REF_CONFLICT: 409,
  CKVC_NON_FAST_FORWARD: 409,
  CKVC_REMOTE_BUSY: 503,
};
const STATUS_BY_EXIT: Partial<Record<number, number>> = {
  [EXIT.USAGE]: 400,
  [EXIT.CORRUPT]: 400,
  [EXIT.BAD_INPUT]: 400,
  [EXIT.NOT_FOUND]: 404,
  [EXIT.LOCKED]: 503,
};

export function httpStatus(e: CkvcError): number {
  return STATUS_BY_CODE[e.code] ?? STATUS_BY_EXIT[e.exitCode] ?? 500;
}

/** Bytes of request bodies held by requests in flight, against one budget for the whole server. */
class Budget {
  private used = 0;
  constructor(readonly total: number) {}

  /** Reserves n bytes for `held`, or says the server is busy. */
  take(held: { bytes: number }, n: number): void {
    if (this.used + n > this.total) {
      throw new CkvcError(
        'CKVC_REMOTE_BUSY',
        `the server is busy: ${(this.used / MiB).toFixed(1)} MiB of request bodies are in flight (its budget is ${(this.total / MiB).toFixed(0)} MiB); try again in ${RETRY_AFTER_S} s`,
        { retryAfter: RETRY_AFTER_S },
      );
    }
    this.used += n;
    held.bytes += n;
  }

  give(held: { bytes: number }): void {
    this.used -= held.bytes;
    held.bytes = 0;
  }
}

/**
 * Hands each piece of the body to `take`. A piece `take` refuses fails the read at once, and the rest of the body
 * is read and dropped: the request stays whole, so the refusal can be answered on the same connection (breaking
 * out of an async iteration would destroy the request and the client would see a reset, not the answer).
 */
function readBody(req: http.IncomingMessage, take: (piece: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (e: unknown) => {
      if (!failed) reject(e);
      failed = true;
    };
    req.on('data', (piece: Buffer) => {
      if (failed) return;
      try {
        take(piece);
      } catch (e) {
        fail(e);
      }
    });
    req.once('end', () => {
      if (!failed) resolve();
    });
    req.once('error', fail);
    req.once('close', () => {
      if (!req.complete) fail(new Error('the client closed the connection'));
    });
  });
}

/**
 * Reads a JSON body under its endpoint's cap, holding its bytes against the budget (until the request ends): a
 * declared length over the cap is refused before a byte is read, and a body of unknown length is counted as it comes.
 */
async function readJson(
  req: http.IncomingMessage,
  endpoint: string,
  budget: Budget,
  held: { bytes: number },
): Promise<unknown> {
  const cap = JSON_CAPS[endpoint]!;
  const what = `the ${endpoint} request`;
  const tooBig = () => bad(what, `has a body over ${cap / MiB} MiB; send fewer IDs per request`, { cap });
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  let body: Buffer;
  if (declared !== undefined) {
    if (!(declared <= cap)) throw tooBig();
    budget.take(held, declared);
    const whole = Buffer.allocUnsafe(declared);
    let at = 0;
    await readBody(req, (piece) => {
      at += piece.copy(whole, at);
    });
    body = whole.subarray(0, at);
  } else {
    const parts: Buffer[] = [];
    let n = 0;
    await readBody(req, (piece) => {
      n += piece.length;
      if (n > cap) throw tooBig();
      budget.take(held, 2 * piece.length); // the pieces, then their concatenation
      parts.push(piece);
    });
    body = Buffer.concat(parts);
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw bad(what, 'has a body that is not JSON');
  }
}

function sendJson(res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': b.length, ...headers });
  res.end(b);
}

export function createServer(opts: ServeOptions): http.Server {
  const budget = new Budget(opts.jsonBudget ?? JSON_BUDGET);
  const tokenBuf = opts.token ? Buffer.from(opts.token) : undefined;
  const authorised = (req: http.IncomingMessage) => {
    if (opts.readOnly) return false;
    if (opts.authenticatedConnection) return true;
    if (!tokenBuf) return false;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const given = m ? Buffer.from(m[1]!) : Buffer.alloc(0);
    return given.length === tokenBuf.length && timingSafeEqual(given, tokenBuf);
  };
  const needWrite = (req: http.IncomingMessage) => {
    if (authorised(req)) return;
    const why = opts.readOnly
      ? 'this server is read-only'
      : !tokenBuf
        ? 'this server was started without --token-file, so it takes no writes'
        : req.headers.authorization
          ? "the token sent is not the server's (check CKVC_TOKEN or the remote's --token-file)"
          : "a write needs the server's token (set CKVC_TOKEN, or save it for the remote: 'ckvc remote set NAME --token-file FILE')";
    throw new CkvcError('CKVC_UNAUTHORIZED', `the remote refused the write: ${why}`, {});
  };
  const stallMs = stallTimeoutMs();
  const server = http.createServer((req, res) => {
    if (opts.page && !(req.url ?? '').startsWith('/v1/')) return void opts.page(req, res);
    // Until its answer starts, a request keeps the connection alive with `102 Processing` (PROTOCOL.md §3.1)
    // while the server works on it (waiting out a gc or a lock, planning over a large store) and while its body
    // is arriving (a client whose last bytes sit in its kernel's buffers on a slow link sees progress), so that a
    // client's stall timeout fires on a silent server only. Not while a body has stopped arriving: that silence
    // is the client's, and the server's own idle timeout ends it. (A pipe counts no bytes: always, there.)
    const socket = req.socket as Partial<Socket>;
    let bytesRead = socket.bytesRead;
    const keepAlive = setInterval(() => {
      const arriving = socket.bytesRead === undefined || socket.bytesRead !== bytesRead;
      bytesRead = socket.bytesRead;
      const serversTurn = req.complete || req.readableLength > 0;
      if ((serversTurn || arriving) && !res.headersSent && !res.destroyed) res.writeProcessing();
    }, KEEPALIVE_MS);
    keepAlive.unref();
    res.once('close', () => clearInterval(keepAlive));
    void (async () => {
      let store: ObjectStore | undefined;
      const held = { bytes: 0 };
      try {
        const url = new URL(req.url ?? '/', 'http://x');
        const route = `${req.method} ${url.pathname}`;
        const writes = route === 'POST /v1/receive' || route === 'POST /v1/update-refs';
        if (writes) needWrite(req);
        // A JSON body is read (and refused when too big or the server is busy) before the store is opened.
        const endpoint = /^POST \/v1\/(has|chains|plan|objects|update-refs)$/.exec(route)?.[1];
        const body = endpoint ? await readJson(req, endpoint, budget, held) : undefined;
        store = await ObjectStore.open(opts.store);
        const svc = new StoreService(store);
        switch (route) {
          case 'GET /v1/refs':
            return sendJson(res, 200, { refs: await svc.refs() });
          case 'POST /v1/has':
            return sendJson(res, 200, { has: await svc.has(parseIdsBody(body, 'has')) });
          case 'POST /v1/chains':
            return sendJson(res, 200, { chains: await svc.chains(parseIdsBody(body, 'chains')) });
          case 'POST /v1/plan': {
            const p = parsePlanBody(body);
            return sendJson(res, 200, await svc.plan(p.wants, p.haves, p.filter));
          }
          case 'POST /v1/objects': {
            const { ids, bases } = parseObjectsBody(body);
            // Sent with the bundle's first byte, not before: until then the server may wait out a gc or build a
            // scratch pack, and keep-alives (above) go out only while no answer has started.
            res.statusCode = 200;
            res.setHeader('content-type', 'application/octet-stream');
            await svc.sendObjects(ids, res, bases);
            res.end();
            return;
          }
          case 'POST /v1/receive':
            return sendJson(res, 200, await svc.receiveObjects(req, 'objects pushed over HTTP'));
          case 'POST /v1/update-refs': {
            const u = parseUpdateRefsBody(body);
            return sendJson(res, 200, { refs: await svc.updateRefs(u.changes, u.force, u.who) });
          }
          default:
            throw new CkvcError('CKVC_USAGE', `no such endpoint: ${route}`, {});
        }
      } catch (e) {
        // A client that closed its connection mid-request is not a server error: its request is simply dropped
        // (a bundle it was sending is removed with its quarantine).
        if ((req.destroyed && !req.complete) || res.destroyed) {
          opts.log?.(
            `${req.method} ${req.url}: the connection ended mid-request (the client went away, or sent nothing for ` +
              'the stall time); the request was dropped, nothing of it stored',
          );
          return;
        }
        const err =
          e instanceof CkvcError
            ? e
            : new CkvcError('CKVC_INTERNAL', `server error: ${(e as Error)?.message ?? String(e)}`, {});
        opts.log?.(`${req.method} ${req.url}: ${err.code} ${err.message}`);
        if (res.headersSent)
          res.destroy(err); // the client sees a truncated bundle and refuses it
        else {
          req.resume(); // drain what the client is still sending
          sendJson(
            res,
            httpStatus(err),
            { error: err.toJSON() },
            err.code === 'CKVC_REMOTE_BUSY' ? { 'retry-after': String(RETRY_AFTER_S) } : {},
          );
        }
      } finally {
        clearInterval(keepAlive);
        budget.give(held);
        await store?.close().catch(() => {});
      }
    })();
  });
  // Idle time, not a whole request's: Node's default of 5 minutes per request would cut a 64 MiB push batch on a
  // link slower than 220 KB/s, every time. A client silent for the stall time is dropped with its quarantine.
  server.requestTimeout = 0;
  server.timeout = stallMs;
  return server;
}
