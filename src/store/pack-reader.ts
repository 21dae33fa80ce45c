// Reads records out of pack files and verifies them: the record header must agree with the index entry,
// the body must decode, and the decoded bytes must hash to the object ID. Nothing unverified is returned, but to a
// caller that takes the last check over (readObject's `hashCheck`: a checkout file hashed whole before its rename).
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import { scratch, type BufferPool } from '../core/buffer-pool.js';
import { groupBytes, ungroupBytes } from '../core/store-format/codec/byte-group.js';
import {
  DELTA_HEAD_BYTES,
  PLANE_XOR,
  PLANE_ZSTD,
  parseDeltaHead,
  parsePlaneTable,
} from '../core/store-format/codec/plane-codec.js';
import { decodeBody } from '../core/store-format/codec/record-codec.js';
import { CkvcError } from '../core/errors.js';
import { objectId, type ObjectId, type ObjectType } from '../core/store-format/object-id.js';
import {
  checkPackHeader,
  CODECS,
  decodeFooter,
  MAX_OBJECT_BYTES,
  decodeRecordHeader,
  decodeToc,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import { ioError } from './durable-fs.js';
import { PackPrefetch } from './pack-prefetch.js';
import {
  decodePlaneChain,
  planeChainShape,
  wholeRecordCosts,
  type ChainSource,
  type KnownChunk,
} from './plane-chain.js';
import type { StoreLayout } from './store-layout.js';

const MAX_OPEN = 64;
/**
 * Longest chain of delta records a read follows (FORMAT.md §4.3). Writers keep chains far shorter
 * (MAX_WRITTEN_DELTA_DEPTH); the cap bounds the work a hostile or looping chain can cause.
 */
export const MAX_DELTA_CHAIN = 64;

export interface ObjectLocation {
  packId: string;
  entry: PackEntry;
}

/** Where a delta record's base is: the store's index, or (for a received bundle) the bundle's own records. */
export type BaseLocator = (id: ObjectId) => Promise<ObjectLocation | undefined>;

export interface GroupedObject {
  /** The bytes, byte-grouped by the width asked for; undefined when not decoded (deeper than asked for). */
  grouped: Uint8Array | undefined;
  depth: number;
  /**
   * Per plane of that width, the stored bytes a reader reads for it (its chain's, when XORed): what a delta on
   * this chunk would add to every later read of that plane (spec/FORMAT.md §4.3). A record decoded whole costs
   * its stored length spread over the planes.
   */
  planeCosts: number[];
}

export interface DecodedObject {
  bytes: Uint8Array;
  /**
   * How many delta records lie under the record (its chain's length, what a writer bounds): 0 for a record that
   * needs no base, and 0 where the reader was not asked for it (a checkout does not need it).
   */
  depth: number;
}

export class PackReader {
  private readonly open = new Map<string, Promise<fs.FileHandle>>();
  private baseLocator: BaseLocator | undefined;
  private readonly prefetch = new PackPrefetch();
  /** Packs read from a file of their own instead of the layout's packs/ (a received pack still in quarantine). */
  private readonly elsewhere = new Map<string, string>();

  constructor(private readonly layout: StoreLayout) {}

  /** Reads pack `packId` from `file` (a received thin pack, verified against the store's own records). */
  readPackFrom(packId: string, file: string): void {
    this.elsewhere.set(packId, file);
  }

  /** Without a locator, a delta record cannot be read (CKVC_MISSING_OBJECT names its base). */
  setBaseLocator(locate: BaseLocator): void {
    this.baseLocator = locate;
  }

  private handle(packId: string): Promise<fs.FileHandle> {
    let h = this.open.get(packId);
    if (h) {
      this.open.delete(packId);
      this.open.set(packId, h); // most recently used last
      return h;
    }
    if (this.open.size >= MAX_OPEN) {
      const [oldest, oh] = this.open.entries().next().value as [string, Promise<fs.FileHandle>];
      this.open.delete(oldest);
      void oh.then((f) => f.close()).catch(() => {});
    }
    const file = this.elsewhere.get(packId) ?? this.layout.packFile(packId);
    h = fs.open(file, 'r').catch((e) => {
      this.open.delete(packId);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CkvcError(
          'CKVC_MISSING_OBJECT',
          `pack ${packId.slice(0, 16)} is missing from ${this.layout.packsDir}; run 'ckvc verify' to see what is affected`,
          { pack: packId },
        );
      }
      throw ioError(e, 'open', file);
    });
    this.open.set(packId, h);
    return h;
  }

  async readAt(packId: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const fh = await this.handle(packId);
    const buf = into ?? Buffer.allocUnsafe(length);
    const t0 = process.hrtime.bigint();
    let done = 0;
    while (done < length) {
      // Synchronous pread: records are small and mostly in the page cache, and a thread-pool round trip per
      // record cost more than the read itself (measured: ~5x the CPU on checkout). Decompression stays async.
      const bytesRead = fsSync.readSync(fh.fd, buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new CkvcError(
          'CKVC_CORRUPT_PACK',
          `pack ${packId.slice(0, 16)} is truncated: cannot read ${length} bytes at ${offset}`,
          { pack: packId, offset },
        );
      }
      done += bytesRead;
    }
    this.prefetch.observe(packId, fh, offset, length, process.hrtime.bigint() - t0);
    return buf;
  }

  /**
   * Reads, decodes and verifies one object. `expectType` guards against an index pointing at the wrong record.
   * With `pool`, scratch buffers come from it and the result may be a pool buffer the caller can release.
   * With `hashCheck` 'caller', the last check, the decoded bytes' hash against `id`, is the caller's to make
   * before anything uses them (a checkout hashing on another thread: off-thread-writer.ts); every other check
   * is made here.
   */
  async readObject(
    loc: ObjectLocation,
    id: ObjectId,
    expectType?: ObjectType,
    pool?: BufferPool,
    locateBase?: BaseLocator,
    hashCheck: 'here' | 'caller' = 'here',
  ): Promise<Uint8Array> {
    return this.readPooled(loc, id, pool, async (buf, where) => {
      const d = await this.decodeRecord(
        buf,
        loc,
        id,
        where,
        expectType,
        pool,
        0,
        false,
        locateBase,
        undefined,
        false,
        hashCheck,
      );
      return d.bytes;
    });
  }

  /**
   * Reads a record into a `pool` buffer when there is one and decodes it. A raw record's body is returned as it
   * was read: the caller gets the pool buffer with it, to hand back (a fresh buffer per record page-faulted on
   * every read of a checkout, README Performance); otherwise the buffer goes back to the pool at once.
   */
  private async readPooled<T extends Uint8Array | { bytes: Uint8Array } | GroupedObject>(
    loc: ObjectLocation,
    id: ObjectId,
    pool: BufferPool | undefined,
    decode: (buf: Buffer, where: string) => Promise<T>,
  ): Promise<T> {
    const into = this.recordBuffer(loc, pool);
    let handedOver = false;
    try {
      const { buf, where } = await this.readRecord(loc, id, into);
      const out = await decode(buf, where);
      const bytes = out instanceof Uint8Array ? out : 'bytes' in out ? out.bytes : out.grouped;
      handedOver = into !== undefined && bytes?.buffer === into.buffer;
      return out;
    } finally {
      if (into && !handedOver) pool!.release(into);
    }
  }

  /** A pool buffer for a record, unless its location is over the object cap (readRecord refuses it then). */
  private recordBuffer(loc: ObjectLocation, pool: BufferPool | undefined): Buffer | undefined {
    const length = loc.entry.storedLength;
    return pool && length <= MAX_OBJECT_BYTES ? pool.acquire(RECORD_HEADER_BYTES + length) : undefined;
  }

  /** A record's header and stored body, read whole once its location passes the object cap. */
  private async readRecord(loc: ObjectLocation, id: ObjectId, into?: Buffer): Promise<{ buf: Buffer; where: string }> {
    const { packId, entry } = loc;
    const where = objectWhere(id, packId);
    if (entry.storedLength > MAX_OBJECT_BYTES) {
      throw new CkvcError(
        'CKVC_CORRUPT_PACK',
        `${where}: location says ${entry.storedLength} bytes, over the 64 MiB object limit; run 'ckvc index rebuild'`,
        { id, pack: packId },
      );
    }
    return { buf: await this.readAt(packId, entry.offset, RECORD_HEADER_BYTES + entry.storedLength, into), where };
  }

  /**
   * Reads, decodes and verifies one object like readObject (the same checks, the same chain bound); a base `known`
   * answers for is taken from there instead of being decoded through its own chain (verify-in-chain-order.ts).
   * With `keep`, also returns what a delta on this chunk needs of it (`known`). Unless `known` holds them, the
   * result's bytes may be a `scratch` (or `pool`) buffer that the caller hands back once done with them.
   */
  async readVerified(
    loc: ObjectLocation,
    id: ObjectId,
    expectType: ObjectType,
    locateBase: BaseLocator | undefined,
    known: (id: ObjectId) => KnownChunk | undefined,
    keep: boolean,
    /** Not with `keep`: the record is read into it, and decoded into it when it is not stored raw. */
    pool?: BufferPool,
  ): Promise<{ bytes: Uint8Array; known?: KnownChunk }> {
    const into = keep ? undefined : pool;
    return this.readPooled(loc, id, into, async (buf, where) => {
      const d = await this.decodeRecord(buf, loc, id, where, expectType, into, 0, false, locateBase, known, keep);
      return { bytes: d.bytes, known: keep ? (d.grouped ?? { bytes: d.bytes, width: 1, loc }) : undefined };
    });
  }

  /** The base a codec 6 record names, without decoding it; undefined for other codecs. */
  async readDeltaBaseId(loc: ObjectLocation): Promise<ObjectId | undefined> {
    return (await this.readDeltaHead(loc))?.base;
  }

  /** The base and element width a codec 6 record names, without decoding it; undefined for other codecs. */
  async readDeltaHead(loc: ObjectLocation): Promise<{ base: ObjectId; width: number } | undefined> {
    const { packId, entry } = loc;
    if (entry.codec !== CODECS.xorPlanes) return undefined;
    const where = `object ${entry.id.slice(0, 16)} in pack ${packId.slice(0, 16)}`;
    const head = Math.min(entry.storedLength, DELTA_HEAD_BYTES);
    const buf = await this.readAt(packId, entry.offset, RECORD_HEADER_BYTES + head);
    const header = namingPack(packId, () =>
      decodeRecordHeader(buf.subarray(0, RECORD_HEADER_BYTES), entry.offset, where),
    );
    if (header.id !== entry.id || header.codec !== entry.codec) {
      throw new CkvcError(
        'CKVC_CORRUPT_PACK',
        `${where}: record header does not match the index (damaged pack, or run 'ckvc index rebuild')`,
        { id: entry.id, pack: packId },
      );
    }
    const { width, baseId } = parseDeltaHead(buf.subarray(RECORD_HEADER_BYTES), where);
    return { base: baseId, width };
  }

  /** What a plane chain (plane-chain.ts) reads through; `locateBase` overrides the store's locator. */
  private chainSource(locateBase?: BaseLocator, knownBase?: ChainSource['knownBase']): ChainSource {
    return {
      knownBase,
      readAt: (packId, offset, length, into) => this.readAt(packId, offset, length, into),
      locateBase: async (id) => (locateBase ?? this.baseLocator)?.(id),
      checkedHeader: (buf, loc, id, where) => this.checkedHeader(buf, loc, id, where, undefined),
      // A base's depth counts toward the chain the writer bounds, whatever width it was stored at.
      decodeWhole: (buf, loc, id, where, depth) =>
        this.decodeRecord(buf, loc, id, where, 'chunk', undefined, depth, true, locateBase, knownBase),
      maxChain: MAX_DELTA_CHAIN,
    };
  }

  /**
   * A chunk grouped by `width`, verified against its ID, and how deep its delta chain is: what a writer needs
   * of a base it is about to encode against (FORMAT.md §4.3). A plane-coded chunk whose chain is deeper than
   * `maxDepth` is not decoded (`grouped` undefined, `depth` its chain's). The grouped bytes may be a `scratch`
   * buffer, which the caller hands back once done with them.
   */
  async readChunkGrouped(
    loc: ObjectLocation,
    id: ObjectId,
    width: number,
    locateBase?: BaseLocator,
    maxDepth?: number,
  ): Promise<GroupedObject> {
    // The record is read into scratch: a commit reads one base per changed chunk, and a fresh buffer for each
    // was a third of the memory it allocated (page faults, and a major GC every ~70 ms).
    return this.readPooled(loc, id, scratch, async (buf, where) => {
      const header = this.checkedHeader(buf, loc, id, where, 'chunk');
      if ((header.codec !== CODECS.planes && header.codec !== CODECS.xorPlanes) || buf[RECORD_HEADER_BYTES] !== width) {
        // Another codec or width: decoded plain (and verified), then grouped as asked.
        const plain = await this.decodeRecord(buf, loc, id, where, 'chunk', undefined, 0, true, locateBase);
        const grouped = width > 1 ? groupBytes(plain.bytes, width, scratch.acquire(plain.bytes.length)) : plain.bytes;
        return { grouped, depth: plain.depth, planeCosts: wholeRecordCosts(header.storedLength, width) };
      }
      const got = await decodePlaneChain(this.chainSource(locateBase), buf, loc, header, where, 0, true, maxDepth);
      if (!got.grouped) return got;
      // Un-grouped only to be hashed: into scratch, not a fresh zeroed array per base a commit reads.
      const plain = width > 1 ? ungroupBytes(got.grouped, width, scratch.acquire(got.grouped.length)) : got.grouped;
      const hash = objectId('chunk', plain);
      if (plain !== got.grouped) scratch.release(plain);
      if (hash !== id) throw hashMismatch(id, loc.packId);
      return got;
    });
  }

  /**
   * For a writer that has chunk `id`'s bytes already, grouped by `width` (`grouped`, from store/base-cache.ts): how
   * deep its delta chain is and what each plane costs a reader, as readChunkGrouped would report them, from the
   * chain's headers and plane tables, inflating nothing. The record itself is read whole, and its planes stored as
   * they are (neither compressed nor XORed) and its tail must equal `grouped`'s: a record cut short or damaged
   * there is not built on (undefined, as for a record not plane-coded at `width`: the caller decodes it instead).
   */
  async readChunkShape(
    loc: ObjectLocation,
    id: ObjectId,
    width: number,
    grouped: Uint8Array,
    locateBase?: BaseLocator,
  ): Promise<{ depth: number; planeCosts: number[] } | undefined> {
    const { packId, entry } = loc;
    if ((entry.codec !== CODECS.planes && entry.codec !== CODECS.xorPlanes) || entry.storedLength > MAX_OBJECT_BYTES)
      return undefined;
    const where = objectWhere(id, packId);
    const buf = await this.readAt(
      packId,
      entry.offset,
      RECORD_HEADER_BYTES + entry.storedLength,
      scratch.acquire(RECORD_HEADER_BYTES + entry.storedLength),
    );
    try {
      const header = this.checkedHeader(buf, loc, id, where, 'chunk');
      const body = buf.subarray(RECORD_HEADER_BYTES);
      if (body[0] !== width || header.rawLength !== grouped.length) return undefined;
      const table = parsePlaneTable(body, body.length, header.rawLength, header.codec === CODECS.xorPlanes, where);
      const n = Math.floor(header.rawLength / width);
      const asStored = table.planes.every(
        ({ mode, offset, length }, j) =>
          mode & (PLANE_ZSTD | PLANE_XOR) ||
          Buffer.compare(body.subarray(offset, offset + length), grouped.subarray(j * n, (j + 1) * n)) === 0,
      );
      if (!asStored || Buffer.compare(body.subarray(table.tailOffset), grouped.subarray(n * width)) !== 0)
        return undefined;
      return await planeChainShape(this.chainSource(locateBase), table, loc, header, where);
    } finally {
      scratch.release(buf);
    }
  }

  /**
   * Reads one record and returns its stored (still encoded) body. With `verify` (gc's copies, which nobody else
   * checks) it is decoded and re-hashed like readObject; without (records sent to another store, which
   * re-hashes every one in its quarantine) only its header is checked against the index.
   */
  async readStoredRecord(
    loc: ObjectLocation,
    id: ObjectId,
    opts: { verify: boolean; pool?: BufferPool },
  ): Promise<Buffer> {
    // With `pool`, the body is a view of a pool buffer: the caller hands it back once done with it.
    const { buf, where } = await this.readRecord(loc, id, this.recordBuffer(loc, opts.pool));
    if (opts.verify) await this.decodeRecord(buf, loc, id, where, loc.entry.type, undefined, 0);
    else this.checkedHeader(buf, loc, id, where, loc.entry.type);
    return buf.subarray(RECORD_HEADER_BYTES);
  }

  private checkedHeader(
    buf: Buffer,
    loc: ObjectLocation,
    id: ObjectId,
    where: string,
    expectType: ObjectType | undefined,
  ): PackEntry {
    const { packId, entry } = loc;
    const header = namingPack(packId, () =>
      decodeRecordHeader(buf.subarray(0, RECORD_HEADER_BYTES), entry.offset, where),
    );
    // The raw length too: callers size buffers and budget memory by the location's (verify-in-chain-order.ts).
    if (
      header.id !== id ||
      header.storedLength !== entry.storedLength ||
      header.codec !== entry.codec ||
      header.rawLength !== entry.rawLength
    ) {
      throw new CkvcError(
        'CKVC_CORRUPT_PACK',
        `${where}: record header does not match the index or its pack's table of contents (damaged pack, or run ` +
          "'ckvc index rebuild')",
        { id, pack: packId },
      );
    }
    if (expectType && header.type !== expectType) {
      throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: is a ${header.type}, expected a ${expectType}`, {
        id,
        pack: packId,
      });
    }
    return header;
  }

  private async decodeRecord(
    buf: Buffer,
    loc: ObjectLocation,
    id: ObjectId,
    where: string,
    expectType: ObjectType | undefined,
    pool: BufferPool | undefined,
    depth: number,
    /** Whether the caller needs `depth` of the result (a writer bounding its chains); else it is reported 0. */
    needDepth = false,
    locateBase?: BaseLocator,
    knownBase?: ChainSource['knownBase'],
    /** Also return a plane-coded chunk's grouped bytes (a base for what comes next), not handed back to scratch. */
    keepGrouped = false,
    hashCheck: 'here' | 'caller' = 'here',
  ): Promise<DecodedObject & { grouped?: KnownChunk }> {
    const header = this.checkedHeader(buf, loc, id, where, expectType);
    const body = buf.subarray(RECORD_HEADER_BYTES);
    let decoded: DecodedObject & { grouped?: KnownChunk };
    if (header.codec === CODECS.planes || header.codec === CODECS.xorPlanes) {
      if (header.type !== 'chunk')
        throw new CkvcError(
          'CKVC_CORRUPT_OBJECT',
          `${where}: a ${header.type} stored plane by plane (only chunks may be)`,
          { id, pack: loc.packId },
        );
      const width = body[0] ?? 1;
      const source = this.chainSource(locateBase, knownBase);
      const got = await decodePlaneChain(source, buf, loc, header, where, depth, needDepth);
      const grouped = got.grouped!; // decoded whatever its depth: no maxDepth asked
      if (keepGrouped) {
        // Un-grouped only to be hashed (the grouped copy is what is kept): into scratch (readVerified).
        const bytes = width > 1 ? ungroupBytes(grouped, width, scratch.acquire(grouped.length)) : grouped;
        decoded = { bytes, depth: got.depth, grouped: { bytes: grouped, width, planeDepths: got.planeDepths, loc } };
      } else if (width > 1) {
        decoded = { bytes: ungroupBytes(grouped, width, pool?.acquire(grouped.length)), depth: got.depth };
        scratch.release(grouped);
      } else decoded = { bytes: grouped, depth: got.depth };
    } else decoded = { bytes: await decodeBody(header.codec, body, header.rawLength, where, pool), depth: 0 };
    if (hashCheck === 'here' && objectId(header.type, decoded.bytes) !== id) throw hashMismatch(id, loc.packId);
    return decoded;
  }

  /**
   * The TOC of a pack, or undefined when the pack is damaged or newer than this reader (verify reports it), or
   * gone since it was listed: a gc or consolidation in another process deleted it, after the objects in it that
   * live on were safe in another pack (an index sync then sees the store as it is now, not a missing object).
   */
  async readTocIfSound(packId: string): Promise<Awaited<ReturnType<PackReader['readToc']>> | undefined> {
    try {
      return await this.readToc(packId);
    } catch (e) {
      if (e instanceof CkvcError && (e.code === 'CKVC_CORRUPT_PACK' || e.code === 'CKVC_UNSUPPORTED_VERSION'))
        return undefined;
      if (e instanceof CkvcError && e.code === 'CKVC_MISSING_OBJECT' && e.data.pack === packId) return undefined;
      throw e;
    }
  }

  /** The entries a pack file lists, checked against its header and footer (not re-hashed). */
  async readToc(packId: string): Promise<{ entries: PackEntry[]; size: number; checksum: string }> {
    const fh = await this.handle(packId);
    const where = `pack ${packId.slice(0, 16)}`;
    const size = (await fh.stat()).size;
    if (size < PACK_HEADER_BYTES + PACK_FOOTER_BYTES)
      throw new CkvcError('CKVC_CORRUPT_PACK', `${where} is truncated (${size} bytes)`, { pack: packId });
    try {
      checkPackHeader(await this.readAt(packId, 0, PACK_HEADER_BYTES), where);
      const footer = decodeFooter(await this.readAt(packId, size - PACK_FOOTER_BYTES, PACK_FOOTER_BYTES), size, where);
      const toc = await this.readAt(packId, footer.tocOffset, footer.count * TOC_ENTRY_BYTES);
      return { entries: decodeToc(toc, footer.count, footer.tocOffset, where), size, checksum: footer.checksum };
    } catch (e) {
      throw withPackId(e, packId);
    }
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map(async (h) => (await h).close()));
  }
}

/**
 * A damaged-pack error from the pure decoders (which know only a description of where) with the pack's ID in its
 * data, so that verify can tell which pack to examine.
 */
function withPackId(e: unknown, packId: string): unknown {
  if (e instanceof CkvcError && e.code === 'CKVC_CORRUPT_PACK' && e.data.pack === undefined)
    return new CkvcError(e.code, e.message, { ...e.data, pack: packId });
  return e;
}

function namingPack<T>(packId: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw withPackId(e, packId);
  }
}

/** Where an object read from a pack is placed in messages: the first 16 hex digits of its ID and of its pack. */
function objectWhere(id: ObjectId, packId: string): string {
  return `object ${id.slice(0, 16)} in pack ${packId.slice(0, 16)}`;
}

/** An object whose decoded bytes do not hash to its ID. */
function hashMismatch(id: ObjectId, packId: string): CkvcError {
  return new CkvcError(
    'CKVC_CORRUPT_OBJECT',
    `${objectWhere(id, packId)}: content does not match its hash (the pack is damaged; 'ckvc verify --read-data' lists the checkpoints it costs, 'ckvc repair --from REMOTE' mends them)`,
    { id, pack: packId },
  );
}
