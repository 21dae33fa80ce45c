// Byte layout of pack files (spec/FORMAT.md §4): a header, object records, a table of contents and a footer
// whose checksum names the pack. Pure encoders/decoders of the fixed-size parts; the store does the I/O.
import { CkvcError } from '../errors.js';
import { ID_BYTES, OBJECT_TYPE_CODE, objectTypeFromCode, type ObjectId, type ObjectType } from './object-id.js';

export const PACK_MAGIC = Buffer.from('CKVCPACK', 'latin1');
export const PACK_END_MAGIC = Buffer.from('CKVCPEND', 'latin1');
/** Version 2 added codecs 5 and 6 (§4.3); readers read both, writers write 2. */
export const PACK_VERSION = 2;
const OLDEST_PACK_VERSION = 1;
export const PACK_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 12 + ID_BYTES;
export const TOC_ENTRY_BYTES = ID_BYTES + 20;
export const PACK_FOOTER_BYTES = 16 + 32 + 8;
/** No object body (compressed or not) may exceed this: it bounds what a reader allocates for one record. */
export const MAX_OBJECT_BYTES = 64 * 1024 * 1024;

export const CODECS = {
  raw: 0,
  zstd: 1,
  group2zstd: 2,
  group4zstd: 3,
  group8zstd: 4,
  planes: 5,
  xorPlanes: 6,
} as const;
export type CodecId = (typeof CODECS)[keyof typeof CODECS];

export function codecGroupWidth(codec: number): number {
  return codec === CODECS.group2zstd ? 2 : codec === CODECS.group4zstd ? 4 : codec === CODECS.group8zstd ? 8 : 1;
}

export function isKnownCodec(codec: number): codec is CodecId {
  return codec >= 0 && codec <= 6;
}

export interface PackEntry {
  id: ObjectId;
  type: ObjectType;
  codec: CodecId;
  /** Offset of the record header within the pack file. */
  offset: number;
  rawLength: number;
  storedLength: number;
}

function corruptPack(where: string, what: string): CkvcError {
  return new CkvcError('CKVC_CORRUPT_PACK', `${where}: ${what}`, { where });
}

export function encodePackHeader(): Buffer {
  const b = Buffer.alloc(PACK_HEADER_BYTES);
  PACK_MAGIC.copy(b, 0);
  b.writeUInt32LE(PACK_VERSION, 8);
  return b;
}

export function checkPackHeader(b: Uint8Array, where: string): void {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < PACK_HEADER_BYTES || !buf.subarray(0, 8).equals(PACK_MAGIC))
    throw corruptPack(where, 'not a ckvc pack (bad magic)');
  const version = buf.readUInt32LE(8);
  if (version < OLDEST_PACK_VERSION || version > PACK_VERSION) {
    throw new CkvcError(
      'CKVC_UNSUPPORTED_VERSION',
      `${where}: pack format version ${version} is not supported (this ckvc reads ${OLDEST_PACK_VERSION} to ${PACK_VERSION}); upgrade ckvc`,
      { where, version },
    );
  }
}

export function encodeRecordHeader(e: Omit<PackEntry, 'offset'>): Buffer {
  const b = Buffer.alloc(RECORD_HEADER_BYTES);
  b.writeUInt8(OBJECT_TYPE_CODE[e.type], 0);
  b.writeUInt8(e.codec, 1);
  b.writeUInt32LE(e.rawLength, 4);
  b.writeUInt32LE(e.storedLength, 8);
  Buffer.from(e.id, 'hex').copy(b, 12);
  return b;
}

export function decodeRecordHeader(b: Uint8Array, offset: number, where: string): PackEntry {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < RECORD_HEADER_BYTES) throw corruptPack(where, `record at ${offset} is truncated`);
  return validEntry(
    {
      type: buf.readUInt8(0) as never,
      codec: buf.readUInt8(1) as CodecId,
      rawLength: buf.readUInt32LE(4),
      storedLength: buf.readUInt32LE(8),
      id: buf.subarray(12, 12 + ID_BYTES).toString('hex'),
      offset,
    },
    buf.readUInt8(0),
    `${where} record at ${offset}`,
  );
}

function validEntry(e: PackEntry, typeCode: number, where: string): PackEntry {
  const type = objectTypeFromCode(typeCode);
  if (!type) throw corruptPack(where, `unknown object type ${typeCode}`);
  if (!isKnownCodec(e.codec)) throw corruptPack(where, `unknown codec ${e.codec}`);
  if (e.rawLength > MAX_OBJECT_BYTES || e.storedLength > MAX_OBJECT_BYTES)
    throw corruptPack(where, 'object larger than the 64 MiB limit');
  if (e.codec === CODECS.raw && e.rawLength !== e.storedLength)
    throw corruptPack(where, 'raw record whose stored and raw lengths differ');
  return { ...e, type };
}

