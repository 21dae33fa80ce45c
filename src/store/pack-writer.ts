// Writes one pack file (spec/FORMAT.md §4): records are compressed on the libuv pool (both cores) and appended
// in completion order, the TOC and footer close the file, and only then is it fsynced and renamed into packs/
// under its checksum. Until finish() returns, nothing in packs/ has changed.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { encodeBody, type DeltaBase } from '../core/store-format/codec/record-codec.js';
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import {
  encodePackEnd,
  encodePackHeader,
  encodePackTail,
  encodeRecordHeader,
  type CodecId,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import { fsyncDir, ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { PACK_V2_STORE_VERSION, upgradeStoreVersion, type StoreLayout } from './store-layout.js';
import { randomHex } from './random-hex.js';

const MAX_IN_FLIGHT = 6;
const FLUSH_BYTES = 4 * 1024 * 1024;

export interface FinishedPack {
  packId: string;
  file: string;
  size: number;
  entries: PackEntry[];
}

export class PackWriter {
  private readonly hasher = new Blake3Hasher();
  private readonly entries: PackEntry[] = [];
  private readonly ids = new Set<ObjectId>();
  private readonly inFlight = new Set<Promise<void>>();
  private pending: Buffer[] = [];
  /** Releases of scratch space that `pending` points into: run once those bytes are written. */
  private afterWrite: (() => void)[] = [];
  private pendingBytes = 0;
  private offset = 0;
  private failure: unknown;
  private rawBytes = 0;
  /** The store version this pack's records need (FORMAT.md §11), set before it enters packs/. */
  private storeVersion = PACK_V2_STORE_VERSION;

  private constructor(
    private readonly layout: StoreLayout,
    private readonly tmpFile: string,
    private readonly fh: fs.FileHandle,
    private readonly durable: boolean,
  ) {}

  /** `durable: false` is for scratch packs that are copied elsewhere and deleted (bundles being sent): no fsyncs. */
  static async create(layout: StoreLayout, opts: { durable?: boolean } = {}): Promise<PackWriter> {
    await fs.mkdir(layout.tmpDir, { recursive: true });
    const tmp = path.join(layout.tmpDir, `pack-${process.pid}-${randomHex(6)}.tmp`);
    faultPoint('pack.create');
    const fh = await fs.open(tmp, 'wx', 0o644).catch((e) => {
      throw ioError(e, 'create', tmp);
    });
    const w = new PackWriter(layout, tmp, fh, opts.durable !== false);
    w.append(encodePackHeader());
    return w;
  }

  /** A record added to this pack needs the store at `version` at least (a JSON render part: 3). */
  requireStoreVersion(version: number): void {
    this.storeVersion = Math.max(this.storeVersion, version);
  }

  has(id: ObjectId): boolean {
    return this.ids.has(id);
  }

  get count(): number {
    return this.ids.size;
  }

  /** Bytes of object data accepted so far (before compression): what decides when to roll to a new pack. */
  get acceptedBytes(): number {
    return this.rawBytes;
  }

  /**
   * Queues an object. Resolves once it is accepted (not yet durable); objects already in this pack are skipped.
   */
  async add(
    type: ObjectType,
    id: ObjectId,
    raw: Uint8Array,
    width = 1,
    tryCompress = true,
    {
      base,
      doneWithRaw,
      encoded,
    }: {
      /**
       * Loads the chunk this one may be delta-coded against; it runs inside the parallel encoding job. Its
       * `release` is called once the record is encoded (the record never points into a base's bytes).
       */
      base?: () => Promise<(DeltaBase & { release?: () => void }) | undefined>;
      /** Called once nothing here reads `raw` any more (encoded, or written when stored as it is). */
      doneWithRaw?: () => void;
      /**
       * Called once the record is encoded, while `raw` is still the caller's to read: with its codec and what each
       * plane costs a reader, when it is plane-coded (EncodedBody).
       */
      encoded?: (codec: CodecId, planeCosts: number[] | undefined) => void;
    } = {},
  ): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ids.has(id)) {
      doneWithRaw?.();
      return;
    }
    this.ids.add(id);
    this.rawBytes += raw.length;
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    const job = (base ? base() : Promise.resolve(undefined))
      .then((b) => encodeBody(raw, width, tryCompress, b).finally(() => b?.release?.()))
      .then(
        async ({ codec, pieces, storedLength, release, planeCosts }) => {
          encoded?.(codec, planeCosts);
          const entry = { id, type, codec, rawLength: raw.length, storedLength, offset: this.offset };
          this.append(encodeRecordHeader(entry));
          for (const p of pieces) this.append(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
          if (release) this.afterWrite.push(release);
          // Stored raw, the record is `raw` itself until written; encoded, its pieces are other buffers.
          if (doneWithRaw && pieces.includes(raw)) this.afterWrite.push(doneWithRaw);
          else doneWithRaw?.();
          this.entries.push(entry);
          if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
        },
        (e) => {
          this.failure = e;
        },
      )
      .finally(() => this.inFlight.delete(job));
    this.inFlight.add(job);
  }

  /**
   * Appends a record already encoded (gc's repack: copied verbatim after its reader verified it). `doneWithBody`
   * is called once `body` is written (or not needed: a record already in this pack).
   */
  async addStored(entry: Omit<PackEntry, 'offset'>, body: Uint8Array, doneWithBody?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ids.has(entry.id)) {
      doneWithBody?.();
      return;
    }
    this.ids.add(entry.id);
    this.rawBytes += entry.rawLength;
    const placed = { ...entry, offset: this.offset };
    this.append(encodeRecordHeader(placed));
    this.append(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    if (doneWithBody) this.afterWrite.push(doneWithBody);
    this.entries.push(placed);
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
    if (this.failure) throw this.failure;
  }

  private append(b: Buffer): void {
    this.hasher.update(b);
    this.pending.push(b);
    this.pendingBytes += b.length;
    this.offset += b.length;
  }

  private flushing: Promise<void> = Promise.resolve();

  private flush(): Promise<void> {
    const bufs = this.pending;
    const releases = this.afterWrite;
    this.pending = [];
    this.afterWrite = [];
    this.pendingBytes = 0;
    // Writes are chained so they land in the order their bytes were hashed and given offsets.
    this.flushing = this.flushing.then(async () => {
      try {
        if (this.failure) return;
        faultPoint('pack.write');
        await this.fh.writev(bufs);
      } catch (e) {
        this.failure = ioError(e, 'write', this.tmpFile);
      } finally {
        for (const release of releases) release();
      }
    });
    return this.flushing;
  }

  async finish(): Promise<FinishedPack | undefined> {
    await Promise.all(this.inFlight);
    if (this.failure) {
      await this.abort();
      throw this.failure;
    }
    if (this.entries.length === 0) {
      await this.abort();
      return undefined;
    }
    const tocOffset = this.offset;
    this.append(encodePackTail(this.entries, tocOffset));
    const checksum = this.hasher.digestBuffer();
    const end = encodePackEnd(checksum);
    this.pending.push(end);
    this.offset += end.length;
    await this.flush();
    if (this.failure) {
      await this.abort();
      throw this.failure;
    }
    const packId = checksum.toString('hex');
    const file = this.layout.packFile(packId);
    try {
      faultPoint('pack.fsync');
      if (this.durable) await this.fh.sync();
      await this.fh.close();
      await fs.mkdir(this.layout.packsDir, { recursive: true });
      if (this.durable) await upgradeStoreVersion(this.layout, this.storeVersion);
      faultPoint('pack.rename');
      await fs.rename(this.tmpFile, file);
      faultPoint('pack.dirsync');
      if (this.durable) await fsyncDir(this.layout.packsDir);
      faultPoint('pack.done');
    } catch (e) {
      await this.abort();
      throw ioError(e, 'store pack', file);
    }
    return { packId, file, size: this.offset, entries: this.entries };
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    await this.flushing.catch(() => {});
    await this.fh.close().catch(() => {});
    await fs.rm(this.tmpFile, { force: true });
  }
}
