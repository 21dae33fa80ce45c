// A committer's cache of delta bases (spec/FORMAT.md §18). A changed tensor chunk is stored as a delta against
// the parent commit's chunk, so the writer needs that chunk's bytes; read from the store, they are decoded
// through the parent's whole chain (up to 8 links per XORed plane). On a 98.8 MB checkpoint 7 commits deep that
// decoding was 0.8 s of a 2.2 s commit. So each commit leaves the grouped bytes of the chunks it stored as deltas
// in a file named by its tree, outside the store (like borg's and restic's caches), for the next commit on top of
// it. Nothing here is trusted: an entry is used only while the index places the chunk at the very record the
// entry describes (so its chain depth is that record's), and its bytes are hashed against the chunk's ID.
// Anything amiss means the base is read from the store as before; deleting the cache costs only time.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { scratch } from '../core/buffer-pool.js';
import {
  BASE_CACHE_ENTRY_BYTES,
  BASE_CACHE_FOOTER_BYTES,
  BASE_CACHE_MAGIC,
  encodeBaseCacheEntry,
  encodeBaseCacheFooter,
  parseBaseCacheEnds,
  parseBaseCacheTrailer,
  type BaseCacheEntry,
} from '../core/store-format/base-cache-format.js';
import { ungroupBytes } from '../core/store-format/codec/byte-group.js';
import { objectId, type ObjectId } from '../core/store-format/object-id.js';
import { randomHex } from './random-hex.js';

/**
 * Bytes one commit may leave in the cache. Each is written once more than the store writes (to the page cache,
 * not fsynced); past this, the rest of a commit's bases are decoded from the store as without a cache.
 */
export const BASE_CACHE_MAX_BYTES = 1024 * 1024 * 1024;
/** Cache files kept per store (one per branch being committed to, for up to this many branches at once). */
const FILES_KEPT = 4;
/** A store whose cache files are all older than this is assumed gone, and its folder is removed. */
const ABANDONED_MS = 30 * 24 * 3600 * 1000;
const SUFFIX = '.bases';

/** The cache root: CKVC_CACHE_DIR, else $XDG_CACHE_HOME/ckvc, else ~/.cache/ckvc; undefined when turned off. */
function cacheRoot(): string | undefined {
  if (process.env.CKVC_BASE_CACHE === '0') return undefined;
  if (process.env.CKVC_CACHE_DIR) return path.resolve(process.env.CKVC_CACHE_DIR);
  if (process.env.XDG_CACHE_HOME) return path.join(path.resolve(process.env.XDG_CACHE_HOME), 'ckvc');
  const home = os.homedir();
  return home ? path.join(home, '.cache', 'ckvc') : undefined;
}

/** This store's folder of cache files, named by a hash of the store's real path. */
export async function baseCacheDir(storeRoot: string): Promise<string | undefined> {
  const root = cacheRoot();
  if (!root) return undefined;
  const real = await fs.realpath(storeRoot).catch(() => path.resolve(storeRoot));
  const key = new Blake3Hasher().update(Buffer.from(real)).digestBuffer().toString('hex').slice(0, 32);
  return path.join(root, 'bases', key);
}

const cacheFile = (dir: string, tree: ObjectId) => path.join(dir, `${tree}${SUFFIX}`);

/** The cache file a commit of `tree` left, opened and its entries checked for shape; undefined when absent. */
export class BaseCacheReader {
  private constructor(
    private readonly fh: fs.FileHandle,
    private readonly entries: Map<ObjectId, BaseCacheEntry>,
  ) {}

  static async open(dir: string, tree: ObjectId): Promise<BaseCacheReader | undefined> {
    const fh = await fs.open(cacheFile(dir, tree), 'r').catch(() => undefined);
    if (!fh) return undefined;
    try {
      const { size } = await fh.stat();
      if (size < BASE_CACHE_MAGIC.length + BASE_CACHE_FOOTER_BYTES) throw new Error('short');
      const head = Buffer.alloc(BASE_CACHE_MAGIC.length);
      const foot = Buffer.alloc(BASE_CACHE_FOOTER_BYTES);
      await readFully(fh, head, 0);
      await readFully(fh, foot, size - BASE_CACHE_FOOTER_BYTES);
      const place = parseBaseCacheEnds(head, foot, size);
      if (!place) throw new Error('not a cache file');
      const trailer = Buffer.alloc(place.count * BASE_CACHE_ENTRY_BYTES);
      await readFully(fh, trailer, place.trailerOffset);
      const list = parseBaseCacheTrailer(trailer, place.count, place.trailerOffset);
      if (!list) throw new Error('damaged trailer');
      return new BaseCacheReader(fh, new Map(list.map((e) => [e.id, e])));
    } catch {
      await fh.close().catch(() => {});
      return undefined;
    }
  }

  /** The entry for chunk `id` when it was cached grouped by `width` and is `length` bytes long. */
  entry(id: ObjectId, width: number, length: number): BaseCacheEntry | undefined {
    const e = this.entries.get(id);
    return e && e.width === width && e.length === length ? e : undefined;
  }

