// Deleting branches and tags on a remote (`ckvc push REMOTE --delete NAME...`, spec/PROTOCOL.md §4): one
// update-refs request whose changes say `new: null`, each naming the value it deletes (the one the remote's refs
// listed a moment before), so a ref another pusher moved meanwhile is refused, not lost. The remote keeps the
// deleted ref's reflog (gc keeps its commits until the reflog expires; an S3 remote never deletes packs). Here
// the remote-tracking branch goes too, its reflog kept likewise; a local tag of the same name stays.
import { CkvcError, isCkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { branchesListed } from './received-refs.js';
import type { RefChange } from './request-body.js';
import { pushedUpdates } from './sync.js';
import type { Transport } from './transport.js';

export interface DeletedRemoteRef {
  /** The remote's full ref name. */
  name: string;
  /** What it named. */
  old: ObjectId;
}

/** The remote's ref NAME stands for: a branch, else a tag; `heads/NAME` and `tags/NAME` say which. */
function remoteRef(theirs: Record<string, ObjectId>, name: string, remote: string): string {
  const candidates = name.startsWith('heads/')
    ? [`refs/${name}`]
    : name.startsWith('tags/')
      ? [`refs/${name}`]
      : [REF_PREFIX.branch + name, REF_PREFIX.tag + name];
  const there = candidates.filter((f) => Object.hasOwn(theirs, f));
  if (there.length === 2)
    throw new CkvcError(
      'CKVC_AMBIGUOUS_REVISION',
      `remote '${remote}' has both a branch and a tag named '${name}': say 'heads/${name}' or 'tags/${name}'; nothing was deleted`,
      { name },
    );
  if (there.length === 0)
    throw new CkvcError(
      'CKVC_UNKNOWN_REVISION',
      `remote '${remote}' has no branch or tag named '${name}' (${branchesListed(theirs)}); nothing was deleted`,
      { name, remote },
    );
  const full = there[0]!;
  // The value is the remote's word, and it is printed and sent back: an object ID or nothing.
  if (!isObjectId(theirs[full]!))
    throw new CkvcError(
      'CKVC_REMOTE',
      `remote '${remote}' lists ${full} at something that is no object ID; nothing was deleted`,
      { name: full, remote },
    );
  return full;
}

export async function deleteRemoteRefs(
  store: ObjectStore,
  t: Transport,
  remote: string,
  names: string[],
): Promise<{ deleted: DeletedRemoteRef[]; warnings: { code: string; message: string }[] }> {
  const theirs = await t.refs();
  const changes: (RefChange & { old: ObjectId })[] = [];
  for (const n of new Set(names)) {
    const full = remoteRef(theirs, n, remote);
    if (!changes.some((c) => c.name === full)) changes.push({ name: full, old: theirs[full]!, new: null });
  }
  let reply: unknown;
  try {
    reply = await t.updateRefs(changes, false);
  } catch (e) {
    // A server that predates deletions reads `new: null` as a malformed request (PROTOCOL.md §2).
    if (isCkvcError(e, 'CKVC_BAD_BUNDLE') && /new \(of .*\) is not an object ID/.test(e.message))
      throw new CkvcError(
        'CKVC_REMOTE',
        `remote '${remote}' (${t.url}) runs a ckvc that cannot delete refs by push; nothing was deleted there: ` +
          'upgrade ckvc on that side, or delete the branch in that store itself',
        { url: t.url },
      );
    throw e;
  }
  const deleted = pushedUpdates(changes, reply, t.url).map((u) => ({ name: u.name, old: u.old }));
  const warnings: { code: string; message: string }[] = [];
  try {
    await untrack(store, remote, deleted);
  } catch (e) {
    // The remote has deleted: failing here would say the deletion failed. What is left is a stale tracking branch.
    if (!isCkvcError(e)) throw e;
    warnings.push({
      code: e.code,
      message:
        `deleted on '${remote}' (that stands); dropping its remote-tracking branches here failed (${e.message}): ` +
        `'ckvc fetch ${remote} --prune' drops those that remain`,
    });
  }
  // A batch moves whole or not at all (PROTOCOL.md §4): an answer that leaves some out says nothing certain.
  if (deleted.length !== changes.length)
    throw new CkvcError(
      'CKVC_REMOTE',
      `remote '${remote}' (${t.url}) answered the deletion outside the protocol (it names ${deleted.length} of the ` +
        `${changes.length} refs); what it did is not known: 'ckvc fetch ${remote}' shows its refs`,
      { url: t.url },
    );
  return { deleted, warnings };
}

/** Drops the remote-tracking branches of the deleted branches (their reflogs kept, as any deletion's). */
async function untrack(store: ObjectStore, remote: string, deleted: DeletedRemoteRef[]): Promise<void> {
  const names = deleted
    .filter((d) => d.name.startsWith(REF_PREFIX.branch))
    .map((d) => `${REF_PREFIX.remote}${remote}/${d.name.slice(REF_PREFIX.branch.length)}`);
  const cur = await store.refs.readMany(names);
  const moves = names.flatMap((name, i) => (cur[i] ? [{ name, next: null, expect: cur[i]! }] : []));
  await store.refs.updateMany(moves, { who: `push ${remote}`, message: `push --delete to ${remote}` });
}