/** Whether two descriptions of a record agree in every field (a TOC entry, a record header, an index entry). */
export function samePackEntry(a: PackEntry, b: PackEntry): boolean {
  return (
    a.id === b.id &&
    a.type === b.type &&
    a.codec === b.codec &&
    a.offset === b.offset &&
    a.rawLength === b.rawLength &&
    a.storedLength === b.storedLength
  );
}

export function encodeTocEntry(e: PackEntry): Buffer {
  const b = Buffer.alloc(TOC_ENTRY_BYTES);
  Buffer.from(e.id, 'hex').copy(b, 0);
  b.writeUInt8(OBJECT_TYPE_CODE[e.type], 32);
  b.writeUInt8(e.codec, 33);
  b.writeBigUInt64LE(BigInt(e.offset), 36);
  b.writeUInt32LE(e.rawLength, 44);
  b.writeUInt32LE(e.storedLength, 48);
  return b;
}

/** Decodes a whole TOC and checks that its records tile the pack between header and TOC without gaps. */
export function decodeToc(b: Uint8Array, count: number, tocOffset: number, where: string): PackEntry[] {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length !== count * TOC_ENTRY_BYTES) throw corruptPack(where, 'table of contents has the wrong length');
  const out: PackEntry[] = [];
  let expected = PACK_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const at = i * TOC_ENTRY_BYTES;
    const offset = Number(buf.readBigUInt64LE(at + 36));
    const e = validEntry(
      {
        id: buf.subarray(at, at + 32).toString('hex'),
        type: 'chunk',
        codec: buf.readUInt8(at + 33) as CodecId,
        offset,
        rawLength: buf.readUInt32LE(at + 44),
        storedLength: buf.readUInt32LE(at + 48),
      },
      buf.readUInt8(at + 32),
      `${where} TOC entry ${i}`,
    );
    if (offset !== expected) throw corruptPack(where, `TOC entry ${i} is at ${offset}, expected ${expected}`);
    expected = offset + RECORD_HEADER_BYTES + e.storedLength;
    out.push(e);
  }
  if (expected !== tocOffset) throw corruptPack(where, `records end at ${expected} but the TOC starts at ${tocOffset}`);
  return out;
}

/** A pack's length: header, records (each a header and its stored bytes), TOC and footer (FORMAT.md §4). */
export function packLength(storedLengths: Iterable<number>): number {
  let n = PACK_HEADER_BYTES + PACK_FOOTER_BYTES;
  for (const stored of storedLengths) n += RECORD_HEADER_BYTES + stored + TOC_ENTRY_BYTES;
  return n;
}

/** What follows a pack's records up to its checksum: the TOC, then the footer's first 16 bytes. */
export function encodePackTail(entries: PackEntry[], tocOffset: number): Buffer {
  return Buffer.concat([...entries.map(encodeTocEntry), encodeFooterPrefix(tocOffset, entries.length)]);
}

/** The footer's last 40 bytes: the checksum (of every byte before it), then the end magic. */
export function encodePackEnd(checksum: Buffer): Buffer {
  return Buffer.concat([checksum, PACK_END_MAGIC]);
}

export interface PackFooter {
  tocOffset: number;
  count: number;
  checksum: string;
}

/** The footer's first 16 bytes; the checksum covers them, then follows with the end magic. */
export function encodeFooterPrefix(tocOffset: number, count: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(tocOffset), 0);
  b.writeUInt32LE(count, 8);
  return b;
}

export function decodeFooter(b: Uint8Array, fileSize: number, where: string): PackFooter {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length !== PACK_FOOTER_BYTES || !buf.subarray(48, 56).equals(PACK_END_MAGIC)) {
    throw corruptPack(where, 'footer missing or damaged (truncated pack?)');
  }
  const tocOffset = Number(buf.readBigUInt64LE(0));
  const count = buf.readUInt32LE(8);
  if (tocOffset < PACK_HEADER_BYTES || tocOffset + count * TOC_ENTRY_BYTES + PACK_FOOTER_BYTES !== fileSize) {
    throw corruptPack(
      where,
      `footer says ${count} objects with the TOC at ${tocOffset}, which does not fit a ${fileSize}-byte file`,
    );
  }
  return { tocOffset, count, checksum: buf.subarray(16, 48).toString('hex') };
}
