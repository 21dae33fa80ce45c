// Advisory lock files (spec/FORMAT.md §7): created with O_EXCL, holding the owner's pid, host and a nonce.
// A lock whose owner is a dead process on this host is stale and broken; a live owner is waited for up to a
// limit, then CKVC_LOCKED. Locks are held for milliseconds (a ref update), never across a whole commit; the one
// exception is the lock a `ckvc watch` holds on its branch for as long as it runs.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { CkvcError } from '../core/errors.js';
import { ioError } from './durable-fs.js';
import { randomHex } from './random-hex.js';

export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOwner {
  pid: number;
  host: string;
  nonce: string;
  time: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function newOwner(): LockOwner {
  return { pid: process.pid, host: os.hostname(), nonce: randomHex(8), time: Date.now() };
}

export function ownerIsDead(owner: LockOwner | undefined): boolean {
  if (!owner || owner.host !== os.hostname()) return false;
  return !processRunning(owner.pid);
}

/** Is a process with this pid running on this host? Only "no such process" counts as no: EPERM is someone's. */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export async function readOwner(p: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await fs.readFile(p, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' && typeof o.nonce === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Breaks a stale lock. The rename is atomic, so of several breakers only one moves a given file; if what it
 * moved turns out to be a fresh lock (someone re-took it in between), it is put back. */
async function breakStale(p: string, stale: LockOwner): Promise<void> {
  const aside = `${p}.stale.${process.pid}.${randomHex(4)}`;
  try {
    await fs.rename(p, aside);
  } catch {
    return;
  }
  const moved = await readOwner(aside);
  if (moved && moved.nonce !== stale.nonce) await fs.link(aside, p).catch(() => {});
  await fs.rm(aside, { force: true });
}

export async function acquireLock(
  p: string,
  what: string,
  timeoutMs = Number(process.env.CKVC_LOCK_TIMEOUT_MS ?? 30_000),
): Promise<HeldLock> {
  const owner = newOwner();
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const fh = await fs.open(p, 'wx', 0o644);
      await fh.writeFile(JSON.stringify(owner));
      await fh.close();
      return {
        path: p,
        async release() {
          const cur = await readOwner(p);
          if (cur?.nonce === owner.nonce) await fs.rm(p, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(e, 'create lock', p);
    }
    const cur = await readOwner(p);
    if (cur && ownerIsDead(cur)) {
      await breakStale(p, cur);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new CkvcError(
        'CKVC_LOCKED',
        `${what} is locked by ${cur ? `process ${cur.pid} on ${cur.host}` : 'another process'} (${p}); wait for it to finish, or remove the lock file if that process is gone`,
        { path: p, owner: cur },
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

export async function withLock<T>(p: string, what: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(p, what);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Is lock file `p` held by a live process (or one we cannot check)? An unreadable lock that exists counts as held. */
export async function lockHeld(p: string): Promise<LockOwner | undefined> {
  const owner = await readOwner(p);
  if (owner) return ownerIsDead(owner) ? undefined : owner;
  return (await fs.stat(p).catch(() => undefined)) ? { pid: 0, host: '?', nonce: '', time: 0 } : undefined;
}

/** Waits until nobody holds lock file `p` (a stale one is broken); CKVC_LOCKED once `deadline` passes. */
export async function waitUntilFree(p: string, what: string, deadline: number): Promise<void> {
  let delay = 2;
  for (;;) {
    const cur = await readOwner(p);
    if (cur && ownerIsDead(cur)) {
      await breakStale(p, cur);
      continue;
    }
    if (!cur && !(await fs.stat(p).catch(() => undefined))) return;
    if (Date.now() >= deadline) {
      throw new CkvcError(
        'CKVC_LOCKED',
        `${what} is locked by ${cur ? `process ${cur.pid} on ${cur.host}` : 'another process'} (${p}); wait for it to finish, or remove the lock file if that process is gone`,
        { path: p, owner: cur },
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}
