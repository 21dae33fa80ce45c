// Received or committed data that escapes (issue 11), through the real CLI. Checkout never writes through a
// symlink in the target folder, finds every conflict before its first write, and cleans up after killed
// checkouts; commit refuses names a file system reads as .git or .ckvc, skips symlinks inside folders, and
// refuses files whose size lies; a received tree holding such a name is refused by pull, verify and checkout.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckvc, describeRun, errorCodes, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, readRef, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, readTree, snapshotStore, snapshotTree } from '../helpers/snapshots.js';
import { randomBytes, safetensorsBytes } from '../helpers/data.js';
import { hostileBundle, hostileHistory, plantInStore, type TreeSpec } from '../helpers/hostile-tree.js';

afterAll(cleanupTemp);

let s: TestStore;
let src: string;
let id: string;
/** A file of the commit that is named like a checkout temp file: never taken for one. */
const TEMP_LOOKALIKE = '.x.ckvc-0123abcd.tmp';

beforeAll(() => {
  s = newStore();
  src = tempDir('ckvc-safety-src-');
  fs.writeFileSync(path.join(src, 'a.txt'), 'a from the commit\n');
  fs.writeFileSync(path.join(src, TEMP_LOOKALIKE), 'mine\n');
  fs.mkdirSync(path.join(src, 'sub', 'deep'), { recursive: true });
  fs.writeFileSync(path.join(src, 'sub', 'f.txt'), 'f from the commit\n');
  fs.writeFileSync(path.join(src, 'sub', 'deep', 'g.bin'), randomBytes(5, 70_000));
  fs.writeFileSync(path.join(src, 'sub', 'w.safetensors'), safetensorsBytes({ w: { dtype: 'F32', shape: [16, 16] } }));
  id = commitId(s, [src, '-m', 'base']);
});

/** Runs a checkout that must be refused with exit 17 and one stderr line, leaving every folder given as it was. */
function refusedCheckout(args: string[], untouched: string[]): RunResult {
  const before = untouched.map((d) => snapshotTree(d));
  const r = s.run(['checkout', ...args]);
  expect(r.code, describeRun(r)).toBe(17);
  expect(errorCodes(r.stderr)).toEqual(['CKVC_WOULD_OVERWRITE']);
  expect(r.stderr.trim().split('\n'), describeRun(r)).toHaveLength(1);
  untouched.forEach((d, i) => {
    expect(diffSnapshots(before[i]!, snapshotTree(d)), d).toEqual([]);
  });
  return r;
}

