// Promotes a verified quarantine into the store (spec/BUNDLE.md §4): check that every object the new refs
// reach is in the bundle or already in the store, move the pack into packs/, index it, record prune records,
// then move refs by compare-and-swap. A failure before the pack moves leaves the store exactly as it was.
import * as fs from 'node:fs/promises';
import { bad } from '../core/store-format/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { fsyncDir, ioError } from '../store/durable-fs.js';
import { isAncestor, storeParents } from '../store/ancestry.js';
import { faultPoint } from '../store/fault-injection.js';
import { registerWriter } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { walkObjects } from '../store/object-walk.js';
import type { KeptLabel } from '../store/config-labels.js';
import { mergePruneRecords, type PruneRecord } from '../store/prune-records.js';
import { PromiseRecords, withPromise } from '../store/promise-records.js';
import { PACK_V2_STORE_VERSION, recipeStoreVersion, upgradeStoreVersion } from '../store/store-layout.js';
import { Overlay } from './bundle-objects.js';
import type { ReceivedBundle } from './bundle-reader.js';

export type { KeptLabel } from '../store/config-labels.js';

export interface RefUpdate {
  name: string;
  old: ObjectId | null;
  new: ObjectId;
  forced: boolean;
  /** Not moved: it already held `new`, or (`behind`) `new` is an ancestor of what it holds (an older copy). */
  skipped?: 'unchanged' | 'behind';
}

export interface ImportOptions {
  /** Map a bundle ref name to the local ref to set (or undefined to leave it). */
  targetRef: (name: string) => string | undefined;
  force?: boolean;
  who: string;
  message: string;
}

export interface ImportResult {
  objects: number;
  newObjects: number;
  packId?: string;
  refs: RefUpdate[];
  labelsKept: KeptLabel[];
}

/**
 * The prune records a receiver takes from a bundle: those of commits that arrive with it and that the store did
 * not have before (spec/BUNDLE.md §4). A commit already here keeps its own state: received metadata never
 * releases data the receiver holds. (A record naming a commit outside the bundle was refused on reading.)
 */
export async function acceptedRecords(store: ObjectStore, rb: ReceivedBundle): Promise<PruneRecord[]> {
  const records = rb.header.pruned;
  if (!records.length) return [];
  const present = await store.locate(records.map((r) => r.commit));
  return records.filter((_, i) => !present[i]);
}

/**
 * The grafts a receiver records from a bundle (FORMAT.md §17, BUNDLE.md §4): each commit the bundle declares
 * shallow of which some parent is neither in the bundle nor in the store. A declared commit whose parents the
 * store holds gets none: its history is here and is walked as usual.
 */
export async function acceptedGrafts(store: ObjectStore, rb: ReceivedBundle): Promise<ObjectId[]> {
  const declared = rb.header.shallow ?? [];
  if (!declared.length) return [];
  const o = new Overlay(store, rb);
  try {
    const out: ObjectId[] = [];
    for (const commit of declared) {
      let absent = false;
      for (const p of await o.parentsOf(commit)) if ((await o.typeOf(p)) === undefined) absent = true;
      if (absent) out.push(commit);
    }
    return out;
  } finally {
    await o.close();
  }
}

/**
 * Every object reachable from the tips must be in the bundle or the store. With a bundle, only its commits are
 * walked (history the store holds is complete there, verify's promise); without one (a push whose objects were
 * stored first), the walk stops at commits a ref of the store already names.
 */
