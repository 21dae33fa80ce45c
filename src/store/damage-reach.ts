// Which checkpoints a damaged or missing object costs (`ckvc verify`, spec/FORMAT.md §10): the commits whose files
// can no longer be rebuilt, with the files and the refs naming them. Run only when verify found such objects, so
// its cost (every commit's file list) is paid by a damaged store alone.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import type { ObjectStore } from './object-store.js';
import {
  fileReleased,
  listTreeFiles,
  type ReleaseRecord,
  type TreeFile,
  tensorReleased,
  walkObjects,
} from './object-walk.js';

export interface DamagedCommit {
  commit: ObjectId;
  /** Refs whose tip it is (`main`, `tags/best`, ...). */
  refs: string[];
  /** The files whose bytes can no longer be rebuilt (its data released by a prune does not count), sorted. */
  paths: string[];
  /** When the commit itself, or its tree, cannot be read: which. */
  unreadable?: 'commit' | 'tree';
}

/** Every file of every listed commit is checked; listing more than this many damaged commits helps no one. */
const MAX_LISTED = 1000;

/**
 * The commits reachable from `tips` that `bad` (objects found damaged or missing) leaves unable to rebuild
 * some file, newest-found first as the walk meets them. `recordOf` is the walk's view of prune records and
 * promises, so that released or left-out data is not called lost.
 */
export async function damagedCommits(
  store: ObjectStore,
  tips: ObjectId[],
  names: Map<ObjectId, string[]>,
  bad: ReadonlySet<ObjectId>,
  recordOf: (commit: ObjectId) => ReleaseRecord | undefined,
): Promise<DamagedCommit[]> {
  if (bad.size === 0) return [];
  const commits: { id: ObjectId; tree?: ObjectId }[] = [];
  // Each tensor's chunks, from the walk (which reads each tensor once): a tensor is lost with any of its chunks.
  const tensorChunks = new Map<ObjectId, ObjectId[]>();
  const chunks = new Set<ObjectId>();
  await walkObjects(store, tips, {
    recordOf,
    visit: (r) => {
      if (r.kind === 'commit') commits.push({ id: r.id, tree: r.commit.tree });
      else if (r.kind === 'tensor' && r.tensor) tensorChunks.set(r.id, r.tensor.chunks);
      else if (r.kind === 'chunk') chunks.add(r.id);
    },
    // What cannot be read is already a problem of its own; its commit is found below through `bad`.
    onUnreadable: (_e, at) => {
      if (at.kind === 'commit') commits.push({ id: at.id });
    },
  });
  const lost = await withDependentDeltas(store, [...chunks], bad);
  const badTensors = new Set<ObjectId>();
  for (const [id, list] of tensorChunks) if (list.some((c) => lost.has(c))) badTensors.add(id);
  const out: DamagedCommit[] = [];
  const trees = new Map<ObjectId, TreeFile[] | undefined>();
  const recipes = new Map<ObjectId, FileRecipe | undefined>();
  for (const { id, tree } of commits) {
    if (out.length >= MAX_LISTED) break;
    const refs = names.get(id) ?? [];
    if (tree === undefined || lost.has(id)) {
      out.push({ commit: id, refs, paths: [], unreadable: 'commit' });
      continue;
    }
    let files = trees.get(tree);
    if (!trees.has(tree)) {
      files = await listTreeFiles(store, tree).catch(() => undefined);
      trees.set(tree, files);
    }
    if (!files) {
      out.push({ commit: id, refs, paths: [], unreadable: 'tree' });
      continue;
    }
    const rec = recordOf(id);
    const paths: string[] = [];
    for (const f of files) {
      if (fileReleased(rec, f.path)) continue;
      let recipe = recipes.get(f.id);
      if (!recipes.has(f.id)) {
        recipe = lost.has(f.id) ? undefined : await store.readFileRecipe(f.id).catch(() => undefined);
        recipes.set(f.id, recipe);
      }
      const broken =
        !recipe ||
        recipe.parts.some((p) =>
          p.kind === 'chunk'
            ? lost.has(p.id)
            : (lost.has(p.id) || badTensors.has(p.id)) && !tensorReleased(rec, f.path, p),
        );
      if (broken) paths.push(f.path);
    }
    if (paths.length) out.push({ commit: id, refs, paths: paths.sort() });
  }
  return out;
}

/**
 * `bad` and every chunk among `chunks` stored as a delta whose chain of bases reaches a bad one (FORMAT.md §4.3)
 * and that no longer decodes to its ID, though its own record is intact. Such a chunk is read to find out: a
 * delta codes each byte plane on its own, and a plane stored whole does not read its base.
 */
async function withDependentDeltas(
  store: ObjectStore,
  chunks: ObjectId[],
  bad: ReadonlySet<ObjectId>,
): Promise<Set<ObjectId>> {
  const lost = new Set(bad);
  const baseOf = new Map<ObjectId, ObjectId>();
  for (let frontier = chunks; frontier.length; ) {
    const next: ObjectId[] = [];
    for (let i = 0; i < frontier.length; i += 4096) {
      const batch = frontier.slice(i, i + 4096);
      const locs = await store.locate(batch);
      for (const loc of locs) {
        if (!loc) continue;
        const base = await store.packs.readDeltaBaseId(loc).catch(() => undefined);
        if (base === undefined || baseOf.has(loc.entry.id)) continue;
        baseOf.set(loc.entry.id, base);
        if (!baseOf.has(base)) next.push(base); // a base's own base: chains are bounded (FORMAT.md §4.3)
      }
    }
    frontier = next;
  }
  const decided = new Map<ObjectId, boolean>();
  const isLost = (id: ObjectId): boolean => {
    const known = decided.get(id);
    if (known !== undefined) return known;
    decided.set(id, bad.has(id)); // a cycle, which a damaged store could hold, ends here
    const base = baseOf.get(id);
    const answer = bad.has(id) || (base !== undefined && isLost(base));
    decided.set(id, answer);
    return answer;
  };
  for (const id of chunks) {
    if (lost.has(id) || !isLost(id)) continue;
    const decodes = await store.readRaw(id, 'chunk').then(
      () => true,
      () => false,
    );
    if (!decodes) lost.add(id);
  }
  return lost;
}
