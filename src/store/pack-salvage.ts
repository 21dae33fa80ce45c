// `ckvc repair`'s salvage (spec/FORMAT.md §10.1): the sound records of each damaged pack are copied into a new
// pack, the damaged file is set aside in damaged/ (never deleted: what did not re-hash may still matter to
// someone with a hex editor), and the index is rebuilt from what is left, so that no location names a damaged
// copy. What did not re-hash is then simply absent, for the repair's fetch to bring again.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  decodeRecordHeader,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  type PackEntry,
} from '../core/store-format/pack-format.js';
import { baseCacheFile } from './base-cache.js';
import { fsyncDir, ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import type { ObjectStore } from './object-store.js';
import { PackWriter, type FinishedPack } from './pack-writer.js';

export interface SalvageReport {
  /** Damaged packs set aside in damaged/, and their bytes. */
  packs: number;
  bytes: number;
  /** Records that re-hashed and were copied into new packs. */
  kept: number;
  /** Records that did not: absent from the store now, their bytes only in damaged/. */
  dropped: number;
}

/** A new pack of copied records is closed at this many bytes, as gc's are. */
const ROLL_BYTES = 1024 * 1024 * 1024;

/** A fault at a repair step fails like the disk would: CKVC_IO with a hint. */
export function repairFault(step: 'repair.locked' | 'repair.salvaged' | 'repair.aside' | 'repair.received', p: string) {
  try {
    faultPoint(step);
  } catch (e) {
    throw ioError(e, 'repair', p);
  }
}

/**
 * The records of a pack: those its TOC lists, if it can be read, and those found by reading the record headers
 * one after the other from the first until one does not parse or the file ends (a pack cut short, a damaged TOC
 * or footer: a TOC entry damaged in a way that still parses must not cost the record it describes).
 */
async function recordsOf(store: ObjectStore, packId: string): Promise<PackEntry[]> {
  const out: PackEntry[] = [];
  const listed = new Set<string>();
  try {
    for (const e of (await store.packs.readToc(packId)).entries) {
      out.push(e);
      listed.add(`${e.id}@${e.offset}`);
    }
  } catch (e) {
    if (!(e instanceof CkvcError)) throw e;
  }
  const file = store.layout.packFile(packId);
  const fh = await fs.open(file, 'r').catch((e) => {
    throw ioError(e, 'read', file);
  });
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(RECORD_HEADER_BYTES);
    for (let offset = PACK_HEADER_BYTES; offset + RECORD_HEADER_BYTES <= size; ) {
      const { bytesRead } = await fh.read(head, 0, RECORD_HEADER_BYTES, offset);
      if (bytesRead < RECORD_HEADER_BYTES) break;
      let entry: PackEntry;
      try {
        entry = decodeRecordHeader(head, offset, `pack ${packId.slice(0, 16)}`);
      } catch {
        break; // the TOC, or damage: nothing past it can be told apart
      }
      const end = offset + RECORD_HEADER_BYTES + entry.storedLength;
      if (end > size) break;
      if (!listed.has(`${entry.id}@${offset}`)) out.push(entry);
      offset = end;
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** Copies the records of `packIds` that re-hash into new packs; returns the packs, durable in packs/. */
async function copySoundRecords(store: ObjectStore, packIds: string[], report: SalvageReport): Promise<FinishedPack[]> {
  const written: FinishedPack[] = [];
  const kept = new Set<ObjectId>();
  const failed = new Set<ObjectId>();
  let writer: PackWriter | undefined;
  try {
    for (const packId of packIds) {
      for (const entry of await recordsOf(store, packId)) {
        if (kept.has(entry.id)) continue;
        let body: Buffer;
        try {
          // Decoded and re-hashed (a delta against its base, wherever the index finds it) before it is copied:
          // a damaged record must not be laundered into a pack with a fresh checksum.
          body = await store.packs.readStoredRecord({ packId, entry }, entry.id, { verify: true });
        } catch (e) {
          if (!(e instanceof CkvcError)) throw e;
          failed.add(entry.id);
          continue;
        }
        writer ??= await PackWriter.create(store.layout);
        const { id, type, codec, rawLength, storedLength } = entry;
        await writer.addStored({ id, type, codec, rawLength, storedLength }, body);
        kept.add(id);
        if (writer.acceptedBytes >= ROLL_BYTES) {
          const done = await writer.finish();
          writer = undefined;
          if (done) written.push(done);
        }
      }
    }
    const done = await writer?.finish();
    writer = undefined;
    if (done) written.push(done);
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  report.kept = kept.size;
  report.dropped = [...failed].filter((id) => !kept.has(id)).length;
  return written;
}

/**
 * Keeps the bytes of damaged pack `packId` in damaged/ under its own name, as a second link to the same file (or
 * a copy where links are not allowed), before anything replaces or removes it in packs/. Returns its size.
 */
async function keepAside(store: ObjectStore, packId: string): Promise<number | undefined> {
  const from = store.layout.packFile(packId);
  const to = path.join(store.layout.damagedDir, path.basename(from));
  const size = (await fs.stat(from).catch(() => undefined))?.size;
  if (size === undefined) return undefined; // removed by an earlier run that was killed after it
  try {
    await fs.link(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return size; // kept by an earlier run that was killed after it
    await fs.copyFile(from, to).catch((err) => {
      throw ioError(err, 'keep a copy of the damaged pack in', to);
    });
    const fh = await fs.open(to, 'r');
    await fh.sync().finally(() => fh.close());
  }
  return size;
}

/**
 * Salvages the damaged packs `packIds` (FORMAT.md §10.1 step 2). Their bytes are linked into damaged/ first: a
 * pack of sound records can come out byte for byte what the damaged pack was before its damage (only its TOC or
 * footer was hit), with its name, and replace it in packs/. The new packs are durable before any damaged one
 * leaves packs/; the index is rebuilt after, so a crash in between leaves an index naming a pack that is gone,
 * which the next open rebuilds too.
 */
export async function salvagePacks(store: ObjectStore, packIds: string[]): Promise<SalvageReport> {
  const report: SalvageReport = { packs: 0, bytes: 0, kept: 0, dropped: 0 };
  if (!packIds.length) return report;
  const aside = store.layout.damagedDir;
  await fs.mkdir(aside, { recursive: true }).catch((e) => {
    throw ioError(e, 'create', aside);
  });
  const present: string[] = [];
  for (const packId of packIds) {
    const size = await keepAside(store, packId);
    if (size === undefined) continue;
    present.push(packId);
    report.packs++;
    report.bytes += size;
  }
  await fsyncDir(aside);
  const written = await copySoundRecords(store, present, report);
  repairFault('repair.salvaged', store.layout.packsDir);
  await store.packs.close(); // our own handles on the damaged packs
  const sound = new Set(written.map((w) => w.packId));
  for (const packId of present) {
    if (sound.has(packId)) continue; // replaced in packs/ by its sound rewrite, of the same name
    const file = store.layout.packFile(packId);
    repairFault('repair.aside', file);
    await fs.rm(file, { force: true }).catch((e) => {
      throw ioError(e, 'remove the damaged pack (its bytes are in damaged/)', file);
    });
  }
  await fsyncDir(store.layout.packsDir);
  await store.index.rebuild();
  // The delta-base cache may hold bytes of chunks that were in the damaged packs: it goes, as after gc (§18).
  const cache = baseCacheFile(store.layout, false);
  if (cache) await fs.rm(cache, { force: true }).catch(() => {});
  return report;
}
