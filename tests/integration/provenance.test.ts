// Provenance: the code commit, branch and dirty flag of the git work tree ckvc runs in; and a checkpoint file
// that changes while it is being committed is refused or stored whole, never torn.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, readRef, type TestStore } from '../helpers/test-store.js';
import { sleep } from '../helpers/async-tasks.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

const gitAvailable = spawnSync('git', ['--version']).status === 0;

function git(cwd: string, args: string[]): string {
  const r = spawnSync(
    'git',
    [
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@t',
      '-c',
      'init.defaultBranch=main',
      '-c',
      'commit.gpgsign=false',
      ...args,
    ],
    {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_DIR: undefined,
        GIT_WORK_TREE: undefined,
      } as NodeJS.ProcessEnv,
    },
  );
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe.skipIf(!gitAvailable)('code provenance from git', () => {
  let s: TestStore;
  let repo: string;
  let ckpt: string;
  let head: string;

  /** Commits the checkpoint with cwd in `cwd` and returns the commit's `code` field. */
  const codeFrom = (cwd: string, extra: string[] = []): any => {
    fs.writeFileSync(ckpt, randomBytes(Date.now() & 0xffff, 2048));
    const id = commitId(s, [ckpt, '-m', 'ckpt', ...extra], { cwd });
    const shown = s.json(['show', id]);
    const logged = s.json(['log', id, '-n', '1'])[0];
    expect(logged.code).toEqual(shown.code);
    return shown.code;
  };

  beforeAll(() => {
    s = newStore();
    repo = tempDir('ckvc-git-');
    git(repo, ['init', '-q']);
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("train")\n');
    fs.mkdirSync(path.join(repo, 'src'));
    fs.writeFileSync(path.join(repo, 'src', 'model.py'), 'class Model: pass\n');
    git(repo, ['add', '.']);
    git(repo, ['commit', '-q', '-m', 'initial']);
    head = git(repo, ['rev-parse', 'HEAD']);
    ckpt = path.join(tempDir('ckvc-ckpt-'), 'ckpt.bin');
  });

  it('a clean work tree: code.commit is git rev-parse HEAD, branch main, dirty false', () => {
    expect(codeFrom(repo)).toEqual({ commit: head, branch: 'main', dirty: false });
  });

  it('from a subfolder of the work tree: the same', () => {
    expect(codeFrom(path.join(repo, 'src'))).toEqual({ commit: head, branch: 'main', dirty: false });
  });

  it('untracked files do not make it dirty', () => {
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'untracked\n');
    fs.mkdirSync(path.join(repo, 'checkpoints'));
    fs.writeFileSync(path.join(repo, 'checkpoints', 'x.bin'), 'untracked ckpt');
    expect(codeFrom(repo)).toEqual({ commit: head, branch: 'main', dirty: false });
    fs.rmSync(path.join(repo, 'notes.txt'));
    fs.rmSync(path.join(repo, 'checkpoints'), { recursive: true });
  });

  it('a modified tracked file makes it dirty; reverting it makes it clean again', () => {
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("train harder")\n');
    expect(codeFrom(repo)).toEqual({ commit: head, branch: 'main', dirty: true });
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("train")\n');
    expect(codeFrom(repo)).toEqual({ commit: head, branch: 'main', dirty: false });
  });

  it('a same-size edit right after the file was committed is still seen as dirty', () => {
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("TRAIN")\n');
    expect(codeFrom(repo).dirty).toBe(true);
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("train")\n');
  });

  it('a staged change, a deleted tracked file and a new staged file each make it dirty', () => {
    fs.writeFileSync(path.join(repo, 'src', 'model.py'), 'class Model: pass  # staged\n');
    git(repo, ['add', 'src/model.py']);
    expect(codeFrom(repo).dirty).toBe(true);
    git(repo, ['reset', '-q', '--hard']);
    expect(codeFrom(repo).dirty).toBe(false);

    fs.rmSync(path.join(repo, 'src', 'model.py'));
    expect(codeFrom(repo).dirty).toBe(true);
    git(repo, ['checkout', '-q', '--', 'src/model.py']);

    fs.writeFileSync(path.join(repo, 'new.py'), 'x = 1\n');
    git(repo, ['add', 'new.py']);
    expect(codeFrom(repo).dirty).toBe(true);
    git(repo, ['reset', '-q', '--hard']);
    expect(codeFrom(repo)).toEqual({ commit: head, branch: 'main', dirty: false });
  });

  it('follows new commits, other branches, packed refs and a detached HEAD', () => {
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("v2")\n');
    git(repo, ['commit', '-q', '-am', 'v2']);
    const v2 = git(repo, ['rev-parse', 'HEAD']);
    expect(v2).not.toBe(head);
    expect(codeFrom(repo)).toEqual({ commit: v2, branch: 'main', dirty: false });

    git(repo, ['checkout', '-q', '-b', 'feature/lstm']);
    expect(codeFrom(repo)).toEqual({ commit: v2, branch: 'feature/lstm', dirty: false });

    git(repo, ['gc', '-q']); // refs move to packed-refs, objects into a pack
    expect(fs.existsSync(path.join(repo, '.git', 'packed-refs'))).toBe(true);
    expect(codeFrom(repo)).toEqual({ commit: v2, branch: 'feature/lstm', dirty: false });

    git(repo, ['checkout', '-q', '--detach', head]);
    const detached = codeFrom(repo);
    expect(detached.commit).toBe(head);
    expect(detached.branch).toBeUndefined();
    expect(detached.dirty).toBe(false);
    git(repo, ['checkout', '-q', 'main']);
  });

  it('a linked worktree (git worktree add) reports its own branch and dirty state', () => {
    const wt = path.join(tempDir('ckvc-wt-'), 'wt');
    git(repo, ['worktree', 'add', '-q', '-b', 'wt-branch', wt, 'main']);
    const main = git(repo, ['rev-parse', 'main']);
    expect(codeFrom(wt)).toEqual({ commit: main, branch: 'wt-branch', dirty: false });
    fs.writeFileSync(path.join(wt, 'train.py'), 'print("worktree edit")\n');
    expect(codeFrom(wt)).toEqual({ commit: main, branch: 'wt-branch', dirty: true });
    // The main work tree is unaffected by the other worktree's edit.
    expect(codeFrom(repo).dirty).toBe(false);
  });

  it('the dirty check never modifies the repository', () => {
    const before = fs.readFileSync(path.join(repo, '.git', 'index'));
    fs.writeFileSync(path.join(repo, 'train.py'), 'print("edited")\n');
    codeFrom(repo);
    expect(fs.readFileSync(path.join(repo, '.git', 'index')).equals(before)).toBe(true);
    git(repo, ['checkout', '-q', '--', 'train.py']);
  });

  it('outside any git repository there is no code field', () => {
    const plain = tempDir('ckvc-nogit-');
    // Only meaningful when the temp dir is not itself inside a work tree.
    if (spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: plain }).status === 0) return;
    expect(codeFrom(plain)).toBeUndefined();
  });

  it('a repository with no commits yet gives no code field', () => {
    const fresh = tempDir('ckvc-git-');
    git(fresh, ['init', '-q']);
    fs.writeFileSync(path.join(fresh, 'a.py'), 'a\n');
    expect(codeFrom(fresh)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// TIMING-DEPENDENT: a checkpoint that a training job is still writing. We cannot control exactly when ckvc
// reads, so we start the commit, wait until the ckvc process has the file open, then change the file. Any of
// these outcomes is correct: the commit is refused with exit 16 (CKVC_INPUT_CHANGED) and the branch does not
// move; or it succeeds and checkout gives exactly the old content or exactly the new one. A torn mix fails.

/** Waits until process `pid` has `file` open (via /proc), or `timeoutMs` passes; returns whether it did. */
async function waitUntilOpen(pid: number, file: string, timeoutMs: number): Promise<boolean> {
  const real = fs.realpathSync(file);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === real) return true;
        } catch {
          /* fd closed meanwhile */
        }
      }
    } catch {
      return false; // no /proc, or the process is gone
    }
    await sleep(1);
  }
  return false;
}

