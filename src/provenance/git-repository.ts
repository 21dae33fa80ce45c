// Finding the git repository around a directory, and its HEAD. isomorphic-git does not discover
// repositories, so we walk up from the start directory looking for `.git` ourselves: a directory, or a file
// `gitdir: <path>` (linked worktrees, submodules; relative paths are relative to the file's directory). Like
// git, a `.git` directory that does not look like a repository is skipped, and a start directory inside a
// git dir (bare repository, or `.git` itself) is "not in a work tree".

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { loadGit, makeReadOnlyGitFs, type GitDirs } from './read-only-git-fs.js';

/** The commit HEAD names, and its branch (none when detached). */
export interface GitHead {
  commit: string;
  branch?: string;
}

export interface Repository extends GitDirs {
  /** Work tree root. */
  root: string;
}

const SHA1_HEX = /^[0-9a-f]{40}$/;

export async function locateRepository(start: string): Promise<Repository | undefined> {
  let dir = start;
  for (;;) {
    const dotgit = path.join(dir, '.git');
    const st = await fsp.stat(dotgit).catch(() => undefined);
    if (st?.isDirectory()) {
      const dirs = await gitDirLayout(dotgit);
      // git skips a `.git` directory that is not a repository and keeps looking upwards
      if (dirs !== undefined) return { root: dir, ...dirs };
    } else if (st?.isFile()) {
      const dirs = await followGitFile(dotgit);
      // git stops with an error on a bad gitfile: there is no work tree to report
      return dirs === undefined ? undefined : { root: dir, ...dirs };
    }
    // cwd inside a git dir (a bare repository, or `.git` itself) is not inside a work tree
    if ((await gitDirLayout(dir)) !== undefined) return undefined;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** `.git` file: `gitdir: <path>`, relative paths relative to the file's directory. */
export async function followGitFile(dotgit: string): Promise<GitDirs | undefined> {
  const text = await fsp.readFile(dotgit, 'utf8').catch(() => undefined);
  const match = text === undefined ? null : /^gitdir: *(.+?)\s*$/m.exec(text);
  if (!match?.[1]) return undefined;
  const gitdir = path.resolve(path.dirname(dotgit), match[1]);
  return gitDirLayout(gitdir);
}

/** The layout of `dir` if it looks like a git dir (HEAD, and objects + refs here or in its commondir). */
export async function gitDirLayout(dir: string): Promise<GitDirs | undefined> {
  if (!(await isFile(path.join(dir, 'HEAD')))) return undefined;
  const common = await fsp.readFile(path.join(dir, 'commondir'), 'utf8').catch(() => undefined);
  const shared = common === undefined || common.trim() === '' ? dir : path.resolve(dir, common.trim());
  const looksLikeRepo =
    (await isDirectory(path.join(shared, 'objects'))) && (await isDirectory(path.join(shared, 'refs')));
  if (!looksLikeRepo) return undefined;
  return shared === dir ? { gitdir: dir } : { gitdir: dir, commondir: shared };
}

async function isFile(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** The commit HEAD names and its branch (none when detached); undefined for an unborn or dangling HEAD. */
export async function readHead(repo: Repository, deadline: number): Promise<GitHead | undefined> {
  const { resolveRef } = await loadGit();
  const { fs } = makeReadOnlyGitFs(repo, deadline);
  let target: string;
  try {
    // depth 2: HEAD -> 'refs/heads/x' (symbolic) or the oid itself (detached)
    target = (await resolveRef({ fs, gitdir: repo.gitdir, ref: 'HEAD', depth: 2 })).trim();
  } catch {
    return undefined;
  }
  let commit: string;
  try {
    commit = SHA1_HEX.test(target) ? target : await resolveRef({ fs, gitdir: repo.gitdir, ref: target });
  } catch {
    return undefined; // unborn branch (no commit yet) or a dangling symbolic ref
  }
  if (Date.now() >= deadline || !SHA1_HEX.test(commit)) return undefined;
  const branch = target.startsWith('refs/heads/') ? target.slice('refs/heads/'.length) : undefined;
  return branch ? { commit, branch } : { commit };
}
