// The layout of a base cache file (spec/FORMAT.md §18): the grouped bytes of the chunks one commit stored as
// deltas, for the next commit on top of it, which would otherwise decode each of them through its whole chain.
// A cache file is only ever a hint: readers check everything here against the index and the chunk's own ID.
import { ID_BYTES } from './object-id.js';

export const BASE_CACHE_MAGIC = Buffer.from('CKVCBAS1', 'latin1');
export const BASE_CACHE_END = Buffer.from('CKVCBEND', 'latin1');
/** id | width u8 | depth u8 | pack id | record offset u64 | data offset u64 | length u32 */
export const BASE_CACHE_ENTRY_BYTES = ID_BYTES + 2 + ID_BYTES + 8 + 8 + 4;
/** entry count u32 | trailer offset u64 | end magic */
export const BASE_CACHE_FOOTER_BYTES = 4 + 8 + BASE_CACHE_END.length;
/** More entries than a commit of 2^20 chunks could make is a damaged file, whatever its length says. */
export const BASE_CACHE_MAX_ENTRIES = 1 << 20;

export interface BaseCacheEntry {
  /** The chunk's object ID (hex). */
  id: string;
  width: number;
  /** The chain depth of the chunk's record: how many delta records lie under it. */
  depth: number;
  /** Where the record sits: a cache entry is used only while the index still places the chunk exactly there. */
  packId: string;
  recordOffset: number;
  /** The chunk's bytes grouped by `width`, in this file. */
  dataOffset: number;
  length: number;
}

export function encodeBaseCacheEntry(e: BaseCacheEntry): Buffer {
  const b = Buffer.alloc(BASE_CACHE_ENTRY_BYTES);
  let at = b.write(e.id, 0, ID_BYTES, 'hex');
  at = b.writeUInt8(e.width, at);
  at = b.writeUInt8(e.depth, at);
  at += b.write(e.packId, at, ID_BYTES, 'hex');
  at = b.writeBigUInt64LE(BigInt(e.recordOffset), at);
  at = b.writeBigUInt64LE(BigInt(e.dataOffset), at);
  b.writeUInt32LE(e.length, at);
  return b;
}

export function encodeBaseCacheFooter(count: number, trailerOffset: number): Buffer {
  const b = Buffer.alloc(BASE_CACHE_FOOTER_BYTES);
  b.writeUInt32LE(count, 0);
  b.writeBigUInt64LE(BigInt(trailerOffset), 4);
  BASE_CACHE_END.copy(b, 12);
  return b;
}

/**
 * The trailer's place, from the first bytes (`head`, the magic's length) and the footer of a file of `fileSize`
 * bytes; undefined when the file is not a cache file.
 */
export function parseBaseCacheEnds(
  head: Uint8Array,
  footer: Uint8Array,
  fileSize: number,
): { count: number; trailerOffset: number } | undefined {
  if (fileSize < BASE_CACHE_MAGIC.length + BASE_CACHE_FOOTER_BYTES) return undefined;
  if (!Buffer.from(head.buffer, head.byteOffset, head.byteLength).equals(BASE_CACHE_MAGIC)) return undefined;
  const b = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (b.length !== BASE_CACHE_FOOTER_BYTES || !b.subarray(12).equals(BASE_CACHE_END)) return undefined;
  const count = b.readUInt32LE(0);
  const trailerOffset = Number(b.readBigUInt64LE(4));
  if (count > BASE_CACHE_MAX_ENTRIES) return undefined;
  if (trailerOffset < BASE_CACHE_MAGIC.length) return undefined;
  if (trailerOffset + count * BASE_CACHE_ENTRY_BYTES + BASE_CACHE_FOOTER_BYTES !== fileSize) return undefined;
  return { count, trailerOffset };
}

const WIDTHS = new Set([1, 2, 4, 8]);

/** The entries of a trailer; undefined when any of them is malformed or points outside the data region. */
export function parseBaseCacheTrailer(
  trailer: Uint8Array,
  count: number,
  trailerOffset: number,
): BaseCacheEntry[] | undefined {
  const b = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (b.length !== count * BASE_CACHE_ENTRY_BYTES) return undefined;
  const out: BaseCacheEntry[] = [];
  for (let i = 0; i < count; i++) {
    let at = i * BASE_CACHE_ENTRY_BYTES;
    const id = b.toString('hex', at, at + ID_BYTES);
    at += ID_BYTES;
    const width = b.readUInt8(at++);
    const depth = b.readUInt8(at++);
    const packId = b.toString('hex', at, at + ID_BYTES);
    at += ID_BYTES;
    const recordOffset = Number(b.readBigUInt64LE(at));
    const dataOffset = Number(b.readBigUInt64LE(at + 8));
    const length = b.readUInt32LE(at + 16);
    const inside = dataOffset >= BASE_CACHE_MAGIC.length && dataOffset + length <= trailerOffset;
    if (!WIDTHS.has(width) || length === 0 || !inside) return undefined;
    out.push({ id, width, depth, packId, recordOffset, dataOffset, length });
  }
  return out;
}
