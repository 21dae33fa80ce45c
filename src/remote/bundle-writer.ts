// Writes a bundle (spec/BUNDLE.md): preamble, header, pack and trailer, streamed to the destination. The objects
// are copied verbatim (record headers checked; the receiver re-hashes every record), straight into the stream; a
// bundle that re-encodes a delta is first made as a scratch pack in the store's tmp/ (the system's temp folder
// when this user may not write the store).
import { verifyInChainOrder } from '../store/verify-in-chain-order.js';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import {
  BUNDLE_END_MAGIC,
  BUNDLE_VERSION,
  configLabelProblem,
  encodeBundleHeader,
  encodeBundlePreamble,
  REQUIRED_CAPABILITIES,
  type BundleConfigLabel,
  type BundleHeader,
  type BundlePruneRecord,
  type BundleRef,
} from '../core/store-format/bundle-format.js';
import { scratch } from '../core/buffer-pool.js';
import { CkvcError } from '../core/errors.js';
import {
  encodePackEnd,
  encodePackHeader,
  encodePackTail,
  encodeRecordHeader,
  PACK_HEADER_BYTES,
  packLength,
  RECORD_HEADER_BYTES,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { ioError } from '../store/durable-fs.js';
import { removedIfInterrupted } from '../store/interrupt-cleanup.js';
import type { ObjectStore } from '../store/object-store.js';
import type { ObjectLocation } from '../store/pack-reader.js';
import { PackWriter } from '../store/pack-writer.js';
import type { PruneRecord } from '../store/prune-records.js';
import { StoreLayout } from '../store/store-layout.js';
import { type BundleDeltas, planBundleDeltas } from './bundle-deltas.js';

export interface BundleContent {
  refs: BundleRef[];
  objects: ObjectId[];
  /** Where `objects` are, in their order, when the caller has just looked them up (a push batch, as it starts). */
  located?: ObjectLocation[];
  prerequisites: ObjectId[];
  pruned: PruneRecord[];
  /** Commits among `objects` whose history stops at them (BUNDLE.md §2 `shallow`). */
  shallow?: ObjectId[];
  /**
   * Chunks outside `objects` the receiver said it holds, with their chain depth there: delta records on them may
   * travel as they are (a thin bundle, BUNDLE.md §5). Only push and fetch know their receiver.
   */
  receiverHolds?: ReadonlyMap<ObjectId, number>;
}

export interface WrittenBundle {
  bytes: number;
  objects: number;
  packLength: number;
  trailer: string;
  /** The config labels the bundle carries (BUNDLE.md §5). */
  labels: BundleConfigLabel[];
  /** Delta records sent as they are stored, and those re-encoded without their base. */
  deltasKept: number;
  deltasReencoded: number;
}

/**
 * Streams a bundle into `sink` (not ended). Memory holds one record at a time. `verifyRecords`: every record is
 * decoded and re-hashed first. A bundle file is an archive, read perhaps long after and far away: it must not be
 * written from a damaged pack (`ckvc pack` fails instead, as a push does at its receiver, which re-hashes what it
 * gets).
 */
export async function writeBundle(
  store: ObjectStore,
  content: BundleContent,
  sink: Writable,
  opts: { verifyRecords?: boolean } = {},
): Promise<WrittenBundle> {
  const locs = content.located ?? (await store.locateAll(content.objects, 'object to send'));
  // Every record decoded against its base once (verify --read-data's way), before a byte is written: decoding
  // each as it is copied would go through its whole chain, and took pack of a 420 MB store from 1.9 to 4.3 s.
  if (opts.verifyRecords) await verifyInChainOrder(store.packs, locs, {});
  if (locs.length !== content.objects.length || locs.some((l, i) => l.entry.id !== content.objects[i]))
    throw new CkvcError('CKVC_INTERNAL', 'bundle writer: the locations given are not those of the objects', {});
  const deltas = await planBundleDeltas(store, locs, content.receiverHolds);
  const configs = new Set<string>();
  for (const { entry } of locs) {
    if (entry.type !== 'commit') continue;
    const hash = (await store.readCommit(entry.id)).config?.hash;
    if (hash) configs.add(hash);
  }
  const labels = await labelsOf(store, configs);
  const out = new BundleOutput(sink);
  const start = headerOnceSized(out, {
    refs: content.refs,
    prerequisites: content.prerequisites,
    pruned: content.pruned,
    labels,
    shallow: content.shallow ?? [],
    bases: [...deltas.outside],
    objects: content.objects.length,
  });
  // Records copied as they are stored have known lengths, so the pack goes straight to the sink as it is read. A
  // delta re-encoded without its base is as long as its encoding turns out: then the pack is made first, in a
  // scratch file (which costs the receiver the time to write and read it back: a second on a 480 MB fetch).
  const packLength =
    deltas.reencode.size === 0 && new Set(content.objects).size === content.objects.length
      ? await streamPack(
          locs.map((loc) => ({
            entry: loc.entry,
            // A buffer of its own, not a pooled one: a sink's write callback does not say that nothing holds the
            // bytes any more (a PassThrough calls it once they are queued for its reader).
            read: () => store.packs.readStoredRecord(loc, loc.entry.id, { verify: false }),
          })),
          start,
          out,
        )
      : await scratchPack(store, locs, deltas, start, out);
  const trailer = out.hash();
  await out.put(Buffer.concat([trailer, BUNDLE_END_MAGIC]));
  await out.end();
  return {
    bytes: out.bytes,
    objects: content.objects.length,
    packLength,
    trailer: trailer.toString('hex'),
    labels,
    deltasKept: deltas.widths.size - deltas.reencode.size,
    deltasReencoded: deltas.reencode.size,
  };
}

/**
 * Writes the preamble and header once the pack's length is known, which the header states (the pack follows it).
 * Writers leave `shallow` and `bases` out when empty (BUNDLE.md §2).
 */
function headerOnceSized(
  out: BundleOutput,
  h: Pick<BundleHeader, 'refs' | 'prerequisites' | 'pruned' | 'objects'> & {
    labels: BundleConfigLabel[];
    shallow: ObjectId[];
    bases: ObjectId[];
  },
): (packLength: number) => Promise<void> {
  return async (packLength) => {
    const header = encodeBundleHeader({
      version: BUNDLE_VERSION,
      required: REQUIRED_CAPABILITIES,
      optional: [],
      refs: h.refs,
      prerequisites: h.prerequisites,
      pruned: h.pruned,
      labels: h.labels,
      ...(h.shallow.length ? { shallow: h.shallow } : {}),
      ...(h.bases.length ? { bases: h.bases } : {}),
      packLength,
      objects: h.objects,
      created: Date.now(),
    });
    await out.put(encodeBundlePreamble(header.length));
    await out.put(header);
  };
}

/** Pieces smaller than this are gathered into one write of up to COALESCE_BYTES (record headers, TOC entries). */
const SMALL_PIECE_BYTES = 16 * 1024;
const COALESCE_BYTES = 256 * 1024;

/** The bundle's bytes into its sink, hashed for the trailer, waiting whenever the sink is full. */
class BundleOutput {
  private readonly hasher = new Blake3Hasher();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytes = 0;

  constructor(private readonly sink: Writable) {}

  /**
   * Writes `b`, which the sink may keep: it must not be changed or reused afterwards. Small pieces are gathered
   * (a write each made a chunk of its own in a chunked HTTP body: thousands for a pack's TOC); end() sends the rest.
   */
  async put(b: Buffer): Promise<void> {
    this.hasher.update(b);
    this.bytes += b.length;
    if (b.length < SMALL_PIECE_BYTES) {
      this.pending.push(b);
      this.pendingBytes += b.length;
      if (this.pendingBytes >= COALESCE_BYTES) await this.flush();
      return;
    }
    await this.flush();
    await this.write(b);
  }

  /** Sends what is gathered; the sink is not ended. */
  end(): Promise<void> {
    return this.flush();
  }

  hash(): Buffer {
    return this.hasher.digestBuffer();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.write(b);
  }

  private async write(b: Buffer): Promise<void> {
    if (this.sink.destroyed) throw new Error('the receiver closed the connection');
    if (!this.sink.write(b)) await this.drained();
  }

  /** A reader that goes away (a closed HTTP response) must fail the write, not leave it waiting for 'drain'. */
  private drained(): Promise<void> {
    const sink = this.sink;
    return new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        sink.off('drain', onDrain);
        sink.off('error', onError);
        sink.off('close', onClose);
        if (e) reject(e);
        else resolve();
      };
      const onDrain = () => done();
      const onError = (e: Error) => done(e);
      const onClose = () => done(new Error('the receiver closed the connection'));
      sink.on('drain', onDrain);
      sink.on('error', onError);
      sink.on('close', onClose);
    });
  }
}

