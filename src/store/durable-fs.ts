// Durable file operations: write to a temp file, fsync it, rename into place, fsync the directory. This is the
// only way ckvc replaces files in a store, so a crash leaves either the old or the new content, never a mix.
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CkvcError } from '../core/errors.js';
import { faultPoint } from './fault-injection.js';
import { randomHex } from './random-hex.js';

export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw ioError(e, 'sync the folder', dir);
  }
}

export function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomHex(4)}.tmp`);
}

/** `fault` names the steps for fault injection: `<fault>.tmp`, `.fsync`, `.rename`, `.dirsync`. */
/** `mode` 0o600 for secrets (a saved remote token). */
export async function writeFileDurable(
  target: string,
  data: Uint8Array | string,
  fault?: 'ref',
  mode = 0o644,
): Promise<void> {
  const tmp = tempName(target);
  let fh: fs.FileHandle | undefined;
  try {
    if (fault) faultPoint(`${fault}.tmp`);
    fh = await fs.open(tmp, 'wx', mode);
    await fh.writeFile(data);
    if (fault) faultPoint(`${fault}.fsync`);
    await fh.sync();
    await fh.close();
    fh = undefined;
  } catch (e) {
    await fh?.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw ioError(e, 'write', target);
  }
  try {
    if (fault) faultPoint(`${fault}.rename`);
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw ioError(e, 'rename into place', target);
  }
  if (fault) faultPoint(`${fault}.dirsync`);
  await fsyncDir(path.dirname(target));
}

/**
 * Appends a line and fsyncs it: used for reflogs, where a lost line loses the way back to a commit.
 * Returns an undo that cuts the file back to its length before the append, for when the change it records
 * does not happen after all.
 */
export async function appendDurable(target: string, line: string): Promise<() => Promise<void>> {
  const before = (await fs.stat(target).catch(() => undefined))?.size ?? 0;
  let fh: fs.FileHandle | undefined;
  try {
    faultPoint('reflog.append');
    fh = await fs.open(target, 'a', 0o644);
    await fh.write(line);
    await fh.sync();
  } catch (e) {
    // A partly written line is cut off here; readers skip a torn last line anyway.
    await fh?.truncate(before).catch(() => {});
    throw ioError(e, 'append to', target);
  } finally {
    await fh?.close().catch(() => {});
  }
  return async () => {
    const h = await fs.open(target, 'r+');
    try {
      await h.truncate(before);
      await h.sync();
    } finally {
      await h.close();
    }
  };
}

// The callback API: a promise-API read makes a FileHandle per file, three times the cost for a 65-byte ref.
const readFileCb = promisify(fsSync.readFile);

export async function readFileIfExists(p: string): Promise<Buffer | undefined> {
  try {
    return await readFileCb(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(e, 'read', p);
  }
}

export function ioError(e: unknown, action: string, p: string): CkvcError {
  if (e instanceof CkvcError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err.code === 'ENOENT' && err.syscall === 'mkdir' ? whyMkdirFailed(err.path ?? p) : err.code;
  const hint =
    code === 'ENOSPC'
      ? 'free some disk space and retry'
      : code === 'EACCES' || code === 'EPERM'
        ? 'check the permissions'
        : code === 'EROFS'
          ? 'the file system is mounted read-only'
          : 'check the disk and retry';
  return new CkvcError(
    'CKVC_IO',
    `cannot ${action} ${p}: ${code ?? err.message}; ${hint}`,
    { path: p, errno: code },
    { cause: e },
  );
}

/**
 * A recursive mkdir reports ENOENT where the folder could not be created for another reason (Node turns a
 * read-only file system into ENOENT): the nearest folder that exists says why.
 */
function whyMkdirFailed(dir: string): string {
  let parent = path.dirname(dir);
  while (!fsSync.existsSync(parent) && path.dirname(parent) !== parent) parent = path.dirname(parent);
  try {
    fsSync.accessSync(parent, fsSync.constants.W_OK);
    return 'ENOENT';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'ENOENT';
  }
}
