// Which delta records of a bundle travel as they are stored (spec/BUNDLE.md §5). A codec 6 record needs its base
// at the receiver: a record of the same bundle, or, in a thin bundle, a chunk the receiver said it holds. Its
// chain there must stay within writers' bound (FORMAT.md §4.3), counted through the bundle's own records and the
// depth the receiver reported; any other delta record is re-encoded without its base and starts a new chain.
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectLocation } from '../store/pack-reader.js';
import type { ObjectStore } from '../store/object-store.js';
import { MAX_WRITTEN_DELTA_DEPTH } from '../store/object-writer.js';

export interface BundleDeltas {
  /** Delta records to decode and store without their base. */
  reencode: Set<ObjectId>;
  /** Bases outside the bundle that records travelling verbatim use (the header's `bases`). */
  outside: Set<ObjectId>;
  /** The element width of each delta record, for re-encoding it grouped as it was. */
  widths: Map<ObjectId, number>;
}

/**
 * Plans the delta records of `locs` (the objects of one bundle). `receiverHolds` maps chunks the receiver holds,
 * outside the bundle, to their chain depth there; without it every base must travel in the bundle.
 */
export async function planBundleDeltas(
  store: ObjectStore,
  locs: ObjectLocation[],
  receiverHolds?: ReadonlyMap<ObjectId, number>,
): Promise<BundleDeltas> {
  const baseOf = new Map<ObjectId, ObjectId>();
  const widths = new Map<ObjectId, number>();
  for (const loc of locs) {
    const head = await store.packs.readDeltaHead(loc);
    if (!head) continue;
    baseOf.set(loc.entry.id, head.base);
    widths.set(loc.entry.id, head.width);
  }
  const sending = new Set(locs.map((l) => l.entry.id));
  const reencode = new Set<ObjectId>();
  const outside = new Set<ObjectId>();
  /** The record's chain depth at the receiver once this bundle is there (0: stored, or re-encoded, plain). */
  const depth = new Map<ObjectId, number>();
  const depthOf = (top: ObjectId): number => {
    // Down the bundle's own links to a record whose depth is known or that has none here, then back up.
    const path: ObjectId[] = [];
    const onPath = new Set<ObjectId>();
    let below = 0;
    for (let id: ObjectId | undefined = top; id !== undefined; ) {
      const settled = depth.get(id);
      if (settled !== undefined) {
        below = settled;
        break;
      }
      if (onPath.has(id)) {
        // A loop of bases (a damaged sending store): each is re-encoded, and its read fails there.
        below = -1;
        break;
      }
      path.push(id);
      onPath.add(id);
      const base = baseOf.get(id);
      id = base !== undefined && sending.has(base) && base !== id ? base : undefined;
    }
    for (let k = path.length - 1; k >= 0; k--) {
      const id = path[k]!;
      const base = baseOf.get(id);
      let d: number | undefined;
      if (base === undefined) d = 0;
      else if (sending.has(base) && base !== id) d = below < 0 ? undefined : below + 1;
      else if (base === id) d = undefined;
      else {
        const there = receiverHolds?.get(base);
        d = there === undefined ? undefined : there + 1;
      }
      if (d === undefined || d > MAX_WRITTEN_DELTA_DEPTH) {
        if (base !== undefined) reencode.add(id);
        d = 0;
      } else if (base !== undefined && !sending.has(base)) outside.add(base);
      depth.set(id, d);
      below = d;
    }
    return depth.get(top)!;
  };
  for (const id of baseOf.keys()) depthOf(id);
  return { reencode, outside, widths };
}
