// Receives a bundle into a quarantine folder (spec/BUNDLE.md §3): nothing of it touches the store until the
// whole thing is verified. Sizes are checked before anything is allocated or written, the trailer is checked
// over every byte, the pack's checksum and every record (decoded, hash-checked, capped at 64 MiB) are checked.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import {
  bad, BUNDLE_END_MAGIC, BUNDLE_PREAMBLE_BYTES, BUNDLE_TRAILER_BYTES, decodeBundleHeader, decodeBundlePreamble, type BundleHeader,
} from '../core/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/object-id.js';
import { PACK_FOOTER_BYTES, PACK_HEADER_BYTES, type PackEntry } from '../core/pack-format.js';
import { ioError } from '../store/durable-fs.js';
import { PackReader } from '../store/pack-reader.js';
import { StoreLayout } from '../store/store-layout.js';
import { ByteStream } from './byte-stream.js';

export interface ReceivedBundle {
  header: BundleHeader;
  /** The quarantine: a folder laid out like a store (packs/), to be promoted or removed. */
  quarantine: StoreLayout;
  packId?: string;
  entries: PackEntry[];
  /** IDs in the bundle. */
  ids: Set<ObjectId>;
  bytes: number;
  close(): Promise<void>;
}

/** Reads and verifies a whole bundle from `source` into a new quarantine folder under `parent`. */
export async function receiveBundle(source: Readable | AsyncIterable<Buffer>, parent: string, where: string, fileSize?: number, opts: { durable?: boolean } = {}): Promise<ReceivedBundle> {
  const root = path.join(parent, `quarantine-${process.pid}-${randomBytes(6).toString('hex')}`);
  const quarantine = new StoreLayout(root);
  const packs = new PackReader(quarantine);
  const close = async () => {
    await packs.close();
    await fs.rm(root, { recursive: true, force: true }).catch(() => {});
  };
  try {
    await fs.mkdir(quarantine.packsDir, { recursive: true }).catch((e) => { throw ioError(e, 'create', quarantine.packsDir); });
    const s = new ByteStream(source, where);
    const trailerHash = new Blake3Hasher();
    const preamble = await s.read(BUNDLE_PREAMBLE_BYTES, 'the preamble');
    trailerHash.update(preamble);
    const headerLength = decodeBundlePreamble(preamble, fileSize, where);
    const headerBytes = await s.read(headerLength, 'the header');
    trailerHash.update(headerBytes);
    const header = decodeBundleHeader(headerBytes, where);
    const expected = BUNDLE_PREAMBLE_BYTES + headerLength + header.packLength + BUNDLE_TRAILER_BYTES;
    if (fileSize !== undefined && fileSize !== expected) throw bad(where, `is ${fileSize} bytes but its header accounts for ${expected}`);
    if (header.packLength === 0 ? header.objects !== 0 : header.packLength < PACK_HEADER_BYTES + PACK_FOOTER_BYTES) {
      throw bad(where, `declares ${header.objects} objects in a ${header.packLength}-byte pack`);
    }
    const incoming = path.join(root, 'incoming.pack');
    let packId: string | undefined;
    let packCheck: { stored: Buffer; computed: Buffer } | undefined;
    const fh = await fs.open(incoming, 'wx+').catch((e) => { throw ioError(e, 'create', incoming); });
    try {
      // The pack's own checksum covers its bytes up to the checksum field: hashed here on the way through, so the
      // received file is not read a second time. Network pieces are small: they are gathered into a few MiB per write.
      const packHash = new Blake3Hasher();
      const covered = header.packLength - PACK_FOOTER_BYTES + 16;
      let seen = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes) await fh.writev(pending);
        pending = [];
        pendingBytes = 0;
      };
      await s.copy(header.packLength, 'the pack', async (piece) => {
        trailerHash.update(piece);
        if (seen < covered) packHash.update(piece.subarray(0, Math.min(piece.length, covered - seen)));
        seen += piece.length;
        pending.push(piece);
        pendingBytes += piece.length;
        if (pendingBytes >= 4 * 1024 * 1024) await flush();
      });
      await flush();
      // Durable before it can be promoted: the index and then refs will point into it (FORMAT.md §9).
      if (opts.durable !== false) await fh.sync();
      if (header.packLength > 0) {
        const stored = Buffer.alloc(32);
        await fh.read(stored, 0, 32, covered);
        // Compared after the trailer below, so damage in transit is reported as such first.
        packCheck = { stored, computed: packHash.digestBuffer() };
      }
    } finally {
      await fh.close();
    }
    const trailer = await s.read(BUNDLE_TRAILER_BYTES, 'the trailer');
    if (!trailer.subarray(32).equals(BUNDLE_END_MAGIC)) throw bad(where, 'does not end with the bundle end marker (truncated or padded)');
    if (!trailer.subarray(0, 32).equals(trailerHash.digestBuffer())) throw bad(where, 'trailer hash does not match its contents (damaged in transit or on disk)');
    if (!(await s.atEnd())) throw bad(where, 'has bytes after its trailer');
    if (packCheck) {
      if (!packCheck.stored.equals(packCheck.computed)) throw bad(where, 'its pack checksum does not match its bytes');
      packId = packCheck.stored.toString('hex');
    }

    let entries: PackEntry[] = [];
    if (packId) {
      await fs.rename(incoming, quarantine.packFile(packId));
      let toc;
      try {
        toc = await packs.readToc(packId);
      } catch (e) {
        throw e instanceof CkvcError ? bad(where, `its pack: ${e.message}`) : e;
      }
      if (toc.checksum !== packId) throw bad(where, 'its pack footer names another checksum');
      if (toc.entries.length !== header.objects) throw bad(where, `header says ${header.objects} objects, the pack holds ${toc.entries.length}`);
      entries = toc.entries;
      // A delta record's base must travel in the same bundle (BUNDLE.md §3): the receiver may not hold it.
      const byId = new Map(entries.map((e) => [e.id, e]));
      const bundlePack = packId;
      packs.setBaseLocator(async (id) => {
        const e = byId.get(id);
        return e && { packId: bundlePack, entry: e };
      });
      for (const e of entries) {
        try {
          await packs.readObject({ packId, entry: e }, e.id, e.type);
        } catch (err) {
          throw err instanceof CkvcError ? bad(where, `object ${e.id.slice(0, 16)}: ${err.message}`, { id: e.id }) : err;
        }
      }
    } else await fs.rm(incoming, { force: true });
    const ids = new Set(entries.map((e) => e.id));
    if (ids.size !== entries.length) throw bad(where, 'its pack lists an object twice');
    // A record may only speak for a commit that travels with it (BUNDLE.md §2): one naming anything else would
    // release data of the receiver's own history.
    const commits = new Set(entries.filter((e) => e.type === 'commit').map((e) => e.id));
    for (const r of header.pruned) {
      if (!commits.has(r.commit)) throw bad(where, `carries a prune record for commit ${r.commit.slice(0, 16)}, which is not in it; such a bundle is refused whole`, { commit: r.commit });
    }
    await packs.close();
    return { header, quarantine, packId, entries, ids, bytes: s.position, close };
  } catch (e) {
    await close();
    throw e;
  }
}
