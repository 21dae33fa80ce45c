// Where the bases of delta chains are. A chain's links lie in few packs (a commit writes one pack, so the n-th
// link of every chunk of a checkpoint sits in the same pack), yet each link was one index lookup: ~3,000 of them,
// a tenth of a commit, for a 99 MB checkpoint 7 deltas deep. Once a base is found in a pack, that pack's table of
// contents is read and answers the other links there from memory. Only a hint: a pack that turns out to be gone
// (gc, consolidation) is forgotten, and a read that fails after a location came from memory is tried again with
// every location from the index (a damaged table of contents must not fail what the index could still read).
import type { ObjectId } from '../core/store-format/object-id.js';
import type { PackEntry } from '../core/store-format/pack-format.js';
import type { ObjectLocation, PackReader } from './pack-reader.js';

/** Packs with more entries than this (consolidated ones) are not held in memory: the index answers for them. */
const MAX_PACK_ENTRIES = 65_536;
/** Bound on all entries held, about 40 MB of JavaScript objects. */
const MAX_ENTRIES = 262_144;

export class BaseLocations {
  private readonly byId = new Map<ObjectId, ObjectLocation>();
  /** What was learnt per pack (the chunks whose locations came from its table of contents). */
  private readonly packsRead = new Map<string, ObjectId[]>();
  private readonly packReads = new Map<string, Promise<void>>();
  /** True once a location was answered from memory (since the last `distrust`). */
  served = false;
  private trusted = true;

  constructor(
    private readonly packs: PackReader,
    private readonly lookUp: (id: ObjectId) => Promise<ObjectLocation | undefined>,
  ) {}

  async find(id: ObjectId): Promise<ObjectLocation | undefined> {
    const known = this.byId.get(id);
    if (known) {
      this.served = true;
      return known;
    }
    const loc = await this.lookUp(id);
    if (loc && this.trusted && !this.packReads.has(loc.packId)) {
      // Awaited, so the next link in this pack is answered from memory (one small read against thousands of lookups).
      const read = this.readPack(loc);
      this.packReads.set(loc.packId, read);
      await read;
    }
    return loc;
  }

  /** From now on every location comes from the index. */
  distrust(): void {
    this.trusted = false;
    this.served = false;
    this.byId.clear();
    this.packsRead.clear();
    this.packReads.clear();
  }

  /** Drops what was learnt from a pack that is gone or changed under us. */
  forget(packId: string): void {
    for (const id of this.packsRead.get(packId) ?? []) this.byId.delete(id);
    this.packsRead.delete(packId);
    this.packReads.delete(packId);
  }

  /** Learns the chunks of the pack `first` was found in, if its table of contents agrees with the index there. */
  private async readPack(first: ObjectLocation): Promise<void> {
    const packId = first.packId;
    const toc = await this.packs.readTocIfSound(packId).catch(() => undefined);
    if (
      !toc ||
      !this.trusted ||
      toc.entries.length > MAX_PACK_ENTRIES ||
      this.byId.size + toc.entries.length > MAX_ENTRIES
    )
      return;
    const same = toc.entries.find((e) => e.id === first.entry.id);
    if (!same || !sameEntry(same, first.entry)) return;
    const ids: ObjectId[] = [];
    for (const entry of toc.entries) {
      if (entry.type !== 'chunk') continue;
      this.byId.set(entry.id, { packId, entry });
      ids.push(entry.id);
    }
    this.packsRead.set(packId, ids);
  }
}

function sameEntry(a: PackEntry, b: PackEntry): boolean {
  return (
    a.type === b.type &&
    a.codec === b.codec &&
    a.offset === b.offset &&
    a.rawLength === b.rawLength &&
    a.storedLength === b.storedLength
  );
}
