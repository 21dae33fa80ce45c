// Verifies a received pack's chunk records while the pack is still arriving (spec/BUNDLE.md §3, step 5), so that
// the receiver decodes and hashes them while the sender is still sending, instead of leaving the sender idle
// while it does (each 64 MiB push batch waited about half a second for it). Nothing here is trusted or reported:
// the TOC has not arrived, so records are found by walking their headers from the start of the pack, and a
// record verified here counts only if the final check (bundle-reader.ts), once the whole pack is in, its TOC
// read and the receiver registered as a writer, finds that the TOC describes the same record at the same offset
// and that a delta's base is the very record it would use itself. Every failure here, every record not reached
// and every result that does not count is left to the final check, which reports errors as before; the first
// failure ends this pass, so a bad bundle costs no more work here than the final check will spend refusing it. A
// delta whose base only the pack holds is left to the final check too: that base is usually far back (a bundle
// sends chunks commit by commit), and the final check verifies each such chain base first, each record once.
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  CODECS,
  decodeRecordHeader,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  samePackEntry,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import type { ObjectStore } from '../store/object-store.js';
import type { ObjectLocation, PackReader } from '../store/pack-reader.js';
import { verifyInChainOrder } from '../store/verify-in-chain-order.js';

/** The name the arriving pack is read under (its checksum, its real name, is known only at its end). */
export const ARRIVING_PACK_ID = 'arriving';
/** Bytes of complete records verified together. */
const WINDOW_BYTES = 2 * 1024 * 1024;

/** A record verified while arriving, and where the base it was decoded against was. */
interface Verified {
  entry: PackEntry;
  /** A delta's base, as the store held it. */
  base?: { id: ObjectId; loc: ObjectLocation };
}

/** Where the final check finds a delta's base: the store's record, or the received pack's. */
export type FinalBaseLocator = (id: ObjectId) => Promise<ObjectLocation | undefined>;

export class StreamedVerification {
  private written = 0;
  private next = PACK_HEADER_BYTES;
  /** Where the records end if the header's object count is true (else the final check refuses the pack). */
  private readonly recordsEnd: number;
  private finished = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;
  private readonly verified = new Map<number, Verified>();
  /** Store look-ups of bases made while verifying (null: not held then). */
  private readonly storeBases = new Map<ObjectId, ObjectLocation | null>();
  /** The packs the store's index named when the pack started to arrive. */
  private readonly packsAtStart: Promise<Set<string>> | undefined;
  /** Records walked so far. */
  private walked = 0;
  /**
   * Why the bytes so far cannot be the pack the header declares, or undefined. Unlike a failed verification this
   * is certain: records lie back to back from the pack's header to its TOC, exactly as many as the header says
   * (FORMAT.md §4), so a record that does not decode, or one the count leaves no room for, is where the TOC must
   * name one. The receiver stops taking bytes then, instead of after the whole declared length (a hostile sender
   * could declare a terabyte of zeros).
   */
  broken: string | undefined;

  /**
   * `packs` reads the arriving file as ARRIVING_PACK_ID (and, with `store`, the store's packs for bases the store
   * holds). `packLength` and `objects` are the bundle header's.
   */
  constructor(
    private readonly packs: PackReader,
    packLength: number,
    private readonly objects: number,
    private readonly store: ObjectStore | undefined,
  ) {
    this.recordsEnd = packLength - PACK_FOOTER_BYTES - TOC_ENTRY_BYTES * objects;
    this.packsAtStart = store?.index.session((s) => s.indexedPacks(), { sync: true });
    this.packsAtStart?.catch(() => {});
    // A failure ends the pass: what it did not reach is the final check's.
    this.loop = this.run().catch(() => {});
  }

  /** The pack's first `n` bytes are in its file. */
  advance(n: number): void {
    this.written = n;
    this.wake?.();
  }

  /** No more bytes will come: verifies what is complete, then resolves. */
  async finish(): Promise<void> {
    this.finished = true;
    this.wake?.();
    await this.loop;
    await this.packsAtStart?.catch(() => {});
  }

