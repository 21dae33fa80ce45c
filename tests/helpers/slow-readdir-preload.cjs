// Preloaded into a ckvc process by a race test (NODE_OPTIONS=--require), to hold a process in a window another
// process acts in:
// - after the Nth readdir ($CKVC_TEST_SLOW_READDIR_NTH, default 1) of a folder whose path ends with
//   $CKVC_TEST_SLOW_READDIR_SUFFIX, waits $CKVC_TEST_SLOW_READDIR_MS (between listing a folder and reading what
//   the listing named);
// - after a rename whose new path matches $CKVC_TEST_SLOW_RENAME_TO (a regular expression), waits
//   $CKVC_TEST_SLOW_RENAME_MS (between moving a file aside and putting another in its place).
'use strict';
const fsp = require('node:fs').promises;
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const suffix = process.env.CKVC_TEST_SLOW_READDIR_SUFFIX;
const readdirMs = Number(process.env.CKVC_TEST_SLOW_READDIR_MS ?? 0);
const nth = Number(process.env.CKVC_TEST_SLOW_READDIR_NTH ?? 1);
if (suffix && readdirMs > 0) {
  let seen = 0;
  const readdir = fsp.readdir;
  fsp.readdir = async function slowReaddir(p, ...rest) {
    const entries = await readdir.call(this, p, ...rest);
    if (String(p).endsWith(suffix) && ++seen === nth) await wait(readdirMs);
    return entries;
  };
}

const renameTo = process.env.CKVC_TEST_SLOW_RENAME_TO;
const renameMs = Number(process.env.CKVC_TEST_SLOW_RENAME_MS ?? 0);
if (renameTo && renameMs > 0) {
  const pattern = new RegExp(renameTo);
  const rename = fsp.rename;
  fsp.rename = async function slowRename(from, to, ...rest) {
    await rename.call(this, from, to, ...rest);
    if (pattern.test(String(to))) await wait(renameMs);
  };
}
require('node:module').syncBuiltinESMExports();