export async function checkClosure(
  store: ObjectStore,
  source: ReceivedBundle | ObjectId,
  where: string,
): Promise<void> {
  const rb = typeof source === 'string' ? undefined : source;
  const tips = rb ? rb.header.refs.map((r) => r.id) : [source as ObjectId];
  if (rb) {
    const missingPrereq: ObjectId[] = [];
    for (const p of rb.header.prerequisites) if ((await store.typeOf(p)) === undefined) missingPrereq.push(p);
    if (missingPrereq.length) {
      throw new CkvcError(
        'CKVC_MISSING_PREREQUISITE',
        `${where} needs ${missingPrereq.length} commit(s) this store does not have: ${missingPrereq.map((p) => p.slice(0, 12)).join(', ')}; import the bundle(s) or pull the history they belong to first`,
        { missing: missingPrereq },
      );
    }
  }
  const known = new Set<ObjectId>();
  if (!rb)
    for (const kind of ['branch', 'tag', 'alias', 'remote'] as const)
      for (const r of await store.refs.list(kind, { skipCorrupt: true })) known.add(r.id);
  const o = new Overlay(store, rb);
  try {
    // The records as they will be once the bundle is in: the store's own, plus those the bundle may add.
    const records = new Map<ObjectId, PruneRecord>(await store.pruned.all());
    if (rb)
      for (const r of await acceptedRecords(store, rb))
        records.set(r.commit, mergePruneRecords(records.get(r.commit), r));
    const missing = (id: ObjectId, what: string) =>
      bad(where, `is incomplete: ${what} ${id.slice(0, 16)} is neither ${rb ? 'in the bundle nor ' : ''}in the store`, {
        id,
      });
    // Data a partial fetch left out is promised by a remote, not missing (FORMAT.md §13.2); but not for a commit
    // this bundle carries: bundles never carry partial commits, so one arriving here must bring all its data.
    const promises = await new PromiseRecords(store.layout).all();
    const leaves = new Map<ObjectId, string>();
    await walkObjects(o, tips, {
      recordOf: (id) => withPromise(records.get(id), rb && o.inBundle(id) ? undefined : promises.get(id)),
      stopAt: async (id) => {
        if (rb ? o.inBundle(id) : !known.has(id)) return false;
        if ((await o.typeOf(id)) === undefined) throw missing(id, 'commit');
        return true;
      },
      visit: (r) => {
        if ((r.kind === 'chunk' || (r.kind === 'tensor' && r.released)) && !o.inBundle(r.id))
          leaves.set(r.id, r.kind === 'chunk' ? 'chunk' : 'tensor');
      },
      onUnreadable: (e, at) => {
        if (e instanceof CkvcError && e.code === 'CKVC_MISSING_OBJECT') throw missing(at.id, at.kind);
        if (e instanceof CkvcError && e.code === 'CKVC_CORRUPT_OBJECT' && rb && o.inBundle(at.id))
          throw bad(where, `${at.where}: ${e.message}`, { id: at.id });
        throw e;
      },
    });
    const ids = [...leaves.keys()];
    for (let i = 0; i < ids.length; i += 4096) {
      const batch = ids.slice(i, i + 4096);
      (await store.locate(batch)).forEach((l, k) => {
        if (!l) throw missing(batch[k]!, leaves.get(batch[k]!)!);
      });
    }
  } finally {
    await o.close();
  }
}

function receiveFault(step: 'receive.verified' | 'receive.moved' | 'receive.indexed', p: string): void {
  try {
    faultPoint(step);
  } catch (e) {
    throw ioError(e, 'store the received objects in', p);
  }
}

/** The store version a received pack needs (FORMAT.md §11): 3 when one of its file recipes has a JSON render part. */
async function receivedStoreVersion(rb: ReceivedBundle): Promise<number> {
  const o = new Overlay(undefined, rb);
  try {
    for (const e of rb.entries) {
      const needs = e.type === 'file' ? recipeStoreVersion(await o.readFileRecipe(e.id)) : undefined;
      if (needs) return needs;
    }
  } finally {
    await o.close();
  }
  return PACK_V2_STORE_VERSION;
}

export interface Promoted {
  objects: number;
  newObjects: number;
  /** Received labels left unapplied because this store has another label for the config. */
  labelsKept: KeptLabel[];
}

/**
 * Moves a verified quarantine pack into the store and indexes it. The labels and prune records it may add are
 * written first: a commit that is indexed without its record would miss the data its sender released, for good (a
 * re-run sends no commit the store has). A record or label whose commit then never arrives names nothing here.
 */
