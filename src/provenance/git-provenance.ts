// Code provenance for a checkpoint commit: which git commit of the surrounding repository produced it, on
// which branch, and whether the work tree had uncommitted changes to tracked files.
//
// We discover the repository ourselves (git-repository.ts), then ask the git binary (git-status-binary.ts):
// one `git status` with git's own rules. Where git is missing or will not read the repository, isomorphic-git
// answers instead: reading HEAD (git-repository.ts) through a read-only, deadline-checked file system that
// knows linked worktrees (read-only-git-fs.ts), and the dirty check with its rules (git-dirty-check.ts).
// Nothing is ever modified, and the whole operation races a timer, so a slow or hung file system cannot hang
// the caller.
//
// Time bound and failures: "dirty: false" is a claim that the commit reproduces the code, so we only
// make it when we have checked. If the dirty check cannot finish — it takes longer than `timeoutMs`
// (default 5 s), or, without git, a pack file is too large to load (isomorphic-git reads whole packs into
// memory) or isomorphic-git cannot read something (index v4, split index, reftable, alternates...) — we still
// report the commit and branch, with `dirty: true` ("not known to be clean"). Finding HEAD has its own
// separate 5 s bound; failing there gives `undefined`, as does a HEAD whose commit object is missing.
// Environment overrides (GIT_DIR, GIT_WORK_TREE, core.worktree, ceiling directories) are not honoured,
// by either reader.

import { promises as fsp } from 'node:fs';
import { checkDirty } from './git-dirty-check.js';
import { type GitHead, locateRepository, readHead, type Repository } from './git-repository.js';
import { gitStatus } from './git-status-binary.js';
import { bounded } from './time-bound.js';

export interface CodeProvenance extends GitHead {
  dirty: boolean;
}

export interface GitProvenanceOptions {
  /** Bound on the dirty check in milliseconds (default 5000). When exceeded, `dirty` is reported as true. */
  timeoutMs?: number;
  /** The git executable (default `git`, found on PATH); false reads through isomorphic-git alone. */
  git?: string | false;
}

const DEFAULT_DIRTY_TIMEOUT_MS = 5_000;
/** Bound on discovery + reading HEAD (a handful of small reads). */
const HEAD_TIMEOUT_MS = 5_000;

/**
 * Provenance of the git work tree containing `cwd`, or undefined when cwd is not inside a git work tree or
 * the repository has no commit yet. Never throws for a broken or odd repository: returns undefined (and
 * never modifies anything).
 */
export async function readGitProvenance(
  cwd: string,
  options: GitProvenanceOptions = {},
): Promise<CodeProvenance | undefined> {
  try {
    const timeoutMs = Math.max(0, options.timeoutMs ?? DEFAULT_DIRTY_TIMEOUT_MS);
    const found = await bounded(HEAD_TIMEOUT_MS, async () => {
      // like git, discover from the physical directory (symlinks resolved)
      const start = await fsp.realpath(cwd).catch(() => undefined);
      return start === undefined ? undefined : locateRepository(start);
    });
    if (!found.ok || found.value === undefined) return undefined;
    const repo = found.value;
    // one bound for the dirty check, whichever reader answers: a git that fails late leaves isomorphic-git less
    const deadline = Date.now() + timeoutMs;
    const git = options.git ?? 'git';
    const answer = git === false ? undefined : await gitStatus(git, repo, deadline);
    if (answer?.kind === 'answer') return answer.head && { ...answer.head, dirty: answer.dirty };
    if (answer?.kind === 'timed-out') {
      const head = answer.head ?? (await headThroughIsomorphicGit(repo));
      return head && { ...head, dirty: true };
    }
    return await throughIsomorphicGit(repo, deadline);
  } catch {
    return undefined;
  }
}

async function headThroughIsomorphicGit(repo: Repository): Promise<GitHead | undefined> {
  const head = await bounded(HEAD_TIMEOUT_MS, (deadline) => readHead(repo, deadline));
  return head.ok ? head.value : undefined;
}

async function throughIsomorphicGit(repo: Repository, deadline: number): Promise<CodeProvenance | undefined> {
  const head = await headThroughIsomorphicGit(repo);
  if (head === undefined) return undefined;
  const state = await checkDirty(repo, head.commit, deadline, 0);
  if (state === 'missing-commit') return undefined;
  return { ...head, dirty: state };
}
