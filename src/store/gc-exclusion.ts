// gc and writers exclude each other (spec/FORMAT.md §15): a writer registers a file in locks/writers/ and then
// looks for locks/gc.lock; gc takes gc.lock and then waits for locks/writers/ to hold no live writer. Each
// side publishes itself before looking for the other, so they never both go ahead. Writers never wait for
// each other: only gc is exclusive.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError, isCkvcError } from '../core/errors.js';
import { ioError } from './durable-fs.js';
import { acquireLock, newOwner, ownerIsDead, readOwner, type HeldLock } from './lock-file.js';
import type { StoreLayout } from './store-layout.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gcWaitMs = () => Number(process.env.CKVC_GC_WAIT_MS ?? 600_000);

export interface WriterRegistration {
  release(): Promise<void>;
}

/** Is gc.lock held by a live process (or one on another host, which we cannot check)? Stale locks are removed. */
async function gcRunning(layout: StoreLayout): Promise<{ pid: number; host: string } | undefined> {
  const owner = await readOwner(layout.gcLockFile);
  if (!owner) {
    // Absent, or being written this very moment: an unreadable lock that exists counts as held.
    return (await fs.stat(layout.gcLockFile).catch(() => undefined)) ? { pid: 0, host: '?' } : undefined;
  }
  if (ownerIsDead(owner)) return undefined; // gc.lock's own waiters break it; a writer just ignores it
  return owner;
}

export async function registerWriter(layout: StoreLayout): Promise<WriterRegistration> {
  const deadline = Date.now() + gcWaitMs();
  await fs.mkdir(layout.writersDir, { recursive: true }).catch((e) => {
    throw ioError(e, 'create', layout.writersDir);
  });
  let delay = 20;
  for (;;) {
    const owner = newOwner();
    const file = path.join(layout.writersDir, `${owner.pid}-${owner.nonce}`);
    await fs.writeFile(file, JSON.stringify(owner), { flag: 'wx' }).catch((e) => {
      throw ioError(e, 'register a writer in', layout.writersDir);
    });
    const gc = await gcRunning(layout);
    if (!gc) return { release: () => fs.rm(file, { force: true }).catch(() => {}) };
    await fs.rm(file, { force: true });
    if (Date.now() >= deadline) {
      throw new CkvcError(
        'CKVC_LOCKED',
        `ckvc gc (process ${gc.pid} on ${gc.host}) is running on this store; wait for it to finish and retry (${layout.gcLockFile})`,
        { path: layout.gcLockFile, owner: gc },
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}

/**
 * For a command that only reads but must not have gc repack what it is copying out (sending objects): it
 * registers like a writer where it can. A store it may not write cannot be collected by it either, and it
 * cannot hold off the owner's gc there: it waits out a running gc, then goes ahead unregistered (a gc that
 * starts meanwhile can make it fail with CKVC_MISSING_OBJECT, never return wrong data).
 */
export async function registerReader(layout: StoreLayout): Promise<WriterRegistration> {
  try {
    return await registerWriter(layout);
  } catch (e) {
    const errno = isCkvcError(e, 'CKVC_IO') ? e.data.errno : undefined;
    if (errno !== 'EACCES' && errno !== 'EPERM' && errno !== 'EROFS') throw e;
  }
  const deadline = Date.now() + gcWaitMs();
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    const gc = await gcRunning(layout);
    if (!gc) return { release: async () => {} };
    if (Date.now() >= deadline) {
      throw new CkvcError(
        'CKVC_LOCKED',
        `ckvc gc (process ${gc.pid} on ${gc.host}) is running on this store; wait for it to finish and retry (${layout.gcLockFile})`,
        { path: layout.gcLockFile, owner: gc },
      );
    }
    await sleep(delay);
  }
}

/** Takes gc.lock, then waits until no live writer is registered. */
export async function acquireGcLock(layout: StoreLayout, timeoutMs = gcWaitMs()): Promise<HeldLock> {
  await fs.mkdir(layout.locksDir, { recursive: true }).catch((e) => {
    throw ioError(e, 'create', layout.locksDir);
  });
  const lock = await acquireLock(layout.gcLockFile, 'gc', timeoutMs);
  try {
    const deadline = Date.now() + timeoutMs;
    let delay = 20;
    for (;;) {
      const live = await liveWriters(layout);
      if (live.length === 0) return lock;
      if (Date.now() >= deadline) {
        throw new CkvcError(
          'CKVC_LOCKED',
          `${live.length} ckvc command(s) writing to this store (process ${live.map((w) => w.pid).join(', ')}) did not finish in time; retry gc later`,
          { writers: live },
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
    }
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/** Registered writers that are still alive; files of dead ones are removed. */
async function liveWriters(layout: StoreLayout): Promise<{ pid: number; host: string }[]> {
  let names: string[];
  try {
    names = await fs.readdir(layout.writersDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(e, 'list', layout.writersDir);
  }
  const live: { pid: number; host: string }[] = [];
  for (const n of names) {
    const file = path.join(layout.writersDir, n);
    const owner = await readOwner(file);
    if (owner && ownerIsDead(owner)) await fs.rm(file, { force: true });
    else if (owner) live.push({ pid: owner.pid, host: owner.host });
    else {
      // Being written right now, or torn by a crash: give it a moment, then treat an old one as dead.
      const st = await fs.stat(file).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 10_000) await fs.rm(file, { force: true });
      else if (st) live.push({ pid: 0, host: '?' });
    }
  }
  return live;
}
