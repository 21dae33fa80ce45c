// Which checkpoints a damaged or missing object costs (`ckvc verify`, spec/FORMAT.md §10): the commits whose files
// can no longer be rebuilt, with the files and the refs naming them. Run only when verify found damage, so its
// cost (a second walk, every listed commit's file list) is paid by a damaged store alone.
import { CkvcError } from '../core/errors.js';
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import type { ObjectStore } from './object-store.js';
import {
  fileReleased,
  listTreeFiles,
  type Reached,
  type ReleaseRecord,
  type TreeFile,
  tensorReleased,
  walkObjects,
} from './object-walk.js';

export interface DamagedCommit {
  /** The commit; the tag object's ID when `unreadable` is `tag` (the commit it names is unknown). */
  commit: ObjectId;
  /** Refs naming it (`main`, `tags/best`, `origin/main`), annotated tags through their tag object. */
  refs: string[];
  /** The files whose bytes can no longer be rebuilt (its data released by a prune does not count), sorted. */
  paths: string[];
  /** When the commit itself, its tree or the tag naming it cannot be read: which. */
  unreadable?: 'commit' | 'tree' | 'tag';
}

/** What verify found, for damagedCommits to follow. */
export interface Damage {
  /** Objects a problem names as damaged or missing. */
  bad: ReadonlySet<ObjectId>;
  /** Packs a problem names as damaged: the objects stored there are read to find out which still are sound. */
  packs: ReadonlySet<string>;
  /** The delta records that name each chunk as their base (verify's history phase read every reachable one). */
  dependents: ReadonlyMap<ObjectId, ObjectId[]>;
}

/** Every file of every listed commit is checked; listing more than this many damaged commits helps no one. */
const MAX_LISTED = 1000;

/**
 * The commits reachable from `tips` that the damage leaves unable to rebuild some file, in the walk's order
 * from the refs. `recordOf` is the walk's view of prune records and promises, so that released or left-out data
 * is not called lost.
 */
export async function damagedCommits(
  store: ObjectStore,
  tips: ObjectId[],
  names: Map<ObjectId, string[]>,
  damage: Damage,
  recordOf: (commit: ObjectId) => ReleaseRecord | undefined,
): Promise<DamagedCommit[]> {
  if (damage.bad.size === 0 && damage.packs.size === 0) return [];
  const lost = new Set(damage.bad);
  if (damage.packs.size) await readDamagedPacks(store, tips, damage.packs, recordOf, lost);
  await addBrokenDependents(store, damage.dependents, lost);

  const commits: { id: ObjectId; tree?: ObjectId }[] = [];
  const tags: ObjectId[] = [];
  const badTensors = new Set<ObjectId>();
  const refsOf = new Map(names);
  await walkObjects(store, tips, {
    recordOf,
    visit: (r) => {
      if (r.kind === 'commit') commits.push({ id: r.id, tree: r.commit.tree });
      // An annotated tag names its commit through the tag object: the commit is listed under the tag's refs too.
      else if (r.kind === 'tag')
        refsOf.set(r.tag.target, [...(refsOf.get(r.tag.target) ?? []), ...(refsOf.get(r.id) ?? [])]);
      else if (r.kind === 'tensor' && r.tensor?.chunks.some((c) => lost.has(c))) badTensors.add(r.id);
    },
    // What cannot be read is a problem of its own already; here it is what it costs.
    onUnreadable: (e, at) => {
      if (!(e instanceof CkvcError)) throw e;
      if (at.kind === 'commit') commits.push({ id: at.id });
      else if (at.kind === 'tag') tags.push(at.id);
      else if (at.kind === 'tensor') badTensors.add(at.id);
      else if (at.kind === 'file' || at.kind === 'tree') lost.add(at.id);
    },
  });
  const out: DamagedCommit[] = tags.map((id) => ({
    commit: id,
    refs: refsOf.get(id) ?? [],
    paths: [],
    unreadable: 'tag',
  }));
  const trees = new Map<ObjectId, TreeFile[] | undefined>();
  const recipes = new Map<ObjectId, FileRecipe | undefined>();
  for (const { id, tree } of commits) {
    if (out.length >= MAX_LISTED) break;
    const refs = refsOf.get(id) ?? [];
    if (tree === undefined || lost.has(id)) {
      out.push({ commit: id, refs, paths: [], unreadable: 'commit' });
      continue;
    }
    let files = trees.get(tree);
    if (!trees.has(tree)) {
      files = await listTreeFiles(store, tree).catch(unlessBug(undefined));
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
        recipe = lost.has(f.id) ? undefined : await store.readFileRecipe(f.id).catch(unlessBug(undefined));
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

/** A catch that turns a CkvcError (damage) into `value` and lets anything else (a bug) through. */
function unlessBug<T>(value: T): (e: unknown) => T {
  return (e) => {
    if (e instanceof CkvcError) return value;
    throw e;
  };
}

/** Whether `id` reads back and hashes to itself. */
async function readsBack(store: ObjectStore, id: ObjectId, type: ObjectType): Promise<boolean> {
  return store.readRaw(id, type).then(() => true, unlessBug(false));
}

/**
 * Adds to `lost` every object the refs reach that is stored in a damaged pack and no longer reads back: a pack
 * whose table of contents is damaged or cut short names none of its objects in a problem of their own.
 */
async function readDamagedPacks(
  store: ObjectStore,
  tips: ObjectId[],
  packs: ReadonlySet<string>,
  recordOf: (commit: ObjectId) => ReleaseRecord | undefined,
  lost: Set<ObjectId>,
): Promise<void> {
  let batch: { id: ObjectId; type: ObjectType }[] = [];
  const check = async () => {
    const locs = await store.locate(batch.map((b) => b.id));
    for (let i = 0; i < batch.length; i++) {
      const loc = locs[i];
      const { id, type } = batch[i]!;
      if (loc && packs.has(loc.packId) && !(await readsBack(store, id, type))) lost.add(id);
    }
    batch = [];
  };
  const met = async (r: Reached) => {
    if (r.kind === 'tensor' && r.released) return;
    batch.push({ id: r.id, type: r.kind === 'chunk' ? 'chunk' : r.kind });
    if (batch.length >= 4096) await check();
  };
  await walkObjects(store, tips, {
    recordOf,
    visit: met,
    onUnreadable: (e, at) => {
      if (!(e instanceof CkvcError)) throw e;
      lost.add(at.id);
    },
  });
  await check();
}

/**
 * Adds to `lost` the chunks stored as deltas whose chain of bases reaches a lost chunk and that no longer decode
 * to their ID. Each is read to find out: a delta codes each byte plane on its own, and a plane stored whole does
 * not read its base.
 */
async function addBrokenDependents(
  store: ObjectStore,
  dependents: ReadonlyMap<ObjectId, ObjectId[]>,
  lost: Set<ObjectId>,
): Promise<void> {
  const seen = new Set<ObjectId>();
  for (let frontier = [...lost]; frontier.length; ) {
    const next: ObjectId[] = [];
    for (const base of frontier) {
      for (const d of dependents.get(base) ?? []) {
        if (seen.has(d) || lost.has(d)) continue;
        seen.add(d);
        if (!(await readsBack(store, d, 'chunk'))) {
          lost.add(d);
          next.push(d);
        }
      }
    }
    frontier = next;
  }
}
