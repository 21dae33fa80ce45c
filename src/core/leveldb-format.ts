// LevelDB's on-disk format (leveldb 1.20, what classic-level writes), decoded without LevelDB itself, so a
// read-only command can read the index without opening it: opening a LevelDB database always writes (a new
// MANIFEST, log and LOG file) and needs write access. Pure functions over bytes: the I/O is in
// src/store/index-snapshot.ts. This file: varints, CRC32C, snappy, log files, write batches, the MANIFEST;
// leveldb-table.ts: table files. References: leveldb's doc/log_format.md, db/dbformat.h, db/version_edit.cc,
// db/write_batch.cc; snappy's format_description.txt.

/** The index's data is damaged (or not a LevelDB database this reader understands). */
export class LevelFormatError extends Error {}

const fail = (what: string): never => {
  throw new LevelFormatError(what);
};

export function varint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  for (let shift = 0; shift < 64; shift += 7) {
    if (pos >= b.length) fail('truncated varint');
    const byte = b[pos++]!;
    v += (byte & 0x7f) * 2 ** shift; // not `<<`: values may exceed 32 bits (file sizes)
    if (!(byte & 0x80)) return [v, pos];
  }
  return fail('varint too long');
}

function slice(b: Uint8Array, pos: number): [Buffer, number] {
  const [n, p] = varint(b, pos);
  if (p + n > b.length) fail('truncated length-prefixed slice');
  return [Buffer.from(b.buffer, b.byteOffset + p, n), p + n];
}

export const fixed32 = (b: Uint8Array, pos: number) =>
  (b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16) | (b[pos + 3]! << 24)) >>> 0;

