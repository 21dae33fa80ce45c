// How read commands see the index without writing anything (spec/FORMAT.md §8): a snapshot of the LevelDB
// files read directly (index-snapshot.ts), plus, in memory, the TOCs of packs the snapshot does not cover. With
// no usable snapshot (an index this user cannot read, or cannot repair) every pack's TOC is read: slower, but
// the same answers, since the index holds nothing that is not in the packs.
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import {
  decodeLocation,
  branchSummaryKey,
  branchSummaryRange,
  indexKey,
  K_COMMIT,
  K_OBJECT,
  K_PACK,
  kindRange,
  prefixRange,
} from '../core/store-format/index-keys.js';
import { objectTypeFromCode } from '../core/store-format/object-id.js';
import { addToTotals, type IndexTotals } from './index-totals.js';
import type { IndexedPack, IndexSession } from './object-index.js';
import type { LevelSnapshot } from './index-snapshot.js';
import type { ObjectLocation, PackReader } from './pack-reader.js';
import { listPackIds, type StoreLayout } from './store-layout.js';

export class IndexReadView {
  private readonly overlay = new Map<ObjectId, ObjectLocation>();
  private readonly overlayPacks = new Set<string>();
  private snapshotPacks: Set<string> | undefined;

  constructor(
    private readonly layout: StoreLayout,
    private readonly packs: PackReader,
    readonly snapshot: LevelSnapshot | undefined,
  ) {}

  /**
   * Catches up with the packs on disk: the TOCs of packs the snapshot lacks go into memory. 'gone' when the
   * snapshot names a pack that no longer exists (gc ran since it was taken, or the index needs a rebuild).
   */
  async sync(): Promise<'ok' | 'gone'> {
    const onDisk = await listPackIds(this.layout);
    const inSnapshot = await this.packsInSnapshot();
    if ([...inSnapshot].some((p) => !onDisk.has(p))) return 'gone';
    if ([...this.overlayPacks].some((p) => !onDisk.has(p))) {
      this.overlay.clear();
      this.overlayPacks.clear();
    }
    for (const packId of onDisk) {
      if (inSnapshot.has(packId) || this.overlayPacks.has(packId)) continue;
      const toc = await this.packs.readTocIfSound(packId);
      if (!toc) continue; // damaged (verify reports it), or deleted since the listing
      for (const entry of toc.entries) this.overlay.set(entry.id, { packId, entry });
      this.overlayPacks.add(packId);
    }
    return 'ok';
  }

  private async packsInSnapshot(): Promise<Set<string>> {
    if (!this.snapshotPacks) {
      const out = new Set<string>();
      if (this.snapshot) {
        const { gte, lt } = kindRange(K_PACK);
        for await (const [k] of this.snapshot.range(gte, lt)) out.add(k.subarray(1).toString('hex'));
      }
      this.snapshotPacks = out;
    }
    return this.snapshotPacks;
  }

  async locate(ids: ObjectId[]): Promise<(ObjectLocation | undefined)[]> {
    const out: (ObjectLocation | undefined)[] = [];
    // The snapshot first: a copy in a pack indexed since (a received one) does not replace the indexed copy.
    for (const id of ids) {
      const v = await this.snapshot?.get(indexKey(K_OBJECT, id));
      out.push(v ? decodeLocation(id, v) : this.overlay.get(id));
    }
    return out;
  }

  async commitBody(id: ObjectId): Promise<Buffer | undefined> {
    return this.snapshot?.get(indexKey(K_COMMIT, id));
  }

  async summaryTip(branch: string): Promise<Buffer | undefined> {
    return this.snapshot?.get(branchSummaryKey(branch));
  }

  async summaryMetrics(branch: string, metrics: string[]): Promise<(Buffer | undefined)[]> {
    return Promise.all(metrics.map(async (m) => this.snapshot?.get(branchSummaryKey(branch, m))));
  }

  async summaryMetricNames(branch: string, limit: number): Promise<string[]> {
    const names: string[] = [];
    if (!this.snapshot) return names;
    const { gte, lt } = branchSummaryRange(branch);
    for await (const [k] of this.snapshot.range(gte, lt)) {
      if (k.length === gte.length) continue; // the tip entry, not a metric's
      names.push(k.subarray(gte.length).toString('utf8'));
      if (names.length >= limit) break;
    }
    return names;
  }