/** A record as it is stored (its header's fields and stored bytes), read when its turn in the pack comes. */
export interface StoredRecordSource {
  entry: Omit<PackEntry, 'offset'>;
  read(): Promise<Buffer>;
}

/**
 * An objects-only bundle (no refs, no prerequisites) of records copied as they are: the S3 remote's ranged reads
 * (spec/S3.md §3) hand the records they took out of a remote pack to a store through it. `bases`: chunks outside
 * the records that delta records among them use (a thin bundle, for a receiver that holds them).
 */
export async function writeStoredRecordsBundle(
  content: { pruned: BundlePruneRecord[]; labels: BundleConfigLabel[]; shallow: ObjectId[]; bases: ObjectId[] },
  records: StoredRecordSource[],
  sink: Writable,
): Promise<{ bytes: number }> {
  const out = new BundleOutput(sink);
  const start = headerOnceSized(out, { ...content, refs: [], prerequisites: [], objects: records.length });
  await streamPack(records, start, out);
  await out.put(Buffer.concat([out.hash(), BUNDLE_END_MAGIC]));
  await out.end();
  return { bytes: out.bytes };
}

/**
 * The pack written as PackWriter writes it (FORMAT.md §4: header, the records in order, TOC, footer), each record
 * read just before it is sent. Returns its length, which `start` is told first.
 */
