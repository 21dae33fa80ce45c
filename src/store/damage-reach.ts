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
  const lost = await lostObjects(store, tips, damage, recordOf);

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

/** Whether `id`, a `type`, reads back as checkout reads it (a commit through the index's copy of its body too). */
async function readsBack(store: ObjectStore, id: ObjectId, type: ObjectType): Promise<boolean> {
  const read: Record<ObjectType, () => Promise<unknown>> = {
    chunk: () => store.readRaw(id, 'chunk'),
    tensor: () => store.readTensor(id),
    file: () => store.readFileRecipe(id),
    tree: () => store.readTree(id),
    commit: () => store.readCommit(id),
    tag: () => store.readTag(id),
  };
  return read[type]().then(() => true, unlessBug(false));
}

/**
 * The objects the refs need that no longer read back: those a problem names, those stored in a pack a problem
 * names (a damaged table of contents or a pack cut short names none of its objects itself), and the chunks whose
 * chain of delta bases (FORMAT.md §4.3) reaches one of those. Each is read to find out: a pack's other records
 * may be sound, and a delta codes each byte plane on its own, so a plane stored whole does not read its base.
 * Bases are followed past what the walk reaches (a base whose own data a prune released).
 */
export async function lostObjects(
  store: ObjectStore,
  tips: ObjectId[],
  damage: Damage,
  recordOf: (commit: ObjectId) => ReleaseRecord | undefined,
  /** Commits and tags the walk does not go past (walkObjects' `stopAt`). */
  stopAt?: (id: ObjectId) => Promise<boolean>,
): Promise<Set<ObjectId>> {
  const lost = new Set<ObjectId>();
  const suspects = new Map<ObjectId, ObjectType | undefined>();
  for (const id of damage.bad) suspects.set(id, undefined);
  const baseOf = new Map<ObjectId, ObjectId>();
  const located = new Set<ObjectId>();
  let batch: { id: ObjectId; type: ObjectType }[] = [];
  const examine = async () => {
    // Located in turn, each base of a delta found here too, until no new base turns up.
    for (let todo = batch; todo.length; ) {
      const next: { id: ObjectId; type: ObjectType }[] = [];
      const locs = await store.locate(todo.map((b) => b.id));
      for (let i = 0; i < todo.length; i++) {
        const { id, type } = todo[i]!;
        const loc = locs[i];
        if (!loc) {
          suspects.set(id, type);
          continue;
        }
        if (damage.packs.has(loc.packId)) suspects.set(id, type);
        const base = await store.packs.readDeltaBaseId(loc).catch(unlessBug(undefined));
        if (base === undefined) continue;
        baseOf.set(id, base);
        if (!located.has(base)) {
          located.add(base);
          next.push({ id: base, type: 'chunk' });
        }
      }
      todo = next;
    }
    batch = [];
  };
  await walkObjects(store, tips, {
    recordOf,
    ...(stopAt ? { stopAt } : {}),
    visit: async (r) => {
      if ((r.kind === 'tensor' && r.released) || located.has(r.id)) return;
      located.add(r.id);
      batch.push({ id: r.id, type: r.kind });
      if (batch.length >= 4096) await examine();
    },
    onUnreadable: (e, at) => {
      if (!(e instanceof CkvcError)) throw e;
      lost.add(at.id);
    },
  });
  await examine();
  for (const [id, type] of suspects) {
    const found = type ?? (await store.typeOf(id));
    if (!found || !(await readsBack(store, id, found))) lost.add(id);
  }
  // Deltas of a lost chunk, and theirs in turn, that no longer decode.
  const dependents = new Map<ObjectId, ObjectId[]>();
  for (const [id, base] of baseOf) {
    const list = dependents.get(base);
    if (list) list.push(id);
    else dependents.set(base, [id]);
  }
  for (let frontier = [...lost]; frontier.length; ) {
    const next: ObjectId[] = [];
    for (const base of frontier)
      for (const d of dependents.get(base) ?? [])
        if (!lost.has(d) && !(await readsBack(store, d, 'chunk'))) {
          lost.add(d);
          next.push(d);
        }
    frontier = next;
  }
  return lost;
}
