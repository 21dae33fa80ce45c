// Where checkout may write (spec/FORMAT.md §9.2). The --to folder is resolved once (it may be a symlink: the
// user chose it); beneath it nothing is followed. Every path a checkout writes is checked with lstat before the
// first byte is written: a symlink anywhere on the way, or at the file itself, is refused with or without
// --force, so a prepared folder (`out/sub -> /elsewhere`) cannot redirect a write outside --to. Folders are
// created one at a time and checked again as they are, and files land by rename, which replaces a name and
// never writes through it.
import type { Stats } from 'node:fs';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { entryNameProblem } from '../core/store-format/objects/tree-object.js';
import { ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { makeFolderPath } from './folder-path.js';
import { removedIfInterrupted } from './interrupt-cleanup.js';
import { randomHex } from './random-hex.js';

export interface Target {
  /** The real folder checked out into. */
  root: string;
  /** The path below it, one name per folder. */
  parts: string[];
  /** root and parts joined. */
  path: string;
}

type ConflictKind = 'symlink' | 'not-folder' | 'folder' | 'special' | 'differs';

interface Conflict {
  path: string;
  kind: ConflictKind;
  /** A symlink's target as stored in the link. */
  to?: string;
}

/** The real path of the folder to check out into, which need not exist yet; its nearest existing ancestor must be a folder. */
export async function checkoutRoot(toDir: string): Promise<string> {
  const abs = path.resolve(toDir);
  const missing: string[] = [];
  for (let p = abs; ; p = path.dirname(p)) {
    const l = await lstatOrNone(p);
    if (l) {
      const st = l.isSymbolicLink() ? await fs.stat(p).catch(() => undefined) : l;
      if (!st)
        throw new CkvcError(
          'CKVC_BAD_ARGUMENT',
          `cannot check out into ${toDir}: ${p} is a symbolic link to ${await fs.readlink(p).catch(() => '?')}, which does not exist; create that folder or give another --to`,
          { to: toDir, path: p },
        );
      if (!st.isDirectory())
        throw new CkvcError(
          'CKVC_BAD_ARGUMENT',
          `cannot check out into ${toDir}: ${p} is a file, not a folder; give --to a folder (it is created if missing)`,
          { to: toDir, path: p },
        );
      const real = await fs.realpath(p).catch((e) => {
        throw ioError(e, 'resolve', p);
      });
      return path.join(real, ...missing.reverse());
    }
    if (path.dirname(p) === p) return abs;
    missing.push(path.basename(p));
  }
}

async function lstatOrNone(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError(e, 'examine', p);
  }
}

function describe(c: Conflict): string {
  switch (c.kind) {
    case 'symlink':
      return `${c.path} is a symbolic link (to ${c.to}); checkout never writes through a link nor replaces one, with or without --force: remove the link, or check out into another --to`;
    case 'not-folder':
      return `${c.path} is a file where the commit has a folder; --force replaces files but never one standing in a folder's place: move or remove it`;
    case 'folder':
      return `${c.path} is a folder where the commit has a file; --force never replaces a folder: move or remove it`;
    case 'special':
      return `${c.path} is not a regular file (a pipe, socket or device); move or remove it`;
    case 'differs':
      return `${c.path} exists and differs`;
  }
}

/** Up to 5 paths, quoted as a list ("a, b and 2 more"). */
function someOf(list: Conflict[]): string {
  const shown = list.slice(0, 5).map((c) => c.path);
  return list.length > 5 ? `${shown.join(', ')} and ${list.length - 5} more` : shown.join(', ');
}

function conflictError(root: string, conflicts: Conflict[]): CkvcError {
  const differs = conflicts.filter((c) => c.kind === 'differs');
  const blocking = conflicts.filter((c) => c.kind !== 'differs');
  const data = { to: root, paths: conflicts.map((c) => c.path), conflicts };
  if (blocking.length === 0) {
    return new CkvcError(
      'CKVC_WOULD_OVERWRITE',
      `checkout would overwrite ${differs.length} existing file(s) that differ (${someOf(differs)}); nothing was written: pass --force to replace them, or choose another --to`,
      data,
    );
  }
  const more =
    blocking.length > 1 ? `; ${blocking.length - 1} more path(s) are in the way like this (--json lists them)` : '';
  const alsoDiffer = differs.length
    ? `; ${differs.length} existing file(s) also differ (${someOf(differs)}; --force would replace those)`
    : '';
  return new CkvcError(
    'CKVC_WOULD_OVERWRITE',
    `checkout into ${root} wrote nothing: ${describe(blocking[0]!)}${more}${alsoDiffer}`,
    data,
  );
}

