// A session on the LevelDB index opened for writing (spec/FORMAT.md §8): what writers use, and what repairs an
// index that needs rebuilding. Read commands use index-view.ts instead, which writes nothing.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Level } from 'level';
import {
  branchSummaryKey,
  branchSummaryRange,
  decodeLocation,
  encodeLocation,
  indexKey as key,
  K_COMMIT,
  K_OBJECT,
  K_PACK,
  kindRange,
  prefixRange,
} from '../core/store-format/index-keys.js';
import { objectTypeFromCode, type ObjectId, type ObjectType } from '../core/store-format/object-id.js';
import { addToTotals, type IndexTotals } from './index-totals.js';
import type { IndexedPack, IndexSession } from './object-index.js';
import type { ObjectLocation } from './pack-reader.js';

export type DB = Level<Buffer, Buffer>;

function compactRange(db: DB, start: Buffer, end: Buffer): Promise<void> | undefined {
  return (db as unknown as { compactRange?: (s: Buffer, e: Buffer) => Promise<void> }).compactRange?.(start, end);
}

/** Above every key the index holds (spec/FORMAT.md §8): a range no table overlaps. */
const PAST_EVERY_KEY = [Buffer.from([0xff, 0xff]), Buffer.from([0xff, 0xff, 0xff])] as const;

/**
 * A write-ahead log at least this big is moved into a table when the writer closes the index. Every read command
 * (index-view.ts) parses the whole log at start-up until the next writer opens the index: about 15 ms for the
 * 105 KB a 100 MB commit of 505 tensors leaves, more for bigger commits. Moving it costs a few fsyncs (a table,
 * the MANIFEST, a new log), several ms, so a small log (a JSON snapshot's commit leaves under 1 KB) stays.
 */
const FLUSHED_LOG_BYTES = 64 * 1024;

