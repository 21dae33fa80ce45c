// Folders in ckvc's part of the user's cache (bin/cache-root.cjs: the one rule for where that is, which the
// launcher's compiled code follows too). What is kept there is derived, checked when read, and deletable at any time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheRoot } from '../../bin/cache-root.cjs';

/**
 * `<root>/<name>`, made (0700) if need be and `make`, or undefined when there is no such folder to use: no absolute
 * root, or one that would have to be made inside a folder of another user (root running with a user's HOME makes
 * nothing there), or a name that is not a folder of this user's.
 */
export function userCacheFolder(name: string, make = true): string | undefined {
  try {
    const root = cacheRoot();
    if (!root) return undefined;
    const wanted = path.join(root, name);
    const uid = process.getuid?.();
    if (!fs.existsSync(wanted)) {
      if (!make) return undefined;
      let existing = path.dirname(wanted);
      while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
      if (uid !== undefined && fs.statSync(existing).uid !== uid) return undefined;
      fs.mkdirSync(wanted, { recursive: true, mode: 0o700 });
    }
    const st = fs.lstatSync(wanted);
    return st.isDirectory() && (uid === undefined || st.uid === uid) ? wanted : undefined;
  } catch {
    return undefined;
  }
}
