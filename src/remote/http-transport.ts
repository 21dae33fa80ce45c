// A remote served by `ckvc serve` (spec/PROTOCOL.md §3). Errors come back as JSON CkvcErrors and are raised
// again here with the same code; anything else (a refused connection, a stray answer) is CKVC_REMOTE.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { CkvcError, isCkvcError, isErrorCode } from '../core/errors.js';
import { isJsonObject } from '../core/json-object.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { MAX_OBJECT_BYTES } from '../core/store-format/pack-format.js';
import type { RefUpdate } from './bundle-import.js';
import type { RefChange } from './request-body.js';
import type { Plan, Transport } from './transport.js';
import type { ChainInfo } from '../store/delta-chains.js';
import { readAtMost } from './bounded-read.js';
import { stalledError, stallTimeoutMs } from './stall-timeout.js';

/** IDs per `has` request: a small body for the server to hold (spec/PROTOCOL.md §3). */
const HAS_BATCH = 20_000;
/** Tries of a request the server answered "busy" (503 CKVC_REMOTE_BUSY), and the longest wait between two. */
const BUSY_TRIES = 6;
const MAX_RETRY_AFTER_S = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The most a JSON reply may hold: a plan of about 7.8 million object IDs, under V8's longest string (a larger
 * reply could not be parsed anyway). A server that sends more is refused instead of filling this process's memory.
 */
const MAX_JSON_REPLY = 500 * 1024 * 1024;
/** An error body or a receive's counts: a few hundred bytes. */
const MAX_SMALL_REPLY = 1024 * 1024;

/** How requests travel when not over TCP to `url` itself (SSH: one HTTP connection on a child's pipes). */
export interface HttpCarrier {
  /** The agent handing out the one connection. */
  agent: http.Agent;
  /** The error for a connection that failed (the carrier knows why: ssh's exit status and message). */
  failure(e: Error): Promise<CkvcError>;
  close(): Promise<void>;
}

export class HttpTransport implements Transport {
  /** False once the server said it does not know `chains` (it predates thin bundles). */
  private knowsChains = true;
  /** Read once, so that a bad CKVC_REMOTE_TIMEOUT_MS fails before anything is sent. */
  private readonly stallMs = stallTimeoutMs();

  constructor(
    readonly url: string,
    private readonly token: string | undefined,
    private readonly who: string,
    private readonly carrier?: HttpCarrier,
  ) {}

  /**
   * The response may come before the body is sent (a refused write): the reply is read, then the request is
   * destroyed so the rest of the body is not pushed into a connection nobody reads.
   */
  private request(
    method: string,
    path: string,
    write?: (req: http.ClientRequest) => Promise<void>,
    contentType = 'application/json',
  ): Promise<http.IncomingMessage> {
    const target = new URL(path.replace(/^\//, ''), this.carrier ? 'http://carrier/' : this.url);
    const lib = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(target, {
        method,
        ...(this.carrier ? { agent: this.carrier.agent } : {}),
        headers: { 'content-type': contentType, ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      });
      let response: http.IncomingMessage | undefined;
      if (this.stallMs > 0)
        watchStall(req, this.stallMs, () => {
          const stalled = stalledError(this.url, this.stallMs);
          response?.destroy(stalled); // whoever reads the reply sees why it ended
          req.destroy(stalled);
        });
      req.on('response', (res) => {
        response = res;
        if (res.statusCode !== 200) res.once('end', () => req.destroy());
        resolve(res);
      });
      req.on('error', (e) => {
        if (this.carrier) void this.carrier.failure(e).then(reject);
        else if (isCkvcError(e)) reject(e);
        else
          reject(
            new CkvcError(
              'CKVC_REMOTE',
              `cannot reach ${this.url}: ${(e as NodeJS.ErrnoException).code ?? e.message}; is 'ckvc serve' running there?`,
              { url: this.url },
            ),
          );
      });
      if (!write) req.end();
      else
        write(req).then(
          () => req.end(),
          (e) => {
            req.destroy();
            reject(e);
          },
        );
    });
  }

  /** The reply's body, at most `max` bytes (the server is not trusted to stop). */
  private body(res: http.IncomingMessage, max: number): Promise<Buffer> {
    return readAtMost(
      res,
      max,
      () =>
        new CkvcError(
          'CKVC_REMOTE',
          `remote ${this.url} sent a reply of more than ${max} bytes (outside the protocol)`,
          {
            url: this.url,
          },
        ),
    );
  }

  /** The reply parsed as JSON; one that is not is CKVC_REMOTE. */
  private async parsed<T>(res: http.IncomingMessage, max: number): Promise<T> {
    const text = (await this.body(res, max)).toString('utf8');
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CkvcError('CKVC_REMOTE', `remote ${this.url} sent a reply that is not JSON`, { url: this.url });
    }
  }

