// Branches, tags, HEAD and reflogs as data.
import { CkvcError, isCkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { encodeTag } from '../core/store-format/objects/tag-object.js';
import { assertRefName } from '../core/ref-name.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX, type RefKind, type ReflogEntry } from '../store/ref-store.js';
import { registerWriter } from '../store/gc-exclusion.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { defaultAuthor } from './author.js';

export interface RefTip {
  name: string;
  /** What the ref file holds (a commit, or an annotated tag object). */
  id: ObjectId;
  commit: ObjectId;
  current: boolean;
  time: number;
  message: string;
  metrics: Record<string, number>;
  step?: number;
  /** For annotated tags. */
  tagMessage?: string;
}

/**
 * With `onDamaged`, a ref file that holds no object ID is handed to it and the others are listed (the command line
 * warns and lists the rest, as git does); without, it fails the listing.
 */
export interface ListOptions {
  onDamaged?: (e: CkvcError) => void;
}

async function tips(store: ObjectStore, kind: RefKind, opts: ListOptions = {}): Promise<RefTip[]> {
  const head = await store.refs.readHead();
  const out: RefTip[] = [];
  for (const r of await store.refs.list(kind, opts.onDamaged ? { onCorrupt: opts.onDamaged } : {})) {
    let commit = r.id;
    let tagMessage: string | undefined;
    let c: Awaited<ReturnType<ObjectStore['readCommit']>>;
    try {
      if (kind === 'tag' && (await store.typeOf(r.id)) === 'tag') {
        const t = await store.readTag(r.id);
        commit = t.target;
        tagMessage = t.message;
      }
      c = await store.readCommit(commit);
    } catch (e) {
      // A tip lost to damage is named, with the ways back, and the others are listed (as for a damaged ref file).
      if (!(e instanceof CkvcError) || !opts.onDamaged) throw e;
      opts.onDamaged(
        new CkvcError(
          e.code,
          `${kind} '${r.name}' points at ${r.id.slice(0, 12)}, which cannot be read (${e.message}); 'ckvc repair --from REMOTE' brings it back from a copy that has it${kind === 'branch' || kind === 'tag' ? `, 'ckvc reflog ${kind === 'tag' ? '--tag ' : ''}${r.name}' lists the ref's earlier values` : ''}`,
          { ...e.data, ref: REF_PREFIX[kind] + r.name },
        ),
      );
      continue;
    }
    out.push({
      name: r.name,
      id: r.id,
      commit,
      current: kind === 'branch' && head.kind === 'branch' && head.branch === r.name,
      time: c.time,
      message: c.message,
      metrics: c.metrics,
      step: c.step,
      tagMessage,
    });
  }
  return out;
}

export const listBranches = (store: ObjectStore, opts?: ListOptions) => tips(store, 'branch', opts);
export const listTags = (store: ObjectStore, opts?: ListOptions) => tips(store, 'tag', opts);
/** Remote-tracking branches (refs/remotes/REMOTE/BRANCH), named REMOTE/BRANCH. */
export const listRemoteBranches = (store: ObjectStore, opts?: ListOptions) => tips(store, 'remote', opts);

/**
 * Creates branch `name` at `start`; with `force`, an existing one is moved there instead (its reflog keeps where it
 * was), the current branch and one whose tip was lost to damage included: git's `branch -f`.
 */
export async function createBranch(
  store: ObjectStore,
  name: string,
  start = 'HEAD',
  opts: { force?: boolean } = {},
): Promise<{ name: string; id: ObjectId; was?: ObjectId | 'damaged' }> {
  assertRefName(name, 'branch');
  const { id } = await resolveRevision(store, start);
  const full = REF_PREFIX.branch + name;
  const was = opts.force
    ? await store.refs.read(full).catch((e) => {
        if (isCkvcError(e, 'CKVC_CORRUPT_REF')) return 'damaged' as const;
        throw e;
      })
    : undefined;
  await store.refs.update(full, id, {
    ...(was === 'damaged' ? { expectDamaged: true } : { expect: was ?? null }),
    who: defaultAuthor(),
    message: was ? `branch: forced to ${start}` : `branch: created from ${start}`,
  });
  return { name, id, ...(was ? { was } : {}) };
}

/**
 * What a deleted branch or tag held; `damaged` (and no `id`) when its file held no object ID: deleting it is how
 * such a ref is dropped (the message of CKVC_CORRUPT_REF says so), its reflog keeping its earlier values.
 */
export interface DeletedRef {
  name: string;
  id?: ObjectId;
  damaged?: true;
}

async function deleteRef(store: ObjectStore, kind: 'branch' | 'tag', name: string): Promise<DeletedRef> {
  const full = REF_PREFIX[kind] + name;
  const id = await store.refs.read(full).catch((e) => {
    if ((e as CkvcError).code === 'CKVC_CORRUPT_REF') return 'damaged' as const;
    throw e;
  });
  if (!id) throw new CkvcError('CKVC_UNKNOWN_REVISION', `no ${kind} named '${name}'`, { name });
  const who = defaultAuthor();
  if (id === 'damaged') {
    await store.refs.update(full, null, { expectDamaged: true, who, message: `${kind}: deleted (damaged)` });
    return { name, damaged: true };
  }
  await store.refs.update(full, null, { expect: id, who, message: `${kind}: deleted` });
  return { name, id };
}

export async function deleteBranch(store: ObjectStore, name: string): Promise<DeletedRef> {
  assertRefName(name, 'branch');
  const head = await store.refs.readHead();
  if (head.kind === 'branch' && head.branch === name) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `cannot delete branch '${name}': HEAD is on it; 'ckvc switch' to another branch first`,
      { name },
    );
  }
  return deleteRef(store, 'branch', name);
}