describe('checkout never writes through a symlink in the target folder', () => {
  it('a symlinked folder on the way (out/sub -> elsewhere) is refused with and without --force, naming the link and where it points', () => {
    const out = tempDir('ckvc-safety-out-');
    const elsewhere = tempDir('ckvc-safety-elsewhere-');
    fs.writeFileSync(path.join(elsewhere, 'f.txt'), "the victim's file\n");
    fs.symlinkSync(elsewhere, path.join(out, 'sub'));
    for (const force of [[], ['--force']]) {
      const r = refusedCheckout([id, '--to', out, ...force], [out, elsewhere]);
      expect(r.stderr).toContain(`${path.join(out, 'sub')} is a symbolic link (to ${elsewhere})`);
      expect(r.stderr).toContain('with or without --force');
      expect(r.stderr, 'the refusal names the link, not a path beneath it').not.toContain('f.txt');
    }
    expect(fs.readdirSync(out)).toEqual(['sub']); // not even a.txt: nothing is written before every path is checked
  });

  it('a dangling symlink where a folder goes: exit 17 before any file is written (was CKVC_INTERNAL after writing others)', () => {
    const out = tempDir('ckvc-safety-out-');
    fs.symlinkSync(path.join(out, 'missing'), path.join(out, 'sub'));
    const r = refusedCheckout([id, '--to', out], [out]);
    expect(r.stderr).toContain(`${path.join(out, 'sub')} is a symbolic link`);
    expect(r.stderr).not.toMatch(/CKVC_INTERNAL|at .*\.js/);
    expect(fs.existsSync(path.join(out, 'a.txt'))).toBe(false);
  });

  it("a symlink at a file's own path, dangling or to an identical file, is refused with and without --force and left in place", () => {
    const out = tempDir('ckvc-safety-out-');
    const outside = tempDir('ckvc-safety-outside-');
    fs.writeFileSync(path.join(outside, 'same.txt'), 'f from the commit\n');
    fs.symlinkSync(path.join(out, 'nowhere'), path.join(out, 'a.txt'));
    fs.mkdirSync(path.join(out, 'sub'));
    fs.symlinkSync(path.join(outside, 'same.txt'), path.join(out, 'sub', 'f.txt'));
    for (const force of [[], ['--force']]) {
      const r = refusedCheckout([id, '--to', out, ...force, '--json'], [out, outside]);
      const err = JSON.parse(r.stderr).error;
      expect(err.data.conflicts).toEqual([
        { path: path.join(out, 'a.txt'), kind: 'symlink', to: path.join(out, 'nowhere') },
        { path: path.join(out, 'sub', 'f.txt'), kind: 'symlink', to: path.join(outside, 'same.txt') },
      ]);
    }
    expect(fs.existsSync(path.join(out, 'nowhere')), 'nothing written through the dangling link').toBe(false);
  });

  it('--to may itself be a symlink: it is resolved once and the files land in the folder it names', () => {
    const real = tempDir('ckvc-safety-real-');
    const link = path.join(tempDir('ckvc-safety-link-'), 'to');
    fs.symlinkSync(real, link);
    const r = s.json(['checkout', id, '--to', link]);
    expect(r.written.length).toBe(5);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readTree(real).get('sub/f.txt')?.toString()).toBe('f from the commit\n');
  });

  it('a file where a folder goes, or a folder where a file goes: --force does not help, and the message says what does', () => {
    const out = tempDir('ckvc-safety-out-');
    fs.writeFileSync(path.join(out, 'sub'), 'a file, not a folder\n');
    fs.mkdirSync(path.join(out, 'a.txt'));
    for (const force of [[], ['--force']]) {
      const r = refusedCheckout([id, '--to', out, ...force], [out]);
      expect(r.stderr).toContain(
        `${path.join(out, 'a.txt')} is a folder where the commit has a file; --force never replaces a folder: move or remove it`,
      );
      expect(r.stderr).toContain('1 more path(s) are in the way');
      expect(r.stderr).not.toMatch(/pass --force/);
    }
    const json = JSON.parse(refusedCheckout([id, '--to', out, '--force', '--json'], [out]).stderr).error;
    expect(json.data.conflicts.map((c: any) => [path.relative(out, c.path), c.kind])).toEqual([
      ['a.txt', 'folder'],
      ['sub', 'not-folder'],
    ]);
  });

  it("links in the way and files that differ together: the message tells them apart; only the differing ones are --force's to fix", () => {
    const out = tempDir('ckvc-safety-out-');
    fs.writeFileSync(path.join(out, 'a.txt'), 'edited\n');
    fs.symlinkSync(tempDir('ckvc-safety-elsewhere-'), path.join(out, 'sub'));
    const r = refusedCheckout([id, '--to', out], [out]);
    expect(r.stderr).toMatch(
      /sub is a symbolic link .*; 1 existing file\(s\) also differ \(.*a\.txt; --force would replace those\)/,
    );
    const differsOnly = tempDir('ckvc-safety-out-');
    fs.writeFileSync(path.join(differsOnly, 'a.txt'), 'edited\n');
    expect(refusedCheckout([id, '--to', differsOnly], [differsOnly]).stderr).toMatch(
      /would overwrite 1 existing file\(s\) that differ \(.*a\.txt\); nothing was written: pass --force/,
    );
    // --force says which files it replaced.
    const forced = s.run(['checkout', id, '--to', differsOnly, '--force']);
    expect(forced.code, describeRun(forced)).toBe(0);
    expect(forced.stdout).toContain('a.txt  (replaced a different file)');
    expect(forced.stderr).toContain('1 replaced a different file there');
    const again = JSON.parse(s.run(['checkout', id, '--to', differsOnly, '--json']).stdout);
    expect(again.written.some((w: { replaced?: boolean }) => w.replaced)).toBe(false);
  });

  it('checkout --tensor writes through the same checks', () => {
    const out = tempDir('ckvc-safety-out-');
    const elsewhere = tempDir('ckvc-safety-elsewhere-');
    fs.symlinkSync(elsewhere, path.join(out, 'sub'));
    for (const force of [[], ['--force']]) {
      const r = refusedCheckout([id, '--to', out, '--tensor', '*', ...force], [out, elsewhere]);
      expect(r.stderr).toContain(`${path.join(out, 'sub')} is a symbolic link (to ${elsewhere})`);
    }
    fs.rmSync(path.join(out, 'sub'));
    fs.mkdirSync(path.join(out, 'sub'));
    fs.symlinkSync(path.join(elsewhere, 'w.safetensors'), path.join(out, 'sub', 'w.safetensors'));
    refusedCheckout([id, '--to', out, '--tensor', '*', '--force'], [out, elsewhere]);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
  });
});

