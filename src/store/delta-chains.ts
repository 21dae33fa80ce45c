// How objects are stored as far as delta coding goes (spec/PROTOCOL.md §2 `chains`): for each, whether this store
// holds it, how many delta bases lie under the record it reads, and its base. A sender uses a receiver's answer to
// keep records delta-coded on bases the receiver holds (a thin bundle, BUNDLE.md §5) without making the receiver's
// chains longer than writers make them. Only record headers are read; nothing is decoded.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from './object-store.js';
import { MAX_DELTA_CHAIN, type ObjectLocation } from './pack-reader.js';

export interface ChainInfo {
  /** Delta bases under the record: 0 for one stored without base. */
  depth: number;
  /** The base of a codec 6 record. */
  base?: ObjectId;
}

/** A chain as follow() settles it: besides the protocol's answer, the record at its bottom (stored without base). */
type Chain = ChainInfo & { root: ObjectId };

/**
 * For each ID, its chain here; null when the store does not hold it, or holds it on a chain it cannot follow (a
 * missing base, a loop, more than 64 links, a damaged head): such an object is no base to build on.
 */
export async function chainsOf(store: ObjectStore, ids: ObjectId[]): Promise<(ChainInfo | null)[]> {
  const known = new Map<ObjectId, Chain | null>();
  const out: (ChainInfo | null)[] = [];
  for (let i = 0; i < ids.length; i += 4096) {
    const batch = ids.slice(i, i + 4096);
    const locs = await store.locate(batch);
    for (const [j, id] of batch.entries()) {
      const loc = locs[j];
      const chain = loc ? await follow(store, id, loc, known) : null;
      out.push(chain && (chain.base === undefined ? { depth: 0 } : { depth: chain.depth, base: chain.base }));
    }
  }
  return out;
}

/**
 * The first record of the chain under `id`: the one stored without a base (`id` itself when it has none);
 * undefined when the store does not hold it or the chain cannot be followed (as chainsOf says null).
 */
export async function chainRoot(store: ObjectStore, id: ObjectId): Promise<ObjectId | undefined> {
  const loc = (await store.locate([id]))[0];
  return loc ? (await follow(store, id, loc, new Map()))?.root : undefined;
}

/** Walks down the chain under `id` (its records' heads only) and settles every link's answer on the way back. */
async function follow(
  store: ObjectStore,
  id: ObjectId,
  at: ObjectLocation,
  known: Map<ObjectId, Chain | null>,
): Promise<Chain | null> {
  const path: { id: ObjectId; base?: ObjectId }[] = [];
  const onPath = new Set<ObjectId>();
  let below: Chain | null | undefined;
  for (let cur: ObjectId | undefined = id; cur !== undefined; ) {
    if (known.has(cur)) {
      below = known.get(cur)!;
      break;
    }
    if (onPath.has(cur) || path.length > MAX_DELTA_CHAIN) {
      below = null;
      break;
    }
    const loc = cur === id ? at : (await store.locate([cur]))[0];
    if (!loc) {
      below = null;
      break;
    }
    let base: ObjectId | undefined;
    try {
      base = await store.packs.readDeltaBaseId(loc);
    } catch {
      below = null;
      break;
    }
    path.push(base === undefined ? { id: cur } : { id: cur, base });
    onPath.add(cur);
    cur = base;
  }
  // `below` is the answer for the first link not on the path (undefined: the path ended at a record without base).
  for (let k = path.length - 1; k >= 0; k--) {
    const link = path[k]!;
    let info: Chain | null;
    if (link.base === undefined) info = { depth: 0, root: link.id };
    else if (below === null || below === undefined || below.depth + 1 > MAX_DELTA_CHAIN) info = null;
    else info = { depth: below.depth + 1, base: link.base, root: below.root };
    known.set(link.id, info);
    below = info;
  }
  return known.get(id) ?? null;
}
