// `mkdir -p` for folders a user names (a checkout's --to, a new store's folder), made one level at a time: Node's
// recursive mkdir retries for ever where mkdir fails with ENOENT although the parent exists (under /proc, on some
// FUSE file systems), so `checkout --to /proc/x` spun at 100% CPU instead of failing.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Creates `p` and any missing folders above it; an error of the file system is thrown as it came. */
export async function makeFolderPath(p: string): Promise<void> {
  const missing: string[] = [];
  for (let cur = path.resolve(p); ; ) {
    const st = await fs.stat(cur).catch((e) => {
      if (code(e) !== 'ENOENT') throw e;
      return undefined;
    });
    if (st) break;
    missing.push(cur);
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  for (const dir of missing.reverse()) {
    await fs.mkdir(dir).catch((e) => {
      if (code(e) !== 'EEXIST') throw e; // made meanwhile by another process: checked below
    });
  }
  // A file, or a link to nowhere, where the folder should be: refused here, not by whoever writes into it next.
  const st = await fs.stat(p).catch((e) => {
    if (code(e) !== 'ENOENT') throw e;
    return undefined; // a link to nowhere, which mkdir found existing
  });
  if (!st?.isDirectory()) throw Object.assign(new Error(`${p} is not a folder`), { code: 'ENOTDIR' });
}
