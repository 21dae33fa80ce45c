// ckvc gc (spec/FORMAT.md §15): with writers excluded, remove what crashed commands left behind, compute the live
// set, then per pack older than the grace period keep it, delete it, or copy its live records verbatim into a new
// pack first. New data is durable and indexed before anything old goes; the index forgets a pack before its file
// is deleted.
import * as fs from 'node:fs/promises';
import type { ObjectId } from '../core/store-format/object-id.js';
import { CODECS, RECORD_HEADER_BYTES, TOC_ENTRY_BYTES, type PackEntry } from '../core/store-format/pack-format.js';
import { baseCacheFile } from './base-cache.js';
import { fsyncDir, ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { acquireGcLock } from './gc-exclusion.js';
import { removeLeftovers } from './leftovers.js';
import { listPackIds } from './object-index.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation } from './pack-reader.js';
import { consolidateHeldIfNeeded } from './pack-consolidation.js';
import { PackWriter, type FinishedPack } from './pack-writer.js';
import { PruneRecords } from './prune-records.js';
import { gcRoots, liveObjects, settleDeltaBases } from './reachability.js';
import { applyReflogExpiry, planReflogExpiry } from './reflog-expiry.js';

export interface GcOptions {
  dryRun?: boolean;
  /** Packs and leftovers of crashed commands younger than this are left alone. */
  graceMs: number;
  /** Reflog lines older than this naming a commit no ref reaches expire (§15); undefined: none expire. */
  expireReflogMs?: number;
}

export interface GcReport {
  dryRun: boolean;
  graceMs: number;
  liveObjects: number;
  deadObjects: number;
  /** Dead objects kept because their pack is younger than the grace period, and their stored bytes. */
  youngDeadObjects: number;
  youngDeadBytes: number;
  /** Reflog lines expired (with dryRun: that would expire); null when expiry was off. */
  reflogLinesExpired: number | null;
  packsBefore: number;
  packsAfter: number;
  packsDeleted: number;
  packsRewritten: number;
  /** Small packs merged into one afterwards, when there were too many (§15.2); 0 with dryRun. */
  packsConsolidated: number;
  bytesBefore: number;
  bytesAfter: number;
  bytesFreed: number;
  /** Leftovers of interrupted commands (unfinished packs, quarantine folders, temp files) removed, or to remove. */
  tempsRemoved: number;
  tempBytesRemoved: number;
  /** Leftovers kept: younger than the grace period, or the process named in them is still running. */
  tempsKept: number;
}

const ROLL_BYTES = 1024 * 1024 * 1024;

interface PackPlan {
  packId: string;
  size: number;
  entries: PackEntry[];
  young: boolean;
  live: PackEntry[];
  dead: PackEntry[];
  /** Live delta records to store without their (dead) base: the pack is rewritten for them. */
  reencode: number;
}

export async function collectGarbage(store: ObjectStore, opts: GcOptions): Promise<GcReport> {
  const lock = await acquireGcLock(store.layout);
  try {
    return await collectLocked(store, opts);
  } finally {
    await lock.release();
  }
}

/** A fault at a gc step fails like the disk would: CKVC_IO with a hint. */
function gcFault(step: 'gc.locked' | 'gc.packed' | 'gc.indexed' | 'gc.delete', p: string): void {
  try {
    faultPoint(step);
  } catch (e) {
    throw ioError(e, `collect garbage in`, p);
  }
}

/** Who may still need what: prune records, ref roots and the reflog lines that survive expiry (applied unless
 * this is a dry run) give the live set. */
async function markLive(store: ObjectStore, opts: GcOptions, now: number) {
  store.index.forWriting();
  await store.index.session(async () => {}, { sync: true });
  const pruned = await new PruneRecords(store.layout).all();
  const refRoots = await gcRoots(store);
  const expiry =
    opts.expireReflogMs === undefined
      ? undefined
      : await planReflogExpiry(store, refRoots.refs, now, opts.expireReflogMs);
  if (expiry && !opts.dryRun) await applyReflogExpiry(store, expiry);
  const live = await liveObjects(store, expiry ? await gcRoots(store, expiry.skip) : refRoots, pruned);
  return { live, expiry };
}

/** Every pack with its table of contents and whether it is younger than the grace period, in pack ID order. */
async function planPacks(store: ObjectStore, now: number, graceMs: number): Promise<PackPlan[]> {
  const plans: PackPlan[] = [];
  for (const packId of [...(await listPackIds(store.layout))].sort()) {
    const file = store.layout.packFile(packId);
    const st = await fs.stat(file).catch((e) => {
      throw ioError(e, 'stat', file);
    });
    const { entries } = await store.packs.readToc(packId);
    const young = now - st.mtimeMs < graceMs;
    plans.push({ packId, size: st.size, entries, young, live: [], dead: [], reencode: 0 });
  }
  return plans;
}

/** Splits each pack's records into live and dead; returns the live deltas to re-encode without their base. */
async function splitLiveAndDead(store: ObjectStore, plans: PackPlan[], live: Set<ObjectId>): Promise<Set<ObjectId>> {
  // A live delta whose base is dead is re-encoded without it (its pack rewritten) so the base can go; in a young
  // pack it cannot be rewritten, and its base stays live instead (FORMAT.md §15).
  const copies = new Map<ObjectId, ObjectLocation[]>();
  for (const p of plans) {
    for (const e of p.entries) copies.set(e.id, [...(copies.get(e.id) ?? []), { packId: p.packId, entry: e }]);
  }
  const young = new Set(plans.filter((p) => p.young).map((p) => p.packId));
  // Every delta record of a young pack is kept, live or not (a push's pack before its refs move): so are its bases.
  const youngDeltas = plans
    .filter((p) => p.young)
    .flatMap((p) =>
      p.entries.filter((e) => e.codec === CODECS.xorPlanes).map((entry) => ({ packId: p.packId, entry })),
    );
  const reencode = await settleDeltaBases(store, live, copies, (packId) => !young.has(packId), youngDeltas);
  for (const p of plans) {
    p.live = p.entries.filter((e) => live.has(e.id));
    p.dead = p.entries.filter((e) => !live.has(e.id));
    p.reencode = p.young ? 0 : p.live.filter((e) => reencode.has(e.id)).length;
  }
  return reencode;
}

/** Objects already safe in a pack that stays as it is: they need no second copy. */
function keptInPlace(plans: PackPlan[]): Map<ObjectId, ObjectLocation> {
  const kept = new Map<ObjectId, ObjectLocation>();
  for (const p of plans) {
    if (p.young || (p.dead.length === 0 && p.reencode === 0)) {
      for (const e of p.entries) kept.set(e.id, { packId: p.packId, entry: e });
    }
  }
  return kept;
}

/** The dead objects gc deletes, and those a young pack keeps for now (counted, with their stored bytes). */
function deadObjects(plans: PackPlan[]): { dead: Set<ObjectId>; youngObjects: number; youngBytes: number } {
  const dead = new Set<ObjectId>();
  let youngObjects = 0;
  let youngBytes = 0;
  for (const p of plans) {
    for (const e of p.dead) {
      if (p.young) {
        youngObjects++;
        youngBytes += e.storedLength;
      } else dead.add(e.id);
    }
  }
  return { dead, youngObjects, youngBytes };
}

/** Copies the live records of the doomed packs that no kept pack holds into new packs (rolled at ROLL_BYTES);
 * `kept` then maps each of them to its new place. */
async function copyLiveRecords(
  store: ObjectStore,
  doomed: PackPlan[],
  kept: Map<ObjectId, ObjectLocation>,
  reencode: Set<ObjectId>,
): Promise<FinishedPack[]> {
  const written: FinishedPack[] = [];
  let writer: PackWriter | undefined;
  try {
    for (const p of doomed) {
      for (const e of p.live) {
        if (kept.has(e.id)) continue;
        writer ??= await PackWriter.create(store.layout);
        const loc = { packId: p.packId, entry: e };
        if (reencode.has(e.id)) {
          // Decoded (and verified) while its base is still on disk, stored without it.
          const width = (await store.packs.readDeltaHead(loc))!.width;
          await writer.add(e.type, e.id, await store.packs.readObject(loc, e.id, e.type), width);
        } else {
          const body = await store.packs.readStoredRecord(loc, e.id, { verify: true });
          const { id, type, codec, rawLength, storedLength } = e;
          await writer.addStored({ id, type, codec, rawLength, storedLength }, body);
        }
        kept.set(e.id, { packId: '', entry: e }); // its final place is known when the pack is finished
        if (writer.acceptedBytes >= ROLL_BYTES) {
          const done = await writer.finish();
          writer = undefined;
          if (done) written.push(done);
        }
      }
    }
    if (writer) {
      const done = await writer.finish();
      writer = undefined;
      if (done) written.push(done);
    }
    for (const w of written) for (const e of w.entries) kept.set(e.id, { packId: w.packId, entry: e });
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  return written;
}

/** Points the index at the new packs and away from the doomed ones, then deletes the doomed pack files. */
async function retireDoomedPacks(
  store: ObjectStore,
  written: FinishedPack[],
  doomed: PackPlan[],
  dead: Set<ObjectId>,
  kept: Map<ObjectId, ObjectLocation>,
): Promise<void> {
  if (written.length) gcFault('gc.packed', store.layout.packsDir);
  // The relocation matters after a crash of an earlier gc: a live object then sits in a doomed pack and in a
  // kept one, and re-indexing may have picked the doomed copy.
  const relocate = doomed.flatMap((p) => p.live.map((e) => kept.get(e.id)!));
  await store.index.session((s) => s.replacePacks(written, doomed, dead, relocate));
  gcFault('gc.indexed', store.layout.indexDir);
  await store.packs.close(); // our own handles on the doomed packs
  for (const p of doomed) {
    const file = store.layout.packFile(p.packId);
    gcFault('gc.delete', file);
    await fs.rm(file, { force: true }).catch((e) => {
      throw ioError(e, 'delete', file);
    });
  }
  await fsyncDir(store.layout.packsDir);
}

/** What a dry run's copies would take: each live record not kept elsewhere, once, with its header. */
function estimateCopiedBytes(doomed: PackPlan[], kept: Map<ObjectId, ObjectLocation>): number {
  let bytes = 0;
  const copied = new Set<ObjectId>();
  for (const p of doomed) {
    for (const e of p.live) {
      if (kept.has(e.id) || copied.has(e.id)) continue;
      copied.add(e.id);
      bytes += RECORD_HEADER_BYTES + e.storedLength + TOC_ENTRY_BYTES;
    }
  }
  return bytes;
}

async function collectLocked(store: ObjectStore, opts: GcOptions): Promise<GcReport> {
  gcFault('gc.locked', store.layout.root);
  const now = Date.now();
  // First, so that a disk filled by killed commits has room for the repack below.
  const temps = await removeLeftovers(store.layout, now, opts.graceMs, Boolean(opts.dryRun));
  const { live, expiry } = await markLive(store, opts, now);
  const plans = await planPacks(store, now, opts.graceMs);
  const reencode = await splitLiveAndDead(store, plans, live);
  const kept = keptInPlace(plans);
  const doomed = plans.filter((p) => !p.young && (p.dead.length > 0 || p.reencode > 0));
  const { dead, youngObjects, youngBytes } = deadObjects(plans);
  const report: GcReport = {
    dryRun: Boolean(opts.dryRun),
    graceMs: opts.graceMs,
    liveObjects: live.size,
    deadObjects: dead.size,
    youngDeadObjects: youngObjects,
    youngDeadBytes: youngBytes,
    reflogLinesExpired: expiry ? expiry.count : null,
    packsBefore: plans.length,
    packsAfter: 0,
    packsDeleted: doomed.length,
    packsRewritten: doomed.filter((p) => p.live.length > 0).length,
    packsConsolidated: 0,
    bytesBefore: plans.reduce((a, p) => a + p.size, 0),
    bytesAfter: 0,
    bytesFreed: 0,
    tempsRemoved: temps.removed,
    tempBytesRemoved: temps.bytes,
    tempsKept: temps.kept,
  };

  let written: FinishedPack[] = [];
  if (!opts.dryRun && doomed.length) {
    written = await copyLiveRecords(store, doomed, kept, reencode);
    await retireDoomedPacks(store, written, doomed, dead, kept);
    // The delta-base cache may hold bytes of the chunks just freed: it goes too (the next commit writes one, §18).
    const cache = baseCacheFile(store.layout, false);
    // A cache that cannot be removed (a read-only cache folder) is no reason for gc to fail: it is checked when read.
    if (cache) await fs.rm(cache, { force: true }).catch(() => {});
  }
  const copiedBytes = opts.dryRun ? estimateCopiedBytes(doomed, kept) : written.reduce((a, w) => a + w.size, 0);
  report.bytesAfter = report.bytesBefore - doomed.reduce((a, p) => a + p.size, 0) + copiedBytes;
  report.bytesFreed = report.bytesBefore - report.bytesAfter;
  report.packsAfter = plans.length - doomed.length + (opts.dryRun ? (copiedBytes > 0 ? 1 : 0) : written.length);
  if (!opts.dryRun) {
    // Packs with nothing dead stay as they are above; many small ones are merged here, under the same lock.
    const merged = await consolidateHeldIfNeeded(store);
    if (merged?.newPack) {
      report.packsConsolidated = merged.packsMerged;
      report.packsAfter = (await listPackIds(store.layout)).size;
    }
  }
  return report;
}
