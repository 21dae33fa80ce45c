// What to send: every object reachable from some tips, stopping at commits the other side already has
// (boundaries: they and everything they reach are assumed present there). Prune records travel with their
// commits, and the tensor data they released is not sent (it may no longer exist).
import { tensorGlob, tensorMatches } from '../core/glob.js';
import type { ObjectId } from '../core/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import type { PruneRecord } from '../store/prune-records.js';

export interface Collected {
  /** Objects to send, each once. */
  objects: ObjectId[];
  commits: ObjectId[];
  /** Boundary commits the sent history refers to: the receiver must have them. */
  prerequisites: ObjectId[];
  pruned: PruneRecord[];
}

export interface CollectOptions {
  /** True for a commit the receiver has (with everything it reaches). */
  isBoundary: (commit: ObjectId) => Promise<boolean>;
  /** True for a non-commit object the receiver already has (chunk-level negotiation); default: none. */
  receiverHas?: (ids: ObjectId[]) => Promise<boolean[]>;
}

export async function collectObjects(store: ObjectStore, tips: ObjectId[], opts: CollectOptions): Promise<Collected> {
  const out = new Set<ObjectId>();
  const commits: ObjectId[] = [];
  const prerequisites = new Set<ObjectId>();
  const pruned: PruneRecord[] = [];
  const records = await store.pruned.all();
  const walkedData = new Set<ObjectId>();
  const walked = new Set<string>();
  const seenCommits = new Set<ObjectId>();
  const stack = [...tips];
  while (stack.length) {
    const id = stack.pop()!;
    if (seenCommits.has(id)) continue;
    seenCommits.add(id);
    if (await opts.isBoundary(id)) {
      prerequisites.add(id);
      continue;
    }
    if ((await store.typeOf(id)) === 'tag') {
      out.add(id);
      stack.push((await store.readTag(id)).target);
      continue;
    }
    const c = await store.readCommit(id);
    out.add(id);
    commits.push(id);
    stack.push(...c.parents);
    if (c.config) out.add(c.config.snapshot);
    const rec = records.get(id);
    if (rec) pruned.push(rec);
    const globs = rec?.tensors ? rec.tensors.map(tensorGlob) : undefined;
    const ctx = !rec ? '-' : rec.tensors === null ? 'all' : id;
    const walkTree = async (treeId: ObjectId, dir: string): Promise<void> => {
      if (walked.has(`${treeId}:${ctx}`)) return;
      walked.add(`${treeId}:${ctx}`);
      out.add(treeId);
      for (const e of (await store.readTree(treeId)).entries) {
        const p = dir ? `${dir}/${e.name}` : e.name;
        if (e.type === 'tree') {
          await walkTree(e.id, p);
          continue;
        }
        out.add(e.id);
        if (walked.has(`${e.id}:${ctx}`)) continue;
        walked.add(`${e.id}:${ctx}`);
        for (const part of (await store.readFileRecipe(e.id)).parts) {
          out.add(part.id);
          if (part.kind === 'chunk') continue;
          const released = rec && (rec.tensors === null || tensorMatches(globs!, p, part.name));
          if (released || walkedData.has(part.id)) continue;
          walkedData.add(part.id);
          for (const chunk of (await store.readTensor(part.id)).chunks) out.add(chunk);
        }
      }
    };
    await walkTree(c.tree, '');
  }
  let objects = [...out];
  if (opts.receiverHas && objects.length) {
    const keep: ObjectId[] = [];
    for (let i = 0; i < objects.length; i += 4096) {
      const batch = objects.slice(i, i + 4096);
      const has = await opts.receiverHas(batch);
      batch.forEach((id, k) => { if (!has[k]) keep.push(id); });
    }
    objects = keep;
  }
  return { objects, commits, prerequisites: [...prerequisites], pruned };
}
