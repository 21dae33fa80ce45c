// ckvc's folder in the user's cache: `$CKVC_CACHE`, else `$XDG_CACHE_HOME/ckvc`, else `~/.cache/ckvc` (README,
// Dependencies). One rule for the launcher's compiled code (compiled-code-cache.cjs, which runs before the bundle is
// loaded, so it cannot take this from there) and the CLI's delta-base cache (src/store/user-cache-folder.ts).
'use strict';
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

module.exports = { cacheRoot };
