// ckvc's folder in the user's cache: `$CKVC_CACHE`, else `$XDG_CACHE_HOME/ckvc`, else `~/.cache/ckvc` (README,
// Dependencies), and the private folders in it. One rule for the launcher's compiled code (compiled-code-cache.cjs,
// which runs before the bundle is loaded, so it cannot take this from there) and the CLI's delta-base and files
// caches (src/store/store-cache-files.ts).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The root, or undefined when it is not an absolute path (one that would move with the working directory). */
function cacheRoot(env = process.env) {
  let root = env.CKVC_CACHE;
  if (!root) {
    const xdg = env.XDG_CACHE_HOME;
    root = xdg && path.isAbsolute(xdg) ? path.join(xdg, 'ckvc') : path.join(os.homedir(), '.cache', 'ckvc');
  }
  return path.isAbsolute(root) ? root : undefined;
}

/**
 * Whether no one but the user (and root) can change what `dir` (a real path) holds: it and every folder above it are
 * the user's or root's and writable by no one else, but for a sticky folder (such as /tmp) above one of theirs.
 */
function onlyUserCanChange(dir, uid) {
  for (let below, at = dir; ; below = at, at = path.dirname(at)) {
    const st = fs.lstatSync(at);
    if (!st.isDirectory() || (st.uid !== uid && st.uid !== 0)) return false;
    const sticky = (st.mode & 0o1000) !== 0;
    const belowIsOurs = below !== undefined && [uid, 0].includes(fs.lstatSync(below).uid);
    if ((st.mode & 0o022) !== 0 && !(sticky && belowIsOurs)) return false;
    if (path.dirname(at) === at) return true;
  }
}

/**
 * The user's private folder `name` in the root (by its real path), made if need be (and `make`) in a folder of the
 * user's that only the user can change; undefined when there is none to trust. It must be the user's and 0700.
 */
function privateCacheFolder(name, make = true) {
  try {
    const root = cacheRoot();
    if (!root || typeof process.getuid !== 'function') return undefined;
    const wanted = path.join(root, name);
    const uid = process.getuid();
    if (!fs.existsSync(wanted)) {
      if (!make) return undefined;
      let existing = path.dirname(wanted);
      while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
      const real = fs.realpathSync(existing);
      // Not another user's folder (root running with a user's HOME makes nothing there), nor one others can change.
      if (fs.statSync(real).uid !== uid || !onlyUserCanChange(real, uid)) return undefined;
      fs.mkdirSync(path.join(real, path.relative(existing, wanted)), { recursive: true, mode: 0o700 });
    }
    const dir = fs.realpathSync(wanted);
    const own = fs.lstatSync(dir);
    const usable = own.isDirectory() && own.uid === uid && (own.mode & 0o777) === 0o700 && onlyUserCanChange(dir, uid);
    return usable ? dir : undefined;
  } catch {
    return undefined;
  }
}

module.exports = { cacheRoot, privateCacheFolder };
