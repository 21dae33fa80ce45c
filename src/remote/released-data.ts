// A remote that cannot walk the object graph (S3: no server) plans a fetch as "everything I hold" (spec/S3.md §3).
// Dropping what this store holds is then not enough: the data a prune released here (FORMAT.md §13) is absent on
// purpose, and asking for it again would download it on every fetch and undo the prune until the next gc. So the
// fetch holds back the chunks its released commits name, receives the rest (the new commits with their trees and
// tensors among it), and then walks the new commits here, as a server would, for the released data they need
// again (an unchanged tensor that a pruned commit shared).
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { walkObjects } from '../store/object-walk.js';
import { collectObjects } from './object-collector.js';
import { absent } from './partial-store.js';

/** `need` split into what to ask for now and the chunks held back: data this store's prune records released. */
export async function holdBackReleased(
  store: ObjectStore,
  need: ObjectId[],
): Promise<{ now: ObjectId[]; heldBack: ObjectId[] }> {
  const released = new Set((await store.pruned.all()).keys());
  if (!released.size || !need.length) return { now: need, heldBack: [] };
  const named = new Set<ObjectId>();
  // Only the released commits themselves, each without a record: every chunk they name, released or not. A
  // tensor or recipe that cannot be read names nothing this can hold back.
  await walkObjects(store, [...released], {
    stopAt: (id) => !released.has(id),
    onUnreadable: () => {},
    visit: (r) => {
      if (r.kind === 'chunk') named.add(r.id);
    },
  });
  const now: ObjectId[] = [];
  const heldBack: ObjectId[] = [];
  for (const id of need) (named.has(id) ? heldBack : now).push(id);
  return { now, heldBack };
}

/**
 * What the walk from `tips` down to the commits this store has with their history (`haves`) needs and this store
 * lacks: run once the commits, trees and tensors on that way have been received.
 */
export async function stillNeeded(store: ObjectStore, tips: ObjectId[], haves: ObjectId[]): Promise<ObjectId[]> {
  const have = new Set(haves);
  // What this store is to receive, not send: data a partial fetch left out may be among it (and is wanted).
  const c = await collectObjects(store, tips, { isBoundary: async (id) => have.has(id), leftOutOk: true });
  return absent(store, c.objects);
}
