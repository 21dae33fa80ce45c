// Servers for remote tests: real `ckvc serve` processes on 127.0.0.1 (with their pid, for /proc), fake servers
// (node:http proxies in the test process that answer or rewrite requests), and raw HTTP requests.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BIN, cliEnv } from './ckvc.js';
import type { TestStore } from './test-store.js';

const children: ChildProcess[] = [];
const proxies: http.Server[] = [];

/** Kills every server started here and closes every proxy. */
export async function stopServers(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const p of proxies) {
    p.closeAllConnections();
    await new Promise((resolve) => p.close(resolve));
  }
}

export interface Server {
  url: string;
  pid: number;
  log: () => string;
}

export async function serve(s: TestStore, extra: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...extra, '--store', s.store], {
    env: { ...cliEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')).trim());
    });
    child.once('exit', () => reject(new Error(`ckvc serve exited: ${err}`)));
  });
  return { url, pid: child.pid!, log: () => err };
}

/** A proxy in front of `upstream`: the handler answers each request, passing it on (`pass`) or not. */
export async function proxy(
  upstream: string,
  handle: (
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
    pass: () => Promise<{ status: number; body: Buffer }>,
  ) => Promise<void>,
): Promise<string> {
  const srv = http.createServer((req, res) => {
    void (async () => {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      const body = Buffer.concat(parts);
      const pass = async () => {
        const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/json' };
        if (req.headers.authorization) headers.authorization = req.headers.authorization;
        const up = await fetch(new URL(req.url!.replace(/^\//, ''), upstream), {
          method: req.method,
          headers,
          body: req.method === 'GET' ? undefined : body,
        });
        return { status: up.status, body: Buffer.from(await up.arrayBuffer()) };
      };
      await handle(req, body, res, pass);
    })().catch((e) => {
      res.writeHead(599);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  proxies.push(srv);
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
}

/** A proxy handler's reply: `status` and `body` (the upstream's, or changed) with the content type ckvc sends. */
export function relay(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, {
    'content-type': req.url === '/v1/objects' ? 'application/octet-stream' : 'application/json',
  });
  res.end(body);
}

/** POSTs a body; `chunked` leaves out Content-Length. Resolves with the status, headers and parsed JSON reply. */
export function post(
  url: string,
  p: string,
  body: Buffer,
  opts: { chunked?: boolean; token?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (!opts.chunked) headers['content-length'] = body.length;
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const req = http.request(new URL(p, url), { method: 'POST', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        let json: any;
        try {
          json = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 256 * 1024) req.write(body.subarray(i, i + 256 * 1024));
    req.end();
  });
}

export function memory(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)![1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
