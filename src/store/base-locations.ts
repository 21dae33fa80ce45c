// Where the bases of delta chains are. A chain's links lie in few packs (a commit writes one pack, so the n-th
// link of every chunk of a checkpoint sits in the same pack), yet each link was one index lookup: ~3,000 of them,
// a tenth of a commit, for a 99 MB checkpoint 7 deltas deep. Once a base is found in a pack, that pack's table of
// contents is read and answers the other links there from memory. Only a hint, used by the reads that can fall
// back (ObjectStore's readLocated and readChunkGrouped): a read that fails after a location came from memory is
// read again with every location from the index, and what was learnt is dropped (a pack gone after gc or
// consolidation, or a damaged table of contents, must not fail what the index could still read).
import type { ObjectId } from '../core/store-format/object-id.js';
import { samePackEntry } from '../core/store-format/pack-format.js';
import type { ObjectLocation, PackReader } from './pack-reader.js';

/** Packs with more entries than this (consolidated ones) are not held in memory: the index answers for them. */
const MAX_PACK_ENTRIES = 65_536;
/** Bound on all entries held: about 30 MB of JavaScript objects (measured 61 MB at 262,144). */
const MAX_ENTRIES = 131_072;

/** Set by `find` when it answered from memory: whether a failed read may be worth a second try by the index. */
export interface BaseLookups {
  fromMemory: boolean;
}

export class BaseLocations {
  private readonly byId = new Map<ObjectId, ObjectLocation>();
  private readonly packReads = new Map<string, Promise<void>>();

  constructor(
    private readonly packs: PackReader,
    private readonly lookUp: (id: ObjectId) => Promise<ObjectLocation | undefined>,
  ) {}

  async find(id: ObjectId, lookups: BaseLookups): Promise<ObjectLocation | undefined> {
    const known = this.byId.get(id);
    if (known) {
      lookups.fromMemory = true;
      return known;
    }
    const loc = await this.lookUp(id);
    if (loc && !this.packReads.has(loc.packId)) {
      // Awaited, so the next link in this pack is answered from memory (one small read against thousands of lookups).
      const read = this.readPack(loc);
      this.packReads.set(loc.packId, read);
      await read;
    }
    return loc;
  }

  /** Drops everything learnt (a read through it failed: a pack may be gone, or its table of contents wrong). */
  clear(): void {
    this.byId.clear();
    this.packReads.clear();
  }

  /** Learns the chunks of the pack `first` was found in, if its table of contents agrees with the index there. */
  private async readPack(first: ObjectLocation): Promise<void> {
    const toc = await this.packs.readTocIfSound(first.packId).catch(() => undefined);
    if (!toc || toc.entries.length > MAX_PACK_ENTRIES || this.byId.size + toc.entries.length > MAX_ENTRIES) return;
    const same = toc.entries.find((e) => e.id === first.entry.id);
    if (!same || !samePackEntry(same, first.entry)) return;
    for (const entry of toc.entries)
      if (entry.type === 'chunk') this.byId.set(entry.id, { packId: first.packId, entry });
  }
}
