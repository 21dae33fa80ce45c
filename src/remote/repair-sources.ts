// Where `ckvc repair` takes lost objects from (spec/FORMAT.md §10.1): a remote, asked for exactly the lost objects
// it holds, as objects-only bundles that are not thin (nothing of a damaged store is trusted as a base), or a
// bundle file. Either way every object is verified in quarantine first, and only the records asked for are
// copied into a new pack of this store; nothing else of a source (refs, prune records, grafts, labels) is taken.
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { repairFault } from '../store/pack-salvage.js';
import { PackWriter } from '../store/pack-writer.js';
import { Overlay } from './bundle-objects.js';
import { receiveBundle, type ReceivedBundle } from './bundle-reader.js';
import { checkAskedFor, RECEIVE_BATCH_OBJECTS } from './object-receiver.js';
import type { Transport } from './transport.js';

export interface RepairSource {
  /** As messages name it: `remote 'origin'`, `bundle backup.ckvcb`. */
  readonly name: string;
  holds(ids: ObjectId[]): Promise<boolean[]>;
  /** Stores `ids` (each held by the source) in new packs, indexed as the copies to read. */
  restore(ids: ObjectId[]): Promise<{ objects: number; bytes: number }>;
  close(): Promise<void>;
}

/**
 * Writes the records `ids` of a verified bundle into a new pack of `store` and indexes them there, over whatever
 * the index named before. A delta record is stored decoded, on its own: its base may be what this store lost.
 */
async function storeReceived(store: ObjectStore, rb: ReceivedBundle, ids: ObjectId[]): Promise<number> {
  if (!ids.length) return 0;
  const o = new Overlay(undefined, rb);
  let writer: PackWriter | undefined = await PackWriter.create(store.layout);
  let done: Awaited<ReturnType<PackWriter['finish']>>;
  try {
    for (const id of ids) {
      const r = await o.storedRecord(id);
      if (!r) throw new CkvcError('CKVC_INTERNAL', `object ${id.slice(0, 16)} was asked of a source that lacks it`, {});
      const { type, codec, rawLength, storedLength } = r.entry;
      if ('body' in r) await writer.addStored({ id, type, codec, rawLength, storedLength }, r.body);
      else await writer.add(type, id, await o.read(id, type), r.deltaWidth);
    }
    done = await writer.finish();
    writer = undefined;
  } catch (e) {
    await writer?.abort();
    throw e;
  } finally {
    await o.close();
  }
  if (!done) return 0;
  repairFault('repair.received', done.file);
  await store.indexPack({ packId: done.packId, entries: done.entries });
  return done.entries.length;
}

/** A remote as a source: `has` says what it holds; each batch comes as an objects-only bundle, not thin. */
export function transportSource(store: ObjectStore, name: string, t: Transport): RepairSource {
  return {
    name: `remote '${name}'`,
    async holds(ids) {
      const out: boolean[] = [];
      for (let i = 0; i < ids.length; i += RECEIVE_BATCH_OBJECTS)
        out.push(...(await t.has(ids.slice(i, i + RECEIVE_BATCH_OBJECTS))));
      return out;
    },
    async restore(ids) {
      const got = { objects: 0, bytes: 0 };
      for (let i = 0; i < ids.length; i += RECEIVE_BATCH_OBJECTS) {
        const batch = ids.slice(i, i + RECEIVE_BATCH_OBJECTS);
        const where = `objects from ${t.url}`;
        // Without `store`, a thin bundle is refused: every base must come in the bundle itself.
        const r = await t.fetchObjects(batch, async (source) => {
          const rb = await receiveBundle(source, store.layout.tmpDir, where);
          try {
            checkAskedFor(rb, batch, t.url);
            return { objects: await storeReceived(store, rb, batch), bytes: rb.bytes };
          } finally {
            await rb.close();
          }
        });
        got.objects += r.objects;
        got.bytes += r.bytes;
      }
      return got;
    },
    close: () => t.close(),
  };
}

/** A bundle file, received (verified) into quarantine once: the records asked for are taken from there. */
export function bundleSource(store: ObjectStore, file: string, rb: ReceivedBundle): RepairSource {
  return {
    name: `bundle ${file}`,
    holds: async (ids) => ids.map((id) => rb.ids.has(id)),
    restore: async (ids) => ({ objects: await storeReceived(store, rb, ids), bytes: 0 }),
    close: () => rb.close(),
  };
}
