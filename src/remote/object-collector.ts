// What to send: every object reachable from some tips, stopping at commits the other side already has
// (boundaries: they and everything they reach are assumed present there). Prune records travel with their
// commits, and the tensor data they released is not sent (it may no longer exist).
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { walkObjects } from '../store/object-walk.js';
import type { PruneRecord } from '../store/prune-records.js';
import { PromiseRecords, withFilter } from '../store/promise-records.js';
import { refuseLeftOut } from './partial-store.js';

export interface Collected {
  /** Objects to send, each once. */
  objects: ObjectId[];
  commits: ObjectId[];
  /** Boundary commits the sent history refers to: the receiver must have them. */
  prerequisites: ObjectId[];
  /** Records of the commits among `objects` (a receiver accepts no other, spec/BUNDLE.md §2). */
  pruned: PruneRecord[];
  /** Commits among `objects` whose history the walk cut (a depth, or this store's grafts), with what it cut. */
  shallow: Map<ObjectId, ObjectId[]>;
}

export interface CollectOptions {
  /** True for a commit the receiver has (with everything it reaches). */
  isBoundary: (commit: ObjectId) => Promise<boolean>;
  /** True for a non-commit object the receiver already has (chunk-level negotiation); default: none. */
  receiverHas?: (ids: ObjectId[]) => Promise<boolean[]>;
  /** Parents not to follow (`--depth`, see ancestry.ts `depthCut`); this store's grafts are honoured anyway. */
  cutParents?: (commit: ObjectId, parents: ObjectId[]) => ObjectId[];
  /** A fetch filter (PROTOCOL.md §4): of each commit, only the data of the tensors it selects is collected. */
  filter?: string[];
  /** The objects are only compared, not sent (pack --since): data a partial fetch left out may be among them. */
  leftOutOk?: boolean;
}

export async function collectObjects(store: ObjectStore, tips: ObjectId[], opts: CollectOptions): Promise<Collected> {
  const out = new Set<ObjectId>();
  const commits: ObjectId[] = [];
  const prerequisites = new Set<ObjectId>();
  const records = await store.pruned.all();
  const cutAt = new Map<ObjectId, ObjectId[]>();
  const chunkCommit = new Map<ObjectId, ObjectId>();
  const parentsOf = new Map<ObjectId, ObjectId[]>();
  const tags: ObjectId[] = [];
  await walkObjects(store, tips, {
    ...(opts.cutParents ? { cutParents: opts.cutParents } : {}),
    // The sender's own records say what it no longer has; they are sent as they are.
    recordOf: (id) => withFilter(records.get(id), opts.filter),
    stopAt: async (id) => {
      if (!(await opts.isBoundary(id))) return false;
      prerequisites.add(id);
      return true;
    },
    visit: (r) => {
      out.add(r.id);
      if (r.kind === 'commit') commits.push(r.id);
      if (r.kind === 'commit') parentsOf.set(r.id, r.commit.parents);
      if (r.kind === 'tag') tags.push(r.id);
      if (r.kind === 'commit' && r.cut) cutAt.set(r.id, r.cut);
      else if (r.kind === 'chunk') chunkCommit.set(r.id, r.commit);
    },
  });
  let objects = arrivalOrder([...out], parentsOf, tags, chunkCommit);
  if (opts.receiverHas && objects.length) {
    const keep: ObjectId[] = [];
    for (let i = 0; i < objects.length; i += 4096) {
      const batch = objects.slice(i, i + 4096);
      const has = await opts.receiverHas(batch);
      batch.forEach((id, k) => {
        if (!has[k]) keep.push(id);
      });
    }
    objects = keep;
  }
  // A partial store cannot send what it left out: refused before anything is sent (FORMAT.md §13.2).
  const promises = await new PromiseRecords(store.layout).all();
  if (promises.size && !opts.leftOutOk) await refuseLeftOut(store, objects, chunkCommit, promises);
  const sent = new Set(objects);
  const pruned = commits.filter((id) => sent.has(id) && records.has(id)).map((id) => records.get(id)!);
  const shallow = new Map([...cutAt].filter(([id]) => sent.has(id)));
  return { objects, commits, prerequisites: [...prerequisites], pruned, shallow };
}

/**
 * The order objects are sent in: everything but commits and tags first, then the commits, each after its parents,
 * then the tags. Transfers are promoted batch by batch (PROTOCOL.md §4), so wherever one is cut off, every commit
 * that arrived has everything it reaches, and the next run may take each commit the receiver holds for a boundary.
 * Chunks go in the order of the commits they were reached from, oldest first: a changed chunk's delta base is the
 * parent commit's chunk, so it travels in an earlier batch (or the same one), and a later batch can be thin on it.
 */
function arrivalOrder(
  objects: ObjectId[],
  parentsOf: Map<ObjectId, ObjectId[]>,
  tags: ObjectId[],
  chunkCommit: Map<ObjectId, ObjectId>,
): ObjectId[] {
  const tagSet = new Set(tags);
  const data = objects.filter((id) => !parentsOf.has(id) && !tagSet.has(id));
  const commits: ObjectId[] = [];
  const placed = new Set<ObjectId>();
  for (const root of parentsOf.keys()) {
    // Depth first, a commit placed once all of its parents (those being sent) are.
    const stack: { id: ObjectId; expanded: boolean }[] = [{ id: root, expanded: false }];
    while (stack.length) {
      const top = stack.pop()!;
      if (placed.has(top.id)) continue;
      if (top.expanded) {
        placed.add(top.id);
        commits.push(top.id);
        continue;
      }
      stack.push({ id: top.id, expanded: true });
      for (const p of parentsOf.get(top.id)!)
        if (parentsOf.has(p) && !placed.has(p)) stack.push({ id: p, expanded: false });
    }
  }
  const at = new Map(commits.map((id, i) => [id, i]));
  const rank = (id: ObjectId) => {
    const c = chunkCommit.get(id);
    return c === undefined ? -1 : (at.get(c) ?? -1);
  };
  // Stable: within a commit the walk's order stays.
  const ranked = data.map((id, i) => ({ id, i, r: rank(id) }));
  ranked.sort((a, b) => a.r - b.r || a.i - b.i);
  // The walk reaches an outer tag before the tag it names: reversed, the named one goes first.
  return [...ranked.map((x) => x.id), ...commits, ...[...tags].reverse()];
}
