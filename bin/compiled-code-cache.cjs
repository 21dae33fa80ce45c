// Runs the CLI's bundle (one CommonJS script) with V8's compiled code kept between runs. Compiling the bundle is
// the largest single cost of a short command's start on Node 20, which has no compile cache of its own for ES
// modules (Node 22.1's module.enableCompileCache is later): `log -n 1` 87 -> 57 ms, `--version` 55 -> 45 ms
// (README, Start-up). The cache holds compiled code that this process then runs, so who can write it matters:
// it lives in the user's own cache folder (`$CKVC_CACHE/compiled`, else `$XDG_CACHE_HOME/ckvc/compiled`, else
// `~/.cache/ckvc/compiled`, the folders the Python helper uses), never in a shared temp folder where another user
// of a cluster node could put code there first, and a folder that anyone but its owner (this user) can write is
// not used. A file is named by the bundle file's identity and times, Node's version and what changes V8's flags,
// and carries the BLAKE3 of its data: V8 itself checks only the source's length and its own version (and
// verifies no checksum in release builds), so a rebuilt bundle of the same length, or a damaged file, would
// otherwise run stale or broken code. Anything amiss (no folder, unreadable, damaged, rejected by V8) means
// compiling as without a cache; the cache never changes what runs.
// NODE_DISABLE_COMPILE_CACHE=1 (Node's own switch for its cache) turns it off.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const vm = require('node:vm');
const { isAscii } = require('node:buffer');
const Module = require('node:module');

// A file per command (each keeps the functions its own first run compiled): ~35 for a build, 0.5-0.8 MB each.
// A writer deletes other builds' files an hour old (two installs used in turn keep theirs) and the oldest
// beyond MAX_FILES.
const MAX_FILES = 48;
const OTHER_BUILDS_KEPT_MS = 3600_000;
const DIGEST_BYTES = 32;

/**
 * BLAKE3 from the addon ckvc hashes everything with, loaded as the bundle loads it (glibc Linux package first,
 * see esbuild.config.mjs): node:crypto would cost a read-only command 3 ms of loading that it never needs.
 * Undefined where neither loads; there is no cache then.
 */
function blake3Function() {
  for (const name of [`@napi-rs/blake-hash-${process.platform}-${process.arch}-gnu`, '@napi-rs/blake-hash']) {
    if (name.endsWith('-gnu') && process.platform !== 'linux') continue;
    try {
      const { blake3 } = require(name);
      if (typeof blake3 === 'function') return blake3;
    } catch {
      // the next, or none
    }
  }
  return undefined;
}

/** The user's private folder for compiled code, created if need be; undefined when there is none to trust. */
function cacheFolder() {
  const env = process.env;
  let root = env.CKVC_CACHE;
  if (!root) {
    const xdg = env.XDG_CACHE_HOME;
    root = xdg && path.isAbsolute(xdg) ? path.join(xdg, 'ckvc') : path.join(os.homedir(), '.cache', 'ckvc');
  }
  const dir = path.join(path.resolve(root), 'compiled');
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.statSync(dir);
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The cache file's data when it is whole (its digest matches), else undefined. */
function readCached(file, blake3) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  if (bytes.length <= DIGEST_BYTES) return undefined;
  const data = bytes.subarray(DIGEST_BYTES);
  return blake3(data).equals(bytes.subarray(0, DIGEST_BYTES)) ? data : undefined;
}

/** Writes the file whole or not at all (a reader never sees half of it), then deletes what is no longer needed. */
function writeCached(dir, file, buildKey, data, blake3) {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temp, Buffer.concat([blake3(data), data]), { mode: 0o600 });
    fs.renameSync(temp, file);
    const kept = [];
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith('.v8') || path.join(dir, name) === file) continue;
      const mtimeMs = fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.mtimeMs;
      if (mtimeMs === undefined) continue;
      if (!name.startsWith(`ckvc-${buildKey}-`) && Date.now() - mtimeMs > OTHER_BUILDS_KEPT_MS) {
        fs.rmSync(path.join(dir, name), { force: true });
      } else kept.push({ name, mtimeMs });
    }
    kept.sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const { name } of kept.slice(MAX_FILES - 1)) fs.rmSync(path.join(dir, name), { force: true });
  } catch {
    fs.rmSync(temp, { force: true });
  }
}

/**
 * Loads `file` (a CommonJS script) as require() would and returns its exports. `variant` names the command and
 * what else makes V8 reject cached code (its flags: bin/ckvc sets one for some commands), each keeping its own file.
 */
function requireWithCodeCache(file, variant) {
  const bytes = fs.readFileSync(file);
  // The build makes the bundle ASCII (esbuild.config.mjs), which decodes as Latin-1 in 0.7 ms against 4-5 ms as
  // UTF-8, to the same text.
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  const blake3 = process.env.NODE_DISABLE_COMPILE_CACHE ? undefined : blake3Function();
  const dir = blake3 && cacheFolder();
  let buildKey;
  let cacheFile;
  let cachedData;
  if (dir) {
    // The file as the file system knows it rather than a hash of its 1.5 MB (2 ms): any write to it, a touch or
    // a copy over it changes its ctime, which no one can set back.
    const st = fs.statSync(file, { bigint: true });
    const shortHash = (text) => blake3(text).toString('hex').slice(0, 16);
    buildKey = shortHash([st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, process.version, process.arch].join('\0'));
    cacheFile = path.join(dir, `ckvc-${buildKey}-${shortHash(variant)}.v8`);
    cachedData = readCached(cacheFile, blake3);
  }
  // No import() handler: V8 keeps none with cached code, so the build leaves no import() in the bundle.
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (cacheFile && (!cachedData || script.cachedDataRejected)) {
    // Made at exit, after the command ran, so that the functions it compiled on the way are kept too.
    process.once('exit', () => writeCached(dir, cacheFile, buildKey, script.createCachedData(), blake3));
  }
  const mod = { exports: {}, filename: file, id: file, loaded: false };
  script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  return mod.exports;
}

module.exports = { requireWithCodeCache };