async function streamPack(
  records: StoredRecordSource[],
  start: (packLength: number) => Promise<void>,
  out: BundleOutput,
): Promise<number> {
  if (records.length === 0) {
    await start(0);
    return 0;
  }
  const length = packLength(records.map((r) => r.entry.storedLength));
  await start(length);
  const packHash = new Blake3Hasher();
  const put = (b: Buffer) => {
    packHash.update(b);
    return out.put(b);
  };
  await put(encodePackHeader());
  const placed: PackEntry[] = [];
  let offset = PACK_HEADER_BYTES;
  for (const r of records) {
    const body = await r.read();
    if (body.length !== r.entry.storedLength)
      throw new CkvcError('CKVC_INTERNAL', `bundle writer: record ${r.entry.id} is not its stored length`, {});
    const entry = { ...r.entry, offset };
    await put(encodeRecordHeader(entry));
    await put(body);
    placed.push(entry);
    offset += RECORD_HEADER_BYTES + r.entry.storedLength;
  }
  await put(encodePackTail(placed, offset));
  await out.put(encodePackEnd(packHash.digestBuffer()));
  return length;
}

/** The pack made first in a scratch file, then sent; returns its length. */
async function scratchPack(
  store: ObjectStore,
  locs: ObjectLocation[],
  deltas: BundleDeltas,
  start: (packLength: number) => Promise<void>,
  out: BundleOutput,
): Promise<number> {
  const scratchRoot = await scratchFolder(store);
  const forget = removedIfInterrupted(scratchRoot);
  try {
    const writer = await PackWriter.create(new StoreLayout(scratchRoot), { durable: false });
    let done: Awaited<ReturnType<PackWriter['finish']>>;
    try {
      for (const loc of locs) {
        const e = loc.entry;
        // A delta whose base the receiver will not have, or whose chain there would be too long (BUNDLE.md §5).
        if (deltas.reencode.has(e.id)) {
          await writer.add(e.type, e.id, await store.readLocated(loc, e.id, e.type), deltas.widths.get(e.id));
          continue;
        }
        // Into a reused buffer, handed back once the scratch pack has written it (README, Performance).
        const body = await store.packs.readStoredRecord(loc, e.id, { verify: false, pool: scratch });
        await writer.addStored(e, body, () => scratch.release(body));
      }
      done = await writer.finish();
    } catch (e) {
      await writer.abort();
      throw e;
    }
    await start(done?.size ?? 0);
    if (done)
      for await (const chunk of createReadStream(done.file, { highWaterMark: 1024 * 1024 }))
        await out.put(chunk as Buffer);
    return done?.size ?? 0;
  } finally {
    await fs.rm(scratchRoot, { recursive: true, force: true }).catch(() => {});
    forget();
  }
}

/**
 * The labels of the configs the bundle's commits use, by hash. A label no reader would accept (one written by an
 * older ckvc, with a control character) stays home rather than make the whole bundle unreadable.
 */
async function labelsOf(store: ObjectStore, configs: Set<string>): Promise<BundleConfigLabel[]> {
  if (!configs.size) return [];
  // A labels file that cannot be read costs the labels, not the transfer (as log and show treat it).
  const all = await store.configLabels.all().catch(() => new Map<string, string>());
  return [...configs].sort().flatMap((config) => {
    const text = all.get(config);
    return text !== undefined && !configLabelProblem(text) ? [{ config, text }] : [];
  });
}

/** A new folder for the scratch pack: in the store's tmp/ (same disk, cleaned by gc), else the system's. */
async function scratchFolder(store: ObjectStore): Promise<string> {
  const inStore = path.join(store.layout.tmpDir, `bundle-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.mkdir(inStore);
    return inStore;
  } catch (e) {
    // ENOENT too: a store without tmp/ (it is created by the first writer) that this user cannot create.
    if (!['EACCES', 'EPERM', 'EROFS', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? ''))
      throw ioError(e, 'create', inStore);
  }
  const elsewhere = path.join(os.tmpdir(), 'ckvc-bundle-');
  return fs.mkdtemp(elsewhere).catch((e) => {
    throw ioError(e, 'create a folder in', os.tmpdir());
  });
}

/** Writes a bundle file through a temp file renamed into place. */
export async function writeBundleFile(
  store: ObjectStore,
  content: BundleContent,
  file: string,
): Promise<WrittenBundle> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const forget = removedIfInterrupted(tmp);
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(tmp, { flags: 'wx' });
  const opened = new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', reject);
  });
  try {
    await opened;
    const r = await writeBundle(store, content, out, { verifyRecords: true });
    await new Promise<void>((resolve, reject) => {
      out.end((e?: Error | null) => (e ? reject(e) : resolve()));
    });
    const fh = await fs.open(tmp, 'r+');
    await fh.sync();
    await fh.close();
    await fs.rename(tmp, file);
    return r;
  } catch (e) {
    out.destroy();
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw ioError(e, 'write the bundle', file);
  } finally {
    forget();
  }
}
