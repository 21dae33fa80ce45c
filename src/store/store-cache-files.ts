// Where a store's files in the user's cache folder live and how they are tidied: the delta-base cache
// (`bases/`, spec/FORMAT.md §18) and the files cache (`files/`, §19) follow one rule. Each is one file per store,
// named by the first 32 hex digits of the BLAKE3 of the store's real path, in a folder only the user can change
// (bin/cache-root.cjs); a writer writes `<file>.<pid>.<hex>.tmp` beside it and renames it into place.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ContentHasher } from '../core/store-format/object-id.js';
import { processRunning } from './lock-file.js';
import { randomHex } from './random-hex.js';
import type { StoreLayout } from './store-layout.js';
import { privateCacheFolder } from '../../bin/cache-root.cjs';

/** A temp file this old whose commit's process is gone is a killed commit's: removed at the next tidy. */
const STALE_TEMP_MS = 10 * 60_000;

/**
 * The store's file in the cache folder `kind` (made if need be, with `make`); undefined: none to use. `salt`, when
 * given, is hashed in before the store's path (the files cache: the host and the store's chunking, §19).
 */
export function storeCacheFile(
  kind: 'bases' | 'files',
  layout: StoreLayout,
  make = true,
  salt?: string,
): string | undefined {
  try {
    const dir = privateCacheFolder(kind, make);
    if (!dir) return undefined;
    const h = new ContentHasher();
    if (salt !== undefined) h.update(Buffer.from(`${salt}\0`));
    h.update(Buffer.from(fs.realpathSync(layout.root)));
    return path.join(dir, h.digestHex().slice(0, 32));
  } catch {
    return undefined;
  }
}

/** Removes killed commits' temp files in `dir`, and the files of all but the `keep` stores written last. */
export function tidyStoreCaches(dir: string, keep: number): void {
  const now = Date.now();
  const kept: { file: string; mtimeMs: number }[] = [];
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    if (name.endsWith('.tmp')) {
      // A commit that stopped adding (its budget reached) is still alive: its pid says so.
      const pid = Number(/^[0-9a-f]{32}\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name)?.[1]);
      if (now - st.mtimeMs > STALE_TEMP_MS && !(pid > 0 && processRunning(pid))) fs.rmSync(file, { force: true });
    } else if (/^[0-9a-f]{32}$/.test(name)) kept.push({ file, mtimeMs: st.mtimeMs });
  }
  kept.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const old of kept.slice(keep)) fs.rmSync(old.file, { force: true });
}

/**
 * Puts `tmpFile` (complete, closed) in place as `file`. The old file is removed first, not renamed over: ext4
 * (auto_da_alloc) makes a rename that replaces a file start writing the new one's data out inside the rename,
 * 20-30 ms of a full commit's main thread for a 36-47 MB delta-base cache. A reader between the two calls finds
 * no file, which only means a slower commit. Whatever is in the way goes, a folder too (else no cache, ever again).
 */
export function replaceStoreCacheFile(tmpFile: string, file: string): void {
  fs.rmSync(file, { force: true, recursive: true });
  fs.renameSync(tmpFile, file);
}

/** A new temp file's name beside `file`: the pid in it tells tidyStoreCaches whether its writer still runs. */
export function storeCacheTempFile(file: string): string {
  return `${file}.${process.pid}.${randomHex(6)}.tmp`;
}

/**
 * Runs `use` on the cache file opened for reading, and closes it; undefined when it is not a plain file or anything
 * fails. Not through a link, and not blocking on a FIFO planted under the name.
 */
export function withStoreCacheFile<T>(file: string, use: (fd: number, st: fs.Stats) => T | undefined): T | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    return st.isFile() ? use(fd, st) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