  /** The entry's grouped bytes when they hash to the chunk's ID; undefined when they do not or cannot be read. */
  async read(e: BaseCacheEntry): Promise<Uint8Array | undefined> {
    const grouped = Buffer.allocUnsafeSlow(e.length);
    try {
      await readFully(this.fh, grouped, e.dataOffset);
    } catch {
      return undefined;
    }
    const plain = e.width > 1 ? ungroupBytes(grouped, e.width, scratch.acquire(e.length)) : grouped;
    try {
      return objectId('chunk', plain) === e.id ? grouped : undefined;
    } finally {
      if (plain !== grouped) scratch.release(plain);
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** Where a record went: the pack's ID is known once the pack is finished. */
export interface PackSlot {
  packId?: string;
}

/** Writes one commit's cache file: entries as their records are encoded, the trailer once the packs are named. */
export class BaseCacheWriter {
  private readonly entries: { e: Omit<BaseCacheEntry, 'packId'>; slot: PackSlot }[] = [];
  private offset = BASE_CACHE_MAGIC.length;
  private failed = false;

  private constructor(
    private readonly dir: string,
    private readonly tmp: string,
    private readonly fh: fs.FileHandle,
  ) {}

  static async create(dir: string): Promise<BaseCacheWriter | undefined> {
    try {
      await fs.mkdir(dir, { recursive: true });
      const tmp = path.join(dir, `tmp-${process.pid}-${randomHex(6)}`);
      const fh = await fs.open(tmp, 'wx', 0o600);
      const w = new BaseCacheWriter(dir, tmp, fh);
      await fh.write(BASE_CACHE_MAGIC, 0, BASE_CACHE_MAGIC.length, 0);
      return w;
    } catch {
      return undefined;
    }
  }

  /**
   * Copies a chunk's grouped bytes now (the caller's buffer is freed once its record is written) and writes the
   * copy; the returned promise settles once it is written and never rejects: a failed write only drops the cache.
   */
  add(
    id: ObjectId,
    width: number,
    depth: number,
    slot: PackSlot,
    recordOffset: number,
    grouped: Uint8Array,
  ): Promise<void> {
    const length = grouped.length;
    if (this.failed || depth > 255 || this.offset + length > BASE_CACHE_MAGIC.length + BASE_CACHE_MAX_BYTES)
      return Promise.resolve();
    const copy = scratch.acquire(length);
    copy.set(grouped);
    const dataOffset = this.offset;
    this.offset += length;
    return writeFully(this.fh, copy, dataOffset).then(
      () => {
        scratch.release(copy);
        this.entries.push({ e: { id, width, depth, recordOffset, dataOffset, length }, slot });
      },
      () => {
        this.failed = true;
      },
    );
  }

  /**
   * Names the file by the commit's tree, then drops the file the commit started from (its successor is this
   * one) and all but the newest files of this store, and the folders of stores not written for a month.
   */
  async finish(tree: ObjectId, consumed: ObjectId | undefined): Promise<void> {
    const entries = this.entries.filter((x) => x.slot.packId);
    try {
      if (this.failed || entries.length === 0) throw new Error('nothing to keep');
      const trailer = Buffer.concat(entries.map((x) => encodeBaseCacheEntry({ ...x.e, packId: x.slot.packId! })));
      const end = Buffer.concat([trailer, encodeBaseCacheFooter(entries.length, this.offset)]);
      await writeFully(this.fh, end, this.offset);
      await this.fh.close();
      await fs.rename(this.tmp, cacheFile(this.dir, tree));
    } catch {
      await this.abort();
    }
    if (consumed && consumed !== tree) await fs.rm(cacheFile(this.dir, consumed), { force: true }).catch(() => {});
    await trimCache(this.dir).catch(() => {});
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
    await fs.rm(this.tmp, { force: true }).catch(() => {});
  }
}

async function trimCache(dir: string): Promise<void> {
  const now = Date.now();
  const files: { name: string; mtime: number }[] = [];
  for (const name of await fs.readdir(dir)) {
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (!st) continue;
    // A temporary file an hour old belongs to a writer that died.
    if (name.startsWith('tmp-') && now - st.mtimeMs > 3600 * 1000) await fs.rm(path.join(dir, name), { force: true });
    if (name.endsWith(SUFFIX)) files.push({ name, mtime: st.mtimeMs });
  }
  files.sort((a, b) => b.mtime - a.mtime);
  for (const f of files.slice(FILES_KEPT)) await fs.rm(path.join(dir, f.name), { force: true });
  const stores = path.dirname(dir);
  for (const other of await fs.readdir(stores)) {
    const folder = path.join(stores, other);
    if (folder === dir) continue;
    const names = await fs.readdir(folder).catch(() => [] as string[]);
    if (names.length === 0) continue; // perhaps another commit's, just made and not yet written to
    const times = await Promise.all(
      names.map((n) =>
        fs.stat(path.join(folder, n)).then(
          (s) => s.mtimeMs,
          () => 0,
        ),
      ),
    );
    if (times.every((t) => now - t > ABANDONED_MS)) await fs.rm(folder, { recursive: true, force: true });
  }
}

async function readFully(fh: fs.FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error('end of file');
    done += bytesRead;
  }
}

async function writeFully(fh: fs.FileHandle, from: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < from.length) {
    const { bytesWritten } = await fh.write(from, done, from.length - done, position + done);
    done += bytesWritten;
  }
}
