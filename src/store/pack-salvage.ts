// `ckvc repair`'s salvage (spec/FORMAT.md §10.1): the sound records of each damaged pack are copied into a new
// pack, the damaged file is kept in damaged/ (never deleted: what did not re-hash may still matter to someone
// with a hex editor), and the index is rebuilt from what is left, so that no location names a damaged copy. What
// did not re-hash is then simply absent, for the repair's fetch to bring again; a delta anywhere that builds on
// it is stored decoded first, so that nothing that read before stops reading.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { objectId, type ObjectId } from '../core/store-format/object-id.js';
import { CODECS, type PackEntry } from '../core/store-format/pack-format.js';
import { baseCacheFile } from './base-cache.js';
import { damagedPackRecords } from './damaged-pack-records.js';
import { fsyncDir, ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { listPackIds } from './object-index.js';
import type { ObjectStore } from './object-store.js';
import { PackWriter, type FinishedPack } from './pack-writer.js';

export interface SalvageReport {
  /** Packs kept in damaged/ (the damaged ones, and any other one a record of which did not re-hash), and bytes. */
  packs: number;
  bytes: number;
  /** Records that re-hashed and were copied into new packs. */
  kept: number;
  /** Objects no copy of which re-hashed: absent from the store now, their bytes only in damaged/. */
  dropped: number;
  /** Sound packs rewritten because deltas in them built on a dropped record: those are stored decoded now. */
  rewritten: number;
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

/** Whether the record at `loc` decodes and re-hashes, as gc's copies are checked (a delta against its base). */
async function reHashes(store: ObjectStore, packId: string, entry: PackEntry): Promise<boolean> {
  return store.packs.readStoredRecord({ packId, entry }, entry.id, { verify: true }).then(
    () => true,
    (e) => {
      if (e instanceof CkvcError) return false;
      throw e;
    },
  );
}

/** A commit's body as the index caches it (FORMAT.md §8), when it hashes to the commit's ID. */
async function cachedCommit(store: ObjectStore, id: ObjectId): Promise<Buffer | undefined> {
  const body = await store.index.session((s) => s.commitBody(id));
  return body && objectId('commit', body) === id ? body : undefined;
}

/** The packs outside `skip` holding a delta record whose base is in `lost`, with all their records. */
async function packsWithDeltasOn(
  store: ObjectStore,
  lost: ReadonlySet<ObjectId>,
  skip: ReadonlySet<string>,
): Promise<Map<string, PackEntry[]>> {
  const out = new Map<string, PackEntry[]>();
  if (!lost.size) return out;
  for (const packId of [...(await listPackIds(store.layout))].sort()) {
    if (skip.has(packId)) continue;
    const toc = await store.packs.readTocIfSound(packId);
    for (const entry of toc?.entries ?? []) {
      if (entry.codec !== CODECS.xorPlanes) continue;
      const base = await store.packs.readDeltaBaseId({ packId, entry }).catch(() => undefined);
      if (base !== undefined && lost.has(base)) {
        out.set(packId, toc!.entries);
        break;
      }
    }
  }
  return out;
}

interface Copied {
  written: FinishedPack[];
  kept: Set<ObjectId>;
  failed: Set<ObjectId>;
  /** Packs outside the damaged ones a record of which did not re-hash: kept in damaged/ too. */
  alsoAside: string[];
}

/**
 * Copies every record of `records` (pack -> its records) that re-hashes into new packs, durable in packs/. A delta
 * whose base is in `lost` is decoded (through the planes of its base that are sound) and stored on its own; a
 * commit whose record is damaged comes from the index's copy of its body when that hashes right.
 */
async function copyRecords(
  store: ObjectStore,
  records: Map<string, PackEntry[]>,
  lost: ReadonlySet<ObjectId>,
  damaged: ReadonlySet<string>,
  /** Records (`packId@offset`) already decoded and re-hashed here: their bytes are copied without a second pass. */
  vouched: ReadonlySet<string>,
): Promise<Copied> {
  const out: Copied = { written: [], kept: new Set(), failed: new Set(), alsoAside: [] };
  let writer: PackWriter | undefined;
  const roll = async () => {
    if (writer && writer.acceptedBytes < ROLL_BYTES) return;
    const done = await writer?.finish();
    writer = undefined;
    if (done) out.written.push(done);
  };
  try {
    for (const [packId, entries] of records) {
      for (const entry of entries) {
        const { id, type, codec, rawLength, storedLength } = entry;
        if (out.kept.has(id)) continue;
        const loc = { packId, entry };
        try {
          const head = codec === CODECS.xorPlanes ? await store.packs.readDeltaHead(loc) : undefined;
          if (head && lost.has(head.base)) {
            // Decoded while the base's sound planes are still here. One that needs a lost plane is copied as it is
            // from a sound pack (whose checksum held: its bytes are as written, and read again once repair brings
            // the base back); from a damaged pack it cannot be vouched for, and is read again from damaged/ then.
            const raw = await store.packs.readObject(loc, id, type).catch((e) => {
              if (e instanceof CkvcError && !damaged.has(packId)) return undefined;
              throw e;
            });
            writer ??= await PackWriter.create(store.layout);
            if (raw) await writer.add(type, id, raw, head.width);
            else
              await writer.addStored(
                { id, type, codec, rawLength, storedLength },
                await store.packs.readStoredRecord(loc, id, { verify: false }),
              );
          } else {
            const verify = !vouched.has(`${packId}@${entry.offset}`);
            const body = await store.packs.readStoredRecord(loc, id, { verify });
            writer ??= await PackWriter.create(store.layout);
            await writer.addStored({ id, type, codec, rawLength, storedLength }, body);
          }
        } catch (e) {
          if (!(e instanceof CkvcError)) throw e;
          const body = type === 'commit' ? await cachedCommit(store, id) : undefined;
          if (!body) {
            out.failed.add(id);
            if (!damaged.has(packId) && !out.alsoAside.includes(packId)) out.alsoAside.push(packId);
            continue;
          }
          writer ??= await PackWriter.create(store.layout);
          await writer.add('commit', id, body);
        }
        out.kept.add(id);
        await roll();
      }
    }
    const done = await writer?.finish();
    writer = undefined;
    if (done) out.written.push(done);
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  return out;
}

/**
 * Salvages the damaged packs `packIds` (FORMAT.md §10.1 step 2). Their bytes are linked into damaged/ first: a
 * pack of sound records can come out byte for byte what the damaged pack was before its damage (only its TOC or
 * footer was hit), with its name, and replace it in packs/. The new packs are durable before any pack leaves
 * packs/; the index is rebuilt after, so a crash in between leaves an index naming a pack that is gone, which
 * the next open rebuilds too.
 */
export async function salvagePacks(store: ObjectStore, packIds: string[]): Promise<SalvageReport> {
  const report: SalvageReport = { packs: 0, bytes: 0, kept: 0, dropped: 0, rewritten: 0 };
  if (!packIds.length) return report;
  const aside = store.layout.damagedDir;
  await fs.mkdir(aside, { recursive: true }).catch((e) => {
    throw ioError(e, 'create', aside);
  });
  const keep = async (packId: string) => {
    const size = await keepAside(store, packId);
    if (size === undefined) return false;
    report.packs++;
    report.bytes += size;
    return true;
  };
  const present: string[] = [];
  for (const packId of packIds) if (await keep(packId)) present.push(packId);
  await fsyncDir(aside);

  const damaged = new Set(present);
  const indexed = await store.index.session((s) => s.locationsIn(damaged));
  const records = new Map<string, PackEntry[]>();
  for (const packId of present) {
    const known = indexed.filter((l) => l.packId === packId).map((l) => l.entry);
    records.set(packId, await damagedPackRecords(store.packs, packId, store.layout.packFile(packId), known));
  }
  // What no copy in the damaged packs gives: a delta anywhere on it must be stored decoded before it goes.
  const sound = new Set<ObjectId>();
  const failed = new Set<ObjectId>();
  const vouched = new Set<string>();
  for (const [packId, entries] of records)
    for (const e of entries) {
      if (sound.has(e.id)) continue;
      if (await reHashes(store, packId, e)) {
        sound.add(e.id);
        vouched.add(`${packId}@${e.offset}`);
      } else failed.add(e.id);
    }
  const lost = new Set([...failed].filter((id) => !sound.has(id)));
  const dependents = await packsWithDeltasOn(store, lost, damaged);
  for (const [packId, entries] of dependents) records.set(packId, entries);
  report.rewritten = dependents.size;

  const copied = await copyRecords(store, records, lost, damaged, vouched);
  for (const packId of copied.alsoAside) await keep(packId);
  if (copied.alsoAside.length) await fsyncDir(aside);
  report.kept = copied.kept.size;
  report.dropped = [...copied.failed].filter((id) => !copied.kept.has(id)).length;
  repairFault('repair.salvaged', store.layout.packsDir);

  await store.packs.close(); // our own handles on the packs that go
  const replaced = new Set(copied.written.map((w) => w.packId));
  // The rewritten sound packs first: killed among them, the damaged packs are still here, and the next repair
  // finds them and does all of this again; killed among the damaged ones, nothing sound is left to redo.
  const order = [...dependents.keys(), ...present];
  for (const packId of order) {
    if (replaced.has(packId)) continue; // replaced in packs/ by its sound rewrite, of the same name
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
