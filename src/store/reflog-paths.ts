// Where a ref's reflog lives (spec/FORMAT.md §6.3). A deleted ref's reflog stays, so that gc keeps what it names
// until it expires; its path can then stand in the way of a new ref's: deleting `phase/a` leaves the folder
// logs/refs/heads/phase/, where branch `phase` needs a file. Before a ref is created, such a file or folder is
// renamed to `<name>~<ms>` (no ref name holds '~', §6.1), still below logs/ so that gc counts its lines, and
// `reflog NAME` reads the moved copies along with the log in place.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fsyncDir, ioError } from './durable-fs.js';

const MOVED_SUFFIX = /^~\d+$/;

/** `logs/<full>` and every copy of it moved aside (a component of its path renamed `<name>~<ms>`). */
export async function reflogFiles(logsDir: string, full: string): Promise<string[]> {
  const parts = full.split('/');
  const out: string[] = [];
  const walk = async (dir: string, i: number): Promise<void> => {
    const last = i === parts.length - 1;
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw ioError(e, 'list', dir);
    }
    const name = parts[i]!;
    const matches = entries.filter(
      (e) => e.name === name || (e.name.startsWith(name) && MOVED_SUFFIX.test(e.name.slice(name.length))),
    );
    // Moved copies hold the older lines: by the time of their move, then the log in place.
    matches.sort((a, b) => movedAt(a.name, name) - movedAt(b.name, name));
    for (const e of matches) {
      const p = path.join(dir, e.name);
      if (last) {
        if (e.isFile()) out.push(p);
      } else if (e.isDirectory()) await walk(p, i + 1);
    }
  };
  await walk(logsDir, 0);
  return out;
}

const movedAt = (entry: string, name: string) =>
  entry === name ? Number.POSITIVE_INFINITY : Number(entry.slice(name.length + 1));

/**
 * Before ref `full` (whose own ref path is free) is created: renames what a deleted ref's reflog left where
 * this ref's log must go, a file at a folder of its path (deleted `phase`, new `phase/a`) or a folder at its own
 * path (deleted `phase/a`, new `phase`). Nothing is removed.
 */
export async function moveAsideClashingLogs(logsDir: string, full: string): Promise<void> {
  const parts = full.split('/');
  for (let i = 3; i <= parts.length; i++) {
    const p = path.join(logsDir, ...parts.slice(0, i));
    const st = await fs.lstat(p).catch(() => undefined);
    if (!st) return;
    const clashes = i < parts.length ? !st.isDirectory() : st.isDirectory();
    if (!clashes) continue;
    const aside = await freeName(p);
    await fs.rename(p, aside).catch((e) => {
      throw ioError(e, 'move aside the reflog', p);
    });
    await fsyncDir(path.dirname(p));
    return;
  }
}

async function freeName(p: string): Promise<string> {
  for (let t = Date.now(); ; t++) {
    const candidate = `${p}~${t}`;
    if (!(await fs.lstat(candidate).catch(() => undefined))) return candidate;
  }
}

/** Whether folder `dir` holds a file at any depth (a missing folder holds none). */
export async function holdsAnyFile(dir: string): Promise<boolean> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (!e.isDirectory() || (await holdsAnyFile(path.join(dir, e.name)))) return true;
  return false;
}

/**
 * Removes `file` (a ref's path) when it is a folder holding no file, only empty folders: what deleting the refs
 * below it leaves. Leaves anything else as it is (the caller then reports the clash).
 */
export async function removeEmptyRefFolder(file: string): Promise<void> {
  const prune = async (dir: string): Promise<boolean> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => undefined);
    if (!entries) return false;
    for (const e of entries) if (!e.isDirectory() || !(await prune(path.join(dir, e.name)))) return false;
    return fs.rmdir(dir).then(
      () => true,
      () => false,
    );
  };
  const st = await fs.lstat(file).catch(() => undefined);
  if (st?.isDirectory()) await prune(file);
}