/** Bytes in the write-ahead logs of the index at `dir`. */
async function writeAheadLogBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith('.log')) total += (await fs.stat(path.join(dir, name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * Moves a big write-ahead log (above) into a table. LevelDB compacts its memtable first whatever range is asked;
 * a range above every key leaves the tables as they are. Only a hint for readers' start-up: the log is durable
 * either way, and until LevelDB's MANIFEST names the new table the old log stays the live one. classic-level does
 * not report LevelDB's own failures here (a full disk shows at the next write); what is caught is the listing of
 * the folder and a database already closed.
 */
export async function flushBigWriteAheadLog(db: DB, dir: string): Promise<void> {
  try {
    if ((await writeAheadLogBytes(dir)) >= FLUSHED_LOG_BYTES) await compactRange(db, ...PAST_EVERY_KEY);
  } catch {
    // as above
  }
}

export class LevelSession implements IndexSession {
  constructor(private readonly db: DB) {}

  async locate(ids: ObjectId[]): Promise<(ObjectLocation | undefined)[]> {
    if (ids.length === 0) return [];
    const vals = await this.db.getMany(ids.map((id) => key(K_OBJECT, id)));
    return vals.map((v, i) => (v ? decodeLocation(ids[i]!, v) : undefined));
  }

  async addPack(pack: IndexedPack, commitBodies: Map<ObjectId, Uint8Array>): Promise<void> {
    const batch = this.db.batch();
    for (const e of pack.entries)
      if (!pack.keepIndexed?.has(e.id)) batch.put(key(K_OBJECT, e.id), encodeLocation(pack.packId, e));
    for (const [id, body] of commitBodies) batch.put(key(K_COMMIT, id), Buffer.from(body));
    batch.put(key(K_PACK, pack.packId), Buffer.from(String(pack.entries.length)));
    await batch.write();
  }

  /**
   * gc's index update, in one atomic batch: index the new packs, forget the deleted ones (their `p` keys, the
   * `o` keys still pointing into them, the cached bodies of commits in `gone`), and point every object in
   * `relocate` at its surviving copy (its entry may have named a deleted pack though a kept pack has it too).
   */
  async replacePacks(
    added: IndexedPack[],
    removed: IndexedPack[],
    gone: Set<ObjectId>,
    relocate: ObjectLocation[],
  ): Promise<void> {
    const batch = this.db.batch();
    for (const pack of added) {
      for (const e of pack.entries) batch.put(key(K_OBJECT, e.id), encodeLocation(pack.packId, e));
      batch.put(key(K_PACK, pack.packId), Buffer.from(String(pack.entries.length)));
    }
    for (const pack of removed) {
      const vals = await this.db.getMany(pack.entries.map((e) => key(K_OBJECT, e.id)));
      pack.entries.forEach((e, i) => {
        const v = vals[i];
        if (v && v.subarray(0, 32).toString('hex') === pack.packId) batch.del(key(K_OBJECT, e.id));
        if (e.type === 'commit' && gone.has(e.id)) batch.del(key(K_COMMIT, e.id));
      });
      batch.del(key(K_PACK, pack.packId));
    }
    for (const l of relocate) batch.put(key(K_OBJECT, l.entry.id), encodeLocation(l.packId, l.entry));
    await batch.write();
    if (removed.length) await this.compactPackKeys();
  }

  /**
   * Deleted `p` keys stay in the tables as tombstones until a compaction reaches them, and every reader walks
   * the `p` range at start-up (index-view.ts), so packs consolidated away (§15.2) would slow every command by
   * their number. Compacting that narrow range drops them now; it also flushes the write-ahead log that readers
   * otherwise re-parse (a big batch: the first consolidation of a store of many packs).
   */
  private async compactPackKeys(): Promise<void> {
    const { gte, lt } = kindRange(K_PACK);
    await compactRange(this.db, gte, lt);
  }

  async commitBody(id: ObjectId): Promise<Buffer | undefined> {
    return (await this.db.get(key(K_COMMIT, id))) ?? undefined;
  }

  async summaryTip(branch: string): Promise<Buffer | undefined> {
    return (await this.db.get(branchSummaryKey(branch))) ?? undefined;
  }

  async summaryMetrics(branch: string, metrics: string[]): Promise<(Buffer | undefined)[]> {
    if (!metrics.length) return [];
    const vals = await this.db.getMany(metrics.map((m) => branchSummaryKey(branch, m)));
    return vals.map((v) => v ?? undefined);
  }

  async summaryMetricNames(branch: string, limit: number): Promise<string[]> {
    const { gte, lt } = branchSummaryRange(branch);
    const names: string[] = [];
    for await (const k of this.db.keys({ gt: gte, lt, limit })) names.push(k.subarray(gte.length).toString('utf8'));
    return names;
  }

  async writeSummary(branch: string, tip: Uint8Array, metrics: Map<string, Uint8Array>, clear: boolean) {
    const batch = this.db.batch();
    if (clear) for await (const k of this.db.keys(branchSummaryRange(branch))) batch.del(k);
    for (const [m, v] of metrics) batch.put(branchSummaryKey(branch, m), Buffer.from(v));
    batch.put(branchSummaryKey(branch), Buffer.from(tip));
    await batch.write();
  }

  async indexedPacks(): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const k of this.db.keys(kindRange(K_PACK))) out.add(k.subarray(1).toString('hex'));
    return out;
  }

  /** Objects of the given types whose hex ID starts with `prefix`, at most `limit`. */
  async findByPrefix(prefix: string, types: ObjectType[], limit = 10): Promise<{ id: ObjectId; type: ObjectType }[]> {
    const { gte, lt } = prefixRange(prefix);
    const out: { id: ObjectId; type: ObjectType }[] = [];
    for await (const [k, v] of this.db.iterator({ gte, lt })) {
      const id = k.subarray(1).toString('hex');
      if (!id.startsWith(prefix)) continue;
      const loc = decodeLocation(id, v);
      if (loc && types.includes(loc.entry.type)) out.push({ id, type: loc.entry.type });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Per object type: how many, their raw (uncompressed) bytes and their stored bytes. */
  async locationsIn(packIds: ReadonlySet<string>): Promise<ObjectLocation[]> {
    const out: ObjectLocation[] = [];
    for await (const [k, v] of this.db.iterator(kindRange(K_OBJECT))) {
      if (!packIds.has(v.subarray(0, 32).toString('hex'))) continue;
      const loc = decodeLocation(k.subarray(1).toString('hex'), v);
      if (loc) out.push(loc);
    }
    return out;
  }

  async totals(): Promise<IndexTotals> {
    const out: IndexTotals = new Map();
    for await (const v of this.db.values(kindRange(K_OBJECT)))
      addToTotals(out, objectTypeFromCode(v[48]!), v[49]!, v.readUInt32LE(44), v.readUInt32LE(40));
    return out;
  }
}
