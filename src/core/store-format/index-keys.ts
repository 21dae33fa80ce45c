// Keys and values of the index (spec/FORMAT.md §8), shared by the LevelDB session that writes it and the
// read-only view that reads its files directly.
import { OBJECT_TYPE_CODE, objectTypeFromCode, type ObjectId } from './object-id.js';
import { isKnownCodec, MAX_OBJECT_BYTES, type CodecId, type PackEntry } from './pack-format.js';

export const INDEX_VERSION = 1;
export const K_OBJECT = 0x6f; // 'o' + id -> location
export const K_PACK = 0x70; // 'p' + pack id -> object count
export const K_COMMIT = 0x63; // 'c' + id -> commit body
export const K_BRANCH_SUMMARY = 0x62; // 'b' + branch name (UTF-8) + 0x00 [+ metric] -> branch-summary.ts
export const META_VERSION = Buffer.from('m:version');

export function indexKey(kind: number, hex: string): Buffer {
  const b = Buffer.alloc(33);
  b[0] = kind;
  b.write(hex, 1, 'hex');
  return b;
}

/**
 * A branch's metric summary keys: 'b' + name + 0x00 holds the tip its entries are true for, 'b' + name + 0x00 +
 * metric each metric's entry. Ref names hold no NUL, so one branch's keys never run into another's ("a" vs "ab").
 */
export function branchSummaryKey(branch: string, metric = ''): Buffer {
  return Buffer.concat([
    Buffer.from([K_BRANCH_SUMMARY]),
    Buffer.from(branch, 'utf8'),
    Buffer.from([0]),
    Buffer.from(metric, 'utf8'),
  ]);
}

/** Every key of one branch's summary. */
export function branchSummaryRange(branch: string): { gte: Buffer; lt: Buffer } {
  const gte = branchSummaryKey(branch);
  const lt = Buffer.from(gte);
  lt[lt.length - 1] = 1;
  return { gte, lt };
}

/** The bounds of every key of one kind, for range reads. */
export const kindRange = (kind: number) => ({ gte: Buffer.from([kind]), lt: Buffer.from([kind + 1]) });

export function encodeLocation(packId: string, e: PackEntry): Buffer {
  const b = Buffer.alloc(52);
  b.write(packId, 0, 'hex');
  b.writeBigUInt64LE(BigInt(e.offset), 32);
  b.writeUInt32LE(e.storedLength, 40);
  b.writeUInt32LE(e.rawLength, 44);
  b[48] = OBJECT_TYPE_CODE[e.type];
  b[49] = e.codec;
  return b;
}

/** A damaged entry reads as a miss (the caller then re-syncs from the packs), never as a wild read. */
export function decodeLocation(id: ObjectId, b: Buffer): { packId: string; entry: PackEntry } | undefined {
  const type = b.length === 52 ? objectTypeFromCode(b[48]!) : undefined;
  if (!type || !isKnownCodec(b[49]!)) return undefined;
  const storedLength = b.readUInt32LE(40);
  const rawLength = b.readUInt32LE(44);
  if (storedLength > MAX_OBJECT_BYTES || rawLength > MAX_OBJECT_BYTES) return undefined;
  return {
    packId: b.subarray(0, 32).toString('hex'),
    entry: { id, type, offset: Number(b.readBigUInt64LE(32)), storedLength, rawLength, codec: b[49] as CodecId },
  };
}

/** The upper bound of every key starting with `lo`. */
export function prefixEnd(lo: Buffer): Buffer {
  let i = lo.length - 1;
  while (i > 0 && lo[i] === 0xff) i--; // lo[0] is a key kind, never 0xff
  return Buffer.concat([lo.subarray(0, i), Buffer.from([lo[i]! + 1])]);
}

/** The range of `o` keys that may start with the hex `prefix` (an odd last digit is checked by the caller). */
export function prefixRange(prefix: string): { gte: Buffer; lt: Buffer } {
  const even = prefix.length % 2 === 0 ? prefix : prefix.slice(0, -1);
  const gte = Buffer.concat([Buffer.from([K_OBJECT]), Buffer.from(even, 'hex')]);
  return { gte, lt: prefixEnd(gte) };
}
