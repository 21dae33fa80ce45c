// ckvc's folder in the user's cache: `$CKVC_CACHE`, else `$XDG_CACHE_HOME/ckvc`, else `~/.cache/ckvc` (the rule
// README's Dependencies gives; bin/compiled-code-cache.cjs, which runs before any of this code is loaded, and the
// Python helper follow it too). What is kept there is derived, checked when read, and deletable at any time.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * `<root>/<name>`, made (0700) if need be and `make`, or undefined when there is no such folder to use: no absolute
 * root, or one that would have to be made inside a folder of another user (root running with a user's HOME makes
 * nothing there), or a name that is not a folder of this user's.
 */
export function userCacheFolder(name: string, make = true): string | undefined {
  try {
    const env = process.env;
    let root = env.CKVC_CACHE;
    if (!root) {
      const xdg = env.XDG_CACHE_HOME;
      root = xdg && path.isAbsolute(xdg) ? path.join(xdg, 'ckvc') : path.join(os.homedir(), '.cache', 'ckvc');
    }
    if (!path.isAbsolute(root)) return undefined; // not a folder that moves with the working directory
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
