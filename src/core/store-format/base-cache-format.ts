// The delta-base cache file (spec/FORMAT.md §18): chunk bytes, then a table of where each chunk's bytes are, then
// a fixed footer. A hint only: a reader that finds anything but exactly this layout ignores the whole file, and
// every chunk it does use is hashed against its ID first (store/base-cache.ts).
import type { ObjectId } from './object-id.js';
import { MAX_OBJECT_BYTES } from './pack-format.js';

export const BASE_CACHE_VERSION = 1;
/** At most this many bytes of chunks: writers stop adding there, readers refuse a file that claims more. */
export const BASE_CACHE_MAX_DATA_BYTES = 1024 ** 3;
/** Plane-coded chunks are 4 KiB or larger, so no file within the cap lists more (an 11.5 MB table). */
const MAX_ENTRIES = BASE_CACHE_MAX_DATA_BYTES / 4096;
export const BASE_CACHE_MAGIC = Buffer.from('ckvcbase', 'latin1');
export const BASE_CACHE_FOOTER_BYTES = 24;
export const BASE_CACHE_ENTRY_BYTES = 44;
const ID_BYTES = 32;

export interface BaseCacheEntry {
  id: ObjectId;
  /** Where the chunk's bytes start in the file, and how many there are. */
  offset: number;
  length: number;
}

/** The table and footer that close a cache file whose chunk bytes end at `tableOffset`. */
export function encodeBaseCacheTail(entries: readonly BaseCacheEntry[], tableOffset: number): Buffer {
  const out = Buffer.alloc(entries.length * BASE_CACHE_ENTRY_BYTES + BASE_CACHE_FOOTER_BYTES);
  let at = 0;
  for (const e of entries) {
    Buffer.from(e.id, 'hex').copy(out, at);
    out.writeBigUInt64LE(BigInt(e.offset), at + ID_BYTES);
    out.writeUInt32LE(e.length, at + ID_BYTES + 8);
    at += BASE_CACHE_ENTRY_BYTES;
  }
  out.writeUInt32LE(entries.length, at);
  out.writeBigUInt64LE(BigInt(tableOffset), at + 4);
  out.writeUInt32LE(BASE_CACHE_VERSION, at + 12);
  BASE_CACHE_MAGIC.copy(out, at + 16);
  return out;
}

/** Where the table is and how many entries it holds, or undefined when `footer` does not close a cache file of `fileSize` bytes. */
export function parseBaseCacheFooter(
  footer: Uint8Array,
  fileSize: number,
): { count: number; tableOffset: number } | undefined {
  if (footer.length !== BASE_CACHE_FOOTER_BYTES || fileSize < BASE_CACHE_FOOTER_BYTES) return undefined;
  const b = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (!b.subarray(16).equals(BASE_CACHE_MAGIC) || b.readUInt32LE(12) !== BASE_CACHE_VERSION) return undefined;
  const count = b.readUInt32LE(0);
  const tableOffset = Number(b.readBigUInt64LE(4));
  if (count > MAX_ENTRIES || tableOffset > BASE_CACHE_MAX_DATA_BYTES) return undefined;
  if (tableOffset + count * BASE_CACHE_ENTRY_BYTES + BASE_CACHE_FOOTER_BYTES !== fileSize) return undefined;
  return { count, tableOffset };
}

/** The entries of `table` (which starts at `tableOffset`), by ID; undefined when any breaks the layout's rules. */
export function parseBaseCacheTable(table: Uint8Array, tableOffset: number): Map<ObjectId, BaseCacheEntry> | undefined {
  if (table.length % BASE_CACHE_ENTRY_BYTES !== 0) return undefined;
  const b = Buffer.from(table.buffer, table.byteOffset, table.byteLength);
  const out = new Map<ObjectId, BaseCacheEntry>();
  for (let at = 0; at < b.length; at += BASE_CACHE_ENTRY_BYTES) {
    const id = b.subarray(at, at + ID_BYTES).toString('hex');
    const offset = Number(b.readBigUInt64LE(at + ID_BYTES));
    const length = b.readUInt32LE(at + ID_BYTES + 8);
    if (length === 0 || length > MAX_OBJECT_BYTES || offset + length > tableOffset || out.has(id)) return undefined;
    out.set(id, { id, offset, length });
  }
  return out;
}
