// Files below a folder of the store (refs, reflogs, alias definitions), as '/'-separated relative paths.
// A missing folder has no files; hidden, lock and temp files are never entries.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ioError } from './durable-fs.js';

export async function listFilesBelow(
  root: string,
  /** Throw (ENOENT / ENOTDIR, as node gives it) when a folder below the root goes away while listed. */
  opts: { strict?: boolean } = {},
): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (opts.strict && dir !== root && (code === 'ENOENT' || code === 'ENOTDIR')) throw e;
      if (code === 'ENOENT') return;
      throw ioError(e, 'list', dir);
    }
    for (const e of entries) {
      if (
        e.name.startsWith('.') ||
        e.name.endsWith('.lock') ||
        e.name.endsWith('.tmp') ||
        e.name.includes('.lock.stale.')
      )
        continue;
      if (e.isDirectory()) await walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      else out.push(prefix + e.name);
    }
  };
  await walk(root, '');
  return out;
}