/**
 * The conflict rules of checkout for any kind of output: an identical file at the target is left alone
 * (`same` decides, given the size of the file found); a different file is a conflict unless `force`; a
 * symlink on the way or at the target, a non-folder where a folder of ours must go, and a folder or special
 * file where a file goes are conflicts even with `force`. All are found before anything is written and
 * reported together.
 */
export async function planTargets<T>(
  items: T[],
  toDir: string,
  force: boolean,
  relOf: (item: T) => string,
  same: (item: T, target: string, size: number) => Promise<boolean>,
): Promise<{ write: { item: T; target: Target; replaced?: true }[]; unchanged: T[] }> {
  const root = await checkoutRoot(toDir);
  const plan: { write: { item: T; target: Target; replaced?: true }[]; unchanged: T[] } = { write: [], unchanged: [] };
  const conflicts = new Map<string, Conflict>();
  const seen = new Map<string, Promise<Stats | undefined>>();
  const look = (p: string) => {
    let st = seen.get(p);
    if (!st) seen.set(p, (st = lstatOrNone(p)));
    return st;
  };
  const conflict = async (p: string, kind: ConflictKind) => {
    conflicts.set(p, { path: p, kind, ...(kind === 'symlink' ? { to: await fs.readlink(p).catch(() => '?') } : {}) });
  };
  for (const item of items) {
    const parts = relOf(item).split('/');
    for (const name of parts) {
      // Trees are checked as they are decoded; this holds for paths made any other way too.
      const problem = entryNameProblem(name);
      if (problem)
        throw new CkvcError(
          'CKVC_CORRUPT_OBJECT',
          `refusing to check out ${relOf(item)}: the name "${name}" ${problem}; run 'ckvc verify'`,
          { path: relOf(item) },
        );
    }
    const target: Target = { root, parts, path: path.join(root, ...parts) };
    let blocked = false;
    for (let i = 1; i < parts.length && !blocked; i++) {
      const folder = path.join(root, ...parts.slice(0, i));
      const st = await look(folder);
      if (!st) break; // created on write
      if (st.isSymbolicLink()) await conflict(folder, 'symlink');
      else if (!st.isDirectory()) await conflict(folder, 'not-folder');
      blocked = !st.isDirectory();
    }
    if (blocked) continue;
    const st = await look(target.path);
    if (!st) plan.write.push({ item, target });
    else if (st.isSymbolicLink()) await conflict(target.path, 'symlink');
    else if (st.isDirectory()) await conflict(target.path, 'folder');
    else if (!st.isFile()) await conflict(target.path, 'special');
    else if (await same(item, target.path, st.size)) plan.unchanged.push(item);
    else if (force) plan.write.push({ item, target, replaced: true });
    else await conflict(target.path, 'differs');
  }
  if (conflicts.size)
    throw conflictError(
      root,
      [...conflicts.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    );
  return plan;
}

/** Creates the folders above `t` one by one, refusing anything but a real folder that appeared since planning. */
async function makeFolders(t: Target): Promise<void> {
  await makeFolderPath(t.root).catch((e) => {
    throw ioError(e, 'create', t.root);
  });
  for (let i = 1; i < t.parts.length; i++) {
    const folder = path.join(t.root, ...t.parts.slice(0, i));
    try {
      await fs.mkdir(folder);
      continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(e, 'create', folder);
    }
    const st = await lstatOrNone(folder);
    if (!st?.isDirectory()) {
      const what = st?.isSymbolicLink() ? 'a symbolic link' : 'something that is not a folder';
      throw new CkvcError(
        'CKVC_WOULD_OVERWRITE',
        `${folder} became ${what} while checkout was writing; checkout never writes through one: remove it and check out again`,
        { path: folder },
      );
    }
  }
}

// `.NAME.ckvc-XXXXXXXX.tmp` beside its target: hidden, and named after it so a leftover says what it was.
const TEMP_NAME = /^\..+\.ckvc-[0-9a-f]{8}\.tmp$/;
/** A temp file untouched this long belongs to a checkout that died (a live one writes to it continuously). */
export const STALE_TEMP_MS = 15 * 60 * 1000;

function tempFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.ckvc-${randomHex(4)}.tmp`);
}

/** What removeStaleTemps found: the temp files it removed, and the younger ones it left (a checkout may be writing them). */
export interface TempsFound {
  removed: string[];
  recent: { path: string; bytes: number }[];
}

/**
 * Removes the temp files an interrupted checkout left in the folders this one writes to: regular files named
 * like ours and not modified for STALE_TEMP_MS, other than a path the commit itself holds (`held`, relative
 * '/'-paths). Younger ones are left (another checkout may be writing them) and reported: a killed checkout's
 * temp file of a large checkpoint is gigabytes a user cannot see (its name starts with a dot).
 */
export async function removeStaleTemps(targets: Target[], held: string[], now = Date.now()): Promise<TempsFound> {
  const found: TempsFound = { removed: [], recent: [] };
  if (targets.length === 0) return found;
  const keep = new Set(held.map((rel) => path.join(targets[0]!.root, ...rel.split('/'))));
  for (const dir of new Set(targets.map((t) => path.dirname(t.path)))) {
    const names = await fs.readdir(dir).catch(() => [] as string[]); // not created yet: nothing left over
    for (const n of names) {
      const p = path.join(dir, n);
      if (!TEMP_NAME.test(n) || keep.has(p)) continue;
      const st = await lstatOrNone(p);
      if (!st?.isFile()) continue;
      if (now - st.mtimeMs < STALE_TEMP_MS) {
        found.recent.push({ path: p, bytes: st.size });
        continue;
      }
      await fs.rm(p, { force: true }).catch((e) => {
        throw ioError(e, 'remove stale temp file', p);
      });
      found.removed.push(p);
    }
  }
  return found;
}

/**
 * The durable part of checkout: `fill` writes the content through `write`; the temp file beside the target is
 * renamed over it only if `fill` resolves, and removed otherwise, so a failed or interrupted checkout never
 * leaves a partial file under the target's name. The file is not fsynced before the rename (store files
 * are; see durable-fs.ts), so after a power loss a target can hold fewer bytes than were written: a later
 * checkout then finds it different and refuses it without --force.
 */
export async function writeViaTemp(
  t: Target,
  fill: (write: (bytes: Uint8Array) => void, fh: fs.FileHandle) => Promise<void>,
  /**
   * Takes a read-only handle on the file once it is in place (none when one cannot be opened). The handle `fill`
   * writes through is open for reading too, and is closed before the rename either way: a write error that only
   * shows at close (NFS quotas) fails the checkout before anything has the target's name.
   */
  keep?: (reader: fs.FileHandle) => Promise<void>,
): Promise<void> {
  await makeFolders(t);
  const tmp = tempFor(t.path);
  const forget = removedIfInterrupted(tmp);
  const fh = await (async () => {
    faultPoint('checkout.write');
    return fs.open(tmp, keep ? 'wx+' : 'wx', 0o644);
  })().catch((e) => {
    forget();
    throw ioError(e, 'create', tmp);
  });
  try {
    await fill((bytes) => {
      // Synchronous like the pack reads: a thread-pool round trip per 256 KiB write costs more than the copy.
      for (let done = 0; done < bytes.length; ) done += fsSync.writeSync(fh.fd, bytes, done, bytes.length - done);
    }, fh);
    // Opened while the temp name is still ours and before the writer closes, so it is the same file.
    const reader = keep ? await fs.open(tmp, 'r').catch(() => undefined) : undefined;
    try {
      await fh.close();
      faultPoint('checkout.rename');
      await fs.rename(tmp, t.path);
      forget();
    } catch (e) {
      await reader?.close().catch(() => {});
      throw e;
    }
    if (reader) await keep!(reader);
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    forget();
    throw e instanceof CkvcError ? e : ioError(e, 'write', t.path);
  }
}
