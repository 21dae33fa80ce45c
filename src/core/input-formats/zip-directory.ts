// Reads a zip's central directory and local headers (PKWARE APPNOTE 6.3, including Zip64) without extracting
// anything: ckvc only needs to know where each entry's bytes lie, so that a PyTorch .pt or a NumPy .npz can be
// cut at its entries (spec/ARCHIVES.md). Pure code: callers read the bytes and hand them in.
//
// Anything odd refuses the whole archive with a ZipRefusal (the file is then stored as opaque bytes): names
// that climb out of the archive or repeat, entries that overlap or point outside the file, encryption,
// multi-disk archives, stored entries whose two sizes differ, and deflated entries claiming more than deflate
// can produce (1032:1) or more than the cap.

export const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
export const LOCAL_HEADER_BYTES = 30;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_BYTES = 56;
/** The end record sits in the last 22 bytes plus a comment of at most 65,535 bytes. */
export const ZIP_TAIL_BYTES = EOCD_BYTES + 0xffff + ZIP64_LOCATOR_BYTES + ZIP64_EOCD_BYTES;
/** More entries than this is not a checkpoint archive we should spend memory on. */
export const ZIP_MAX_ENTRIES = 1_000_000;
export const ZIP_MAX_DIRECTORY_BYTES = 256 * 1024 * 1024;
/** Deflate cannot expand data by more than about 1032:1; a larger claim is a lie (or a bomb). */
export const DEFLATE_MAX_RATIO = 1032;
/** No deflated entry may declare more than this (an .npz member is one array; torch never deflates storages). */
export const ZIP_MAX_INFLATED_BYTES = 16 * 1024 ** 3;

export const ZIP_METHOD_STORED = 0;
export const ZIP_METHOD_DEFLATED = 8;

export class ZipRefusal extends Error {}

export interface ZipTail {
  /** Where the central directory starts and how long it is, as the end record says. */
  directoryOffset: number;
  directoryBytes: number;
  entries: number;
}

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  headerOffset: number;
}

function u16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** A 64-bit little-endian field; anything beyond 2^53 cannot be a real offset here. */
function u64(b: Uint8Array, at: number): number {
  const hi = u32(b, at + 4);
  if (hi >= 0x200000) throw new ZipRefusal('a Zip64 field is larger than 2^53');
  return hi * 0x100000000 + u32(b, at);
}

/**
 * Finds the end of central directory record in the file's last bytes (`tail`, which ends at `fileSize`) and
 * follows the Zip64 locator when the classic fields overflow.
 */
