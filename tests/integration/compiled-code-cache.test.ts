// The launcher's cache of compiled code (bin/compiled-code-cache.cjs): real runs of bin/ckvc with the cache in a
// temp folder. What it must never do is change what runs: stale code for a changed bundle, a damaged file, or a
// file in a folder others can write. What it should do: one file per command, written once and then used.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, REPO_ROOT } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';

afterAll(cleanupTemp);

const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

function run(bin: string, args: string[], cache: string, env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: cliEnv({ CKVC_CACHE: cache, NODE_DISABLE_COMPILE_CACHE: undefined, ...env }),
    encoding: 'utf8',
    cwd: cache,
  });
  if (r.status !== 0) throw new Error(`ckvc ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** The compiled-code files and what identifies each version of one (a rewrite makes a new inode: write and rename). */
function cacheFiles(cache: string): Map<string, string> {
  const dir = path.join(cache, 'compiled');
  const files = new Map<string, string>();
  if (!fs.existsSync(dir)) return files;
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.v8'))) {
    const st = fs.statSync(path.join(dir, name), { bigint: true });
    files.set(name, `${st.ino}:${st.mtimeNs}`);
  }
  return files;
}

/** Changes the copy's bundle to print another version, at the same length; returns that version. */
function otherVersionInPlace(bundle: string): string {
  const text = fs.readFileSync(bundle, 'latin1');
  const inlined = `return ${JSON.stringify(version)};`;
  expect(text.split(inlined)).toHaveLength(2);
  const other = version.replace(/[0-9]/g, '7');
  const st = fs.statSync(bundle, { bigint: true });
  fs.writeFileSync(bundle, text.replace(inlined, `return ${JSON.stringify(other)};`), 'latin1');
  const now = fs.statSync(bundle, { bigint: true });
  expect([now.ino, now.size]).toEqual([st.ino, st.size]);
  return other;
}

/** The one compiled-code file there is: its name and identity. */
function onlyFile(cache: string): [string, string] {
  const files = [...cacheFiles(cache)];
  expect(files).toHaveLength(1);
  return files[0]!;
}

/** A copy of the built CLI (launcher and bundle) that a test may change; the packages are the repository's. */
function copyOfCli(): { bin: string; bundle: string } {
  const root = tempDir('ckvc-cc-pkg-');
  fs.cpSync(path.join(REPO_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'dist', 'bundle'), { recursive: true });
  const bundle = path.join(root, 'dist', 'bundle', 'ckvc.cjs');
  fs.copyFileSync(path.join(REPO_ROOT, 'dist', 'bundle', 'ckvc.cjs'), bundle);
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return { bin: path.join(root, 'bin', 'ckvc'), bundle };
}

describe('compiled code kept between runs', () => {
  it('writes one private file per command once, then uses it', () => {
    const cache = tempDir('ckvc-cc-');
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    const first = cacheFiles(cache);
    const [name] = onlyFile(cache);
    expect(fs.statSync(path.join(cache, 'compiled')).mode & 0o777).toBe(0o700);
    expect(name).toMatch(/^ckvc-[0-9a-f]{16}-[0-9a-f]{16}\.v8$/);
    expect(fs.statSync(path.join(cache, 'compiled', name)).mode & 0o777).toBe(0o600);

    // Used, not written again (V8 accepted it).
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache)).toEqual(first);

    // Another command keeps its own; the first stays as it was.
    run(BIN, ['init', path.join(cache, 'store')], cache);
    const after = cacheFiles(cache);
    expect(after.size).toBe(2);
    expect(after.get(name)).toBe(first.get(name));
  });

  it('answers the same with and without it', () => {
    const cache = tempDir('ckvc-cc-');
    const store = path.join(cache, 'store');
    run(BIN, ['init', store], cache);
    fs.writeFileSync(path.join(store, 'a.json'), '{"lr": 0.1}');
    run(BIN, ['commit', 'a.json', '-m', 'one', '--metric', 'loss=2'], store);
    const without = run(BIN, ['log', '--json'], store, { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(run(BIN, ['log', '--json'], store)).toBe(without); // writes the file
    expect(run(BIN, ['log', '--json'], store)).toBe(without); // runs from it
    expect(JSON.parse(without)[0].message).toBe('one');
    // A command that loads a part of the bundle lazily (pack; import() in the sources), first run and from the cache.
    for (const out of ['a.ckvcb', 'b.ckvcb']) run(BIN, ['pack', 'main', '-o', out], store);
    expect(run(BIN, ['verify', 'b.ckvcb', '--json'], store)).toContain('"ok": true');
  });

  it('never runs code compiled from another bundle, even one of the same length, inode and times', () => {
    const cache = tempDir('ckvc-cc-');
    const { bin, bundle } = copyOfCli();
    const mtime = 1_700_000_000; // whole seconds, so that setting it again gives the very same time
    fs.utimesSync(bundle, mtime, mtime);
    expect(run(bin, ['--version'], cache).trim()).toBe(version);
    const [madeForFirst] = onlyFile(cache);
    const other = otherVersionInPlace(bundle);
    fs.utimesSync(bundle, mtime, mtime);
    expect(run(bin, ['--version'], cache).trim()).toBe(other);
    const files = cacheFiles(cache);
    expect(files.size).toBe(2);

    // The first bundle's file under the second's name (as a bundle replaced while a process was starting would
    // have left it): V8 alone would take it (same length) and print the old version. It is refused and rewritten.
    const [madeForSecond] = [...files.keys()].filter((n) => n !== madeForFirst);
    const secondFile = path.join(cache, 'compiled', madeForSecond!);
    fs.copyFileSync(path.join(cache, 'compiled', madeForFirst), secondFile);
    const planted = cacheFiles(cache).get(madeForSecond!);
    expect(run(bin, ['--version'], cache).trim()).toBe(other);
    expect(cacheFiles(cache).get(madeForSecond!)).not.toBe(planted);
    expect(run(bin, ['--version'], cache).trim()).toBe(other);
  });

  it("keeps a file per installed copy: a copy elsewhere never runs code compiled under the first one's path", () => {
    // V8 keeps the path a script was compiled under with its code: shared, a second copy's stack traces named the
    // first copy's files.
    const cache = tempDir('ckvc-cc-');
    const first = copyOfCli();
    const second = copyOfCli();
    expect(fs.readFileSync(first.bundle).equals(fs.readFileSync(second.bundle))).toBe(true);
    expect(run(first.bin, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).size).toBe(1);
    expect(run(second.bin, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).size).toBe(2);
    expect(run(first.bin, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).size).toBe(2);
  });

  it('runs the bundle in strict mode, as its ES modules ran', () => {
    const cache = tempDir('ckvc-cc-');
    const { bin, bundle } = copyOfCli();
    fs.appendFileSync(bundle, "\nif ((function () { return this; })() !== undefined) throw new Error('not strict');\n");
    expect(run(bin, ['--version'], cache).trim()).toBe(version);
    expect(run(bin, ['--version'], cache, { NODE_DISABLE_COMPILE_CACHE: '1' }).trim()).toBe(version);
  });

  it('compiles afresh and rewrites a damaged file', () => {
    const cache = tempDir('ckvc-cc-');
    run(BIN, ['--version'], cache);
    const [name, before] = onlyFile(cache);
    const file = path.join(cache, 'compiled', name);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length >> 1]! ^= 0x40; // inside V8's data: its own checks would not see it
    fs.writeFileSync(file, bytes);
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    const rewritten = cacheFiles(cache).get(name);
    expect(rewritten).not.toBe(before);
    expect(fs.readFileSync(file).equals(bytes)).toBe(false);
    // What it wrote is whole: the next run uses it.
    run(BIN, ['--version'], cache);
    expect(cacheFiles(cache).get(name)).toBe(rewritten);

    // Junk behind a digest (not made with the user's key): refused, and written again.
    const junk = randomBytes(4096);
    fs.writeFileSync(file, Buffer.concat([blake3(junk), junk]), { mode: 0o600 });
    const planted = cacheFiles(cache).get(name);
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).get(name)).not.toBe(planted);
    expect(fs.statSync(file).size).toBeGreaterThan(100_000);
  });

  it('uses no folder that others can write, and none when switched off', () => {
    const shared = tempDir('ckvc-cc-');
    fs.mkdirSync(path.join(shared, 'compiled'), { mode: 0o700 });
    fs.chmodSync(path.join(shared, 'compiled'), 0o777);
    expect(run(BIN, ['--version'], shared).trim()).toBe(version);
    expect(cacheFiles(shared).size).toBe(0);

    const off = tempDir('ckvc-cc-');
    expect(run(BIN, ['--version'], off, { NODE_DISABLE_COMPILE_CACHE: '1' }).trim()).toBe(version);
    expect(fs.existsSync(path.join(off, 'compiled'))).toBe(false);
    // Node maps stack traces to the sources only for what require() loads: no cache then either.
    expect(run(BIN, ['--version'], off, { NODE_OPTIONS: '--enable-source-maps' }).trim()).toBe(version);
    expect(fs.existsSync(path.join(off, 'compiled'))).toBe(false);

    // `compiled` a link to a folder of the user's inside one that others can write (they could swap it): not used.
    // Nor a cache under such a folder, nor a relative path.
    const linked = tempDir('ckvc-cc-');
    const open = tempDir('ckvc-cc-');
    fs.chmodSync(open, 0o777);
    const elsewhere = path.join(open, 'real');
    fs.mkdirSync(elsewhere, { mode: 0o700 });
    fs.symlinkSync(elsewhere, path.join(linked, 'compiled'));
    expect(run(BIN, ['--version'], linked).trim()).toBe(version);
    fs.mkdirSync(path.join(open, 'c'), { mode: 0o700 });
    expect(run(BIN, ['--version'], path.join(open, 'c')).trim()).toBe(version);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect(fs.readdirSync(path.join(open, 'c'))).toEqual([]);
    const relative = tempDir('ckvc-cc-');
    expect(run(BIN, ['--version'], relative, { CKVC_CACHE: 'rel' }).trim()).toBe(version);
    expect(fs.readdirSync(relative)).toEqual([]);
    // Coverage counts blocks only in code compiled from its source.
    const coverage = tempDir('ckvc-cc-');
    expect(run(BIN, ['--version'], coverage, { NODE_V8_COVERAGE: path.join(coverage, 'cov') }).trim()).toBe(version);
    expect(fs.existsSync(path.join(coverage, 'compiled'))).toBe(false);
  });

  it("uses no file someone else made: another cache's, or one the user owns but did not write 0600", () => {
    const [a, b] = [tempDir('ckvc-cc-'), tempDir('ckvc-cc-')];
    for (const c of [a, b]) run(BIN, ['--version'], c);
    const [name] = onlyFile(a);
    expect([...cacheFiles(b).keys()]).toEqual([name]); // same bundle and command: the same name
    const fileB = path.join(b, 'compiled', name);
    // Whole and made for this very bundle and command, but with another user's key (as an archive would bring it).
    fs.copyFileSync(path.join(a, 'compiled', name), fileB);
    const planted = cacheFiles(b).get(name);
    expect(run(BIN, ['--version'], b).trim()).toBe(version);
    expect(cacheFiles(b).get(name)).not.toBe(planted);
    // The user's own file, made readable by others (as a copy or a checkout leaves files): not used.
    fs.chmodSync(fileB, 0o644);
    const readable = cacheFiles(b).get(name);
    expect(run(BIN, ['--version'], b).trim()).toBe(version);
    expect(cacheFiles(b).get(name)).not.toBe(readable);
    expect(fs.statSync(fileB).mode & 0o777).toBe(0o600);
  });

  it('reads no cache file through a link, nor one with another name for it', () => {
    const cache = tempDir('ckvc-cc-');
    run(BIN, ['--version'], cache);
    const [name] = onlyFile(cache);
    const file = path.join(cache, 'compiled', name);
    const aside = path.join(tempDir('ckvc-cc-'), 'aside.v8');
    fs.renameSync(file, aside);
    fs.symlinkSync(aside, file);
    const asideBefore = fs.statSync(aside, { bigint: true }).mtimeNs;
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(fs.lstatSync(file).isFile()).toBe(true); // replaced by a file of its own, the link's target untouched
    expect(fs.statSync(aside, { bigint: true }).mtimeNs).toBe(asideBefore);

    const before = cacheFiles(cache).get(name);
    fs.linkSync(file, path.join(tempDir('ckvc-cc-'), 'second-name.v8'));
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).get(name)).not.toBe(before);
  });

  it('runs without a cache when the key cannot be had, and replaces a key cut short', () => {
    const cache = tempDir('ckvc-cc-');
    const dir = path.join(cache, 'compiled');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.symlinkSync(path.join(cache, 'nowhere'), path.join(dir, 'key'));
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).size).toBe(0);

    fs.rmSync(path.join(dir, 'key'));
    fs.writeFileSync(path.join(dir, 'key'), '', { mode: 0o600 }); // as a write cut short would leave it
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(cacheFiles(cache).size).toBe(0); // perhaps being written: left alone for a minute
    const aMinuteAgo = new Date(Date.now() - 61_000);
    fs.utimesSync(path.join(dir, 'key'), aMinuteAgo, aMinuteAgo);
    expect(run(BIN, ['--version'], cache).trim()).toBe(version);
    expect(fs.statSync(path.join(dir, 'key')).size).toBe(32);
    expect(cacheFiles(cache).size).toBe(1);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('takes the command after --store and its value, not the value', () => {
    const cache = tempDir('ckvc-cc-');
    for (const s of ['s1', 's2']) run(BIN, ['init', path.join(cache, s)], cache);
    const afterInit = cacheFiles(cache).size;
    expect(afterInit).toBe(1);
    for (const s of ['s1', 's2']) run(BIN, ['--store', path.join(cache, s, '.ckvc'), 'branch'], cache);
    expect(cacheFiles(cache).size).toBe(afterInit + 1);
  });

  it.runIf(process.getuid?.() === 0)("as root: a user with no home, and a user's home left alone", () => {
    // A user id with no entry in /etc/passwd and no HOME: Node cannot tell its home, and the CLI runs without a cache.
    const work = tempDir('ckvc-cc-');
    fs.chmodSync(work, 0o777);
    const env = cliEnv({ HOME: undefined, XDG_CACHE_HOME: undefined, CKVC_CACHE: undefined });
    const r = spawnSync(process.execPath, [BIN, '--version'], {
      env,
      encoding: 'utf8',
      cwd: work,
      uid: 4242,
      gid: 4242,
    });
    expect([r.status, r.stdout.trim(), r.stderr]).toEqual([0, version, '']);

    // root with another user's HOME (sudo keeping it): makes nothing there, so the user's ~/.cache stays theirs.
    const home = tempDir('ckvc-cc-');
    fs.chownSync(home, 4242, 4242);
    expect(run(BIN, ['--version'], work, { HOME: home, XDG_CACHE_HOME: undefined, CKVC_CACHE: undefined }).trim()).toBe(
      version,
    );
    expect(fs.readdirSync(home)).toEqual([]);
  });

  it("deletes other builds' files an hour old and temp files left behind, and keeps newer ones", () => {
    const cache = tempDir('ckvc-cc-');
    const dir = path.join(cache, 'compiled');
    fs.mkdirSync(dir, { mode: 0o700 });
    const old = path.join(dir, `ckvc-${'0'.repeat(16)}-${'1'.repeat(16)}.v8`);
    const recent = path.join(dir, `ckvc-${'0'.repeat(16)}-${'2'.repeat(16)}.v8`);
    const unrelated = path.join(dir, 'notes.txt');
    const leftTemp = path.join(dir, `ckvc-${'0'.repeat(16)}-${'3'.repeat(16)}.v8.123.tmp`);
    const liveTemp = path.join(dir, `ckvc-${'0'.repeat(16)}-${'4'.repeat(16)}.v8.124.tmp`);
    for (const f of [old, recent, unrelated, leftTemp, liveTemp]) fs.writeFileSync(f, 'x');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const f of [old, unrelated, leftTemp]) fs.utimesSync(f, twoHoursAgo, twoHoursAgo);
    run(BIN, ['--version'], cache);
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.existsSync(recent)).toBe(true);
    expect(fs.existsSync(unrelated)).toBe(true);
    expect(fs.existsSync(leftTemp)).toBe(false); // a killed writer's, long ago
    expect(fs.existsSync(liveTemp)).toBe(true); // perhaps being written now
    expect(cacheFiles(cache).size).toBe(2); // the recent one and this run's
  });
});
