// SSH remote addresses (spec/PROTOCOL.md §1, §5): `ssh://[user@]host[:port]/path` and git's scp-like
// `[user@]host:path`, both stored in the one canonical ssh:// form. Host and user become arguments of the ssh
// command, so they are held to a narrow alphabet: a name starting with '-' would be read as an ssh option.
import { CkvcError } from '../core/errors.js';

export interface SshAddress {
  user?: string;
  host: string;
  port?: number;
  /** The store's path on the far side: absolute, or relative to the login's home as `~` or `~/...`. */
  path: string;
}

const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const HOST = /^(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function isSshUrl(url: string): boolean {
  return /^ssh:\/\//i.test(url);
}

/** git's rule: `host:path` is scp-like when a ':' comes before any '/' (so `./a:b` and `/x/a:b` are folders). */
export function looksLikeScp(url: string): boolean {
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  return colon > 0 && (slash < 0 || colon < slash) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

function badAddress(url: string, why: string): CkvcError {
  const forms = 'ssh://[user@]host[:port]/path or [user@]host:path';
  return new CkvcError('CKVC_BAD_ARGUMENT', `SSH remote ${JSON.stringify(url)}: ${why}; write ${forms}`, { url });
}

function checked(url: string, a: SshAddress): SshAddress {
  if (a.user !== undefined && !USER.test(a.user)) {
    throw badAddress(url, `the user name ${JSON.stringify(a.user)} is not a plain login name`);
  }
  if (!HOST.test(a.host)) {
    throw badAddress(url, `the host ${JSON.stringify(a.host)} is not a host name or [IPv6 address]`);
  }
  if (a.port !== undefined && !(Number.isInteger(a.port) && a.port >= 1 && a.port <= 65535)) {
    throw badAddress(url, 'the port is not a number from 1 to 65535');
  }
  if (!a.path || a.path === '/') throw badAddress(url, 'it names no store path');
  if (CONTROL.test(a.path)) throw badAddress(url, 'the path holds control characters');
  return a;
}

function splitUserHost(s: string): { user?: string; host: string } {
  const at = s.lastIndexOf('@');
  return at < 0 ? { host: s } : { user: s.slice(0, at), host: s.slice(at + 1) };
}

/** Parses either form; throws CKVC_BAD_ARGUMENT naming what is wrong. */
export function parseSshUrl(url: string): SshAddress {
  if (isSshUrl(url)) {
    const m = /^ssh:\/\/([^/]*)(\/.*)?$/i.exec(url);
    if (!m) throw badAddress(url, 'it does not parse');
    const authority = /^((?:[^@]*@)?(?:\[[^\]]*\]|[^:]*))(?::(.*))?$/.exec(m[1]!);
    if (!authority) throw badAddress(url, 'its host part does not parse');
    const { user, host } = splitUserHost(authority[1]!);
    const port = authority[2] === undefined ? undefined : /^\d+$/.test(authority[2]) ? Number(authority[2]) : NaN;
    let p = m[2] ?? '';
    if (p === '/~' || p.startsWith('/~/')) p = p.slice(1);
    return checked(url, { user, host, port, path: p });
  }
  if (!looksLikeScp(url)) throw badAddress(url, 'it is neither ssh:// nor host:path');
  const colon = url.indexOf(':');
  const { user, host } = splitUserHost(url.slice(0, colon));
  const rest = url.slice(colon + 1);
  if (!rest) throw badAddress(url, 'it names no store path after the colon');
  // `host:8765` is a port the user meant for HTTP (or ssh://), not a store folder named 8765 in the home folder.
  if (/^\d+\/?$/.test(rest)) {
    throw badAddress(
      url,
      `'${rest.replace(/\/$/, '')}' after the colon reads as a folder of the SSH home, but looks like a port: for 'ckvc serve' write http://${url.slice(0, colon)}:${rest}, for SSH on that port ssh://${url.slice(0, colon)}:${rest.replace(/\/$/, '')}/path/to/store`,
    );
  }
  const p = rest.startsWith('/') || rest === '~' || rest.startsWith('~/') ? rest : `~/${rest}`;
  return checked(url, { user, host, path: p });
}

/** The canonical form stored in remotes.json. */
export function formatSshUrl(a: SshAddress): string {
  const authority = `${a.user ? `${a.user}@` : ''}${a.host}${a.port ? `:${a.port}` : ''}`;
  return `ssh://${authority}${a.path.startsWith('/') ? '' : '/'}${a.path}`;
}
