// Finding the git repository around a directory, opening it with libgit2 (@napi-rs/simple-git), and its HEAD.
// Discovery is ours rather than libgit2's because libgit2 reports a repository for a directory inside a git
// dir: we walk up from the start directory looking for `.git` ourselves: a directory, or a file
// `gitdir: <path>` (linked worktrees, submodules; relative paths are relative to the file's directory). Like
// git, a `.git` directory that does not look like a repository is skipped, and a start directory inside a
// git dir (bare repository, or `.git` itself) is "not in a work tree".

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Repository as GitRepository } from '@napi-rs/simple-git';

/** Where a work tree's repository is. */
export interface Repository {
  /** Work tree root. */
  root: string;
  /** The git dir (for a linked worktree: its private gitdir). */
  gitdir: string;
}

const SHA1_HEX = /^[0-9a-f]{40}$/;

/** Loaded on first use (a native addon, about 20 ms to load): only a commit needs it. */
let gitModule: Promise<typeof import('@napi-rs/simple-git')> | undefined;
const loadGit = () => (gitModule ??= import('@napi-rs/simple-git'));

export async function locateRepository(start: string): Promise<Repository | undefined> {
  let dir = start;
  for (;;) {
    const dotgit = path.join(dir, '.git');
    const st = await fsp.stat(dotgit).catch(() => undefined);
    if (st?.isDirectory()) {
      // git skips a `.git` directory that is not a repository and keeps looking upwards
      if (await looksLikeGitDir(dotgit)) return { root: dir, gitdir: dotgit };
    } else if (st?.isFile()) {
      const gitdir = await followGitFile(dotgit);
      // git stops with an error on a bad gitfile: there is no work tree to report
      return gitdir === undefined ? undefined : { root: dir, gitdir };
    }
    // cwd inside a git dir (a bare repository, or `.git` itself) is not inside a work tree
    if (await looksLikeGitDir(dir)) return undefined;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The git dir a `.git` file names (`gitdir: <path>`, relative to the file's directory), if it is one. */
async function followGitFile(dotgit: string): Promise<string | undefined> {
  const text = await fsp.readFile(dotgit, 'utf8').catch(() => undefined);
  const match = text === undefined ? null : /^gitdir: *(.+?)\s*$/m.exec(text);
  if (!match?.[1]) return undefined;
  const gitdir = path.resolve(path.dirname(dotgit), match[1]);
  return (await looksLikeGitDir(gitdir)) ? gitdir : undefined;
}

/** HEAD, and objects + refs here or in the common dir a linked worktree's `commondir` file names. */
async function looksLikeGitDir(dir: string): Promise<boolean> {
  if (!(await isFile(path.join(dir, 'HEAD')))) return false;
  const common = await fsp.readFile(path.join(dir, 'commondir'), 'utf8').catch(() => undefined);
  const shared = common === undefined || common.trim() === '' ? dir : path.resolve(dir, common.trim());
  return (await isDirectory(path.join(shared, 'objects'))) && (await isDirectory(path.join(shared, 'refs')));
}

/** The submodule checked out at `dir` (its `.git` a file or a directory), if it is populated. */
export async function populatedSubmodule(dir: string): Promise<Repository | 'absent' | 'broken'> {
  const dotgit = path.join(dir, '.git');
  const st = await fsp.stat(dotgit).catch(() => undefined);
  if (st === undefined) return 'absent';
  const gitdir = st.isFile() ? await followGitFile(dotgit) : st.isDirectory() ? dotgit : undefined;
  if (gitdir === undefined || (st.isDirectory() && !(await looksLikeGitDir(gitdir)))) return 'broken';
  return { root: dir, gitdir };
}

async function isFile(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * libgit2's handle on the repository of a work tree found by locateRepository (it reads the `.git` file of a
 * linked worktree or submodule itself), or undefined when libgit2 cannot open it. It never reads GIT_DIR or
 * other environment overrides. The caller disposes of it.
 */
export async function openRepository(repo: Repository): Promise<GitRepository | undefined> {
  const { Repository: Git } = await loadGit();
  try {
    return new Git(repo.root);
  } catch {
    return undefined;
  }
}

/**
 * The commit HEAD names and its branch (none when detached); undefined for an unborn or dangling HEAD, or a
 * HEAD whose commit object is missing or unreadable.
 */
export function readHead(git: GitRepository): { commit: string; branch?: string } | undefined {
  try {
    const head = git.head(); // a symbolic HEAD comes back resolved: refs/heads/<branch>, or HEAD itself
    const commit = head.target();
    if (commit === null || !SHA1_HEX.test(commit) || git.findCommit(commit) === null) return undefined;
    const name = head.name();
    const branch = name?.startsWith('refs/heads/') ? name.slice('refs/heads/'.length) : undefined;
    return branch ? { commit, branch } : { commit };
  } catch {
    return undefined;
  }
}
