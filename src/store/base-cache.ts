// The delta-base cache (spec/FORMAT.md §18): a commit leaves the plain bytes of the tensor chunks it stored as
// deltas, and the next commit takes its delta bases from there instead of decoding them through their chains (an
// inflate and an XOR per XORed plane of every link, up to 8 links: on the real-data series a commit whose parent
// sat 4-7 links deep took 1.4-1.8x the time of one whose parent was plain, README Performance).
//
// The file is not part of the store: it lives in the user's cache folder (`bases/<hash of the store's real path>`),
// as borg and restic keep theirs, so that copying, backing up or measuring a store never includes it.
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
import type { StoreLayout } from './store-layout.js';
import {
  replaceStoreCacheFile,
  storeCacheFile,
  storeCacheTempFile,
  tidyStoreCaches,
  withStoreCacheFile,
} from './store-cache-files.js';

/** The cache may take this share of the free space a commit starts with: it must never be what fills a disk. */
const FREE_SPACE_SHARE = 0.1;
/** Caches of this many stores are kept, the most recently written (each holds at most 1 GiB). */
const STORES_KEPT = 4;

/** Where the cache of the store at `layout` is (its folder made if need be, with `make`); undefined: none to use. */
export function baseCacheFile(layout: StoreLayout, make = true): string | undefined {
  return storeCacheFile('bases', layout, make);
}

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
 * Writes the next cache file while a commit stores its chunks (`<file>.<pid>.<hex>.tmp` beside it), made at the
 * first delta: a commit that stores none (the first of a series) makes no file.
 */
export class BaseCacheWriter {
  private readonly entries = new Map<ObjectId, BaseCacheEntry>();
  private offset = 0;
  private fd: number | undefined;
  /** Nothing more is added: finished, aborted, or a write failed. */
  private closed = false;

  private constructor(
    private readonly file: string,
    private readonly tmpFile: string,
    private readonly budget: number,
  ) {}

  /** Undefined when the cache cannot or should not be written (no folder, no room): the commit goes on. */
  static create(layout: StoreLayout): BaseCacheWriter | undefined {
    try {
      const file = baseCacheFile(layout);
      if (!file) return undefined;
      const free = fs.statfsSync(path.dirname(file));
      const budget = Math.min(BASE_CACHE_MAX_DATA_BYTES, Math.floor(free.bavail * free.bsize * FREE_SPACE_SHARE));
      if (budget <= 0) return undefined;
      return new BaseCacheWriter(file, storeCacheTempFile(file), budget);
    } catch {
      return undefined;
    }
  }

  /** Appends a chunk's plain bytes, before this returns (the caller may reuse them); past the budget, nothing. */
  add(id: ObjectId, bytes: Uint8Array): void {
    if (this.closed || this.entries.has(id) || this.offset + bytes.length > this.budget) return;
    try {
      // Exclusive: never through a link planted under the name.
      this.fd ??= fs.openSync(this.tmpFile, 'wx', 0o600);
      writeFully(this.fd, bytes, this.offset);
    } catch {
      this.abort();
      return;
    }
    this.entries.set(id, { id, offset: this.offset, length: bytes.length });
    this.offset += bytes.length;
  }

  /**
   * Closes the file and renames it over the store's cache, once the commit whose chunks it lists has landed.
   * Without a chunk there is no file, and the cache stays as it was. Never throws.
   */
  finish(): void {
    if (this.closed || this.fd === undefined) return;
    try {
      writeFully(this.fd, encodeBaseCacheTail([...this.entries.values()], this.offset), this.offset);
      this.closed = true;
      fs.closeSync(this.fd);
      replaceStoreCacheFile(this.tmpFile, this.file);
      tidyStoreCaches(path.dirname(this.file), STORES_KEPT);
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
      // a stale temp, which the next cache written removes
    }
  }
}

/**
 * The cache file as it was when opened: its table, and which file that was. No descriptor is kept between reads (a
 * store handle may forget its reader while a read for another writer is under way): each read opens the file again
 * and reads nothing unless it is still the same file, so a cache renamed over it meanwhile is a miss, not a mix.
 */
export class BaseCacheReader {
  private constructor(
    private readonly file: string,
    private readonly identity: string,
    private readonly entries: Map<ObjectId, BaseCacheEntry>,
  ) {}

  /** Undefined when there is no cache or its layout is off (spec/FORMAT.md §18). */
  static open(layout: StoreLayout): BaseCacheReader | undefined {
    const file = baseCacheFile(layout, false);
    if (!file) return undefined;
    return withStoreCacheFile(file, (fd, st) => {
      const footer = Buffer.alloc(BASE_CACHE_FOOTER_BYTES);
      const at = parseFooter(fd, footer, st.size);
      const table = at && Buffer.alloc(st.size - BASE_CACHE_FOOTER_BYTES - at.tableOffset);
      const entries =
        table && readFully(fd, table, at.tableOffset) ? parseBaseCacheTable(table, at.tableOffset) : undefined;
      return entries && new BaseCacheReader(file, identityOf(st), entries);
    });
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
    const ok = withStoreCacheFile(
      this.file,
      (fd, st) => identityOf(st) === this.identity && readFully(fd, plain, e.offset) && objectId('chunk', plain) === id,
    );
    if (!ok || width <= 1) {
      if (!ok) scratch.release(plain);
      return ok ? plain : undefined;
    }
    const grouped = groupBytes(plain, width, scratch.acquire(length));
    scratch.release(plain);
    return grouped;
  }
}

const identityOf = (st: fs.Stats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;

function parseFooter(fd: number, footer: Buffer, size: number) {
  if (size < BASE_CACHE_FOOTER_BYTES || !readFully(fd, footer, size - BASE_CACHE_FOOTER_BYTES)) return undefined;
  return parseBaseCacheFooter(footer, size);
}