describe('checkout into a folder that holds other files', () => {
  it("says how many files are not the commit's (a folder of another commit's checkpoints mixes the two), leaves them", () => {
    const out = tempDir('ckvc-safety-out-');
    fs.writeFileSync(path.join(out, 'step_900.safetensors'), 'another commit\n');
    fs.mkdirSync(path.join(out, 'sub'));
    fs.writeFileSync(path.join(out, 'sub', 'old.bin'), 'old\n');
    fs.writeFileSync(path.join(out, '.y.ckvc-0123abcd.tmp'), 'a temp file form: not counted\n');
    fs.mkdirSync(path.join(out, '.git'));
    fs.writeFileSync(path.join(out, '.git', 'HEAD'), 'a repository around the run: not counted\n');
    const r = s.run(['checkout', id, '--to', out, '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(JSON.parse(r.stdout).otherFiles).toEqual({
      count: 2,
      examples: ['step_900.safetensors', 'sub/old.bin'],
      complete: true,
    });
    const text = s.run(['checkout', id, '--to', out]);
    expect(text.stderr).toContain(
      `ckvc: note: ${out} also holds 2 file(s) that ${id.slice(0, 12)} does not (left as they are), e.g. step_900.safetensors, sub/old.bin`,
    );
    expect(fs.readFileSync(path.join(out, 'step_900.safetensors'), 'utf8')).toBe('another commit\n');
    // With --path the folder is expected to hold more: nothing said. A folder holding only the commit: nothing.
    expect(
      JSON.parse(s.run(['checkout', id, '--to', out, '--path', 'a.txt', '--json']).stdout).otherFiles,
    ).toBeUndefined();
    const clean = tempDir('ckvc-safety-out-');
    expect(JSON.parse(s.run(['checkout', id, '--to', clean, '--json']).stdout).otherFiles).toBeUndefined();
  });

  it('the store folder inside the target is not counted', () => {
    const t = newStore();
    const dir = path.dirname(t.store);
    fs.writeFileSync(path.join(dir, 'm.bin'), 'model\n');
    const c = commitId(t, [path.join(dir, 'm.bin'), '-m', 'one']);
    const r = t.run(['checkout', c, '--to', dir, '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(JSON.parse(r.stdout).otherFiles).toBeUndefined();
  });
});

describe('temp files left by a killed checkout', () => {
  it('are removed by the next checkout into the folder once stale; fresh ones, other names and other folders are left alone', () => {
    const out = tempDir('ckvc-safety-out-');
    // Killed just before renaming its first file into place: the finished temp file stays behind.
    const killed = s.run(['checkout', id, '--to', out], { env: { CKVC_FAULT: 'checkout.rename=kill' } });
    expect(killed.code, describeRun(killed)).not.toBe(0);
    const left = fs.readdirSync(out).filter((n) => /^\..+\.ckvc-[0-9a-f]{8}\.tmp$/.test(n));
    expect(left, 'the killed checkout left its temp file').toHaveLength(1);

    const hourAgo = new Date(Date.now() - 60 * 60 * 1000);
    const age = (p: string) => fs.utimesSync(p, hourAgo, hourAgo);
    const stale = path.join(out, left[0]!);
    age(stale);
    const decoys = {
      fresh: path.join(out, '.sub.ckvc-00000000.tmp'), // could be a checkout running right now
      otherName: path.join(out, '.a.txt.ckvc-notmine.tmp'),
      folder: path.join(out, '.d.ckvc-11111111.tmp'),
      link: path.join(out, '.l.ckvc-22222222.tmp'),
      otherFolder: path.join(out, 'other', '.o.ckvc-33333333.tmp'),
      committed: path.join(out, TEMP_LOOKALIKE), // a file of the commit, identical: kept as it is
    };
    fs.writeFileSync(decoys.fresh, 'x');
    fs.writeFileSync(decoys.otherName, 'x');
    fs.mkdirSync(decoys.folder);
    fs.symlinkSync(path.join(out, 'nowhere'), decoys.link);
    fs.mkdirSync(path.dirname(decoys.otherFolder));
    fs.writeFileSync(decoys.otherFolder, 'x');
    fs.writeFileSync(decoys.committed, 'mine\n');
    for (const p of [decoys.otherName, decoys.folder, decoys.otherFolder, decoys.committed]) age(p);

    const r = s.run(['checkout', id, '--to', out, '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(JSON.parse(r.stdout).removedTemps).toEqual([stale]);
    expect(r.stderr).toContain(`ckvc: removed 1 stale temp file(s) an interrupted checkout left, e.g. ${stale}`);
    // The young one is left (a checkout may be writing it) and said: a killed checkout's is hidden, and can be GBs.
    expect(JSON.parse(r.stdout).recentTemps).toEqual([{ path: decoys.fresh, bytes: 1 }]);
    expect(r.stderr).toContain(
      `ckvc: note: 1 temp file(s) of another checkout, running or killed, are there (1 B, e.g. ${decoys.fresh}); a checkout writing into that folder removes them once untouched for 15 minutes`,
    );
    expect(fs.existsSync(stale)).toBe(false);
    for (const [what, p] of Object.entries(decoys))
      expect(fs.lstatSync(p, { throwIfNoEntry: false }), what).toBeDefined();
    expect(fs.readFileSync(path.join(out, 'a.txt'), 'utf8')).toBe('a from the commit\n');
  });
});

describe('commit refuses names a file system reads as .git or .ckvc', () => {
  function refusedCommit(args: string[]): RunResult {
    const before = snapshotStore(s.store);
    const tip = readRef(s.store, 'refs/heads/main');
    const r = s.run(['commit', ...args, '-m', 'x']);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(r.stderr.trim().split('\n'), describeRun(r)).toHaveLength(1);
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    expect(readRef(s.store, 'refs/heads/main')).toBe(tip);
    return r;
  }

  it('a folder holding a .git folder: refused before any data is read, naming it, with a way forward that works', () => {
    const dir = tempDir('ckvc-safety-repo-');
    fs.writeFileSync(path.join(dir, 'model.bin'), randomBytes(9, 50_000));
    fs.mkdirSync(path.join(dir, '.git'));
    fs.writeFileSync(path.join(dir, '.git', 'config'), '[core]\n\tfsmonitor = "touch pwned"\n');
    const r = refusedCommit([dir]);
    expect(r.stderr).toContain(`cannot commit ${path.join(dir, '.git')}: its name is ".git"`);
    expect(r.stderr).toContain(`'ckvc commit ${dir}/*', which leaves out hidden names`);
    fs.writeFileSync(path.join(dir, 'opt.bin'), 'o');
    // What the shell makes of DIR/*: the entries without hidden names, as the root's entries.
    commitId(s, [path.join(dir, 'model.bin'), path.join(dir, 'opt.bin'), '-m', 'without .git']);
  });

  for (const name of ['.GIT.', 'git~1', '.g\u200cit', '.Git ', '.ckvc', 'CKVC~1']) {
    it(`${JSON.stringify(name)} inside a folder is refused, the store unchanged`, () => {
      const dir = tempDir('ckvc-safety-name-');
      fs.writeFileSync(path.join(dir, 'a.bin'), 'a');
      fs.mkdirSync(path.join(dir, 'sub', name), { recursive: true });
      fs.writeFileSync(path.join(dir, 'sub', name, 'config'), 'x');
      const r = refusedCommit([dir]);
      expect(r.stderr).toContain(`cannot commit ${path.join(dir, 'sub', name)}: its name`);
    });
  }

  it('a PATH named on the command line with such a name: says to give a folder alone or copy it under another name', () => {
    const dir = tempDir('ckvc-safety-named-');
    fs.mkdirSync(path.join(dir, '.git'));
    fs.writeFileSync(path.join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    fs.writeFileSync(path.join(dir, 'a.bin'), 'a');
    const r = refusedCommit([path.join(dir, 'a.bin'), path.join(dir, '.git')]);
    expect(r.stderr).toContain('as an entry named ".git"');
    expect(r.stderr).toContain('give');
    expect(r.stderr).toContain('alone');
  });
});

describe('commit skips symlinks inside folders and refuses files whose size lies', () => {
  it('a link inside a committed folder is skipped with a warning (stderr and --json), whatever it points to', () => {
    const dir = tempDir('ckvc-safety-links-');
    const outside = tempDir('ckvc-safety-secret-');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'AWS_SECRET=hunter2\n');
    fs.writeFileSync(path.join(dir, 'weights.bin'), randomBytes(11, 20_000));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'token'));
    fs.symlinkSync('../weights.bin', path.join(dir, 'sub', 'latest'));
    fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    fs.symlinkSync(outside, path.join(dir, 'shared'));
    const r = s.run(['commit', dir, '-m', 'links', '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    const res = JSON.parse(r.stdout);
    const links = [
      [path.join(dir, 'dangling'), path.join(dir, 'nowhere')],
      [path.join(dir, 'shared'), outside],
      [path.join(dir, 'sub', 'latest'), '../weights.bin'],
      [path.join(dir, 'token'), path.join(outside, 'secret.txt')],
    ];
    expect(res.warnings).toEqual(
      links.map(([l, to]) =>
        expect.stringContaining(`skipped symlink ${l} (-> ${to}): links inside a committed folder are not followed`),
      ),
    );
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('ckvc: warning: skipped symlink')),
    ).toHaveLength(4);
    expect(res.files).toBe(1);
    const out = tempDir('ckvc-safety-out-');
    s.ok(['checkout', res.id, '--to', out]);
    expect([...readTree(out).keys()]).toEqual(['weights.bin']);
  });

  it('a symlink named as the PATH is followed: the user chose it', () => {
    const dir = tempDir('ckvc-safety-named-link-');
    fs.writeFileSync(path.join(dir, 'step_1000.pt'), 'weights');
    fs.symlinkSync(path.join(dir, 'step_1000.pt'), path.join(dir, 'last.pt'));
    fs.mkdirSync(path.join(dir, 'ck'));
    fs.writeFileSync(path.join(dir, 'ck', 'w.bin'), 'w');
    fs.symlinkSync(path.join(dir, 'ck'), path.join(dir, 'ck-link'));
    const one = s.json(['commit', path.join(dir, 'last.pt'), path.join(dir, 'ck-link'), '-m', 'named links']);
    expect(one.warnings).toBeUndefined();
    const out = tempDir('ckvc-safety-out-');
    s.ok(['checkout', one.id, '--to', out]);
    expect(Object.fromEntries([...readTree(out)].map(([k, v]) => [k, v.toString()]))).toEqual({
      'last.pt': 'weights',
      'ck-link/w.bin': 'w',
    });
  });

  it('/proc/self/status (size 0, content behind it) is refused, not stored as 0 bytes', () => {
    expect(fs.statSync('/proc/self/status').size, 'this test needs Linux procfs').toBe(0);
    const before = snapshotStore(s.store);
    const r = s.run(['commit', '/proc/self/status', '-m', 'proc']);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(r.stderr).toContain(
      'cannot commit /proc/self/status: its size says 0 bytes but it holds more bytes than that',
    );
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });

  it('a named pipe inside a folder is refused at once, naming it', () => {
    const dir = tempDir('ckvc-safety-fifo-');
    fs.writeFileSync(path.join(dir, 'a.bin'), 'a');
    execFileSync('mkfifo', [path.join(dir, 'pipe')]);
    const r = s.run(['commit', dir, '-m', 'fifo'], { timeoutMs: 20_000 });
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(r.stderr).toContain(`cannot commit ${path.join(dir, 'pipe')}: it is a named pipe`);
  });
});

describe('a received tree holding .git or .ckvc is refused', () => {
  const FSMONITOR: TreeSpec = {
    'model.bin': 'weights',
    '.git': { config: '[core]\n\tfsmonitor = "touch pwned"\n', HEAD: 'ref: refs/heads/main\n' },
  };

  /** `ckvc verify FILE --json` with no store around. */
  function verifyFile(file: string): RunResult {
    return ckvc(['verify', file, '--json'], {
      cwd: tempDir('ckvc-nostore-'),
      env: { TMPDIR: tempDir('ckvc-vtmp-'), CKVC_DIR: undefined },
    });
  }

  it('pull FILE refuses a bundle whose tree holds .git/config, leaving the store exactly as it was; verify FILE refuses it too', async () => {
    const work = tempDir('ckvc-safety-bundle-');
    const file = path.join(work, 'evil.ckvb');
    await hostileBundle(file, path.join(work, 'scratch'), hostileHistory(FSMONITOR), 'main');
    const r = newStore();
    const before = snapshotStore(r.store);
    const pulled = r.run(['pull', file]);
    expect(pulled.code, describeRun(pulled)).toBe(12);
    // Received data: the bundle is refused as a whole (BUNDLE.md §3), the message naming the bad entry.
    expect(errorCodes(pulled.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(pulled.stderr).toContain('".git"');
    expect(diffSnapshots(before, snapshotStore(r.store))).toEqual([]);
    const v = verifyFile(file);
    expect(v.code, describeRun(v)).toBe(12);
    expect(errorCodes(v.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(JSON.parse(v.stderr).error.message).toContain('".git"');
  });

  for (const [what, spec] of [
    ['.GIT. (trailing dot)', { '.GIT.': { config: 'x' } }],
    ['git~1 (8.3 short name)', { 'git~1': { config: 'x' } }],
    ['.g\\u200cit (HFS+ ignorable)', { '.g\u200cit': { config: 'x' } }],
    [
      'a .ckvc prune record deep inside',
      { project: { '.ckvc': { pruned: { [`${'ab'.repeat(32)}.json`]: '{"tensors":null}' } } } },
    ],
  ] as [string, TreeSpec][]) {
    it(`verify FILE refuses a bundle holding ${what}`, async () => {
      const work = tempDir('ckvc-safety-bundle-');
      const file = path.join(work, 'evil.ckvb');
      await hostileBundle(file, path.join(work, 'scratch'), hostileHistory(spec), 'main');
      const v = verifyFile(file);
      expect(v.code, describeRun(v)).toBe(12);
      expect(errorCodes(v.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    });
  }

  it('a tree that reached a store unchecked is never checked out, even with --force into the current folder', async () => {
    const victim = newStore('ckvc-safety-victim-');
    await plantInStore(victim.store, hostileHistory(FSMONITOR), 'evil');
    const before = snapshotTree(victim.dir, (rel) => rel.startsWith('.ckvc'));
    const r = victim.run(['checkout', 'evil', '--to', '.', '--force'], { cwd: victim.dir });
    expect(r.code, describeRun(r)).toBe(12);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_CORRUPT_OBJECT']);
    expect(
      diffSnapshots(
        before,
        snapshotTree(victim.dir, (rel) => rel.startsWith('.ckvc')),
      ),
    ).toEqual([]);
    expect(fs.existsSync(path.join(victim.dir, '.git'))).toBe(false);
  });
});
