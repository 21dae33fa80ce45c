// Commit-graph walks shared by fetch/push, bundles and config labels.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from './object-store.js';

/** The parents of a commit, or the target of a tag object. */
export type ParentsOf = (id: ObjectId) => Promise<ObjectId[]>;

export function storeParents(store: ObjectStore): ParentsOf {
  return async (id) => {
    const type = await store.typeOf(id);
    if (type === 'tag') return [(await store.readTag(id)).target];
    if (type === 'commit') return (await store.readCommit(id)).parents;
    return [];
  };
}

/** Every commit (and tag object) reachable from `tips`. */
export async function commitClosure(parentsOf: ParentsOf, tips: ObjectId[]): Promise<Set<ObjectId>> {
  const seen = new Set<ObjectId>();
  const stack = [...tips];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(await parentsOf(id)));
  }
  return seen;
}

/**
 * The commits (and tag objects) reachable from `tips` whose whole history this store holds: what a fetch may tell a
 * remote it has. A grafted commit (FORMAT.md §17), everything above it and the parents it cuts are left out: the
 * remote takes a commit it is told of as held with all its history, and would send neither the history below the
 * boundary nor a branch forked there (the fetch then failed its closure check on every run).
 */
export async function completeHistory(store: ObjectStore, tips: ObjectId[]): Promise<Set<ObjectId>> {
  const parentsOf = storeParents(store);
  const grafts = await store.shallowCommits();
  if (grafts.size === 0) return commitClosure(parentsOf, tips);
  const children = new Map<ObjectId, ObjectId[]>();
  const seen = await commitClosure(async (id) => {
    const parents = await parentsOf(id);
    for (const p of parents) {
      const of = children.get(p);
      if (of) of.push(id);
      else children.set(p, [id]);
    }
    return parents;
  }, tips);
  const incomplete = new Set<ObjectId>();
  const rise = [...grafts].filter((g) => seen.has(g));
  while (rise.length) {
    const id = rise.pop()!;
    if (incomplete.has(id)) continue;
    incomplete.add(id);
    rise.push(...(children.get(id) ?? []));
  }
  const out = new Set<ObjectId>();
  for (const id of seen) if (!incomplete.has(id) && (await store.typeOf(id)) !== undefined) out.add(id);
  return out;
}

/** The tips held here whose history stops at a graft (a shallow store's), in one walk: a fetch asks for them again. */
export async function tipsCutShort(store: ObjectStore, tips: ObjectId[]): Promise<Set<ObjectId>> {
  const cut = new Set<ObjectId>();
  if ((await store.shallowCommits()).size === 0) return cut;
  const complete = await completeHistory(store, tips);
  for (const t of tips) if (!complete.has(t) && (await store.typeOf(t)) !== undefined) cut.add(t);
  return cut;
}

/** Is `maybe` reachable from `of` (a fast-forward from maybe to of)? */
export async function isAncestor(parentsOf: ParentsOf, maybe: ObjectId, of: ObjectId): Promise<boolean> {
  const seen = new Set<ObjectId>();
  const stack = [of];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === maybe) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(await parentsOf(id)));
  }
  return false;
}

/**
 * `--depth N` (BUNDLE.md §5): the commits within N generations of `tips` (the commits the tips name, a tag
 * followed to its commit, are generation 1), and a cutter for the object walk that leaves out every parent
 * outside them.
 */
export async function depthCut(
  store: ObjectStore,
  tips: ObjectId[],
  depth: number,
): Promise<(commit: ObjectId, parents: ObjectId[]) => ObjectId[]> {
  const within = new Set<ObjectId>();
  let frontier: ObjectId[] = [];
  for (let id of tips) {
    for (let hops = 0; hops < 64 && (await store.typeOf(id)) === 'tag'; hops++) id = (await store.readTag(id)).target;
    frontier.push(id);
  }
  for (let gen = 0; gen < depth && frontier.length; gen++) {
    const next: ObjectId[] = [];
    for (const id of frontier) {
      if (within.has(id) || (await store.typeOf(id)) !== 'commit') continue;
      within.add(id);
      next.push(...(await store.readCommit(id)).parents);
    }
    frontier = next;
  }
  return (_commit, parents) => parents.filter((p) => !within.has(p));
}
