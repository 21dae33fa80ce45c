// The layout of a base cache file (spec/FORMAT.md §18): the grouped bytes of the chunks one commit stored as
// deltas, for the next commit on top of it, which would otherwise decode each of them through its whole chain.
// An entry also describes every record of the chunk's chain (where it is, and digests of the bytes a reader of
// the chunk reads from it), so that the next commit can prove, without inflating anything, that the store still
// holds that very chain intact before it makes a new delta depend on it.
import { ID_BYTES } from './object-id.js';

export const BASE_CACHE_MAGIC = Buffer.from('CKVCBAS2', 'latin1');
export const BASE_CACHE_END = Buffer.from('CKVCBEND', 'latin1');
/** entry count u32 | entries offset u64 | end magic */
export const BASE_CACHE_FOOTER_BYTES = 4 + 8 + BASE_CACHE_END.length;
/** More entries than a commit of 2^20 chunks could make is a damaged file, whatever its length says. */
export const BASE_CACHE_MAX_ENTRIES = 1 << 20;
/** Links per entry: a chain of at most 8 deltas and its root (readers refuse more). */
export const BASE_CACHE_MAX_LINKS = 9;
/** Digests are BLAKE3 truncated to 128 bits: they detect damage, the chunk's own ID proves content. */
export const LINK_DIGEST_BYTES = 16;

/**
 * One record of a chunk's chain, top first: the chunk `chunkId`'s record at `recordOffset` of pack `packId`,
 * `recordLength` bytes with its header. A plane-coded record (codecs 5, 6) has a digest of its header and plane
 * table (`headLength` bytes), one per plane and one of its tail (the bytes after the planes); any other record one
 * digest of all of it.
 */
export interface ChainLink {
  chunkId: string;
  packId: string;
  recordOffset: number;
  recordLength: number;
  planes?: { headLength: number; head: Uint8Array; planes: Uint8Array[]; tail: Uint8Array };
  whole?: Uint8Array;
}

export interface BaseCacheEntry {
  /** The chunk's object ID (hex). */
  id: string;
  width: number;
  /** The chunk's bytes grouped by `width`, in this file. */
  dataOffset: number;
  length: number;
  /** Its record and those of its bases, down to a record that is not a delta; the chain depth is links − 1. */
  links: ChainLink[];
}

