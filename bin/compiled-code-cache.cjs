// Runs the CLI's bundle (one CommonJS script) with V8's compiled code kept between runs. Compiling the bundle is
// the largest single cost of a short command's start on Node 20, which has no compile cache of its own for ES
// modules (Node 22.1's module.enableCompileCache is later): `log -n 1` 61 -> 35 ms over a bare Node, `--version`
// 31 -> 22 ms (README, Start-up).
//
// The cache holds code that this process then runs, so who can write it, and what it was made from, matter:
// - It lives in the user's own cache folder (`$CKVC_CACHE/compiled`, else `$XDG_CACHE_HOME/ckvc/compiled`, else
//   `~/.cache/ckvc/compiled`, the folders the Python helper uses; absolute paths only). Missing folders are made
//   only inside one the user owns (root running with a user's HOME leaves it alone). The folder must be the user's
//   and 0700, and every folder above it the user's or root's and writable by no one else (but a sticky one, such
//   as /tmp, above one of theirs), so that no one else can swap any of them.
// - A file is opened without following links and used only if it is a plain file of the user's, 0600, with one
//   name; it starts with a BLAKE3 keyed with the user's secret (`compiled/key`, 32 random bytes, 0600) over the
//   very bytes this process compiles (with Node's version, the arch, what changes V8's flags and the bundle's
//   path) and the data.
//   V8 itself checks only the source's length and its own version, and verifies no checksum in release builds: a
//   bundle rebuilt or replaced while a process was starting, a file moved under another's name, a damaged one, or
//   one someone else made (a clone or an unpacked archive leaves files the user owns) would otherwise run.
// Anything amiss means compiling as without a cache; the cache never changes what runs. NODE_DISABLE_COMPILE_CACHE
// (Node's own switch for its cache) turns it off, and so do --enable-source-maps and NODE_V8_COVERAGE: Node maps
// stack traces, and V8 counts blocks, only for code compiled from its source.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { isAscii } = require('node:buffer');
const Module = require('node:module');
const { privateCacheFolder } = require('./cache-root.cjs');

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

/** A plain file of the user's, 0600, with one name, opened without following a link: its descriptor, or undefined. */
function openPrivateFile(file, size) {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  const st = fs.fstatSync(fd);
  if (st.isFile() && st.nlink === 1 && st.uid === process.getuid() && (st.mode & 0o777) === 0o600 && size(st.size))
    return fd;
  fs.closeSync(fd);
  return undefined;
}

/**
 * The user's secret (32 random bytes in `compiled/key`), made on first use: each file's digest is keyed with it,
 * so only the user's own ckvc can make a file that is used, whoever else could put a file of the user's there
 * (a clone or an unpacked archive leaves files the user owns). It appears whole or not at all (written, synced,
 * then linked to its name, which fails if another process's came first); one found unusable a minute after it was
 * made (a write cut short before this scheme) is replaced. Undefined when there is none: no cache then.
 */
function secretKey(dir) {
  const file = path.join(dir, 'key');
  try {
    let st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st?.isFile() && st.size !== 32 && Date.now() - st.mtimeMs > 60_000) {
      fs.rmSync(file);
      st = undefined;
    }
    if (st === undefined) makeKey(dir, file);
    const fd = openPrivateFile(file, (n) => n === 32);
    if (fd === undefined) return undefined;
    try {
      const key = fs.readFileSync(fd);
      return key.length === 32 ? key : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined; // no key, no cache
  }
}

function makeKey(dir, file) {
  const temp = path.join(dir, `ckvc-key-${process.pid}.tmp`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  try {
    const fd = fs.openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      fs.writeFileSync(fd, require('node:crypto').randomBytes(32));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(temp, file);
  } catch {
    // another process's key came first, or none can be made
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** The data after the digest in a file, when it is the user's own, whole and made for `key` with `secret`. */
function readCached(file, key, secret, Hasher) {
  let fd;
  try {
    fd = openPrivateFile(file, (n) => n > DIGEST_BYTES);
    if (fd === undefined) return undefined;
    const bytes = fs.readFileSync(fd);
    const data = bytes.subarray(DIGEST_BYTES);
    return digest(Hasher, secret, key, data).equals(bytes.subarray(0, DIGEST_BYTES)) ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function digest(Hasher, secret, key, data) {
  const h = Hasher.newKeyed(secret);
  h.update(key);
  h.update(data);
  return Buffer.from(h.digestBuffer());
}

/** Writes the file whole or not at all (a reader never sees half of it), then deletes what is no longer needed. */
function writeCached(dir, file, buildKey, key, secret, data, Hasher) {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    fs.writeFileSync(temp, Buffer.concat([digest(Hasher, secret, key, data), data]), {
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

// Off where Node's own switch says so, where stack traces are mapped to the sources or coverage is taken (both
// work only for code compiled from source, or require()d), and where there are no user IDs to check (Windows).
const disabled = () => {
  const v = process.env.NODE_DISABLE_COMPILE_CACHE;
  return (
    (v !== undefined && v !== '' && v !== '0') ||
    process.sourceMapsEnabled === true ||
    Boolean(process.env.NODE_V8_COVERAGE) ||
    typeof process.getuid !== 'function'
  );
};

/**
 * Loads `file` (a CommonJS script) as require() would and returns its exports. `variant` names the command and
 * what else makes V8 reject cached code (its flags: bin/ckvc sets one for some commands), each keeping its own file.
 */
function requireWithCodeCache(file, variant) {
  const Hasher = disabled() ? undefined : blake3Hasher();
  const dir = Hasher && privateCacheFolder('compiled');
  const secret = dir && secretKey(dir);
  if (!secret) return require(file);
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
  // The bundle's path too: V8 keeps the name a script was compiled under with its cached code, so a copy of the
  // same bundle installed elsewhere would name the first one's files in its stack traces.
  const key = Buffer.from(`${build}\0${variant}\0${file}`);
  const cacheFile = path.join(dir, `ckvc-${buildKey}-${hex(key).slice(0, 16)}.v8`);
  const cachedData = readCached(cacheFile, key, secret, Hasher);
  // No import() handler: V8 keeps none with cached code, so the build leaves no import() in the bundle.
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    // Made at exit, after the command ran, so that the functions it compiled on the way are kept too.
    process.once('exit', () => {
      try {
        writeCached(dir, cacheFile, buildKey, key, secret, script.createCachedData(), Hasher);
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
