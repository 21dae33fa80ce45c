// Accepts the objects of one operation (a commit, a tag), skips those the store already has, and writes the
// rest into new packs. Existence checks are batched (~8 MiB) so the index is asked once per batch, not per chunk.
// Nothing is visible to readers until commit(): packs are durable first, then indexed (spec/FORMAT.md §9).
import { BufferPool, scratch } from '../core/buffer-pool.js';
import { groupBytes } from '../core/store-format/codec/byte-group.js';
import { planeCoded, type DeltaBase } from '../core/store-format/codec/record-codec.js';
import { CkvcError } from '../core/errors.js';
import { objectId, type ObjectId, type ObjectType } from '../core/store-format/object-id.js';
import { CODECS, type CodecId } from '../core/store-format/pack-format.js';
import type { BaseCacheWriter } from './base-cache.js';
import { ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import type { ObjectIndex } from './object-index.js';
import { PackWriter, type FinishedPack } from './pack-writer.js';
import { wholeRecordCosts } from './plane-chain.js';
import { RECENT_CHUNK_BYTES, type RecentChunks } from './recent-chunks.js';
import type { StoreLayout } from './store-layout.js';

// Two batches are held at once (one written while the next is read); 16 MiB put a 2.25 GiB commit's peak RSS
// at 251-264 MiB, over the 256 MB budget, 8 MiB at 221-235 MiB.
const BATCH_BYTES = 8 * 1024 * 1024;
/**
 * Longest delta chain a writer makes (FORMAT.md §4.3): a chunk whose base already sits this deep is stored plain
 * and starts a new chain. Reading a chunk decodes at most this many bases; see the README's measurements.
 */
export const MAX_WRITTEN_DELTA_DEPTH = 8;
const PACK_TARGET_BYTES = 1024 * 1024 * 1024;
/**
 * Chunks read for the writer (`owned`, see chunkBuffer) and copies of chunks offered as `transient` (views into a
 * read block the reader reuses), held until the store is known to have them or their record is written. Reused: a
 * fresh buffer per chunk (or per read block) costs page faults that made committing unchanged data 4x slower here
 * (README, Performance). Two batches plus the pack writer's records in flight are about 80 chunks of 256 KiB, and
 * the reader's two blocks 64 more.
 */
const chunkBuffers = new BufferPool(160);

/** A buffer to read a chunk into and hand to put() with `owned`, which gives it back here once written. */
export function chunkBuffer(size: number): Buffer {
  return chunkBuffers.acquire(size);
}

interface Pending {
  type: ObjectType;
  id: ObjectId;
  bytes: Uint8Array;
  /** `bytes` is a buffer of `chunkBuffers` (a copy, or handed over), returned there once nothing reads it. */
  pooled: boolean;
  width: number;
  compress: boolean;
  base?: ObjectId;
  storeVersion?: number;
}

/**
 * The delta base offered for a chunk whose lineage ends in chunk `id` (ObjectStore.readDeltaBase): `id`, or the
 * first record of its chain when `id`'s chain is deeper than `maxDepth`, grouped by `width`, with its own `id`
 * and chain depth; undefined when absent; `grouped` undefined (not decoded) when no record of that lineage within
 * `maxDepth` could be read. `grouped` may be a `scratch` buffer: the writer hands it back once the record encoded
 * against it is done.
 */
export type BaseReader = (
  id: ObjectId,
  width: number,
  maxDepth: number,
) => Promise<{ id: ObjectId; grouped: Uint8Array | undefined; depth: number; planeCosts: number[] } | undefined>;

export interface WriteStats {
  objectsSeen: number;
  objectsNew: number;
  /** Chunk (data) bytes offered and the part of them the store did not have yet, before compression. */
  bytesSeen: number;
  bytesNew: number;
}

export class ObjectWriter {
  private pack: PackWriter | undefined;
  private readonly finished: FinishedPack[] = [];
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private readonly known = new Set<ObjectId>();
  private readonly commitBodies = new Map<ObjectId, Uint8Array>();
  /**
   * Plane-coded tensor chunks this writer stored, copied grouped for `recent` (up to RECENT_CHUNK_BYTES), and the
   * depth of the base each was offered.
   */
  private readonly written = new Map<
    ObjectId,
    { grouped: Uint8Array; width: number; baseDepth?: number; planeCosts?: number[] }
  >();
  private writtenBytes = 0;
  readonly stats: WriteStats = { objectsSeen: 0, objectsNew: 0, bytesSeen: 0, bytesNew: 0 };

  /**
   * `dryRun`: objects are hashed, looked up and counted (stats say what is new) but nothing is written and commit()
   * indexes nothing (`ckvc commit --dry-run`).
   */
  constructor(
    private readonly layout: StoreLayout,
    private readonly index: ObjectIndex,
    private readonly readBase?: BaseReader,
    private readonly dryRun = false,
    /** The store's memory of its last commit's chunks, given this writer's once it has committed. */
    private readonly recent?: RecentChunks,
    /** Where the tensor chunks this writer stores are left for the next commit's delta bases (base-cache.ts). */
    private readonly baseCache?: BaseCacheWriter,
  ) {}

  /**
   * Adds an object and returns its ID. `width` is the tensor element width for byte grouping; `base` the chunk
   * this one may be stored as a delta against (the parent commit's chunk at the same place in the same tensor).
   * `transient`: `bytes` may change once this returns (a view into a read block that is reused); what the writer
   * keeps, it copies. `owned`: `bytes` came from chunkBuffer() and is the writer's now (the caller must not touch
   * it again); it goes back to the pool once written or found stored. Otherwise the writer keeps `bytes` itself
   * until the object is written.
   */
  async put(
    type: ObjectType,
    bytes: Uint8Array,
    opts: {
      width?: number;
      compress?: boolean;
      base?: ObjectId;
      storeVersion?: number;
      transient?: boolean;
      owned?: boolean;
    } = {},
  ): Promise<ObjectId> {
    const id = objectId(type, bytes);
    this.stats.objectsSeen++;
    if (type === 'chunk') this.stats.bytesSeen += bytes.length;
    if (type === 'commit') this.commitBodies.set(id, bytes);
    if (this.known.has(id)) {
      if (opts.owned) chunkBuffers.release(bytes);
      return id;
    }
    this.known.add(id);
    const pooled = Boolean(opts.transient || opts.owned);
    this.pending.push({
      type,
      id,
      bytes: opts.transient ? copyOf(bytes) : bytes,
      pooled,
      width: opts.width ?? 1,
      compress: opts.compress ?? true,
      ...(opts.base && opts.base !== id && planeCoded(bytes.length) ? { base: opts.base } : {}),
      ...(opts.storeVersion ? { storeVersion: opts.storeVersion } : {}),
    });
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= BATCH_BYTES) {
      // Double buffering: the previous batch must be done, then this one is written in the background while
      // the caller reads and hashes the next (so disk, hashing and compression overlap).
      await this.inBackground;
      this.inBackground = this.flush();
      this.inBackground.catch(() => {}); // surfaced by the next await of it
    }
    return id;
  }

  private inBackground: Promise<void> = Promise.resolve();

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (batch.length === 0) return;
    const locations = await this.index.session((s) => s.locate(batch.map((p) => p.id)));
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const giveBack = p.pooled ? () => chunkBuffers.release(p.bytes) : undefined;
      if (locations[i]) {
        giveBack?.();
        continue;
      }
      this.stats.objectsNew++;
      if (p.type === 'chunk') this.stats.bytesNew += p.bytes.length;
      if (this.dryRun) {
        giveBack?.();
        continue;
      }
      if (this.pack && this.pack.acceptedBytes >= PACK_TARGET_BYTES) {
        const done = await this.pack.finish();
        if (done) this.finished.push(done);
        this.pack = undefined;
      }
      this.pack ??= await PackWriter.create(this.layout);
      if (p.storeVersion) this.pack.requireStoreVersion(p.storeVersion);
      const tensorChunk = p.type === 'chunk' && p.width > 1 && planeCoded(p.bytes.length);
      if (this.recent && tensorChunk) this.keepCopy(p);
      const kept = this.written.get(p.id);
      const cache = tensorChunk ? this.baseCache : undefined;
      await this.pack.add(p.type, p.id, p.bytes, p.width, p.compress, {
        ...(p.base ? { base: this.baseLoader(p.id, p.base, p.bytes.length, p.width) } : {}),
        ...(giveBack ? { doneWithRaw: giveBack } : {}),
        ...(kept || cache
          ? {
              encoded: (codec: CodecId, planeCosts: number[] | undefined) => {
                if (kept && planeCosts) kept.planeCosts = planeCosts;
                // Only deltas: a base stored without one decodes with a read and at most an inflate a plane, and
                // leaving every chunk of a new 512 MB checkpoint made its commit 7% slower.
                if (codec === CODECS.xorPlanes) cache?.add(p.id, p.bytes);
              },
            }
          : {}),
      });
    }
  }

  /** Reads a delta base when its record is encoded (in the pack writer's parallel jobs); a chain too deep, a
   * base of another length or one that cannot be read means plain encoding, never a failed write. */
  private baseLoader(
    id: ObjectId,
    base: ObjectId,
    length: number,
    width: number,
  ): () => Promise<DeltaBase | undefined> {
    return async () => {
      try {
        const got = await this.readBase?.(base, width, MAX_WRITTEN_DELTA_DEPTH - 1);
        if (!got?.grouped) return undefined;
        // A base decoded for this write is a scratch buffer (a remembered one is not, and release ignores it).
        const { grouped } = got;
        const release = () => scratch.release(grouped);
        if (grouped.length !== length || got.depth + 1 > MAX_WRITTEN_DELTA_DEPTH) {
          release();
          return undefined;
        }
        const written = this.written.get(id);
        if (written) written.baseDepth = got.depth;
        return { id: got.id, bytes: grouped, groupedWidth: width, planeCosts: got.planeCosts, release };
      } catch (e) {
        if (e instanceof CkvcError) return undefined;
        throw e;
      }
    };
  }

  /** Makes everything durable and indexed. After this returns, refs may point at these objects. */
  async commit(): Promise<FinishedPack[]> {
    await this.inBackground;
    await this.flush();
    if (this.pack) {
      const done = await this.pack.finish();
      this.pack = undefined;
      if (done) this.finished.push(done);
    }
    if (this.finished.length) {
      try {
        faultPoint('index.update');
        await this.index.session(async (s) => {
          for (const p of this.finished) {
            const bodies = new Map([...this.commitBodies].filter(([id]) => p.entries.some((e) => e.id === id)));
            await s.addPack(p, bodies);
          }
        });
      } catch (e) {
        throw ioError(e, 'update the index in', this.index.location);
      }
      faultPoint('index.updated');
      this.remember();
    }
    return this.finished;
  }

  /** A copy, not the caller's bytes: those may be views into a large read block that must not stay alive. */
  private keepCopy(p: Pending): void {
    if (this.writtenBytes + p.bytes.length > RECENT_CHUNK_BYTES) return;
    this.writtenBytes += p.bytes.length;
    const grouped = groupBytes(p.bytes, p.width, Buffer.allocUnsafeSlow(p.bytes.length));
    this.written.set(p.id, { grouped, width: p.width });
  }

  /** Hands the chunks now committed to the store's memory, with the depth of the chain each was stored at. */
  private remember(): void {
    if (!this.recent) return;
    const chunks = [];
    for (const pack of this.finished) {
      for (const e of pack.entries) {
        const w = this.written.get(e.id);
        if (!w) continue;
        // A record XORed with its base is one link deeper than that base; any other codec starts a chain.
        const { grouped, width, baseDepth } = w;
        // Stored plane-coded, its planes' costs came with its encoding; stored raw, a read decodes it whole.
        const planeCosts =
          e.codec === CODECS.planes || e.codec === CODECS.xorPlanes
            ? w.planeCosts
            : wholeRecordCosts(e.storedLength, width);
        if (!planeCosts) continue;
        const at = { id: e.id, grouped, width, packId: pack.packId, offset: e.offset, planeCosts };
        if (e.codec !== CODECS.xorPlanes) chunks.push({ ...at, depth: 0 });
        else if (baseDepth !== undefined) chunks.push({ ...at, depth: baseDepth + 1 });
      }
    }
    // A writer that stored no tensor chunk (a tag, a commit object retried) leaves the memory as it was.
    if (chunks.length) this.recent.replace(chunks);
  }

  /**
   * Puts the chunks this writer stored where the next commit takes its delta bases from (base-cache.ts): once
   * the commit they belong to has landed, so that a commit that fails leaves the cache as it was.
   */
  keepBaseCache(): void {
    this.baseCache?.finish();
  }

  /** Drops unfinished work. Packs already finished stay as unreferenced data (gc removes them). */
  async abort(): Promise<void> {
    this.baseCache?.abort();
    this.pending = [];
    await this.inBackground.catch(() => {});
    await this.pack?.abort();
    this.pack = undefined;
  }
}

function copyOf(bytes: Uint8Array): Buffer {
  const copy = chunkBuffers.acquire(bytes.length);
  copy.set(bytes);
  return copy;
}
