// `ckvc log` and `ckvc show`: commits as data, newest first, decorated with the refs that point at them.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import { recipeTensorCount } from '../core/store-format/objects/file-recipe.js';
import { listTreeFiles } from '../store/object-walk.js';
import type { ObjectStore } from '../store/object-store.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { parseCount } from './commit-input.js';

/** A tag pointing at a commit; an annotated tag (a tag object) also has its message, tagger and time. */
export interface TagNote {
  name: string;
  message?: string;
  tagger?: string;
  time?: number;
}

export interface CommitInfo extends CommitObject {
  id: ObjectId;
  refs: string[];
  /** The tags pointing at this commit (also among `refs` as 'tag: NAME'); absent when there are none. */
  tags?: TagNote[];
  /** The label given to this commit's config hash (`ckvc config label`). */
  configLabel?: string;
  /** Set when `ckvc prune` released tensor data of this commit. */
  pruned?: { time: number; tensors: string[] | null; files?: string[] | null };
  /** Set where a shallow store's history stops (FORMAT.md §17): the parents it does not have. */
  shallow?: { parents: ObjectId[] };
}

export interface LogOptions {
  rev?: string;
  /** Start from every branch, tag and alias instead of one revision. */
  all?: boolean;
  limit?: number;
  firstParent?: boolean;
}

interface Decorations {
  /** Names pointing at each commit: branches as-is, tags as 'tag: NAME'. */
  refs: Map<ObjectId, string[]>;
  tags: Map<ObjectId, TagNote[]>;
}

async function decorations(store: ObjectStore): Promise<Decorations> {
  const refs = new Map<ObjectId, string[]>();
  const tags = new Map<ObjectId, TagNote[]>();
  const add = (id: ObjectId, name: string) => refs.set(id, [...(refs.get(id) ?? []), name]);
  // A damaged ref elsewhere must not stop the log of a healthy branch; verify and the ref's own commands report it.
  for (const b of await store.refs.list('branch', { skipCorrupt: true })) add(b.id, b.name);
  for (const t of await store.refs.list('tag', { skipCorrupt: true })) {
    const annotated = (await store.typeOf(t.id)) === 'tag' ? await store.readTag(t.id) : undefined;
    const id = annotated ? annotated.target : t.id;
    add(id, `tag: ${t.name}`);
    const note: TagNote = annotated
      ? { name: t.name, message: annotated.message, tagger: annotated.tagger, time: annotated.time }
      : { name: t.name };
    tags.set(id, [...(tags.get(id) ?? []), note]);
  }
  for (const a of await store.refs.list('alias', { skipCorrupt: true })) add(a.id, `alias: ${a.name}`);
  for (const r of await store.refs.list('remote', { skipCorrupt: true })) add(r.id, r.name);
  return { refs, tags };
}

async function annotator(store: ObjectStore): Promise<(id: ObjectId) => Promise<CommitInfo>> {
  const { refs, tags } = await decorations(store);
  const labels = await store.configLabels.all().catch(() => new Map<string, string>());
  const pruned = await store.pruned.all();
  return async (id) => {
    const c = await store.readCommit(id);
    const held = await store.parentsHeld(id, c.parents);
    const cut = c.parents.filter((p) => !held.includes(p));
    const label = c.config ? labels.get(c.config.hash) : undefined;
    const rec = pruned.get(id);
    const t = tags.get(id);
    const released = rec && {
      time: rec.time,
      tensors: rec.tensors,
      ...(rec.files !== undefined ? { files: rec.files } : {}),
    };
    return {
      ...c,
      id,
      refs: refs.get(id) ?? [],
      ...(t ? { tags: t } : {}),
      ...(label ? { configLabel: label } : {}),
      ...(released ? { pruned: released } : {}),
      ...(cut.length ? { shallow: { parents: cut } } : {}),
    };
  };
}

export async function log(store: ObjectStore, opts: LogOptions = {}): Promise<CommitInfo[]> {
  const starts = new Set<ObjectId>();
  if (opts.all) {
    for (const kind of ['branch', 'tag', 'alias', 'remote'] as const) {
      for (const r of await store.refs.list(kind, { skipCorrupt: true })) {
        starts.add((await store.typeOf(r.id)) === 'tag' ? (await store.readTag(r.id)).target : r.id);
      }
    }
  } else starts.add((await resolveRevision(store, opts.rev ?? 'HEAD')).id);
  const limit = parseCount(opts.limit, 'limit') ?? Infinity;
  const out: CommitInfo[] = [];
  // Newest first across all parents (git's default order), by a small frontier kept sorted by time.
  const frontier: CommitInfo[] = [];
  const seen = new Set<ObjectId>(starts);
  const load = await annotator(store);
  for (const s of starts) frontier.push(await load(s));
  while (frontier.length && out.length < limit) {
    frontier.sort((a, b) => b.time - a.time || (a.id < b.id ? -1 : 1));
    const c = frontier.shift()!;
    out.push(c);
    if (out.length >= limit) break; // its parents would only be read to be dropped
    const parents = opts.firstParent ? c.parents.slice(0, 1) : c.parents;
    for (const p of parents) {
      if (seen.has(p) || c.shallow?.parents.includes(p)) continue;
      seen.add(p);
      frontier.push(await load(p));
    }
  }
  return out;
}

export interface ShownFile {
  path: string;
  size: number;
  format: string;
  tensors: number;
}

export interface ShowResult extends CommitInfo {
  files: ShownFile[];
  totalBytes: number;
  tensorCount: number;
}

export async function show(store: ObjectStore, rev: string): Promise<ShowResult> {
  const { id } = await resolveRevision(store, rev);
  const c = await (await annotator(store))(id);
  const files: ShownFile[] = [];
  for (const f of await listTreeFiles(store, c.tree)) {
    const r = await store.readFileRecipe(f.id);
    files.push({
      path: f.path,
      size: r.size,
      format: r.format,
      tensors: recipeTensorCount(r),
    });
  }
  return {
    ...c,
    files,
    totalBytes: files.reduce((a, f) => a + f.size, 0),
    tensorCount: files.reduce((a, f) => a + f.tensors, 0),
  };
}
