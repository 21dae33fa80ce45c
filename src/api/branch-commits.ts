// The commits made on a branch: the walk `best`, the branch metric summaries, retention and the web page's curves
// share, so that they never disagree about where a branch's own history ends.
import { CkvcError } from '../core/errors.js';
import { branchNamesOfCommits } from '../core/ref-name.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';

export type CommitRead = (id: ObjectId) => Promise<CommitObject>;

/**
 * The commits made on `branch`: its first-parent chain, stopping where the chain reaches commits recorded as
 * made on another branch (the history it was started from; `ckvc branch NEW START` has none of its own yet). A
 * bundle's branch pulled as bundle/NAME holds the commits made on NAME.
 */
export async function* branchCommits(
  store: ObjectStore,
  branch: string,
  read?: CommitRead,
): AsyncGenerator<{ id: ObjectId; commit: CommitObject }> {
  yield* commitsMadeOn(store, branch, await branchTip(store, branch), read);
}

/**
 * A branch to walk: a local one, else a remote-tracking branch REMOTE/NAME (refs/remotes), whose commits were
 * made on NAME at the remote. Its tip and the branch names its own commits carry.
 */
export async function branchSource(
  store: ObjectStore,
  branch: string,
): Promise<{ tip: ObjectId; names: string[]; tracking: boolean }> {
  const local = await store.refs.read(REF_PREFIX.branch + branch);
  if (local) return { tip: local, names: branchNamesOfCommits(branch), tracking: false };
  const slash = branch.indexOf('/');
  const tip = slash > 0 ? await store.refs.read(REF_PREFIX.remote + branch).catch(() => undefined) : undefined;
  if (!tip) throw noSuchBranch(branch);
  return { tip, names: [branch, ...branchNamesOfCommits(branch.slice(slash + 1))], tracking: true };
}

export async function branchTip(store: ObjectStore, branch: string): Promise<ObjectId> {
  const id = await store.refs.read(REF_PREFIX.branch + branch);
  if (!id) throw noSuchBranch(branch);
  return id;
}

const noSuchBranch = (branch: string) =>
  new CkvcError(
    'CKVC_UNKNOWN_REVISION',
    `no branch named '${branch}' (or it has no commits); 'ckvc branch -a' lists branches, remote-tracking ones (REMOTE/NAME) too`,
    { branch },
  );

/** branchCommits from a given tip (a commit that just moved the branch, or the tip already read). */
export async function* commitsMadeOn(
  store: ObjectStore,
  branch: string,
  tip: ObjectId,
  read: CommitRead = (id) => store.readCommit(id),
): AsyncGenerator<{ id: ObjectId; commit: CommitObject }> {
  yield* commitsMadeUnder(store, branchNamesOfCommits(branch), tip, read);
}

/** The first-parent chain from `tip` while its commits were made under one of `names` (or carry no branch). */
export async function* commitsMadeUnder(
  store: ObjectStore,
  names: string[],
  tip: ObjectId,
  read: CommitRead = (id) => store.readCommit(id),
): AsyncGenerator<{ id: ObjectId; commit: CommitObject }> {
  let id: ObjectId | undefined = tip;
  while (id) {
    const commit = await read(id);
    if (commit.branch !== undefined && !names.includes(commit.branch)) return;
    yield { id, commit };
    // A shallow store's history stops at a graft (FORMAT.md §17): the branch's commits here end there.
    const first = commit.parents[0];
    id = first && (await store.parentsHeld(id, [first]))[0];
  }
}