// ---- CRC32C (Castagnoli), masked as LevelDB stores it ----

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(b: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** LevelDB stores CRCs masked, so that a CRC of data holding CRCs does not look like one. */
export function maskedCrc(b: Uint8Array, prefix?: Uint8Array): number {
  const c = crc32c(b, prefix ? crc32c(prefix) : 0);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

// ---- snappy ----

export function snappyDecompress(src: Uint8Array): Buffer {
  const [len, start] = varint(src, 0);
  if (len > 1 << 30) fail('snappy block too large');
  const out = Buffer.allocUnsafe(len);
  let o = 0;
  let p = start;
  while (p < src.length) {
    const tag = src[p++]!;
    let n: number;
    let offset = 0;
    if ((tag & 3) === 0) {
      n = tag >>> 2;
      if (n >= 60) {
        const bytes = n - 59;
        if (p + bytes > src.length) fail('truncated snappy literal');
        n = 0;
        for (let i = 0; i < bytes; i++) n += src[p + i]! * 2 ** (8 * i);
        p += bytes;
      }
      n += 1;
      if (p + n > src.length || o + n > len) fail('snappy literal out of bounds');
      out.set(src.subarray(p, p + n), o);
      p += n;
      o += n;
      continue;
    }
    if ((tag & 3) === 1) {
      n = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | src[p++]!;
    } else if ((tag & 3) === 2) {
      n = 1 + (tag >>> 2);
      offset = src[p]! | (src[p + 1]! << 8);
      p += 2;
    } else {
      n = 1 + (tag >>> 2);
      offset = fixed32(src, p);
      p += 4;
    }
    if (p > src.length || offset === 0 || offset > o || o + n > len) fail('snappy copy out of bounds');
    // Byte by byte: a copy may overlap what it produces (offset < n repeats a pattern).
    for (let i = 0; i < n; i++, o++) out[o] = out[o - offset]!;
  }
  if (o !== len) fail('snappy output shorter than declared');
  return out;
}

// ---- log files (the write-ahead log, and the MANIFEST) ----

const LOG_BLOCK = 32768;
const LOG_HEADER = 7;
const FULL = 1,
  FIRST = 2,
  MIDDLE = 3,
  LAST = 4;

/**
 * The logical records of a log file. A torn tail (a writer crashed, or is writing right now) ends the log
 * quietly, as in LevelDB. A checksum mismatch with intact records after it is damage: `strict` (the MANIFEST,
 * where LevelDB refuses to open) throws; otherwise the rest of that block is dropped, as LevelDB does for the
 * write-ahead log.
 */
export function logRecords(file: Uint8Array, strict: boolean): Buffer[] {
  const out: Buffer[] = [];
  let parts: Buffer[] | undefined;
  let p = 0;
  while (p < file.length) {
    const blockLeft = LOG_BLOCK - (p % LOG_BLOCK);
    if (blockLeft < LOG_HEADER) {
      p += blockLeft; // trailer padding
      continue;
    }
    if (p + LOG_HEADER > file.length) break; // torn header
    const length = file[p + 4]! | (file[p + 5]! << 8);
    const type = file[p + 6]!;
    const end = p + LOG_HEADER + length;
    if (end > file.length) break; // torn record
    if (type === 0 && length === 0) {
      p += blockLeft; // preallocated zeros
      parts = undefined;
      continue;
    }
    const data = Buffer.from(file.buffer, file.byteOffset + p + LOG_HEADER, length);
    if (end > p + blockLeft || maskedCrc(data, Uint8Array.of(type)) !== fixed32(file, p)) {
      const last = p + blockLeft >= file.length;
      if (strict && !last) fail('log record checksum mismatch');
      p += blockLeft;
      parts = undefined;
      continue;
    }
    p = end;
    if (type === FULL) {
      out.push(data);
      parts = undefined;
    } else if (type === FIRST) parts = [data];
    else if (type === MIDDLE) parts?.push(data);
    else if (type === LAST) {
      if (parts) out.push(Buffer.concat([...parts, data]));
      parts = undefined;
    } else if (strict) fail(`unknown log record type ${type}`);
  }
  return out;
}

// ---- internal keys ----

/** An entry of the database: the user key, its sequence number, and a value (undefined: a deletion). */
export interface LevelEntry {
  key: Buffer;
  seq: number;
  value: Buffer | undefined;
}

/** Splits an internal key (user key + 8-byte tag: sequence << 8 | type). */
export function parseInternalKey(ikey: Buffer): { user: Buffer; seq: number; type: number } {
  if (ikey.length < 8) fail('internal key shorter than its tag');
  const n = ikey.length - 8;
  const lo = fixed32(ikey, n);
  const hi = fixed32(ikey, n + 4);
  return { user: ikey.subarray(0, n), seq: hi * 2 ** 24 + (lo >>> 8), type: lo & 0xff };
}

export const userKeyOf = (ikey: Buffer) => ikey.subarray(0, ikey.length - 8);

// ---- write batches (the records of the write-ahead log) ----

export function decodeWriteBatch(rec: Buffer): LevelEntry[] {
  if (rec.length < 12) fail('write batch shorter than its header');
  const lo = fixed32(rec, 0);
  const seq0 = fixed32(rec, 4) * 2 ** 32 + lo;
  const count = fixed32(rec, 8);
  const out: LevelEntry[] = [];
  let p = 12;
  for (let i = 0; i < count; i++) {
    const type = rec[p++];
    let key: Buffer;
    [key, p] = slice(rec, p);
    let value: Buffer | undefined;
    if (type === 1) [value, p] = slice(rec, p);
    else if (type !== 0) fail(`unknown write batch entry type ${String(type)}`);
    out.push({ key, seq: seq0 + i, value });
  }
  return out;
}

// ---- the MANIFEST: which table files make up the database ----

export interface TableFile {
  level: number;
  number: number;
  size: number;
  smallest: Buffer;
  largest: Buffer;
}

export interface LevelVersion {
  logNumber: number;
  prevLogNumber: number;
  files: TableFile[];
}

/** Replays the version edits of a MANIFEST into the set of live table files. */
export function replayManifest(records: Buffer[]): LevelVersion {
  const files = new Map<number, TableFile>();
  let logNumber = 0;
  let prevLogNumber = 0;
  for (const rec of records) {
    let p = 0;
    while (p < rec.length) {
      let tag: number;
      [tag, p] = varint(rec, p);
      let level: number, num: number;
      switch (tag) {
        case 1: {
          let name: Buffer;
          [name, p] = slice(rec, p);
          if (name.toString('latin1') !== 'leveldb.BytewiseComparator')
            fail(`unknown comparator ${name.toString('latin1')}`);
          break;
        }
        case 2:
          [logNumber, p] = varint(rec, p);
          break;
        case 3:
        case 4:
          [, p] = varint(rec, p);
          break; // next file number, last sequence: a reader needs neither
        case 5:
          [, p] = varint(rec, p);
          [, p] = slice(rec, p);
          break; // compaction pointer
        case 6:
          [level, p] = varint(rec, p);
          [num, p] = varint(rec, p);
          files.delete(num);
          break;
        case 7: {
          let size: number, smallest: Buffer, largest: Buffer;
          [level, p] = varint(rec, p);
          [num, p] = varint(rec, p);
          [size, p] = varint(rec, p);
          [smallest, p] = slice(rec, p);
          [largest, p] = slice(rec, p);
          if (level > 12) fail(`table file at level ${level}`);
          files.set(num, { level, number: num, size, smallest, largest });
          break;
        }
        case 9:
          [prevLogNumber, p] = varint(rec, p);
          break;
        default:
          fail(`unknown version edit tag ${tag}`);
      }
    }
  }
  return { logNumber, prevLogNumber, files: [...files.values()] };
}
