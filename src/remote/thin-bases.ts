// The delta bases a push or fetch batch may leave out (spec/PROTOCOL.md §4): bases, outside the batch, of its
// codec 6 records that the receiver holds, with their chain depth there. The bundle is then thin on them
// (BUNDLE.md §5) and the records keep their delta coding across batches.
import type { ObjectId } from '../core/store-format/object-id.js';
import { CODECS } from '../core/store-format/pack-format.js';
import { chainsOf } from '../store/delta-chains.js';
import type { ObjectStore } from '../store/object-store.js';
import type { ObjectLocation } from '../store/pack-reader.js';
import type { Transport } from './transport.js';

/** Push: the remote's answer for the bases, outside the batch `located` here, of its delta records. */
export async function remoteHolds(
  store: ObjectStore,
  t: Transport,
  located: ObjectLocation[],
): Promise<Map<ObjectId, number> | undefined> {
  const sending = new Set(located.map((l) => l.entry.id));
  const bases = new Set<ObjectId>();
  for (const loc of located) {
    if (loc.entry.codec !== CODECS.xorPlanes) continue;
    const base = await store.packs.readDeltaBaseId(loc);
    if (base !== undefined && !sending.has(base)) bases.add(base);
  }
  if (!bases.size) return undefined;
  const ids = [...bases];
  const answer = await t.chains(ids);
  return answer && depthsOf(ids, answer);
}

/** Fetch: the chunks held here that the remote's delta records among `batch` build on, outside the batch. */
export async function localHolds(
  store: ObjectStore,
  t: Transport,
  batch: ObjectId[],
): Promise<Map<ObjectId, number> | undefined> {
  const answer = await t.chains(batch);
  if (!answer) return undefined;
  const asking = new Set(batch);
  // Only bases of what the remote calls delta records (depth 1 or more), one per object asked for.
  const bases = [
    ...new Set(answer.flatMap((c) => (c?.base !== undefined && c.depth > 0 && !asking.has(c.base) ? [c.base] : []))),
  ];
  if (!bases.length) return undefined;
  return depthsOf(bases, await chainsOf(store, bases));
}

function depthsOf(ids: ObjectId[], chains: ({ depth: number } | null)[]): Map<ObjectId, number> | undefined {
  const out = new Map<ObjectId, number>();
  ids.forEach((id, i) => {
    const c = chains[i];
    if (c) out.set(id, c.depth);
  });
  return out.size ? out : undefined;
}