  /** Gives up (the bundle is refused) once the window in hand is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.packsAtStart?.catch(() => {});
  }

  private async run(): Promise<void> {
    let window: ObjectLocation[] = [];
    let windowBytes = 0;
    for (;;) {
      if (this.stopped) return;
      while (this.next < this.recordsEnd && this.next + RECORD_HEADER_BYTES <= this.written) {
        const at = this.next;
        const head = await this.packs.readAt(ARRIVING_PACK_ID, at, RECORD_HEADER_BYTES);
        let entry: PackEntry;
        try {
          entry = decodeRecordHeader(head, at, 'arriving');
        } catch (e) {
          this.broken = `byte ${at}, where record ${this.walked + 1} must start, is no record header (${(e as Error).message})`;
          this.next = Number.POSITIVE_INFINITY;
          break;
        }
        const end = at + RECORD_HEADER_BYTES + entry.storedLength;
        // Its place in the pack: a header read again once its body is in is the same record.
        const nth = this.walked + 1;
        if (end > this.recordsEnd || nth > this.objects || (nth === this.objects && end !== this.recordsEnd)) {
          this.broken =
            `record ${nth} ends at byte ${end}, but the header's ${this.objects} records must end at ` +
            `byte ${this.recordsEnd}`;
          this.next = Number.POSITIVE_INFINITY;
          break;
        }
        if (end > this.written) break; // its body is still on the way
        this.walked = nth;
        this.next = end;
        if (entry.type !== 'chunk') continue;
        window.push({ packId: ARRIVING_PACK_ID, entry });
        windowBytes += end - at;
        if (windowBytes >= WINDOW_BYTES) break; // a bound, also when verifying falls behind the bytes
      }
      const complete = this.finished || this.next >= this.recordsEnd;
      if (window.length && (windowBytes >= WINDOW_BYTES || complete)) {
        const records = window;
        window = [];
        windowBytes = 0;
        await this.verifyWindow(records);
        continue;
      }
      if (complete) return;
      // Nothing awaited since the checks above: an advance() from here on wakes this.
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  private async verifyWindow(records: ObjectLocation[]): Promise<void> {
    const baseOf = new Map<number, ObjectId>();
    for (const r of records) {
      if (r.entry.codec !== CODECS.xorPlanes) continue;
      const base = await this.packs.readDeltaBaseId(r).catch(() => undefined);
      if (base !== undefined) baseOf.set(r.entry.offset, base);
    }
    // One look-up for the bases the window's deltas name (the index as this process last saw it: a base some
    // other writer added since only means a delta left to the final check).
    const bases = [...new Set(baseOf.values())].filter((b) => !this.storeBases.has(b));
    const found = await this.lookUp(bases);
    for (let i = 0; i < bases.length; i++) this.storeBases.set(bases[i]!, found[i] ?? null);
    const onStore = records.filter((r) => {
      const base = baseOf.get(r.entry.offset);
      return r.entry.codec !== CODECS.xorPlanes || (base !== undefined && this.storeBases.get(base));
    });
    await verifyInChainOrder(this.packs, onStore, {
      // The store's copy of the base, as the final check reads it; its chain's bases are the store's too.
      locateBase: async (id) => {
        let loc = this.storeBases.get(id);
        if (loc === undefined) {
          loc = (await this.lookUp([id]))[0] ?? null;
          this.storeBases.set(id, loc);
        }
        return loc ?? undefined;
      },
      baseIdOf: ({ entry }) => baseOf.get(entry.offset),
      remember: () => false,
      onObject: ({ entry }) => {
        const v: Verified = { entry };
        if (entry.codec === CODECS.xorPlanes) {
          const id = baseOf.get(entry.offset);
          const loc = id === undefined ? undefined : this.storeBases.get(id);
          if (!id || !loc) return;
          v.base = { id, loc };
        }
        this.verified.set(entry.offset, v);
      },
      failure: (_, e) => e, // ends the pass; the final check reads it again and says what is wrong
    });
  }

  private async lookUp(ids: ObjectId[]): Promise<(ObjectLocation | undefined)[]> {
    if (!this.store || ids.length === 0) return [];
    return this.store.index.session((s) => s.locate(ids));
  }

  /**
   * The chunk records of the pack (`toc`, its entries) that were verified while arriving and need no second
   * reading: the TOC entry is the record header that was read at that offset, and a delta's base is the store's
   * record that `finalBase` names. That counts only if no pack left the store's index meanwhile (gc and
   * consolidation move records, and with them the depth of chains).
   */
  async confirmed(toc: PackEntry[], finalBase: FinalBaseLocator): Promise<Set<PackEntry>> {
    const out = new Set<PackEntry>();
    if (this.verified.size === 0) return out;
    const storeUnchanged = await this.storeUnchanged();
    for (const e of toc) {
      const v = this.verified.get(e.offset);
      if (!v || e.type !== 'chunk' || !samePackEntry(v.entry, e)) continue;
      if (v.base) {
        if (!storeUnchanged) continue;
        // A look-up that fails leaves the record to the final check, whose own look-up reports it as before.
        const loc = await finalBase(v.base.id).catch(() => undefined);
        if (!loc || loc.packId !== v.base.loc.packId || loc.entry.offset !== v.base.loc.entry.offset) continue;
      }
      out.add(e);
    }
    return out;
  }

  /** Whether every pack the store's index named at the start, and every pack a base was read from, still is. */
  private async storeUnchanged(): Promise<boolean> {
    if (!this.store || !this.packsAtStart) return true;
    try {
      const before = await this.packsAtStart;
      const now = await this.store.index.session((s) => s.indexedPacks(), { sync: true });
      for (const loc of this.storeBases.values()) if (loc && !now.has(loc.packId)) return false;
      return [...before].every((p) => now.has(p));
    } catch {
      return false;
    }
  }
}