class Writer {
  private readonly parts: Buffer[] = [];
  u8(v: number) {
    this.parts.push(Buffer.from([v]));
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
  }
  hex(v: string) {
    this.parts.push(Buffer.from(v, 'hex'));
  }
  bytes(v: Uint8Array) {
    this.parts.push(Buffer.from(v));
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * id[32] | width u8 | data offset u64 | length u32 | link count u8 | links, each:
 * chunk id[32] | pack id[32] | record offset u64 | record length u32 | kind u8, then for kind 0 (whole) digest[16],
 * for kind 1 (planes) head length u32 | head digest[16] | plane count u8 | plane digests[16 each] | tail digest[16].
 */
export function encodeBaseCacheEntry(e: BaseCacheEntry): Buffer {
  const w = new Writer();
  w.hex(e.id);
  w.u8(e.width);
  w.u64(e.dataOffset);
  w.u32(e.length);
  w.u8(e.links.length);
  for (const l of e.links) {
    w.hex(l.chunkId);
    w.hex(l.packId);
    w.u64(l.recordOffset);
    w.u32(l.recordLength);
    if (l.planes) {
      w.u8(1);
      w.u32(l.planes.headLength);
      w.bytes(l.planes.head);
      w.u8(l.planes.planes.length);
      for (const d of l.planes.planes) w.bytes(d);
      w.bytes(l.planes.tail);
    } else {
      w.u8(0);
      w.bytes(l.whole!);
    }
  }
  return w.done();
}

export function encodeBaseCacheFooter(count: number, entriesOffset: number): Buffer {
  const b = Buffer.alloc(BASE_CACHE_FOOTER_BYTES);
  b.writeUInt32LE(count, 0);
  b.writeBigUInt64LE(BigInt(entriesOffset), 4);
  BASE_CACHE_END.copy(b, 12);
  return b;
}

/**
 * The entries' place, from the first bytes (`head`, the magic's length) and the footer of a file of `fileSize`
 * bytes; undefined when the file is not a cache file.
 */
export function parseBaseCacheEnds(
  head: Uint8Array,
  footer: Uint8Array,
  fileSize: number,
): { count: number; entriesOffset: number } | undefined {
  if (fileSize < BASE_CACHE_MAGIC.length + BASE_CACHE_FOOTER_BYTES) return undefined;
  if (!Buffer.from(head.buffer, head.byteOffset, head.byteLength).equals(BASE_CACHE_MAGIC)) return undefined;
  const b = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (b.length !== BASE_CACHE_FOOTER_BYTES || !b.subarray(12).equals(BASE_CACHE_END)) return undefined;
  const count = b.readUInt32LE(0);
  const entriesOffset = Number(b.readBigUInt64LE(4));
  if (count > BASE_CACHE_MAX_ENTRIES) return undefined;
  if (entriesOffset < BASE_CACHE_MAGIC.length || entriesOffset > fileSize - BASE_CACHE_FOOTER_BYTES) return undefined;
  return { count, entriesOffset };
}

const WIDTHS = new Set([1, 2, 4, 8]);

class Reader {
  at = 0;
  constructor(private readonly b: Buffer) {}
  private take(n: number): number {
    if (this.at + n > this.b.length) throw new RangeError('past the end');
    const at = this.at;
    this.at += n;
    return at;
  }
  u8 = () => this.b.readUInt8(this.take(1));
  u32 = () => this.b.readUInt32LE(this.take(4));
  u64 = () => Number(this.b.readBigUInt64LE(this.take(8)));
  hex = (n: number) => this.b.toString('hex', this.take(n), this.at);
  bytes = (n: number) => this.b.subarray(this.take(n), this.at);
  get done() {
    return this.at === this.b.length;
  }
}

/**
 * The `count` entries of the region between the data and the footer (`entries`, which starts at file offset
 * `entriesOffset`); undefined when any entry is malformed, points outside the data region, or bytes are left over.
 */
export function parseBaseCacheEntries(
  entries: Uint8Array,
  count: number,
  entriesOffset: number,
): BaseCacheEntry[] | undefined {
  const r = new Reader(Buffer.from(entries.buffer, entries.byteOffset, entries.byteLength));
  const out: BaseCacheEntry[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const id = r.hex(ID_BYTES);
      const width = r.u8();
      const dataOffset = r.u64();
      const length = r.u32();
      const linkCount = r.u8();
      const inside = dataOffset >= BASE_CACHE_MAGIC.length && dataOffset + length <= entriesOffset;
      if (!WIDTHS.has(width) || length === 0 || !inside) return undefined;
      if (linkCount < 2 || linkCount > BASE_CACHE_MAX_LINKS) return undefined; // a cached chunk is a delta
      const links: ChainLink[] = [];
      for (let k = 0; k < linkCount; k++) {
        const chunkId = r.hex(ID_BYTES);
        const packId = r.hex(ID_BYTES);
        const recordOffset = r.u64();
        const recordLength = r.u32();
        const kind = r.u8();
        const at = { chunkId, packId, recordOffset, recordLength };
        if (kind === 0) links.push({ ...at, whole: r.bytes(LINK_DIGEST_BYTES) });
        else if (kind === 1) {
          const headLength = r.u32();
          const head = r.bytes(LINK_DIGEST_BYTES);
          const planeCount = r.u8();
          if (!WIDTHS.has(planeCount) || headLength > recordLength) return undefined;
          const planes = Array.from({ length: planeCount }, () => r.bytes(LINK_DIGEST_BYTES));
          links.push({ ...at, planes: { headLength, head, planes, tail: r.bytes(LINK_DIGEST_BYTES) } });
        } else return undefined;
      }
      if (links[0]!.chunkId !== id || !links[0]!.planes) return undefined;
      out.push({ id, width, dataOffset, length, links });
    }
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
  return r.done ? out : undefined;
}
