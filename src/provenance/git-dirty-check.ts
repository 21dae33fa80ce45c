// Whether a git work tree has uncommitted changes to tracked files, answered by libgit2's status
// (@napi-rs/simple-git, run on a libuv thread so the commit's own work goes on meanwhile).
//
// Dirty rules (match `git describe --dirty`, i.e. `git diff-index HEAD` after an index refresh):
//  * dirty when a tracked path differs between HEAD and the index (staged change, staged deletion, new
//    file added to the index, intent-to-add, mode change, file <-> symlink <-> submodule), or between the
//    index and the work tree (modified content, deleted, replaced by a directory, executable bit when
//    core.filemode is not false). libgit2 trusts a file whose stat still matches its index entry and hashes
//    the others (git does the same, racily clean entries included). The index is never rewritten.
//  * untracked and ignored paths never count and are never read (libgit2 does not walk into untracked
//    directories when untracked files are not asked for).
//  * submodules: dirty when the gitlink differs between HEAD and the index, when the populated
//    submodule has another commit checked out, or when its own tracked files are dirty (recursively).
//    An unpopulated submodule (empty directory) is clean; a deleted one is dirty. Untracked files inside
//    a submodule do not count: libgit2 reports those as a modified submodule, so a submodule reported as
//    modified in the work tree only is judged again here by the rules above.
//
// "dirty: false" is a claim that the commit reproduces the code, so it is only made when checked: a status
// that runs out of time or fails (an index libgit2 cannot read, say) gives true.

import * as path from 'node:path';
import type { FileStatus, Repository as GitRepository } from '@napi-rs/simple-git';
import { openRepository, populatedSubmodule, readHead, type Repository } from './git-repository.js';
import { bounded } from './time-bound.js';

/** Nested submodules deeper than this are not inspected (reported dirty). */
const MAX_SUBMODULE_DEPTH = 8;
/** libgit2's GIT_STATUS_WT_MODIFIED: the only status bit that can still be clean (a submodule's). */
const WT_MODIFIED = 1 << 8;

export async function checkDirty(
  repo: Repository,
  git: GitRepository,
  commit: string,
  deadline: number,
  depth: number,
): Promise<boolean> {
  if (depth > MAX_SUBMODULE_DEPTH) return true;
  const ms = deadline - Date.now();
  if (ms <= 0) return true;
  const abandon = new AbortController();
  const listed = await bounded(ms, () =>
    git.statusesAsync({ includeUntracked: false, includeIgnored: false }, abandon.signal),
  ).catch(() => undefined);
  if (listed === undefined || !listed.ok) {
    abandon.abort();
    return true;
  }
  for (const entry of listed.value) {
    if (await entryChanged(repo, git, commit, entry, deadline, depth)) return true;
  }
  return false;
}

async function entryChanged(
  repo: Repository,
  git: GitRepository,
  commit: string,
  entry: FileStatus,
  deadline: number,
  depth: number,
): Promise<boolean> {
  if (entry.bits !== WT_MODIFIED || entry.path === undefined) return true;
  const sub = await populatedSubmodule(path.join(repo.root, entry.path));
  if (typeof sub === 'string') return true; // a modified file (no `.git` in it), or a broken submodule
  // only the work tree differs, so the index records the same gitlink as HEAD's tree
  let recorded: string | undefined;
  try {
    recorded = git.findCommit(commit)?.tree().getPath(entry.path)?.id();
  } catch {
    return true;
  }
  const subGit = await openRepository(sub);
  if (subGit === undefined) return true;
  try {
    const head = readHead(subGit);
    if (head === undefined || head.commit !== recorded) return true;
    return await checkDirty(sub, subGit, head.commit, deadline, depth + 1);
  } finally {
    subGit.dispose();
  }
}
