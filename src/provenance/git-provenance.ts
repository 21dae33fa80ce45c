// Code provenance for a checkpoint commit: which git commit of the surrounding repository produced it, on
// which branch, and whether the work tree had uncommitted changes to tracked files.
//
// Everything goes through isomorphic-git (no `git` binary). What isomorphic-git does not do for us lives
// beside this file: discovering the repository and reading HEAD (git-repository.ts), linked worktrees and
// a read-only, deadline-checked file system (read-only-git-fs.ts), and the dirty check with its rules
// (git-dirty-check.ts). Nothing is ever modified, and the whole operation races a timer, so a slow or hung
// file system cannot hang the caller.
//
// Time bound and failures: "dirty: false" is a claim that the commit reproduces the code, so we only
// make it when we have checked. If the dirty check cannot finish — it takes longer than `timeoutMs`
// (default 5 s), a pack file is too large to load (isomorphic-git reads whole packs into memory), or
// isomorphic-git cannot read something (index v4, split index, reftable, alternates...) — we still
// report the commit and branch, with `dirty: true` ("not known to be clean"). Finding HEAD has its own
// separate 5 s bound; failing there gives `undefined`, as does a HEAD whose commit object is missing.
// Environment overrides (GIT_DIR, GIT_WORK_TREE, core.worktree, ceiling directories) are not honoured.

import { promises as fsp } from 'node:fs';
import { checkDirty } from './git-dirty-check.js';
import { locateRepository, readHead } from './git-repository.js';
import { bounded } from './time-bound.js';

export interface CodeProvenance {
  commit: string;
  branch?: string;
  dirty: boolean;
}

export interface GitProvenanceOptions {
  /** Bound on the dirty check in milliseconds (default 5000). When exceeded, `dirty` is reported as true. */
  timeoutMs?: number;
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
    const head = await bounded(HEAD_TIMEOUT_MS, async (deadline) => {
      // like git, discover from the physical directory (symlinks resolved)
      const start = await fsp.realpath(cwd).catch(() => undefined);
      if (start === undefined) return undefined;
      const repo = await locateRepository(start);
      if (repo === undefined) return undefined;
      const found = await readHead(repo, deadline);
      return found === undefined ? undefined : { repo, ...found };
    });
    if (!head.ok || head.value === undefined) return undefined;
    const { repo, commit, branch } = head.value;
    const state = await checkDirty(repo, commit, Date.now() + timeoutMs, 0);
    if (state === 'missing-commit') return undefined;
    return branch === undefined ? { commit, dirty: state } : { commit, branch, dirty: state };
  } catch {
    return undefined;
  }
}
