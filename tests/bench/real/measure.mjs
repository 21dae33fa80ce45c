// Measuring helpers for the real-data benchmark: timed child processes with their peak RSS, folder sizes,
// dropping the page cache, and byte-for-byte comparison of a restore with the original checkpoint.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const GNU_TIME = '/usr/bin/time';
export const haveGnuTime = spawnSync(GNU_TIME, ['-f', '%M', 'true'], { stdio: 'ignore' }).status === 0;

/**
 * The environment a benchmarked command runs in: this process's with `extra`, without NODE_EXTRA_CA_CERTS. That
 * variable is set on machines behind a TLS-inspecting proxy (as the one the README's figures come from) and makes
 * every Node process parse the extra certificates at start-up: about 70 ms here (`node -e 0` 0.14 s with it, 0.07 s
 * without), which a user's machine does not pay; no benchmarked command talks TLS.
 */
export function benchEnv(extra = {}) {
  const { NODE_EXTRA_CA_CERTS: _proxyCerts, ...env } = process.env;
  return { ...env, ...extra };
}

/**
 * Runs CMD ARGS to completion. Returns wall seconds and peak RSS in MiB (GNU time's %M: the largest resident
 * set of the command; null without GNU time). Throws with the command's stderr when it fails. `env` adds to
 * benchEnv().
 */
export function run(cmd, args, { cwd, env } = {}) {
  const childEnv = benchEnv(env);
  const rssFile = path.join(os.tmpdir(), `ckvc-bench-real-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const [file, argv] = haveGnuTime ? [GNU_TIME, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, argv, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      let rss = null;
      if (haveGnuTime) {
        // On failure GNU time writes "Command exited with non-zero status N" before the figure.
        const lines = fs.existsSync(rssFile) ? fs.readFileSync(rssFile, 'utf8').trim().split('\n') : [];
        fs.rmSync(rssFile, { force: true });
        const kib = Number(lines.at(-1));
        if (Number.isFinite(kib) && lines.length) rss = kib / 1024;
      }
      if (code !== 0)
        reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd ?? process.cwd()}) exited with ${code}:\n${err}${out}`));
      else resolve({ secs, rss, out, err });
    });
  });
}

/** Bytes of every regular file below DIR (apparent sizes, as `du --apparent-size -b` counts them). */
export function dirBytes(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

/** Regular files below DIR as paths relative to it, sorted. */
export function listFiles(dir, prefix = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** Flushes dirty pages and drops the page cache; returns whether dropping was possible (root, writable /proc). */
export function dropCaches() {
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** Reads every file of DIR once, so a command that follows finds it in the page cache (as a training loop's
 * freshly written checkpoint would be). */
export function warm(dir) {
  for (const f of listFiles(dir)) fs.readFileSync(path.join(dir, f));
}

/** Throws unless RESTORED holds exactly the files of ORIGINAL with identical bytes. */
export function assertSameTree(original, restored, what) {
  const want = listFiles(original);
  const got = fs.existsSync(restored) ? listFiles(restored) : [];
  if (want.join('\n') !== got.join('\n')) {
    throw new Error(
      `${what}: restored files differ from the checkpoint's.\n  expected: ${want.join(', ')}\n  restored: ${got.join(', ')} (in ${restored})`,
    );
  }
  for (const f of want) {
    const a = fs.readFileSync(path.join(original, f));
    const b = fs.readFileSync(path.join(restored, f));
    if (!a.equals(b))
      throw new Error(
        `${what}: ${f} restored into ${restored} is not byte-identical to ${path.join(original, f)} (${b.length} vs ${a.length} bytes)`,
      );
  }
}

/** Makes DIR hold exactly the files of SRC, as hard links (a copy where linking fails): the "live" checkpoint
 * folder a training loop overwrites at every save. */
export function stage(src, dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of listFiles(src)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    try {
      fs.linkSync(path.join(src, f), path.join(dir, f));
    } catch {
      fs.copyFileSync(path.join(src, f), path.join(dir, f));
    }
  }
}
