// Code provenance for a checkpoint commit: which git commit of the surrounding repository produced it, on
// which branch, and whether the work tree had uncommitted changes to tracked files.
//
// git is read through libgit2 (@napi-rs/simple-git), never the `git` binary: finding the repository and
// opening it is in git-repository.ts, the dirty check and its rules in git-dirty-check.ts. libgit2 reads
// packs through an index and memory-mapped windows, so a repository with large packs costs no more than a
// small one. Nothing is ever modified.
//
// Time bound and failures: "dirty: false" is a claim that the commit reproduces the code, so we only
// make it when we have checked. If the dirty check cannot finish — it takes longer than `timeoutMs`
// (default 5 s) or libgit2 cannot read something — we still report the commit and branch, with
// `dirty: true` ("not known to be clean"). Finding the repository has its own 5 s bound; failing there
// gives `undefined`, as does a HEAD that names no readable commit. Opening the repository and reading HEAD
// are a handful of small synchronous reads in libgit2 and are not bounded. Environment overrides (GIT_DIR,
// GIT_WORK_TREE, ceiling directories) are not honoured.

import { promises as fsp } from 'node:fs';
import { checkDirty } from './git-dirty-check.js';
import { locateRepository, openRepository, readHead } from './git-repository.js';
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
/** Bound on discovery (a handful of small reads). */
const LOCATE_TIMEOUT_MS = 5_000;

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
    const located = await bounded(LOCATE_TIMEOUT_MS, async () => {
      // like git, discover from the physical directory (symlinks resolved)
      const start = await fsp.realpath(cwd).catch(() => undefined);
      return start === undefined ? undefined : await locateRepository(start);
    });
    if (!located.ok || located.value === undefined) return undefined;
    const repo = located.value;
    const git = await openRepository(repo);
    if (git === undefined) return undefined;
    try {
      const head = readHead(git);
      if (head === undefined) return undefined;
      const dirty = await checkDirty(repo, git, head.commit, Date.now() + timeoutMs, 0);
      return { ...head, dirty };
    } finally {
      git.dispose();
    }
  } catch {
    return undefined;
  }
}
