// Writes a bundle (spec/BUNDLE.md): the objects are copied verbatim (record headers checked; the receiver
// re-hashes every record) into a scratch pack in the store's tmp/ (the system's temp folder when this user may
// not write the store), then preamble, header, pack and trailer are streamed to the destination.
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
  type BundleRef,
} from '../core/store-format/bundle-format.js';
import { scratch } from '../core/buffer-pool.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { ioError } from '../store/durable-fs.js';
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

/** Streams a bundle into `sink` (not ended). Memory holds one record at a time. */
export async function writeBundle(store: ObjectStore, content: BundleContent, sink: Writable): Promise<WrittenBundle> {
  const scratchRoot = await scratchFolder(store);
  const scratchLayout = new StoreLayout(scratchRoot);
  try {
    const writer = await PackWriter.create(scratchLayout, { durable: false });
    let packFile: string | undefined;
    let packLength = 0;
    const configs = new Set<string>();
    let deltas: BundleDeltas;
    try {
      const locs = content.located ?? (await store.locateAll(content.objects, 'object to send'));
      if (locs.length !== content.objects.length || locs.some((l, i) => l.entry.id !== content.objects[i]))
        throw new CkvcError('CKVC_INTERNAL', 'bundle writer: the locations given are not those of the objects', {});
      deltas = await planBundleDeltas(store, locs, content.receiverHolds);
      for (let i = 0; i < locs.length; i++) {
        const loc = locs[i]!;
        const e = loc.entry;
        if (e.type === 'commit') {
          const hash = (await store.readCommit(e.id)).config?.hash;
          if (hash) configs.add(hash);
        }
        // A delta whose base the receiver will not have, or whose chain there would be too long (BUNDLE.md §5).
        if (deltas.reencode.has(e.id)) {
          await writer.add(e.type, e.id, await store.readLocated(loc, e.id, e.type), deltas.widths.get(e.id));
          continue;
        }
        // Into a reused buffer, handed back once the scratch pack has written it (README, Performance).
        const body = await store.packs.readStoredRecord(loc, content.objects[i]!, { verify: false, pool: scratch });
        await writer.addStored(
          { id: e.id, type: e.type, codec: e.codec, rawLength: e.rawLength, storedLength: e.storedLength },
          body,
          () => scratch.release(body),
        );
      }
      const done = await writer.finish();
      if (done) {
        packFile = done.file;
        packLength = done.size;
      }
    } catch (e) {
      await writer.abort();
      throw e;
    }
    const labels = await labelsOf(store, configs);
    const header = encodeBundleHeader({
      version: BUNDLE_VERSION,
      required: REQUIRED_CAPABILITIES,
      optional: [],
      refs: content.refs,
      prerequisites: content.prerequisites,
      pruned: content.pruned,
      labels,
      ...(content.shallow?.length ? { shallow: content.shallow } : {}),
      ...(deltas.outside.size ? { bases: [...deltas.outside] } : {}),
      packLength,
      objects: content.objects.length,
      created: Date.now(),
    });
    const hasher = new Blake3Hasher();
    let bytes = 0;
    // A reader that goes away (a closed HTTP response) must fail the write, not leave it waiting for 'drain'.
    const drained = () =>
      new Promise<void>((resolve, reject) => {
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
    const put = async (b: Buffer) => {
      hasher.update(b);
      bytes += b.length;
      if (sink.destroyed) throw new Error('the receiver closed the connection');
      if (!sink.write(b)) await drained();
    };
    await put(encodeBundlePreamble(header.length));
    await put(header);
    if (packFile)
      for await (const chunk of createReadStream(packFile, { highWaterMark: 1024 * 1024 })) await put(chunk as Buffer);
    const trailer = hasher.digestBuffer();
    const end = Buffer.concat([trailer, BUNDLE_END_MAGIC]);
    bytes += end.length;
    if (!sink.write(end)) await drained();
    return {
      bytes,
      objects: content.objects.length,
      packLength,
      trailer: trailer.toString('hex'),
      labels,
      deltasKept: deltas.widths.size - deltas.reencode.size,
      deltasReencoded: deltas.reencode.size,
    };
  } finally {
    await fs.rm(scratchRoot, { recursive: true, force: true }).catch(() => {});
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
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(tmp, { flags: 'wx' });
  const opened = new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', reject);
  });
  try {
    await opened;
    const r = await writeBundle(store, content, out);
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
  }
}