  private async errorOf(res: http.IncomingMessage): Promise<CkvcError> {
    let body: Buffer;
    try {
      body = await this.body(res, MAX_SMALL_REPLY);
    } catch (e) {
      if (isCkvcError(e, 'CKVC_REMOTE')) return e;
      throw e;
    }
    try {
      const e = JSON.parse(body.toString('utf8')).error as { code?: unknown; message?: unknown; data?: unknown };
      // Relayed only when it is the protocol's shape: an unknown code (or "constructor", which `in` would have
      // found on Object's prototype, with no exit code: the command then exited 0) is a reply outside it.
      const data = e?.data === undefined ? {} : e.data;
      if (isErrorCode(e?.code) && typeof e.message === 'string' && isJsonObject(data))
        return new CkvcError(e.code, `remote ${this.url}: ${e.message}`, { ...data, remote: this.url });
    } catch {
      // fall through
    }
    return new CkvcError('CKVC_REMOTE', `remote ${this.url} answered HTTP ${res.statusCode} outside the protocol`, {
      url: this.url,
      status: res.statusCode,
    });
  }

  /** Sends a JSON body (if any) and returns the 200 reply; a request the server was too busy to take is tried again after the wait it asked for. */
  private async send(method: string, path: string, body?: unknown): Promise<http.IncomingMessage> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    for (let attempt = 1; ; attempt++) {
      const res = await this.request(
        method,
        path,
        payload &&
          (async (req) => {
            req.setHeader('content-length', payload.length);
            req.write(payload);
          }),
      );
      if (res.statusCode === 200) return res;
      const err = await this.errorOf(res);
      if (err.code !== 'CKVC_REMOTE_BUSY' || attempt >= BUSY_TRIES) throw err;
      // Retry-After in seconds (a missing or odd one counts as 1), capped, with jitter so waiters spread out.
      const asked = Number(res.headers['retry-after'] ?? 1);
      const wait = Math.min(Number.isFinite(asked) && asked >= 0 ? Math.max(asked, 0.1) : 1, MAX_RETRY_AFTER_S);
      await sleep(wait * 1000 * (0.5 + Math.random()));
    }
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.parsed<T>(await this.send(method, path, body), MAX_JSON_REPLY);
  }

  async refs() {
    // Every ckvc serve has /v1/refs: "no such endpoint" (CKVC_USAGE, PROTOCOL.md §2) means the remote's URL names a
    // path the server has none at (its web page answered), not a usage error of the command typed here.
    const r = (
      await this.json<{ refs: unknown }>('GET', '/v1/refs').catch((e) => {
        if (!isCkvcError(e, 'CKVC_USAGE')) throw e;
        throw new CkvcError(
          'CKVC_REMOTE',
          `remote ${this.url} has no ckvc endpoint there (${e.message.replace(`remote ${this.url}: `, '')}); a ckvc serve URL is http://HOST:PORT/ with nothing after the port: 'ckvc remote set NAME URL' corrects it`,
          { url: this.url },
        );
      })
    ).refs;
    if (
      r === null ||
      typeof r !== 'object' ||
      Array.isArray(r) ||
      !Object.values(r).every((v) => typeof v === 'string')
    ) {
      throw new CkvcError(
        'CKVC_REMOTE',
        `remote ${this.url} answered the refs request outside the protocol (not a map of names to IDs)`,
        { url: this.url },
      );
    }
    return r as Record<string, ObjectId>;
  }

  async has(ids: ObjectId[]) {
    const out: boolean[] = [];
    for (let i = 0; i < ids.length; i += HAS_BATCH) {
      const batch = ids.slice(i, i + HAS_BATCH);
      const r = await this.json<{ has: boolean[] }>('POST', '/v1/has', { ids: batch });
      if (!Array.isArray(r.has) || r.has.length !== batch.length || !r.has.every((b) => typeof b === 'boolean'))
        throw new CkvcError(
          'CKVC_REMOTE',
          `remote ${this.url} answered the has request outside the protocol (${batch.length} lookups, not ${Array.isArray(r.has) ? `${r.has.length} booleans` : 'a list'})`,
          { url: this.url },
        );
      out.push(...r.has);
    }
    return out;
  }

  async chains(ids: ObjectId[]): Promise<(ChainInfo | null)[] | undefined> {
    if (!this.knowsChains) return undefined;
    const out: (ChainInfo | null)[] = [];
    for (let i = 0; i < ids.length; i += HAS_BATCH) {
      const batch = ids.slice(i, i + HAS_BATCH);
      let reply: { chains?: unknown };
      try {
        reply = await this.json<{ chains?: unknown }>('POST', '/v1/chains', { ids: batch });
      } catch (e) {
        // An older server: no such endpoint. Transfers go on with self-contained bundles (PROTOCOL.md §4).
        if (!isCkvcError(e, 'CKVC_USAGE')) throw e;
        this.knowsChains = false;
        return undefined;
      }
      out.push(...checkChainsReply(reply.chains, batch.length, this.url));
    }
    return out;
  }

  async plan(wants: ObjectId[], haves: ObjectId[], filter?: string[]): Promise<Plan> {
    if (!filter) return checkPlanReply(await this.json<unknown>('POST', '/v1/plan', { wants, haves }), false, this.url);
    let reply: unknown;
    try {
      reply = await this.json<Plan>('POST', '/v1/plan', { wants, haves, filter: { tensors: filter } });
    } catch (e) {
      // A server older than the filter refuses the unknown field: said as what it means, never sent in full.
      if (!isCkvcError(e, 'CKVC_BAD_BUNDLE') || (e.data as { field?: unknown }).field !== 'filter') throw e;
      throw new CkvcError(
        'CKVC_REMOTE',
        `remote ${this.url} does not know partial fetch (its ckvc predates --filter); nothing was fetched: ` +
          'upgrade ckvc there, or fetch without --filter',
        { url: this.url },
      );
    }
    return checkPlanReply(reply, true, this.url);
  }

  async fetchObjects<T>(
    ids: ObjectId[],
    receive: (source: Readable) => Promise<T>,
    clientHolds?: ReadonlyMap<ObjectId, number>,
  ): Promise<T> {
    const body = clientHolds?.size ? { ids, bases: Object.fromEntries(clientHolds) } : { ids };
    return receive(await this.send('POST', '/v1/objects', body));
  }

  async sendObjects(write: (sink: Writable) => Promise<void>) {
    const res = await this.request('POST', '/v1/receive', write, 'application/octet-stream');
    if (res.statusCode !== 200) throw await this.errorOf(res);
    return this.parsed<{ objects: number; newObjects: number }>(res, MAX_SMALL_REPLY);
  }

  async updateRefs(changes: RefChange[], force: boolean): Promise<RefUpdate[]> {
    const reply = await this.json<unknown>('POST', '/v1/update-refs', { changes, force, who: this.who.slice(0, 200) });
    // Its entries are checked by whoever asked (pushedUpdates); a reply that is no object is no answer at all.
    if (!isJsonObject(reply))
      throw new CkvcError('CKVC_REMOTE', `remote ${this.url} answered the ref update outside the protocol`, {
        url: this.url,
      });
    return reply.refs as RefUpdate[];
  }

  async close() {
    await this.carrier?.close();
  }
}

