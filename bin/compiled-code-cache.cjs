// Runs the CLI's bundle (one CommonJS script) with V8's compiled code kept between runs. Compiling the bundle is
// the largest single cost of a short command's start on Node 20, which has no compile cache of its own for ES
// modules (Node 22.1's module.enableCompileCache is later): `log -n 1` 61 -> 35 ms over a bare Node, `--version`
// 31 -> 22 ms (README, Start-up).
//
// The cache holds code that this process then runs, so who can write it, and what it was made from, matter:
// - It lives in the user's own cache folder (`$CKVC_CACHE/compiled`, else `$XDG_CACHE_HOME/ckvc/compiled`, else
//   `~/.cache/ckvc/compiled`, the folders the Python helper uses). Missing folders are made only inside one the
//   user owns (root running with a user's HOME leaves it alone), `compiled` must be a real folder of the user's
//   that no one else can write, and each file is opened without following links and used only if it is a plain
//   file of the user's with one link, that no one else can write.
// - A file's name, and the BLAKE3 it starts with, cover the very bytes this process compiles (with Node's
//   version, the arch and what changes V8's flags): V8 itself checks only the source's length and its own
//   version, and verifies no checksum in release builds, so a bundle rebuilt or replaced while a process was
//   starting, a file moved under another's name, or a damaged one would otherwise run stale or broken code.
// Anything amiss means compiling as without a cache; the cache never changes what runs. NODE_DISABLE_COMPILE_CACHE
// (Node's own switch for its cache) turns it off, and so does --enable-source-maps: Node maps stack traces only
// for code that require() loads.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const vm = require('node:vm');
const { isAscii } = require('node:buffer');
const Module = require('node:module');

// A file per command (each keeps the functions its own first run compiled): ~35 for a build, 0.5-0.8 MB each.
// A writer deletes other builds' files an hour old (two installs used in turn keep theirs within the hour), the
// oldest beyond MAX_FILES, and temp files a killed writer left.
const MAX_FILES = 48;
const OTHER_BUILDS_KEPT_MS = 3600_000;
const TEMP_KEPT_MS = 600_000;
const DIGEST_BYTES = 32;

/**
 * BLAKE3 from the addon ckvc hashes everything with, loaded as the bundle loads it (glibc Linux package first,
 * see esbuild.config.mjs): node:crypto would cost a read-only command 3 ms of loading that it never needs.
 * Undefined where neither loads; there is no cache then.
 */
function blake3Hasher() {
  for (const name of [`@napi-rs/blake-hash-${process.platform}-${process.arch}-gnu`, '@napi-rs/blake-hash']) {
    if (name.endsWith('-gnu') && process.platform !== 'linux') continue;
    try {
      const { Blake3Hasher } = require(name);
      if (typeof Blake3Hasher === 'function') return Blake3Hasher;
    } catch {
      // the next, or none
    }
  }
  return undefined;
}

const myUid = () => (typeof process.getuid === 'function' ? process.getuid() : undefined);
/** Owned by this user (where there are users) and writable by no one else. */
const isPrivate = (st) => (myUid() === undefined || st.uid === myUid()) && (st.mode & 0o022) === 0;