export async function createTag(
  store: ObjectStore,
  name: string,
  rev = 'HEAD',
  message?: string,
): Promise<{ name: string; id: ObjectId; commit: ObjectId }> {
  assertRefName(name, 'tag');
  const { id: commit } = await resolveRevision(store, rev);
  let id = commit;
  const registration = await registerWriter(store.layout);
  try {
    // Refused before an annotated tag's object is written (a refusal leaves the store as it was), and named by
    // the commit it tags, as `ckvc tag` lists it; the update below still refuses a tag made meanwhile.
    const existing = await store.refs.read(REF_PREFIX.tag + name);
    if (existing !== undefined) {
      // An annotated tag is named by its commit; one whose tag object is damaged still exists, and -d removes it.
      const at =
        (await store.typeOf(existing)) === 'tag'
          ? await store.readTag(existing).then(
              (t) => t.target.slice(0, 12),
              (e) => {
                if (!(e instanceof CkvcError)) throw e;
                return `tag object ${existing.slice(0, 12)}, which cannot be read`;
              },
            )
          : existing.slice(0, 12);
      throw new CkvcError(
        'CKVC_REF_CONFLICT',
        `tag '${name}' already exists (at ${at}); choose another name, or move it: 'ckvc tag -d ${name}' and tag again`,
        { ref: REF_PREFIX.tag + name, expected: null, actual: existing },
      );
    }
    if (message !== undefined) {
      const writer = store.writer();
      try {
        id = await writer.put(
          'tag',
          encodeTag({ target: commit, name, message, tagger: defaultAuthor(), time: Date.now() }),
        );
        await writer.commit();
      } catch (e) {
        await writer.abort();
        throw e;
      }
    }
    await store.refs.update(REF_PREFIX.tag + name, id, { expect: null, who: defaultAuthor(), message: `tag: ${rev}` });
  } finally {
    await registration.release();
  }
  return { name, id, commit };
}

export async function deleteTag(store: ObjectStore, name: string): Promise<DeletedRef> {
  assertRefName(name, 'tag');
  return deleteRef(store, 'tag', name);
}

export async function switchBranch(store: ObjectStore, name: string): Promise<{ branch: string; id?: ObjectId }> {
  assertRefName(name, 'branch');
  const id = await store.refs.read(REF_PREFIX.branch + name);
  if (!id)
    throw new CkvcError(
      'CKVC_UNKNOWN_REVISION',
      `no branch named '${name}'; create it with 'ckvc branch ${name} [START]' or commit with -b ${name}`,
      { name },
    );
  await store.refs.writeHead(name);
  return { branch: name, id };
}

/** The moves of a branch (or tag with kind 'tag'), newest first: how to find a commit a branch has left. */
export async function reflog(store: ObjectStore, name: string, kind: RefKind = 'branch'): Promise<ReflogEntry[]> {
  assertRefName(name, kind);
  return (await store.refs.reflog(REF_PREFIX[kind] + name)).reverse();
}

/** The branch HEAD is on; a detached HEAD has none, so commands that need one ask for -b. */
export async function currentBranch(store: ObjectStore): Promise<string> {
  const head = await store.refs.readHead();
  if (head.kind !== 'branch')
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      'HEAD is detached, so there is no current branch; name one with -b BRANCH',
      {},
    );
  return head.branch;
}
