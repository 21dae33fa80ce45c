// Who may see the page (spec/UI.md §2). A web page on loopback is reachable by every site the user's browser
// opens: a page on evil.example whose name is re-pointed at 127.0.0.1 (DNS rebinding) would read the store
// with the browser's help. Its requests carry `Host: evil.example`, so only Host names the server itself
// answers to are served. On a non-loopback address anyone on the network could connect: the token is required.
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { CkvcError } from '../core/errors.js';

/** Name of the cookie holding the token once a browser has presented `?token=`. */
export const TOKEN_COOKIE = 'ckvc_ui_token';

export interface UiAccess {
  /** The address the server is bound to, as given (127.0.0.1, ::1, localhost, 0.0.0.0, a name). */
  host: string;
  /** Required from every request on a non-loopback host (never absent there: see requireToken). */
  token?: string;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** A non-loopback bind without a token would publish the store's contents to the network: refused at start. */
export function requireToken(host: string, token: string | undefined): void {
  if (!isLoopback(host) && !token) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `the page would be open to the network on --host ${host} without a token; ` +
        'give --token-file FILE (or set CKVC_TOKEN), or leave out --host to serve on 127.0.0.1 only',
      { host },
    );
  }
}

/** The host name and port a Host header names (IPv6 literals in brackets). */
function parseHostHeader(value: string): { name: string; port?: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  return { name: m[1]!.replace(/^\[|\]$/g, '').toLowerCase(), port: m[2] === undefined ? undefined : Number(m[2]) };
}

/**
 * Host names this server answers to: an IP literal (a rebinding page cannot send one of those as its own
 * name), `localhost` on a loopback bind, and the bound name itself.
 */
export function hostAllowed(access: UiAccess, header: string | undefined, port: number | undefined): boolean {
  if (!header) return false;
  const h = parseHostHeader(header);
  if (!h || (h.port ?? 80) !== port) return false;
  const bound = access.host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h.name === bound) return true;
  if (isIP(h.name)) return true;
  return h.name === 'localhost' && isLoopback(bound);
}

function sameSecret(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer`, the cookie, or `?token=` (the printed URL). */
export function presentedToken(req: IncomingMessage, url: URL): string | undefined {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (bearer) return bearer;
  const query = url.searchParams.get('token');
  if (query) return query;
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === TOKEN_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/** Throws CKVC_UNAUTHORIZED (403) when the request's Host is foreign or a required token is missing or wrong. */
export function checkAccess(access: UiAccess, req: IncomingMessage, url: URL): void {
  // The port the connection came in on is the bound port: a Host naming another port is someone else's page.
  const port = req.socket.localPort;
  if (!hostAllowed(access, req.headers.host, port)) {
    throw new CkvcError(
      'CKVC_UNAUTHORIZED',
      `refused a request for Host ${JSON.stringify(req.headers.host ?? '')}: ` +
        `this page answers only to its own address (port ${port}); open the URL ckvc ui printed`,
      {},
    );
  }
  // On loopback the Host check is the guard (the URL `ckvc serve` prints carries no token).
  if (isLoopback(access.host)) return;
  if (access.token === undefined) {
    // `ckvc serve --host 0.0.0.0` without a token serves the remote protocol read-only, but never this page.
    throw new CkvcError(
      'CKVC_UNAUTHORIZED',
      `the page is not shown on ${access.host} without a token: ` +
        'start the server with --token-file FILE, or on 127.0.0.1',
      {},
    );
  }
  const given = presentedToken(req, url);
  if (!given || !sameSecret(given, access.token)) {
    throw new CkvcError(
      'CKVC_UNAUTHORIZED',
      "this page needs the server's token: open the URL with ?token=TOKEN " +
        '(the token in --token-file or CKVC_TOKEN)',
      {},
    );
  }
}
