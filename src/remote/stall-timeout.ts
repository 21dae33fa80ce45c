// How long a connection to a remote may carry no bytes, either way, before it counts as stalled (spec/PROTOCOL.md
// §3.1): a push or fetch to a server that stopped answering fails with exit 22 instead of waiting forever, and a
// server drops a client that stopped sending instead of holding its quarantine open. Idle time, not total time:
// a slow link moving a 64 MiB batch for ten minutes is progress; one minute of silence in a request is not.
import { CkvcError } from '../core/errors.js';

/** The default: far longer than any pause of a healthy connection (servers send keep-alives, below). */
export const DEFAULT_STALL_MS = 120_000;
/**
 * A server working on a request sends `102 Processing` this often until its answer starts: 25 bytes a second,
 * and only while it waits (for a gc, a lock) or computes; a client's stall time of a few seconds is then safe,
 * whatever the server's own setting.
 */
export const KEEPALIVE_MS = 1000;

/** CKVC_REMOTE_TIMEOUT_MS milliseconds (0: never time out), else the default. */
export function stallTimeoutMs(): number {
  const raw = process.env.CKVC_REMOTE_TIMEOUT_MS;
  if (raw === undefined || raw === '') return DEFAULT_STALL_MS;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `CKVC_REMOTE_TIMEOUT_MS=${JSON.stringify(raw.slice(0, 40))} is not a whole number of milliseconds; ` +
        `give e.g. ${DEFAULT_STALL_MS} (0: wait forever), or unset it for the default`,
      {},
    );
  }
  return n;
}

/** The error for a connection to `url` that carried nothing for `ms`; `subject` is who went silent, when not the URL. */
export function stalledError(url: string, ms: number, subject = `remote ${url}`): CkvcError {
  const s = ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
  return new CkvcError(
    'CKVC_REMOTE',
    `${subject} sent and took nothing for ${s}: it may be overloaded, hung or cut off; ` +
      'run the command again to resume (a push re-sends at most the batch in flight), ' +
      'or set CKVC_REMOTE_TIMEOUT_MS to wait longer',
    { url, stalledMs: ms },
  );
}
