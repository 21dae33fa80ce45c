// Describing a record as a link of a delta chain (spec/FORMAT.md §18): where its header, planes and tail lie,
// and digests of each, so that a later commit can check the very bytes a reader of the chain would read (the
// planes a chunk's decoding takes from each record: all of the top record's, then only those XORed all the way
// down) by reading and hashing them, without inflating anything.
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { type ChainLink, LINK_DIGEST_BYTES } from './base-cache-format.js';
import { PLANE_TABLE_MAX_BYTES, PLANE_XOR, parsePlaneTable, type PlaneHeader } from './codec/plane-codec.js';
import { CODECS, decodeRecordHeader, type PackEntry, RECORD_HEADER_BYTES } from './pack-format.js';

/** BLAKE3 of `parts` back to back, truncated to the link digest's length. */
export function linkDigest(parts: Uint8Array[]): Uint8Array {
  const h = new Blake3Hasher();
  for (const p of parts) h.update(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  return h.digestBuffer().subarray(0, LINK_DIGEST_BYTES);
}

/** Byte ranges of pieces laid end to end (a record as the pack writer holds it), without joining them. */
class Pieces {
  readonly length: number;
  constructor(private readonly pieces: Uint8Array[]) {
    this.length = pieces.reduce((a, p) => a + p.length, 0);
  }
  range(start: number, end: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = 0;
    for (const p of this.pieces) {
      const a = Math.max(start, at);
      const b = Math.min(end, at + p.length);
      if (a < b) out.push(p.subarray(a - at, b - at));
      at += p.length;
    }
    return out;
  }
  bytes(start: number, end: number): Buffer {
    return Buffer.concat(this.range(start, Math.min(end, this.length)));
  }
}

/** The header and, for codecs 5 and 6, the plane table of a record read from its first bytes (`head`). */
export function parseLinkHead(
  head: Uint8Array,
  recordOffset: number,
  where: string,
): { entry: PackEntry; table?: PlaneHeader } {
  const entry = decodeRecordHeader(head.subarray(0, RECORD_HEADER_BYTES), recordOffset, where);
  if (entry.codec !== CODECS.planes && entry.codec !== CODECS.xorPlanes) return { entry };
  const body = head.subarray(RECORD_HEADER_BYTES);
  const table = parsePlaneTable(body, entry.storedLength, entry.rawLength, entry.codec === CODECS.xorPlanes, where);
  return { entry, table };
}

/** Bytes at the start of a record that hold its header and any plane table. */
export const LINK_HEAD_MAX_BYTES = RECORD_HEADER_BYTES + PLANE_TABLE_MAX_BYTES;

/** The link for a record whose bytes, header first, are `pieces` back to back, at `recordOffset` of `packId`. */
export function chainLinkOf(
  pieces: Uint8Array[],
  at: { chunkId: string; packId: string; recordOffset: number },
  where: string,
): ChainLink {
  const record = new Pieces(pieces);
  const { table } = parseLinkHead(record.bytes(0, LINK_HEAD_MAX_BYTES), at.recordOffset, where);
  const base = { ...at, recordLength: record.length };
  if (!table) return { ...base, whole: linkDigest(record.range(0, record.length)) };
  const body = (start: number, end: number) => record.range(RECORD_HEADER_BYTES + start, RECORD_HEADER_BYTES + end);
  const headLength = RECORD_HEADER_BYTES + (table.planes[0]?.offset ?? table.tailOffset);
  return {
    ...base,
    planes: {
      headLength,
      head: linkDigest(record.range(0, headLength)),
      planes: table.planes.map((p) => linkDigest(body(p.offset, p.offset + p.length))),
      tail: linkDigest(body(table.tailOffset, record.length - RECORD_HEADER_BYTES)),
    },
  };
}

/**
 * Which planes a reader of the top chunk reads from each link of its chain: all of the top's (and its tail),
 * then plane j of link k only while links 0..k−1 all XOR plane j (spec/FORMAT.md §4.3).
 */
export function planesRead(tables: (PlaneHeader | undefined)[], width: number): boolean[][] {
  const out: boolean[][] = [];
  let open = Array.from({ length: width }, () => true);
  for (const t of tables) {
    out.push(open);
    open = open.map((o, j) => o && Boolean(t && t.planes[j]!.mode & PLANE_XOR));
  }
  return out;
}