  async indexedPacks(): Promise<Set<string>> {
    return new Set([...(await this.packsInSnapshot()), ...this.overlayPacks]);
  }

  async findByPrefix(
    prefix: string,
    types: ObjectType[],
    limit: number,
  ): Promise<{ id: ObjectId; type: ObjectType }[]> {
    const found = new Map<ObjectId, ObjectType>();
    for (const [id, l] of this.overlay)
      if (id.startsWith(prefix) && types.includes(l.entry.type)) found.set(id, l.entry.type);
    if (this.snapshot) {
      const { gte, lt } = prefixRange(prefix);
      let n = 0;
      for await (const [k, v] of this.snapshot.range(gte, lt)) {
        const id = k.subarray(1).toString('hex');
        if (!id.startsWith(prefix)) continue;
        const loc = decodeLocation(id, v);
        if (!loc || !types.includes(loc.entry.type)) continue;
        found.set(id, loc.entry.type);
        if (++n >= limit) break;
      }
    }
    return [...found]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, limit)
      .map(([id, type]) => ({ id, type }));
  }

  async locationsIn(packIds: ReadonlySet<string>): Promise<ObjectLocation[]> {
    const out: ObjectLocation[] = [];
    if (this.snapshot) {
      const { gte, lt } = kindRange(K_OBJECT);
      for await (const [k, v] of this.snapshot.range(gte, lt)) {
        if (!packIds.has(v.subarray(0, 32).toString('hex'))) continue;
        const loc = decodeLocation(k.subarray(1).toString('hex'), v);
        if (loc) out.push(loc);
      }
    }
    for (const l of this.overlay.values()) if (packIds.has(l.packId)) out.push(l);
    return out;
  }

  async totals(): Promise<IndexTotals> {
    const out: IndexTotals = new Map();
    if (this.snapshot) {
      const { gte, lt } = kindRange(K_OBJECT);
      for await (const [, v] of this.snapshot.range(gte, lt))
        addToTotals(out, objectTypeFromCode(v[48]!), v[49]!, v.readUInt32LE(44), v.readUInt32LE(40));
    }
    for (const [id, l] of this.overlay) {
      // An object in a pack the snapshot lacks may also be in one it has (a commit that crashed, then re-ran).
      if (this.snapshot && (await this.snapshot.get(indexKey(K_OBJECT, id)))) continue;
      addToTotals(out, l.entry.type, l.entry.codec, l.entry.rawLength, l.entry.storedLength);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.snapshot?.close();
  }
}

/** A session over the view. Reads never write; the first write switches this process to the LevelDB index. */
export class ViewSession implements IndexSession {
  constructor(
    private readonly view: IndexReadView,
    private readonly write: <T>(fn: (s: IndexSession) => Promise<T>) => Promise<T>,
  ) {}

  locate(ids: ObjectId[]) {
    return this.view.locate(ids);
  }
  commitBody(id: ObjectId) {
    return this.view.commitBody(id);
  }
  summaryTip(branch: string) {
    return this.view.summaryTip(branch);
  }
  summaryMetrics(branch: string, metrics: string[]) {
    return this.view.summaryMetrics(branch, metrics);
  }
  summaryMetricNames(branch: string, limit: number) {
    return this.view.summaryMetricNames(branch, limit);
  }
  writeSummary(branch: string, tip: Uint8Array, metrics: Map<string, Uint8Array>, clear: boolean): Promise<void> {
    return this.write((s) => s.writeSummary(branch, tip, metrics, clear));
  }
  indexedPacks() {
    return this.view.indexedPacks();
  }
  findByPrefix(prefix: string, types: ObjectType[], limit = 10) {
    return this.view.findByPrefix(prefix, types, limit);
  }
  totals() {
    return this.view.totals();
  }
  locationsIn(packIds: ReadonlySet<string>) {
    return this.view.locationsIn(packIds);
  }

  addPack(pack: IndexedPack, commitBodies: Map<ObjectId, Uint8Array>): Promise<void> {
    return this.write((s) => s.addPack(pack, commitBodies));
  }

  replacePacks(
    added: IndexedPack[],
    removed: IndexedPack[],
    gone: Set<ObjectId>,
    relocate: ObjectLocation[],
  ): Promise<void> {
    return this.write((s) => s.replacePacks(added, removed, gone, relocate));
  }
}
