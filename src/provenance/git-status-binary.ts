// Code provenance through the git binary, when one is installed: one `git status` answers HEAD's commit,
// its branch and whether tracked files changed, with git's own rules (racy-git, line-ending conversion,
// clean filters such as git-lfs, submodules, index extensions) at git's speed. isomorphic-git answers only
// when this cannot: no git on PATH, a git too old for these flags, or git refusing the repository.
//
// Why not always isomorphic-git: it costs about 0.2 s to load and 0.2 s per commit in a small repository,
// and it reads (and hashes) a whole pack file to take one object from it: 2.4 s and 470 MB of memory in a
// repository with a 190 MB pack. git reads one object through the pack's index.
//
// What git is allowed to do here:
//  * Nothing is written: GIT_OPTIONAL_LOCKS=0 stops status from refreshing the index file, and status writes
//    nothing else (with a split index it touches the shared index file's time, never its content).
//  * git looks at the repository ckvc found and nowhere else: it starts in that work tree's root and may not
//    walk above it (GIT_CEILING_DIRECTORIES), so a `.git` that git rejects but ckvc accepted fails instead of
//    answering for an enclosing repository; GIT_WORK_TREE overrides a core.worktree setting; variables that
//    point git at another git dir, index or object store, replace refs, and configuration injected through
//    the environment are removed. GIT_DIR is not set on purpose: git checks the owner of a repository it
//    discovers (safe.directory) but not of one it is told.
//  * A repository owned by another user is refused by git before its configuration can run anything;
//    isomorphic-git, which runs nothing, then reads it as before. In the user's own repositories git runs
//    what their configuration says status runs, as it does in their shell: clean filters (git-lfs) on files
//    whose stat changed. The file system monitor is turned off: a hook that answers wrongly would hide changes.
//  * It runs against the caller's deadline; then git and whatever it started (its own process group) are
//    killed, and the caller reports the commit as not known to be clean.
//
// Where git's rules differ from a strict "the work tree equals HEAD": files marked assume-unchanged or
// skip-worktree (sparse checkout) count as unchanged, and a submodule nested in a submodule follows its
// parent's `ignore` setting. These are `git describe --dirty`'s answers too.

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { GitHead, Repository } from './git-repository.js';

export type GitStatusAnswer =
  /** git answered; `head` is undefined for a repository without a commit yet. */
  | { kind: 'answer'; head?: GitHead; dirty: boolean }
  /** The deadline passed first; `head` when git had already named it. */
  | { kind: 'timed-out'; head?: GitHead }
  /** No git, or git could not or would not read this repository: ask isomorphic-git. */
  | { kind: 'unavailable' };

const STATUS_ARGS = [
  '-c',
  'core.fsmonitor=false',
  'status',
  '--porcelain=v2',
  '--branch',
  '--untracked-files=no',
  // overrides a repository's diff.ignoreSubmodules and the superproject's .gitmodules `ignore`, so neither can
  // hide a submodule's new commit or its changed files; untracked files inside a submodule do not count
  '--ignore-submodules=untracked',
  '--no-renames',
  '--no-ahead-behind',
];

/**
 * Variables that would make git read another repository, index or object store than the one ckvc found, or
 * compare against replaced objects, or set configuration that could hide changes (core.fileMode=false).
 */
const REMOVED_VARIABLES = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR',
  'GIT_NAMESPACE',
  'GIT_CEILING_DIRECTORIES',
  'GIT_DISCOVERY_ACROSS_FILESYSTEM',
  'GIT_PREFIX',
  'GIT_REPLACE_REF_BASE',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
];
/** git prints these for a HEAD that names no branch (detached, or a ref outside refs/heads). */
const NO_BRANCH = new Set(['(detached)', '(null)', '(unknown)']);

const SHA1_HEX = /^[0-9a-f]{40}$/;
/** Header lines are short; anything longer before the first entry is not git status talking. */
const MAX_HEADER_BYTES = 64 * 1024;

/** Runs `git status` in the repository's work tree until it answers, fails, or `deadline` passes. */
export function gitStatus(gitCommand: string, repo: Repository, deadline: number): Promise<GitStatusAnswer> {
  // No time left: no process. (A git started anyway could answer first on a busy machine, its exit handled in the
  // same event-loop turn before the timer's.)
  if (Date.now() >= deadline) return Promise.resolve({ kind: 'timed-out' });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of REMOVED_VARIABLES) delete env[name];
  Object.assign(env, {
    GIT_OPTIONAL_LOCKS: '0',
    GIT_TERMINAL_PROMPT: '0',
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_CEILING_DIRECTORIES: path.dirname(repo.root),
    GIT_WORK_TREE: repo.root,
  });
  return new Promise((resolve) => {
    let settled = false;
    let pending = '';
    let commit: string | undefined;
    let branch: string | undefined;
    let unborn = false;
    let sawChange = false;
    const head = (): GitHead | undefined =>
      commit === undefined ? undefined : branch === undefined ? { commit } : { commit, branch };
    // `-C root` rather than spawn's cwd: `git` is looked up on PATH from the caller's directory, as the user's
    // shell would, never from inside the repository (a relative PATH entry would run a file of the repository)
    const child = spawn(gitCommand, ['-C', repo.root, ...STATUS_ARGS], {
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true, // its own process group, so that a kill reaches submodule statuses and hooks too
    });
    const finish = (answer: GitStatusAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // a git stuck in the kernel (hung network file system) must not keep ckvc's process alive
      if (child.exitCode === null && child.signalCode === null) killGroup(child.pid);
      child.stdout?.destroy();
      child.unref();
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ kind: 'timed-out', head: head() }), Math.max(0, deadline - Date.now()));
    const readLine = (line: string): void => {
      if (!line.startsWith('# ')) {
        // the first entry is the answer: any change to a tracked path (headers come before entries)
        sawChange = true;
        return;
      }
      const [key, value = ''] = line.slice(2).split(' ', 2);
      if (key === 'branch.oid') {
        if (value === '(initial)') unborn = true;
        else if (SHA1_HEX.test(value)) commit = value;
      } else if (key === 'branch.head' && !NO_BRANCH.has(value) && !value.includes('\uFFFD')) {
        branch = value; // a name that is not UTF-8 is left out rather than recorded mangled
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      pending += text;
      let newline = pending.indexOf('\n');
      while (newline >= 0 && !sawChange) {
        readLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
      if (sawChange) {
        finish(commit === undefined ? { kind: 'unavailable' } : { kind: 'answer', head: head(), dirty: true });
      } else if (pending.length > MAX_HEADER_BYTES) {
        finish({ kind: 'unavailable' });
      }
    });
    child.on('error', () => finish({ kind: 'unavailable' })); // no git on PATH, or not executable
    child.on('close', (code) => {
      if (code !== 0 || pending !== '') return finish({ kind: 'unavailable' });
      if (unborn) return finish({ kind: 'answer', dirty: false });
      finish(commit === undefined ? { kind: 'unavailable' } : { kind: 'answer', head: head(), dirty: false });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