describe('TIMING-DEPENDENT: a checkpoint modified while it is committed is refused or stored whole, never torn', () => {
  const SIZE = 64 * 1024 * 1024;

  async function race(modify: (file: string) => void): Promise<{ outcome: string; s: TestStore }> {
    const s = newStore();
    const dir = tempDir('ckvc-race-');
    const file = path.join(dir, 'ckpt.bin');
    fs.writeFileSync(file, randomBytes(122, 4096));
    const base = commitId(s, [file, '-m', 'base', '-b', 'run']);
    // New random content, so the racing commit has to compress and write all of it (a wider window).
    const pre = randomBytes(123, SIZE);
    fs.writeFileSync(file, pre);
    const tipBefore = readRef(s.store, 'refs/heads/run');
    expect(tipBefore).toBe(base);

    const running = s.start(['commit', file, '-m', 'while writing', '-b', 'run', '--json']);
    const opened = await waitUntilOpen(running.child.pid!, file, 20_000);
    modify(file);
    const post = fs.readFileSync(file);
    const r = await running.done;

    if (r.code === 16) {
      expect(errorCodes(r.stderr)).toEqual(['CKVC_INPUT_CHANGED']);
      expect(readRef(s.store, 'refs/heads/run'), 'the branch must not move').toBe(tipBefore);
      expect(s.run(['verify']).code).toBe(0);
      return { outcome: `refused (exit 16)${opened ? '' : ' [file open not observed]'}`, s };
    }
    expect(r.code, describeRun(r)).toBe(0);
    const id = JSON.parse(r.stdout).id as string;
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', id, '--to', out]);
    const got = fs.readFileSync(path.join(out, 'ckpt.bin'));
    const isPre = got.equals(pre);
    const isPost = got.equals(post);
    expect(
      isPre || isPost,
      `checked-out content (${got.length} bytes) is neither the old (${pre.length}) nor the new (${post.length}) file: torn`,
    ).toBe(true);
    return {
      outcome: `committed ${isPre ? 'pre' : 'post'}-change content${opened ? '' : ' [file open not observed]'}`,
      s,
    };
  }

  it('appending to the file', async () => {
    const { outcome } = await race((file) => fs.appendFileSync(file, randomBytes(77, 1024 * 1024)));
    console.log(`[append race] ${outcome}`);
  });

  it('overwriting bytes in the middle (same size)', async () => {
    const { outcome } = await race((file) => {
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, randomBytes(78, 4 * 1024 * 1024), 0, 4 * 1024 * 1024, 40 * 1024 * 1024);
      fs.closeSync(fd);
    });
    console.log(`[overwrite race] ${outcome}`);
  });

  it('replacing the file by rename (atomic save)', async () => {
    const { outcome } = await race((file) => {
      const tmp = `${file}.tmp`;
      fs.writeFileSync(tmp, randomBytes(79, 8 * 1024 * 1024));
      fs.renameSync(tmp, file);
    });
    console.log(`[rename race] ${outcome}`);
  });
});