/**
 * Calls `stalled` when the request's connection carries nothing, reads and writes alike, for `ms` while the request
 * or its reply is under way (PROTOCOL.md §3.1): a server's `102 Processing` keep-alives count, so only a silent
 * connection stalls. A process that was paused (SIGSTOP, a laptop asleep) runs its timers before it reads what
 * arrived meanwhile, so the silence is confirmed one turn of the event loop later. (A pipe's connection confirms
 * it itself, stdio-server.ts.)
 */
function watchStall(req: http.ClientRequest, ms: number, stalled: () => void): void {
  req.once('socket', (socket: Socket) => {
    const onIdle = () => {
      const seen = socket.bytesRead;
      setImmediate(() => {
        if (socket.bytesRead === seen && !req.destroyed) stalled();
      });
    };
    socket.setTimeout(ms);
    socket.on('timeout', onIdle);
    req.once('close', () => socket.removeListener('timeout', onIdle));
  });
}

/**
 * A `plan` reply, checked (the remote is not trusted): lists of object IDs, with `commits` when filtered.
 */
function checkPlanReply(v: unknown, filtered: boolean, url: string): Plan {
  const outside = (what: string) =>
    new CkvcError(
      'CKVC_REMOTE',
      `remote ${url} answered the plan request outside the protocol (${what}); nothing was fetched`,
      {
        url,
      },
    );
  if (!isJsonObject(v)) throw outside('not an object');
  const { objects, prerequisites, commits } = v;
  const ids = (x: unknown): x is ObjectId[] =>
    Array.isArray(x) && x.every((id) => typeof id === 'string' && isObjectId(id));
  if (!ids(objects)) throw outside('"objects" is not a list of object IDs');
  if (prerequisites !== undefined && !ids(prerequisites)) throw outside('"prerequisites" is not a list of object IDs');
  // (That each of `commits` is a commit the plan sends is checked where the promises are recorded.)
  if (filtered && !ids(commits)) throw outside('a filtered plan without the list of its commits');
  const { sizes } = v;
  const size = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_OBJECT_BYTES;
  if (sizes !== undefined && (!Array.isArray(sizes) || sizes.length !== objects.length || !sizes.every(size)))
    throw outside('"sizes" is not one stored length per object');
  return {
    objects,
    prerequisites: prerequisites ?? [],
    ...(filtered ? { commits: commits as ObjectId[] } : {}),
    ...(sizes ? { sizes: sizes as number[] } : {}),
  };
}

/** A `chains` reply, checked: one entry per ID, each null or `{depth, base?}` (the remote is not trusted). */
function checkChainsReply(v: unknown, n: number, url: string): (ChainInfo | null)[] {
  const outside = () =>
    new CkvcError('CKVC_REMOTE', `remote ${url} answered the chains request outside the protocol`, { url });
  if (!Array.isArray(v) || v.length !== n) throw outside();
  return v.map((c) => {
    if (c === null) return null;
    if (typeof c !== 'object' || Array.isArray(c)) throw outside();
    const { depth, base } = c as { depth?: unknown; base?: unknown };
    if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 0 || depth > 64) throw outside();
    if (base === undefined) return { depth };
    if (typeof base !== 'string' || !isObjectId(base)) throw outside();
    return { depth, base };
  });
}
