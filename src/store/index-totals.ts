// What `ckvc stats` counts from the index: per object type, records and their raw and stored bytes, and among
// them the records stored as deltas. One rule for both index readers (LevelDB and the read-only view).
import type { ObjectType } from '../core/store-format/object-id.js';
import { CODECS } from '../core/store-format/pack-format.js';

export interface ByteTotals {
  count: number;
  rawBytes: number;
  storedBytes: number;
}

/** Per object type; `deltas` are the records among them stored against a base (codec 6, FORMAT.md §4.3). */
export type IndexTotals = Map<ObjectType, ByteTotals & { deltas: ByteTotals }>;

/** Counts one indexed record into `out` (the one rule both index readers use). */
export function addToTotals(
  out: IndexTotals,
  type: ObjectType | undefined,
  codec: number,
  rawBytes: number,
  storedBytes: number,
): void {
  if (!type) return;
  const cur = out.get(type) ?? {
    count: 0,
    rawBytes: 0,
    storedBytes: 0,
    deltas: { count: 0, rawBytes: 0, storedBytes: 0 },
  };
  cur.count++;
  cur.rawBytes += rawBytes;
  cur.storedBytes += storedBytes;
  if (codec === CODECS.xorPlanes) {
    cur.deltas.count++;
    cur.deltas.rawBytes += rawBytes;
    cur.deltas.storedBytes += storedBytes;
  }
  out.set(type, cur);
}