export function readZipTail(tail: Uint8Array, fileSize: number): ZipTail {
  const tailStart = fileSize - tail.length;
  // The last record whose comment length reaches exactly to the end of the file is the real one.
  let eocd = -1;
  for (let i = tail.length - EOCD_BYTES; i >= 0; i--) {
    if (u32(tail, i) === EOCD_SIGNATURE && i + EOCD_BYTES + u16(tail, i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipRefusal('no end of central directory record (not a zip, or bytes follow it)');
  const disk = u16(tail, eocd + 4);
  const cdDisk = u16(tail, eocd + 6);
  let entriesHere = u16(tail, eocd + 8);
  let entries = u16(tail, eocd + 10);
  let directoryBytes = u32(tail, eocd + 12);
  let directoryOffset = u32(tail, eocd + 16);
  let directoryEnd = tailStart + eocd;
  const overflow =
    entries === 0xffff || entriesHere === 0xffff || directoryBytes === 0xffffffff || directoryOffset === 0xffffffff;
  const loc = eocd - ZIP64_LOCATOR_BYTES;
  if (loc >= 0 && u32(tail, loc) === ZIP64_LOCATOR_SIGNATURE) {
    const z64 = u64(tail, loc + 8) - tailStart;
    if (u32(tail, loc + 4) !== 0 || u32(tail, loc + 16) > 1) throw new ZipRefusal('a multi-disk (spanned) zip');
    if (z64 < 0 || z64 + ZIP64_EOCD_BYTES > loc || u32(tail, z64) !== ZIP64_EOCD_SIGNATURE)
      throw new ZipRefusal('the Zip64 locator points at no Zip64 end record');
    if (u32(tail, z64 + 16) !== 0 || u32(tail, z64 + 20) !== 0) throw new ZipRefusal('a multi-disk (spanned) zip');
    entriesHere = u64(tail, z64 + 24);
    entries = u64(tail, z64 + 32);
    directoryBytes = u64(tail, z64 + 40);
    directoryOffset = u64(tail, z64 + 48);
    directoryEnd = tailStart + z64;
  } else if (overflow) {
    throw new ZipRefusal('the end record needs Zip64 fields but there is no Zip64 locator');
  }
  if (disk !== 0 || cdDisk !== 0 || entriesHere !== entries) throw new ZipRefusal('a multi-disk (spanned) zip');
  if (entries > ZIP_MAX_ENTRIES) throw new ZipRefusal(`${entries} entries (more than ${ZIP_MAX_ENTRIES})`);
  if (directoryBytes > ZIP_MAX_DIRECTORY_BYTES) throw new ZipRefusal(`a central directory of ${directoryBytes} bytes`);
  // The directory must end exactly where the end records begin: nothing hides between them.
  if (directoryOffset + directoryBytes !== directoryEnd)
    throw new ZipRefusal('the central directory does not end where the end record begins');
  return { directoryOffset, directoryBytes, entries };
}

/** A name that cannot escape a folder it might be extracted into, and means one thing on every system. */
export function zipNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/')) return 'is absolute';
  if (/^[A-Za-z]:/.test(name)) return 'starts with a drive letter';
  if (name.split('/').some((seg) => seg === '..' || seg === '.')) return 'has a "." or ".." segment (path traversal)';
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses every central directory record; `dir` is the whole directory. */
export function readZipDirectory(dir: Uint8Array, tail: ZipTail, fileSize: number): ZipEntry[] {
  const out: ZipEntry[] = [];
  const names = new Set<string>();
  let at = 0;
  for (let i = 0; i < tail.entries; i++) {
    if (at + 46 > dir.length || u32(dir, at) !== CENTRAL_SIGNATURE)
      throw new ZipRefusal(`central directory record ${i} is missing or damaged`);
    const flags = u16(dir, at + 8);
    const method = u16(dir, at + 10);
    const crc32 = u32(dir, at + 16);
    let compressedSize = u32(dir, at + 20);
    let size = u32(dir, at + 24);
    const nameLen = u16(dir, at + 28);
    const extraLen = u16(dir, at + 30);
    const commentLen = u16(dir, at + 32);
    const diskStart = u16(dir, at + 34);
    let headerOffset = u32(dir, at + 42);
    const end = at + 46 + nameLen + extraLen + commentLen;
    if (end > dir.length) throw new ZipRefusal(`central directory record ${i} runs past the directory`);
    let name: string;
    try {
      name = utf8.decode(dir.subarray(at + 46, at + 46 + nameLen));
    } catch {
      throw new ZipRefusal(`entry ${i} has a name that is not UTF-8`);
    }
    const problem = zipNameProblem(name);
    if (problem) throw new ZipRefusal(`entry ${JSON.stringify(name)} ${problem}`);
    if (names.has(name)) throw new ZipRefusal(`entry ${JSON.stringify(name)} appears twice`);
    names.add(name);
    // Zip64 extended information: present fields follow in a fixed order, only for those that overflowed.
    const extra = dir.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length; ) {
      const id = u16(extra, e);
      const len = u16(extra, e + 2);
      if (e + 4 + len > extra.length) throw new ZipRefusal(`entry ${JSON.stringify(name)} has a damaged extra field`);
      if (id === 0x0001) {
        let f = e + 4;
        const take = (): number => {
          if (f + 8 > e + 4 + len) throw new ZipRefusal(`entry ${JSON.stringify(name)} has a short Zip64 field`);
          const v = u64(extra, f);
          f += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (headerOffset === 0xffffffff) headerOffset = take();
      }
      e += 4 + len;
    }
    if (diskStart !== 0 && diskStart !== 0xffff) throw new ZipRefusal('a multi-disk (spanned) zip');
    if (flags & 0x0001) throw new ZipRefusal(`entry ${JSON.stringify(name)} is encrypted`);
    if (method === ZIP_METHOD_STORED && compressedSize !== size)
      throw new ZipRefusal(
        `stored entry ${JSON.stringify(name)} declares ${compressedSize} bytes stored but ${size} bytes of content`,
      );
    if (method === ZIP_METHOD_DEFLATED && size > compressedSize * DEFLATE_MAX_RATIO + 1024) {
      throw new ZipRefusal(
        `deflated entry ${JSON.stringify(name)} claims ${size} bytes from ${compressedSize} (more than deflate can produce)`,
      );
    }
    if (method === ZIP_METHOD_DEFLATED && size > ZIP_MAX_INFLATED_BYTES) {
      throw new ZipRefusal(
        `deflated entry ${JSON.stringify(name)} declares ${size} bytes (the cap is ${ZIP_MAX_INFLATED_BYTES})`,
      );
    }
    if (headerOffset + LOCAL_HEADER_BYTES > fileSize)
      throw new ZipRefusal(`entry ${JSON.stringify(name)} points past the end of the file`);
    out.push({ name, method, flags, crc32, compressedSize, size, headerOffset });
    at = end;
  }
  if (at !== dir.length) throw new ZipRefusal('the central directory holds bytes after its last record');
  return out;
}

/** Where an entry's data begins, from the fixed part of its local header. */
export function localDataOffset(header: Uint8Array, entry: ZipEntry): { dataOffset: number; nameLength: number } {
  if (header.length < LOCAL_HEADER_BYTES || u32(header, 0) !== LOCAL_SIGNATURE)
    throw new ZipRefusal(`entry ${JSON.stringify(entry.name)} has no local header where the directory says`);
  const nameLength = u16(header, 26);
  return { dataOffset: entry.headerOffset + LOCAL_HEADER_BYTES + nameLength + u16(header, 28), nameLength };
}

export interface PlacedZipEntry extends ZipEntry {
  dataOffset: number;
  dataEnd: number;
}

/**
 * Entries in file order must not overlap one another or the central directory: every byte has one owner, so
 * cutting the file at entry boundaries rebuilds it exactly.
 */
export function checkPlacement(entries: PlacedZipEntry[], directoryOffset: number): PlacedZipEntry[] {
  const sorted = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  let previousEnd = 0;
  for (const e of sorted) {
    if (e.headerOffset < previousEnd)
      throw new ZipRefusal(`entry ${JSON.stringify(e.name)} overlaps the entry before it`);
    if (e.dataEnd > directoryOffset)
      throw new ZipRefusal(`entry ${JSON.stringify(e.name)} runs into the central directory`);
    previousEnd = e.dataEnd;
  }
  return sorted;
}