export async function promoteObjects(store: ObjectStore, rb: ReceivedBundle): Promise<Promoted> {
  let newObjects = 0;
  receiveFault('receive.verified', store.layout.packsDir);
  const labelsKept = await store.configLabels.addMissing(rb.header.labels ?? []);
  for (const r of await acceptedRecords(store, rb)) await store.pruned.add(r);
  // Like prune records, before the pack: a commit indexed without its graft would have missing parents.
  for (const g of await acceptedGrafts(store, rb)) await store.shallow.add(g);
  if (rb.packId) {
    const present = await store.locate(rb.entries.map((e) => e.id));
    newObjects = present.filter((l) => !l).length;
    const keepIndexed = new Set(rb.entries.filter((_, i) => present[i]).map((e) => e.id));
    const dest = store.layout.packFile(rb.packId);
    await fs.mkdir(store.layout.packsDir, { recursive: true });
    await upgradeStoreVersion(store.layout, await receivedStoreVersion(rb));
    await fs.rename(rb.quarantine.packFile(rb.packId), dest).catch((e) => {
      throw ioError(e, 'move the received pack to', dest);
    });
    await fsyncDir(store.layout.packsDir);
    receiveFault('receive.moved', store.layout.packsDir);
    await store.indexPack({ packId: rb.packId, entries: rb.entries, keepIndexed });
    receiveFault('receive.indexed', store.layout.indexDir);
    // History that arrived ends the grafts it completes (a full pull after a shallow one).
    if (rb.entries.some((e) => e.type === 'commit')) {
      const parents = storeParents(store);
      await store.shallow.settle((id) => store.typeOf(id), parents);
    }
  }
  return { objects: rb.entries.length, newObjects, labelsKept };
}

export async function importBundle(
  store: ObjectStore,
  rb: ReceivedBundle,
  opts: ImportOptions,
  where: string,
): Promise<ImportResult> {
  const registration = await registerWriter(store.layout);
  try {
    await checkClosure(store, rb, where);
    // Every ref move is checked before the pack is promoted, and they are made as one batch: a refusal of
    // any of them changes nothing.
    const chosen = rb.header.refs.flatMap((r) => {
      const target = opts.targetRef(r.name);
      return target ? [{ target, id: r.id }] : [];
    });
    const current = await store.refs.readMany(chosen.map((c) => c.target));
    const plan: RefUpdate[] = chosen.map((c, i) => {
      const cur = current[i] ?? null;
      return {
        name: c.target,
        old: cur,
        new: c.id,
        forced: false,
        ...(cur === c.id ? { skipped: 'unchanged' as const } : {}),
      };
    });
    const movesOf = () => plan.filter((u) => !u.skipped).map((u) => ({ name: u.name, next: u.new, expect: u.old }));
    await store.refs.checkMoves(movesOf());
    const o = new Overlay(store, rb);
    const refused: RefUpdate[] = [];
    try {
      for (const u of plan) {
        if (u.skipped || u.old === null) continue;
        const isTag = u.name.startsWith('refs/tags/');
        const parents = (id: ObjectId) => o.parentsOf(id);
        const ff = !isTag && (await isAncestor(parents, u.old, u.new));
        // An older bundle pulled again: the ref already holds what it brings, and more (--force too: it is for
        // refs that diverged, and would rewind this one and every other the bundle carries).
        if (!ff && !isTag && (await isAncestor(parents, u.new, u.old))) {
          u.skipped = 'behind';
          continue;
        }
        if (!ff && !opts.force) refused.push(u);
        u.forced = !ff;
      }
    } finally {
      await o.close();
    }
    const moves = movesOf();
    if (refused.length) {
      const u = refused[0]!;
      const isTag = u.name.startsWith('refs/tags/');
      const more =
        refused.length > 1
          ? ` (and ${refused.length - 1} more: ${refused
              .slice(1, 4)
              .map((r) => r.name)
              .join(', ')}${refused.length > 4 ? ', ...' : ''})`
          : '';
      throw new CkvcError(
        'CKVC_NON_FAST_FORWARD',
        `${u.name} is at ${u.old!.slice(0, 12)}, which ${isTag ? 'differs' : `is not an ancestor of ${u.new.slice(0, 12)}`}${more}; nothing was changed: keep yours under another branch name, or use --force to replace it`,
        { ref: u.name, old: u.old, new: u.new, refused: refused.map((r) => r.name) },
      );
    }
    const { newObjects, labelsKept } = await promoteObjects(store, rb);
    await store.refs.updateMany(moves, { who: opts.who, message: opts.message });
    return { objects: rb.entries.length, newObjects, packId: rb.packId, refs: plan, labelsKept };
  } finally {
    await registration.release();
  }
}
