// `ckvc log` and `ckvc show`: commits as data, newest first, decorated with the refs that point at them.
import type { ObjectId } from '../core/object-id.js';
import type { CommitObject } from '../core/objects/commit-object.js';
import { listTreeFiles } from '../store/checkout.js';
import type { ObjectStore } from '../store/object-store.js';
import { resolveRevision } from '../store/revision-resolver.js';
import { parseCount } from './commit-input.js';

export interface CommitInfo extends CommitObject {
  id: ObjectId;
  refs: string[];
}

export interface LogOptions {
  rev?: string;
  limit?: number;
  firstParent?: boolean;
}

/** Names pointing at each commit: branches as-is, tags as 'tag: NAME'. */
export async function decorations(store: ObjectStore): Promise<Map<ObjectId, string[]>> {
  const out = new Map<ObjectId, string[]>();
  const add = (id: ObjectId, name: string) => out.set(id, [...(out.get(id) ?? []), name]);
  // A damaged ref elsewhere must not stop the log of a healthy branch; verify and the ref's own commands report it.
  for (const b of await store.refs.list('branch', { skipCorrupt: true })) add(b.id, b.name);
  for (const t of await store.refs.list('tag', { skipCorrupt: true })) {
    const id = (await store.typeOf(t.id)) === 'tag' ? (await store.readTag(t.id)).target : t.id;
    add(id, `tag: ${t.name}`);
  }
  return out;
}

export async function log(store: ObjectStore, opts: LogOptions = {}): Promise<CommitInfo[]> {
  const start = (await resolveRevision(store, opts.rev ?? 'HEAD')).id;
  const refs = await decorations(store);
  const limit = parseCount(opts.limit, 'limit') ?? Infinity;
  const out: CommitInfo[] = [];
  // Newest first across all parents (git's default order), by a small frontier kept sorted by time.
  const frontier: CommitInfo[] = [];
  const seen = new Set<ObjectId>([start]);
  const load = async (id: ObjectId) => ({ ...(await store.readCommit(id)), id, refs: refs.get(id) ?? [] });
  frontier.push(await load(start));
  while (frontier.length && out.length < limit) {
    frontier.sort((a, b) => b.time - a.time || (a.id < b.id ? -1 : 1));
    const c = frontier.shift()!;
    out.push(c);
    const parents = opts.firstParent ? c.parents.slice(0, 1) : c.parents;
    for (const p of parents) {
      if (seen.has(p)) continue;
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
  const c = await store.readCommit(id);
  const refs = (await decorations(store)).get(id) ?? [];
  const files: ShownFile[] = [];
  for (const f of await listTreeFiles(store, c.tree)) {
    const r = await store.readFileRecipe(f.id);
    files.push({ path: f.path, size: r.size, format: r.format, tensors: r.parts.filter((p) => p.kind === 'tensor').length });
  }
  return {
    ...c, id, refs, files,
    totalBytes: files.reduce((a, f) => a + f.size, 0),
    tensorCount: files.reduce((a, f) => a + f.tensors, 0),
  };
}
