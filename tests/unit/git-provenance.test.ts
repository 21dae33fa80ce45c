import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type GitProvenanceOptions, readGitProvenance } from '../../src/provenance/git-provenance.js';

// Fixture repositories are built with the git binary; the machine's git configuration must not matter.
const gitEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_')),
);
gitEnv.GIT_CONFIG_NOSYSTEM = '1';
gitEnv.GIT_CONFIG_GLOBAL = os.devNull;

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    [
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@t',
      '-c',
      'init.defaultBranch=main',
      '-c',
      'protocol.file.allow=always',
      '-c',
      'commit.gpgsign=false',
      ...args,
    ],
    { cwd, env: gitEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  ).trim();
}

let tmp: string;
let counter = 0;

function freshDir(name: string): string {
  const dir = path.join(tmp, `${name}-${++counter}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function write(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/** A repository with one commit on main: a.txt, src/b.txt, run.sh and a .gitignore. */
function makeRepo(name = 'repo'): string {
  const dir = freshDir(name);
  git(dir, 'init', '-q');
  write(path.join(dir, 'a.txt'), 'alpha\n');
  write(path.join(dir, 'src', 'b.txt'), 'beta\n');
  write(path.join(dir, 'run.sh'), '#!/bin/sh\n');
  write(path.join(dir, '.gitignore'), '*.log\nignored/\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'initial');
  return dir;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

beforeAll(() => {
  // realpath: os.tmpdir() may be a symlink (macOS), and discovery works on physical paths
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-gitprov-')));
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Records the work tree files (outside .git) that get read while `fn` runs. */
async function workTreeReads<T>(root: string, fn: () => Promise<T>): Promise<{ result: T; reads: string[] }> {
  const reads: string[] = [];
  const original = fs.promises.readFile;
  vi.spyOn(fs.promises, 'readFile').mockImplementation(((
    file: fs.PathLike | fs.promises.FileHandle,
    ...rest: unknown[]
  ) => {
    const p = String(file);
    if (p.startsWith(root + path.sep) && !p.includes(`${path.sep}.git${path.sep}`)) reads.push(path.relative(root, p));
    return (original as (...a: unknown[]) => Promise<unknown>)(file, ...rest);
  }) as typeof fs.promises.readFile);
  const result = await fn();
  vi.restoreAllMocks();
  return { result, reads };
}

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Every behaviour holds for both readers: the git binary (the default) and isomorphic-git (when git is missing
// or refuses the repository).
const readers: Array<[string, GitProvenanceOptions]> = [
  ['the git binary', { git: 'git' }],
  ['isomorphic-git', { git: false }],
];

describe.each(readers)('readGitProvenance through %s', (_name, reader) => {
  const prov = (dir: string, options: GitProvenanceOptions = {}) => readGitProvenance(dir, { ...reader, ...options });
  // only isomorphic-git reads the work tree through node:fs, where workTreeReads can see it
  const readsSeen = reader.git === false;

  it('returns undefined outside a git work tree and for a missing directory', async () => {
    const dir = freshDir('plain');
    expect(await prov(dir)).toBeUndefined();
    expect(await prov(path.join(dir, 'does-not-exist'))).toBeUndefined();
  });

  it('returns undefined for a repository without commits', async () => {
    const dir = freshDir('unborn');
    git(dir, 'init', '-q');
    write(path.join(dir, 'a.txt'), 'x\n');
    git(dir, 'add', 'a.txt');
    expect(await prov(dir)).toBeUndefined();
  });

  it('reports commit, branch and clean state of a clean repository', async () => {
    const dir = makeRepo();
    const { result, reads } = await workTreeReads(dir, () => prov(dir));
    expect(result).toEqual({ commit: git(dir, 'rev-parse', 'HEAD'), branch: 'main', dirty: false });
    // files whose stat matches the index (exact nanosecond timestamps) are trusted, not re-hashed
    if (readsSeen) expect(reads).toEqual([]);
  });

  it('treats a stat-only change as clean, and writes nothing to the repository', async () => {
    const dir = makeRepo();
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(dir, 'a.txt'), later, later); // stat drifts, content the same: git hashes it
    const index = path.join(dir, '.git', 'index');
    const before = { hash: sha256(index), mtime: fs.statSync(index).mtimeMs };
    const listing = fs.readdirSync(path.join(dir, '.git')).sort();
    const { result, reads } = await workTreeReads(dir, () => prov(dir));
    expect(result?.dirty).toBe(false);
    if (readsSeen) expect(reads).toEqual(['a.txt']); // the sanity check of the spy: only the touched file is hashed
    expect({ hash: sha256(index), mtime: fs.statSync(index).mtimeMs }).toEqual(before);
    expect(fs.readdirSync(path.join(dir, '.git')).sort()).toEqual(listing);
  });

  it('is dirty when a tracked file is modified, deleted or changes mode', async () => {
    const modified = makeRepo();
    write(path.join(modified, 'src', 'b.txt'), 'beta changed\n');
    expect((await prov(modified))?.dirty).toBe(true);

    const deleted = makeRepo();
    fs.rmSync(path.join(deleted, 'a.txt'));
    expect((await prov(deleted))?.dirty).toBe(true);

    const chmod = makeRepo();
    fs.chmodSync(path.join(chmod, 'run.sh'), 0o755);
    expect((await prov(chmod))?.dirty).toBe(true);
  });

  it('is dirty when a new file is staged, or a change is staged and reverted in the work tree', async () => {
    const added = makeRepo();
    write(path.join(added, 'new.txt'), 'new\n');
    git(added, 'add', 'new.txt');
    expect((await prov(added))?.dirty).toBe(true);

    const staged = makeRepo();
    write(path.join(staged, 'a.txt'), 'staged\n');
    git(staged, 'add', 'a.txt');
    write(path.join(staged, 'a.txt'), 'alpha\n'); // work tree equals HEAD again, index does not
    expect((await prov(staged))?.dirty).toBe(true);
  });

  it('ignores untracked files without reading them, even large ones', async () => {
    const dir = makeRepo();
    write(path.join(dir, 'notes.txt'), 'untracked\n');
    // 200 MB files (sparse) at the top level and inside an untracked checkpoint directory, plus FIFOs
    // that would block forever if anything tried to read them
    fs.mkdirSync(path.join(dir, 'checkpoints'));
    for (const file of [path.join(dir, 'big.bin'), path.join(dir, 'checkpoints', 'step-1000.bin')]) {
      fs.closeSync(fs.openSync(file, 'w'));
      fs.truncateSync(file, 200 * 1024 * 1024);
    }
    execFileSync('mkfifo', [path.join(dir, 'pipe'), path.join(dir, 'checkpoints', 'pipe')]);
    expect(git(dir, 'status', '--porcelain', '--untracked-files=no')).toBe('');

    const started = performance.now();
    const { result, reads } = await workTreeReads(dir, () => prov(dir, { timeoutMs: 30_000 }));
    const elapsed = performance.now() - started;
    expect(result).toEqual({ commit: git(dir, 'rev-parse', 'HEAD'), branch: 'main', dirty: false });
    if (readsSeen) expect(reads).toEqual([]);
    expect(elapsed).toBeLessThan(3_000); // typically ~30 ms; the FIFOs would block a reader that opened them
  });

  it('ignores ignored files', async () => {
    const dir = makeRepo();
    write(path.join(dir, 'train.log'), 'loss=1\n');
    write(path.join(dir, 'ignored', 'cache.bin'), 'x');
    expect((await prov(dir))?.dirty).toBe(false);
  });

  it('reports a detached HEAD without a branch', async () => {
    const dir = makeRepo();
    const first = git(dir, 'rev-parse', 'HEAD');
    write(path.join(dir, 'a.txt'), 'second\n');
    git(dir, 'commit', '-q', '-am', 'second');
    git(dir, 'checkout', '-q', '--detach', first);
    expect(await prov(dir)).toEqual({ commit: first, dirty: false });
  });

  it('finds the repository from a subdirectory, but not from inside .git', async () => {
    const dir = makeRepo();
    const expected = { commit: git(dir, 'rev-parse', 'HEAD'), branch: 'main', dirty: false };
    expect(await prov(path.join(dir, 'src'))).toEqual(expected);
    fs.mkdirSync(path.join(dir, 'src', 'deeper', 'still'), { recursive: true });
    expect(await prov(path.join(dir, 'src', 'deeper', 'still'))).toEqual(expected);
    expect(await prov(path.join(dir, '.git'))).toBeUndefined();
    expect(await prov(path.join(dir, '.git', 'refs', 'heads'))).toBeUndefined();
  });

  it('reads a linked worktree: its own HEAD, branch, index and dirty state', async () => {
    const main = makeRepo('wt-main');
    const wt = path.join(tmp, `wt-linked-${++counter}`);
    git(main, 'worktree', 'add', '-q', '-b', 'feature', wt);
    write(path.join(wt, 'feature.txt'), 'feature\n');
    git(wt, 'add', 'feature.txt');
    git(wt, 'commit', '-q', '-m', 'feature work');
    // make the worktree's branch and objects resolvable only through the common dir
    git(main, 'pack-refs', '--all');
    git(main, 'repack', '-q', '-a', '-d');

    const wtCommit = git(wt, 'rev-parse', 'HEAD');
    expect(wtCommit).not.toBe(git(main, 'rev-parse', 'HEAD'));
    expect(await prov(path.join(wt, 'src'))).toEqual({
      commit: wtCommit,
      branch: 'feature',
      dirty: false,
    });

    write(path.join(wt, 'a.txt'), 'changed in the worktree\n');
    expect(await prov(wt)).toEqual({ commit: wtCommit, branch: 'feature', dirty: true });
    expect(await prov(main)).toEqual({
      commit: git(main, 'rev-parse', 'HEAD'),
      branch: 'main',
      dirty: false,
    });

    write(path.join(wt, 'a.txt'), 'alpha\n');
    write(path.join(main, 'feature.txt'), 'staged in main\n');
    git(main, 'add', 'feature.txt');
    expect((await prov(wt))?.dirty).toBe(false);
    expect((await prov(main))?.dirty).toBe(true);
  });

  it('reads a submodule as its own repository, and checks it from the superproject', async () => {
    const lib = makeRepo('sub-lib');
    const sup = makeRepo('sub-super');
    git(sup, 'submodule', 'add', '-q', lib, 'lib');
    git(sup, 'commit', '-q', '-m', 'add submodule');
    const subDir = path.join(sup, 'lib');
    expect(fs.statSync(path.join(subDir, '.git')).isFile()).toBe(true);

    const subCommit = git(subDir, 'rev-parse', 'HEAD');
    expect(subCommit).toBe(git(lib, 'rev-parse', 'HEAD'));
    expect(await prov(path.join(subDir, 'src'))).toEqual({
      commit: subCommit,
      branch: 'main',
      dirty: false,
    });
    const supCommit = git(sup, 'rev-parse', 'HEAD');
    expect(await prov(sup)).toEqual({ commit: supCommit, branch: 'main', dirty: false });

    write(path.join(subDir, 'untracked.txt'), 'x\n'); // untracked inside the submodule: still clean
    expect((await prov(sup))?.dirty).toBe(false);
    write(path.join(subDir, 'a.txt'), 'changed inside the submodule\n');
    expect((await prov(subDir))?.dirty).toBe(true);
    expect((await prov(sup))?.dirty).toBe(true); // like `git describe --dirty`
  });

  it('resolves packed refs and packed objects', async () => {
    const dir = makeRepo();
    git(dir, 'branch', 'other');
    git(dir, 'pack-refs', '--all');
    git(dir, 'repack', '-q', '-a', '-d');
    git(dir, 'prune-packed');
    expect(fs.existsSync(path.join(dir, '.git', 'refs', 'heads', 'main'))).toBe(false);
    expect(fs.readFileSync(path.join(dir, '.git', 'packed-refs'), 'utf8')).toContain('refs/heads/main');
    expect(await prov(dir)).toEqual({
      commit: git(dir, 'rev-parse', 'HEAD'),
      branch: 'main',
      dirty: false,
    });
    write(path.join(dir, 'src', 'b.txt'), 'changed\n');
    expect((await prov(dir))?.dirty).toBe(true);
  });

  it('reports dirty (not known to be clean) when the dirty check runs out of time', async () => {
    const dir = makeRepo();
    expect(await prov(dir, { timeoutMs: 0 })).toEqual({
      commit: git(dir, 'rev-parse', 'HEAD'),
      branch: 'main',
      dirty: true,
    });
  });

  it('answers for the repository it found, never for one around it', async () => {
    const outer = makeRepo('outer');
    write(path.join(outer, '.git', 'info', 'exclude'), 'inner/\n');
    const inner = path.join(outer, 'inner');
    fs.mkdirSync(inner);
    git(inner, 'init', '-q');
    write(path.join(inner, 'x.txt'), 'x\n');
    git(inner, 'add', 'x.txt');
    git(inner, 'commit', '-q', '-m', 'inner');
    fs.writeFileSync(path.join(inner, '.git', 'HEAD'), ''); // emptied by a crash: git no longer takes it
    expect(await prov(inner)).toBeUndefined();
  });

  it('judges the work tree around the .git it found, whatever core.worktree names', async () => {
    const dir = makeRepo();
    const copy = freshDir('worktree-copy');
    const dotGit = path.join(dir, '.git');
    fs.cpSync(dir, copy, { recursive: true, filter: (src) => src !== dotGit && !src.startsWith(dotGit + path.sep) });
    expect(git(copy, '--git-dir', dotGit, '--work-tree', copy, 'status', '--porcelain', '--untracked-files=no')).toBe(
      '',
    );
    git(dir, 'config', 'core.worktree', copy);
    write(path.join(dir, 'a.txt'), 'changed where the checkpoint was made\n');
    expect((await prov(dir))?.dirty).toBe(true);
  });

  it('returns undefined, without throwing, for broken repositories', async () => {
    const garbageHead = makeRepo();
    fs.writeFileSync(path.join(garbageHead, '.git', 'HEAD'), 'this is not a ref\n');
    expect(await prov(garbageHead)).toBeUndefined();

    const missingObject = makeRepo();
    fs.writeFileSync(path.join(missingObject, '.git', 'refs', 'heads', 'main'), `${'1'.repeat(40)}\n`);
    expect(await prov(missingObject)).toBeUndefined();

    const badGitFile = freshDir('badgitfile');
    fs.writeFileSync(path.join(badGitFile, '.git'), 'gitdir: ../nowhere\n');
    expect(await prov(badGitFile)).toBeUndefined();

    const notAGitFile = freshDir('notagitfile');
    fs.writeFileSync(path.join(notAGitFile, '.git'), 'hello\n');
    expect(await prov(notAGitFile)).toBeUndefined();

    const corruptIndex = makeRepo();
    fs.writeFileSync(path.join(corruptIndex, '.git', 'index'), 'DIRC garbage');
    expect(await prov(corruptIndex)).toEqual({
      commit: git(corruptIndex, 'rev-parse', 'HEAD'),
      branch: 'main',
      dirty: true, // HEAD is known, the work tree state is not
    });
  });
});

describe('readGitProvenance through isomorphic-git alone', () => {
  it('does not hang when reading a work tree file never completes', async () => {
    const dir = makeRepo();
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(dir, 'a.txt'), later, later); // stat drift: a.txt must be read and hashed
    const original = fs.promises.readFile;
    vi.spyOn(fs.promises, 'readFile').mockImplementation(((
      file: fs.PathLike | fs.promises.FileHandle,
      ...rest: unknown[]
    ) =>
      String(file) === path.join(dir, 'a.txt')
        ? new Promise(() => {}) // a hung network file system
        : (original as (...a: unknown[]) => Promise<unknown>)(file, ...rest)) as typeof fs.promises.readFile);
    const started = performance.now();
    const result = await readGitProvenance(dir, { timeoutMs: 300, git: false });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(result).toEqual({ commit: git(dir, 'rev-parse', 'HEAD'), branch: 'main', dirty: true });
  });
});

describe('readGitProvenance through the git binary', () => {
  /** An executable standing in for git: `body` is a shell script. */
  function fakeGit(body: string): string {
    const file = path.join(freshDir('fake-git'), 'git');
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  }

  it("takes git's answer: the commit, the branch and whether tracked files changed", async () => {
    const dir = makeRepo();
    const head = git(dir, 'rev-parse', 'HEAD');
    const says = (lines: string[]) => fakeGit(`printf '${lines.map((l) => `${l}\\n`).join('')}'`);
    const header = [`# branch.oid ${head}`, '# branch.head topic'];
    expect(await readGitProvenance(dir, { git: says(header) })).toEqual({
      commit: head,
      branch: 'topic',
      dirty: false,
    });
    const entry = `1 .M N... 100644 100644 100644 ${'0'.repeat(40)} ${'0'.repeat(40)} a.txt`;
    expect(await readGitProvenance(dir, { git: says([...header, entry]) })).toEqual({
      commit: head,
      branch: 'topic',
      dirty: true,
    });
    const detached = [`# branch.oid ${head}`, '# branch.head (detached)'];
    expect(await readGitProvenance(dir, { git: says(detached) })).toEqual({ commit: head, dirty: false });
    expect(await readGitProvenance(dir, { git: says(['# branch.oid (initial)', '# branch.head main']) })).toBe(
      undefined,
    );
  });

  it('answers as isomorphic-git does when git is missing, fails, or says nothing', async () => {
    const dir = makeRepo();
    const clean = { commit: git(dir, 'rev-parse', 'HEAD'), branch: 'main', dirty: false };
    for (const stand of [path.join(tmp, 'no-such-git'), fakeGit('exit 128'), fakeGit('exit 0')]) {
      expect(await readGitProvenance(dir, { git: stand })).toEqual(clean);
    }
    write(path.join(dir, 'a.txt'), 'changed\n');
    expect(await readGitProvenance(dir, { git: fakeGit('exit 128') })).toEqual({ ...clean, dirty: true });
  });

  it('kills a git that never answers at the deadline and reports the commit as not known to be clean', async () => {
    const dir = makeRepo();
    const marker = path.join(freshDir('marker'), 'pid');
    const stuck = fakeGit(`echo $$ > '${marker}'\nexec sleep 60`);
    const started = performance.now();
    const result = await readGitProvenance(dir, { git: stuck, timeoutMs: 300 });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(result).toEqual({ commit: git(dir, 'rev-parse', 'HEAD'), branch: 'main', dirty: true });
    const pid = Number(fs.readFileSync(marker, 'utf8'));
    await vi.waitFor(() => expect(() => process.kill(pid, 0)).toThrow(), { timeout: 2_000 });
  });

  it('reads the repository it found, whatever GIT_DIR or GIT_INDEX_FILE say', async () => {
    const dir = makeRepo();
    const other = makeRepo('other');
    write(path.join(other, 'a.txt'), 'other change\n');
    git(other, 'commit', '-q', '-am', 'other');
    write(path.join(other, 'a.txt'), 'dirty in other\n');
    const saved = { dir: process.env.GIT_DIR, index: process.env.GIT_INDEX_FILE };
    try {
      process.env.GIT_DIR = path.join(other, '.git');
      process.env.GIT_INDEX_FILE = path.join(other, '.git', 'index');
      expect(await readGitProvenance(dir, { git: 'git' })).toEqual({
        commit: git(dir, 'rev-parse', 'HEAD'),
        branch: 'main',
        dirty: false,
      });
    } finally {
      for (const [name, value] of [
        ['GIT_DIR', saved.dir],
        ['GIT_INDEX_FILE', saved.index],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('sees a submodule moved to another commit even when the repository says to ignore submodules', async () => {
    const lib = makeRepo('ign-lib');
    const sup = makeRepo('ign-super');
    git(sup, 'submodule', 'add', '-q', lib, 'lib');
    git(sup, 'commit', '-q', '-m', 'add submodule');
    git(sup, 'config', 'diff.ignoreSubmodules', 'all');
    const subDir = path.join(sup, 'lib');
    write(path.join(subDir, 'a.txt'), 'moved on\n');
    git(subDir, 'commit', '-q', '-am', 'newer');
    expect(git(sup, 'status', '--porcelain')).toBe(''); // git's own default view hides it
    expect((await readGitProvenance(sup, { git: 'git' }))?.dirty).toBe(true);
  });
  it('stops reading at the first change and kills git', async () => {
    const dir = makeRepo();
    const head = git(dir, 'rev-parse', 'HEAD');
    const entry = `1 .M N... 100644 100644 100644 ${'0'.repeat(40)} ${'0'.repeat(40)} a.txt`;
    const chatty = fakeGit(`printf '# branch.oid ${head}\\n# branch.head main\\n${entry}\\n'\nexec sleep 60`);
    const started = performance.now();
    expect(await readGitProvenance(dir, { git: chatty, timeoutMs: 10_000 })).toEqual({
      commit: head,
      branch: 'main',
      dirty: true,
    });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('is not fooled by configuration from the environment, replace refs or a file system monitor', async () => {
    const chmod = makeRepo();
    fs.chmodSync(path.join(chmod, 'run.sh'), 0o755);
    const savedParameters = process.env.GIT_CONFIG_PARAMETERS;
    try {
      process.env.GIT_CONFIG_PARAMETERS = "'core.filemode'='false'";
      expect((await readGitProvenance(chmod, { git: 'git' }))?.dirty).toBe(true);
    } finally {
      if (savedParameters === undefined) delete process.env.GIT_CONFIG_PARAMETERS;
      else process.env.GIT_CONFIG_PARAMETERS = savedParameters;
    }

    // HEAD replaced by a commit that matches the modified work tree
    const replaced = makeRepo();
    const head = git(replaced, 'rev-parse', 'HEAD');
    git(replaced, 'checkout', '-q', '-b', 'other');
    write(path.join(replaced, 'a.txt'), 'edited\n');
    git(replaced, 'commit', '-q', '-am', 'edited');
    const edited = git(replaced, 'rev-parse', 'HEAD');
    git(replaced, 'checkout', '-q', 'main');
    write(path.join(replaced, 'a.txt'), 'edited\n');
    git(replaced, 'add', 'a.txt'); // index and work tree match the replacement, not HEAD
    git(replaced, 'replace', head, edited);
    expect(await readGitProvenance(replaced, { git: 'git' })).toEqual({ commit: head, branch: 'main', dirty: true });

    // a monitor hook that would say nothing changed is never asked
    const monitored = makeRepo();
    const ran = path.join(freshDir('hook'), 'ran');
    const hook = path.join(monitored, '.git', 'monitor.sh');
    fs.writeFileSync(hook, `#!/bin/sh\ntouch '${ran}'\nprintf '0\\0'\n`, { mode: 0o755 });
    git(monitored, 'config', 'core.fsmonitor', hook);
    write(path.join(monitored, 'a.txt'), 'changed\n');
    expect((await readGitProvenance(monitored, { git: 'git' }))?.dirty).toBe(true);
    expect(fs.existsSync(ran)).toBe(false);
  });
  it('kills what a stuck git started too (its own process group)', async () => {
    const dir = makeRepo();
    const marker = path.join(freshDir('group'), 'pid');
    const stuck = fakeGit(`sleep 60 &\necho $! > '${marker}'\nwait`);
    const result = await readGitProvenance(dir, { git: stuck, timeoutMs: 300 });
    expect(result?.dirty).toBe(true);
    const pid = Number(fs.readFileSync(marker, 'utf8'));
    // A busy machine reaps the killed (re-parented) sleep late: the bound is for a kill that never happens.
    await vi.waitFor(() => expect(() => process.kill(pid, 0)).toThrow(), { timeout: 10_000 });
  });

  it('never runs a file of the repository named git, even with a relative PATH entry', async () => {
    const dir = makeRepo();
    const ran = path.join(freshDir('planted'), 'ran');
    fs.writeFileSync(path.join(dir, 'git'), `#!/bin/sh\ntouch '${ran}'\n`, { mode: 0o755 });
    git(dir, 'add', 'git');
    git(dir, 'commit', '-q', '-m', 'a file named git');
    const savedPath = process.env.PATH;
    try {
      process.env.PATH = `.:${savedPath}`;
      expect(await readGitProvenance(dir, { git: 'git' })).toEqual({
        commit: git(dir, 'rev-parse', 'HEAD'),
        branch: 'main',
        dirty: false,
      });
    } finally {
      process.env.PATH = savedPath;
    }
    expect(fs.existsSync(ran)).toBe(false);
  });
});
