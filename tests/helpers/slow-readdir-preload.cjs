// Preloaded into a ckvc process by a race test (NODE_OPTIONS=--require): after the Nth readdir
// ($CKVC_TEST_SLOW_READDIR_NTH, default 1) of a folder whose path ends with $CKVC_TEST_SLOW_READDIR_SUFFIX, waits
// $CKVC_TEST_SLOW_READDIR_MS before returning, so that another process can act in the window between listing a
// folder and reading what the listing named.
'use strict';
const suffix = process.env.CKVC_TEST_SLOW_READDIR_SUFFIX;
const ms = Number(process.env.CKVC_TEST_SLOW_READDIR_MS ?? 0);
const nth = Number(process.env.CKVC_TEST_SLOW_READDIR_NTH ?? 1);
let seen = 0;
if (suffix && ms > 0) {
  const fsp = require('node:fs').promises;
  const readdir = fsp.readdir;
  fsp.readdir = async function slowReaddir(p, ...rest) {
    const entries = await readdir.call(this, p, ...rest);
    if (String(p).endsWith(suffix) && ++seen === nth) await new Promise((resolve) => setTimeout(resolve, ms));
    return entries;
  };
  require('node:module').syncBuiltinESMExports();
}