/** The user's private folder for compiled code, made if need be; undefined when there is none to trust. */
function cacheFolder() {
  try {
    const env = process.env;
    let root = env.CKVC_CACHE;
    if (!root) {
      const xdg = env.XDG_CACHE_HOME;
      root = xdg && path.isAbsolute(xdg) ? path.join(xdg, 'ckvc') : path.join(os.homedir(), '.cache', 'ckvc');
    }
    const dir = path.join(path.resolve(root), 'compiled');
    if (!fs.existsSync(dir)) {
      let existing = path.dirname(dir);
      while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
      const uid = myUid();
      if (uid !== undefined && fs.statSync(existing).uid !== uid) return undefined;
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const st = fs.lstatSync(dir);
    return st.isDirectory() && isPrivate(st) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The data after `key` and the digest in a file, when it is the user's own, whole and made for `key`. */
function readCached(file, key, Hasher) {
  let fd;
  try {
    const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1 || !isPrivate(st) || st.size <= DIGEST_BYTES) return undefined;
    const bytes = fs.readFileSync(fd);
    const data = bytes.subarray(DIGEST_BYTES);
    return digest(Hasher, key, data).equals(bytes.subarray(0, DIGEST_BYTES)) ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function digest(Hasher, key, data) {
  const h = new Hasher();
  h.update(key);
  h.update(data);
  return Buffer.from(h.digestBuffer());
}

/** Writes the file whole or not at all (a reader never sees half of it), then deletes what is no longer needed. */
function writeCached(dir, file, buildKey, key, data, Hasher) {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    fs.writeFileSync(temp, Buffer.concat([digest(Hasher, key, data), data]), {
      mode: 0o600,
      flag: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
    });
    fs.renameSync(temp, file);
  } catch {
    fs.rmSync(temp, { force: true });
    return;
  }
  try {
    const kept = [];
    for (const name of fs.readdirSync(dir)) {
      const other = path.join(dir, name);
      if (other === file || !/^ckvc-.*\.(v8|tmp)$/.test(name)) continue;
      const mtimeMs = fs.lstatSync(other, { throwIfNoEntry: false })?.mtimeMs;
      if (mtimeMs === undefined) continue;
      const age = Date.now() - mtimeMs;
      if (name.endsWith('.tmp') ? age > TEMP_KEPT_MS : !name.startsWith(`ckvc-${buildKey}-`) && age > OTHER_BUILDS_KEPT_MS)
        fs.rmSync(other, { force: true });
      else if (name.endsWith('.v8')) kept.push({ other, mtimeMs });
    }
    kept.sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const { other } of kept.slice(MAX_FILES - 1)) fs.rmSync(other, { force: true });
  } catch {
    // tidying up is for another run
  }
}

const disabled = () => {
  const v = process.env.NODE_DISABLE_COMPILE_CACHE;
  return (v !== undefined && v !== '' && v !== '0') || process.sourceMapsEnabled === true;
};

/**
 * Loads `file` (a CommonJS script) as require() would and returns its exports. `variant` names the command and
 * what else makes V8 reject cached code (its flags: bin/ckvc sets one for some commands), each keeping its own file.
 */
function requireWithCodeCache(file, variant) {
  const Hasher = disabled() ? undefined : blake3Hasher();
  const dir = Hasher && cacheFolder();
  if (!dir) return require(file);
  const bytes = fs.readFileSync(file);
  // The build makes the bundle ASCII (esbuild.config.mjs), which decodes as Latin-1 in 0.7 ms against 4-5 ms as
  // UTF-8, to the same text.
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  const hex = (...parts) => {
    const h = new Hasher();
    for (const p of parts) h.update(p);
    return h.digest('hex');
  };
  // What this process compiles (0.4 ms to hash), and under what.
  const build = hex(bytes, `\0${process.version}\0${process.arch}`);
  const buildKey = build.slice(0, 16);
  const key = Buffer.from(`${build}\0${variant}`);
  const cacheFile = path.join(dir, `ckvc-${buildKey}-${hex(key).slice(0, 16)}.v8`);
  const cachedData = readCached(cacheFile, key, Hasher);
  // No import() handler: V8 keeps none with cached code, so the build leaves no import() in the bundle.
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    // Made at exit, after the command ran, so that the functions it compiled on the way are kept too.
    process.once('exit', () => {
      try {
        writeCached(dir, cacheFile, buildKey, key, script.createCachedData(), Hasher);
      } catch {
        // a cache not written is compiled again next time
      }
    });
  }
  const mod = { exports: {}, filename: file, id: file, loaded: false };
  script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  return mod.exports;
}

module.exports = { requireWithCodeCache };
