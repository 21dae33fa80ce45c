// The delta-base cache (spec/FORMAT.md §18): a commit leaves the plain bytes of the tensor chunks it stored as
// deltas, and the next commit takes its delta bases from there instead of decoding them through their chains (an
// inflate and an XOR per XORed plane of every link, up to 8 links: on the real-data series a commit whose parent
// sat 5-7 links deep took 1.3-1.9x the time of one whose parent was plain, README Performance).
//
// Nothing here is trusted. The reader ignores a file whose layout is off, uses bytes only when they hash to the ID
// asked for, and never tells anyone how deep a chain is (the store's records do: ObjectStore.readChunkGrouped), so
// the records a commit writes are the same with or without this file. Every failure means "not cached": the
// cache can slow a commit down, never fail it. I/O is synchronous: chunks are written as the writer hands them
// over and read while a base is wanted, both from the page cache, where a thread-pool round trip per chunk costs
// more than the copy (as for pack reads, pack-reader.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scratch } from '../core/buffer-pool.js';
import {
  BASE_CACHE_FOOTER_BYTES,
  BASE_CACHE_MAX_DATA_BYTES,
  encodeBaseCacheTail,
  parseBaseCacheFooter,
  parseBaseCacheTable,
  type BaseCacheEntry,
} from '../core/store-format/base-cache-format.js';
import { groupBytes } from '../core/store-format/codec/byte-group.js';
import { objectId, type ObjectId } from '../core/store-format/object-id.js';
import { randomHex } from './random-hex.js';
import type { StoreLayout } from './store-layout.js';

/** The cache may take this share of the free space a commit starts with: it must never be what fills a disk. */
const FREE_SPACE_SHARE = 0.1;

function writeFully(fd: number, bytes: Uint8Array, at: number): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, at + done);
}

function readFully(fd: number, into: Uint8Array, at: number): boolean {
  for (let done = 0; done < into.length; ) {
    const n = fs.readSync(fd, into, done, into.length - done, at + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

/**
 * Writes the next cache file while a commit stores its chunks (`tmp/bases-<pid>-<hex>.tmp`, FORMAT.md §1), made at
 * the first delta: a commit that stores none (the first of a series) makes no file.
 */
export class BaseCacheWriter {
  private readonly entries = new Map<ObjectId, BaseCacheEntry>();
  private offset = 0;
  private fd: number | undefined;
  /** Nothing more is added: finished, aborted, or a write failed. */
  private closed = false;

  private constructor(
    private readonly layout: StoreLayout,
    private readonly tmpFile: string,
    private readonly budget: number,
  ) {}

  /** Undefined when the cache cannot or should not be written (no room, no permission): the commit goes on. */
  static create(layout: StoreLayout): BaseCacheWriter | undefined {
    try {
      fs.mkdirSync(layout.tmpDir, { recursive: true });
      const free = fs.statfsSync(layout.tmpDir);
      const budget = Math.min(BASE_CACHE_MAX_DATA_BYTES, Math.floor(free.bavail * free.bsize * FREE_SPACE_SHARE));
      if (budget <= 0) return undefined;
      return new BaseCacheWriter(layout, path.join(layout.tmpDir, `bases-${process.pid}-${randomHex(6)}.tmp`), budget);
    } catch {
      return undefined;
    }
  }

  /** Appends a chunk's plain bytes, before this returns (the caller may reuse them); past the budget, nothing. */
  add(id: ObjectId, bytes: Uint8Array): void {
    if (this.closed || this.entries.has(id) || this.offset + bytes.length > this.budget) return;
    try {
      this.fd ??= fs.openSync(this.tmpFile, 'wx', 0o644);
      writeFully(this.fd, bytes, this.offset);
    } catch {
      this.abort();
      return;
    }
    this.entries.set(id, { id, offset: this.offset, length: bytes.length });
    this.offset += bytes.length;
  }

  /**
   * Closes the file and renames it over `cache/bases`, once the commit whose chunks it lists has landed. Without
   * a chunk there is no file, and the cache stays as it was. Never throws.
   */
  finish(): void {
    if (this.closed || this.fd === undefined) return;
    try {
      writeFully(this.fd, encodeBaseCacheTail([...this.entries.values()], this.offset), this.offset);
      this.closed = true;
      fs.closeSync(this.fd);
      fs.mkdirSync(this.layout.cacheDir, { recursive: true });
      fs.renameSync(this.tmpFile, this.layout.baseCacheFile);
    } catch {
      this.abort();
    }
  }

  /** Drops the file being written, if any. Never throws. */
  abort(): void {
    const fd = this.fd;
    const open = !this.closed;
    this.closed = true;
    if (fd === undefined) return;
    try {
      if (open) fs.closeSync(fd);
      fs.rmSync(this.tmpFile, { force: true });
    } catch {
      // left as a leftover of §1, which gc removes
    }
  }
}

/** The cache file as it was when opened (a commit replacing it meanwhile renames a new file over the name). */
export class BaseCacheReader {
  private constructor(
    private readonly fd: number,
    private readonly entries: Map<ObjectId, BaseCacheEntry>,
  ) {}

  /** Undefined when there is no cache or its layout is off (spec/FORMAT.md §18). */
  static open(layout: StoreLayout): BaseCacheReader | undefined {
    let fd: number | undefined;
    try {
      // Not through a link, and not blocking on a FIFO planted under the name: only a plain file is read.
      fd = fs.openSync(layout.baseCacheFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      const st = fs.fstatSync(fd);
      const footer = Buffer.alloc(BASE_CACHE_FOOTER_BYTES);
      const at = st.isFile() ? parseFooter(fd, footer, st.size) : undefined;
      const table = at && Buffer.alloc(st.size - BASE_CACHE_FOOTER_BYTES - at.tableOffset);
      const entries =
        table && readFully(fd, table, at.tableOffset) ? parseBaseCacheTable(table, at.tableOffset) : undefined;
      if (entries) return new BaseCacheReader(fd, entries);
    } catch {
      // no cache, or not one we can read: as if absent
    }
    if (fd !== undefined) fs.closeSync(fd);
    return undefined;
  }

  has(id: ObjectId): boolean {
    return this.entries.has(id);
  }

  /**
   * Chunk `id`'s bytes grouped by `width`, in a `scratch` buffer the caller hands back, when the file holds
   * `length` bytes for it that hash to `id`; else undefined.
   */
  readGrouped(id: ObjectId, length: number, width: number): Uint8Array | undefined {
    const e = this.entries.get(id);
    if (!e || e.length !== length) return undefined;
    const plain = scratch.acquire(length);
    let ok = false;
    try {
      ok = readFully(this.fd, plain, e.offset) && objectId('chunk', plain) === id;
    } catch {
      // unreadable: as if absent
    }
    if (!ok || width <= 1) {
      if (!ok) scratch.release(plain);
      return ok ? plain : undefined;
    }
    const grouped = groupBytes(plain, width, scratch.acquire(length));
    scratch.release(plain);
    return grouped;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function parseFooter(fd: number, footer: Buffer, size: number) {
  if (size < BASE_CACHE_FOOTER_BYTES || !readFully(fd, footer, size - BASE_CACHE_FOOTER_BYTES)) return undefined;
  return parseBaseCacheFooter(footer, size);
}
