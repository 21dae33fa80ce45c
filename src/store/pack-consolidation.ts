// Pack consolidation (spec/FORMAT.md §15.2): every commit writes at least one pack, so a store of many small
// commits would hold one small pack per commit, and everything that lists packs/ or checks the index against it
// would grow with the history. After a write, when more than AUTO_SMALL_PACKS packs are small, the smallest are
// merged into one, their records copied verbatim (whatever their codec; live or dead: this is not gc). Which
// packs merge follows a geometric rule (as git's `repack --geometric=2`): after a merge every small pack is at
// least twice the size of all smaller ones together, so the small packs number O(log(SMALL_PACK_BYTES / the
// smallest pack)) plus the packs written since, each record is copied O(log n) times over its life, and a merged
// pack that outgrows SMALL_PACK_BYTES is never copied again. The pack count thus stays bounded whatever the
// number of commits (about AUTO_SMALL_PACKS + 25 small packs, plus one per SMALL_PACK_BYTES of data).
//
// Crash safety: the new pack is durable before the index names it, the index forgets the old packs (and points
// their objects at the new copy) in one batch before any file is deleted, and every object is in at least one
// pack file on disk at every instant. A crash leaves, at worst, an object in two packs, which the next session
// indexes and the next consolidation merges again.
import * as fs from 'node:fs/promises';
import { CkvcError } from '../core/errors.js';
import type { PackEntry } from '../core/store-format/pack-format.js';
import { fsyncDir, ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import { acquireGcLock } from './gc-exclusion.js';
import type { HeldLock } from './lock-file.js';
import { listPackIds } from './object-index.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation } from './pack-reader.js';
import { PackWriter, type FinishedPack } from './pack-writer.js';

// Both read when used, not when the module loads: `ckvc helper-server` runs many commands in one process, each
// with the environment its request names (spec/HELPER.md).
/** Packs below this size are merged; bigger ones (real checkpoints, or merges that grew) are left to gc. */
const smallPackBytes = () => Number(process.env.CKVC_SMALL_PACK_BYTES ?? 16 * 1024 * 1024);
/** More small packs than this after a write trigger a consolidation. */
const autoSmallPacks = () => Number(process.env.CKVC_AUTO_SMALL_PACKS ?? 32);
/** Each small pack that stays must be at least this many times the size of all smaller ones together. */
const GEOMETRIC_FACTOR = 2;

export interface ConsolidationReport {
  /** Small packs found, and how many of them were merged (0: nothing to do, or another process was busy). */
  smallPacks: number;
  packsMerged: number;
  objectsCopied: number;
  bytesCopied: number;
  /** The merged pack, if one was written. */
  newPack?: string;
  /** Why nothing was done although the limit was passed: gc or another writer holds the store. */
  skipped?: string;
}

interface SmallPack {
  packId: string;
  size: number;
}

/** The small packs on disk, smallest first. Stats every pack: the count is bounded by consolidation itself. */
async function smallPacks(store: ObjectStore): Promise<SmallPack[]> {
  const out: SmallPack[] = [];
  const limit = smallPackBytes();
  for (const packId of await listPackIds(store.layout)) {
    const st = await fs.stat(store.layout.packFile(packId)).catch((e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // deleted meanwhile
      throw ioError(e, 'stat', store.layout.packFile(packId));
    });
    if (st && st.size < limit) out.push({ packId, size: st.size });
  }
  return out.sort((a, b) => a.size - b.size || (a.packId < b.packId ? -1 : 1));
}

/**
 * The smallest packs to merge so that every pack left is at least GEOMETRIC_FACTOR times all smaller ones
 * together (the merged one included): the prefix up to the last pack that breaks the rule. At least two, or none.
 */
export function geometricPrefix(sizes: number[]): number {
  let cut = 0;
  let below = 0;
  for (let i = 0; i < sizes.length; i++) {
    if (sizes[i]! < GEOMETRIC_FACTOR * below) cut = i + 1;
    below += sizes[i]!;
  }
  return cut >= 2 ? cut : 0;
}

/** Are there more than CKVC_AUTO_SMALL_PACKS (32) small packs? */
async function overLimit(store: ObjectStore): Promise<boolean> {
  // A listing alone decides the common case; sizes are only looked at once there are enough packs to matter.
  const most = autoSmallPacks();
  if ((await listPackIds(store.layout)).size <= most) return false;
  return (await smallPacks(store)).length > most;
}

/** After a write: consolidates if more than CKVC_AUTO_SMALL_PACKS packs are small; never waits for anybody. */
export async function consolidateIfNeeded(store: ObjectStore): Promise<ConsolidationReport | undefined> {
  return (await overLimit(store)) ? consolidatePacks(store, { wait: false }) : undefined;
}

/** The same, for gc at its end: it already holds gc.lock with no writer registered. */
export async function consolidateHeldIfNeeded(store: ObjectStore): Promise<ConsolidationReport | undefined> {
  return (await overLimit(store)) ? consolidateHeld(store, false) : undefined;
}

/**
 * Merges the small packs the geometric rule picks (`all`: every small pack) into one. Takes gc.lock and needs no
 * live writer registered, like gc; with `wait: false` it gives up at once (reported as `skipped`) if either is
 * busy, so a commit never waits for another process's work.
 */
export async function consolidatePacks(
  store: ObjectStore,
  opts: { wait: boolean; all?: boolean },
): Promise<ConsolidationReport> {
  let lock: HeldLock;
  try {
    lock = await acquireGcLock(store.layout, opts.wait ? undefined : 0);
  } catch (e) {
    if (opts.wait || !(e instanceof CkvcError && e.code === 'CKVC_LOCKED')) throw e;
    return { smallPacks: 0, packsMerged: 0, objectsCopied: 0, bytesCopied: 0, skipped: e.message };
  }
  try {
    return await consolidateHeld(store, Boolean(opts.all));
  } finally {
    await lock.release();
  }
}

/** The work itself, for a caller holding gc.lock with no writer registered (consolidatePacks, or gc at its end). */
export async function consolidateHeld(store: ObjectStore, all: boolean): Promise<ConsolidationReport> {
  faultPoint('consolidate.locked');
  store.index.forWriting();
  // Every pack on disk indexed first: the merged packs' index entries are replaced below, so they must exist.
  await store.index.session(async () => {}, { sync: true });
  const small = await smallPacks(store);
  const n = all ? (small.length >= 2 ? small.length : 0) : geometricPrefix(small.map((p) => p.size));
  const report: ConsolidationReport = { smallPacks: small.length, packsMerged: 0, objectsCopied: 0, bytesCopied: 0 };
  if (n === 0) return report;
  const merged: { packId: string; entries: PackEntry[] }[] = [];
  let writer: PackWriter | undefined;
  let done: FinishedPack | undefined;
  try {
    writer = await PackWriter.create(store.layout);
    for (const p of small.slice(0, n)) {
      const toc = await store.packs.readTocIfSound(p.packId);
      if (!toc) continue; // damaged: left alone for verify to report; its objects stay where they are
      merged.push({ packId: p.packId, entries: toc.entries });
      for (const e of toc.entries) {
        if (writer.has(e.id)) continue; // the same object in two packs (a crash, or two commits racing)
        // Verified like gc's copies: a damaged record must not be laundered into a pack with a fresh checksum.
        const body = await store.packs.readStoredRecord({ packId: p.packId, entry: e }, e.id, { verify: true });
        await writer.addStored(
          { id: e.id, type: e.type, codec: e.codec, rawLength: e.rawLength, storedLength: e.storedLength },
          body,
        );
      }
    }
    if (merged.length >= 2) done = await writer.finish();
    else await writer.abort();
    writer = undefined;
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  if (!done) return report;
  // Byte for byte one of its inputs (the others held only duplicates of it): that file is the result, not doomed.
  const doomed = merged.filter((p) => p.packId !== done.packId);
  faultPoint('consolidate.packed');
  const placed = new Map(done.entries.map((e) => [e.id, e]));
  const relocate: ObjectLocation[] = [...placed.values()].map((entry) => ({ packId: done.packId, entry }));
  // Nothing is gone: commit bodies cached in the index stay; every `o` key of a merged pack moves to the new one.
  await store.index.session((s) => s.replacePacks([done], doomed, new Set(), relocate));
  faultPoint('consolidate.indexed');
  await store.packs.close(); // our own handles on the merged packs
  for (const p of doomed) {
    const file = store.layout.packFile(p.packId);
    faultPoint('consolidate.delete');
    await fs.rm(file, { force: true }).catch((e) => {
      throw ioError(e, 'delete', file);
    });
  }
  await fsyncDir(store.layout.packsDir);
  report.packsMerged = merged.length;
  report.objectsCopied = done.entries.length;
  report.bytesCopied = done.size;
  report.newPack = done.packId;
  return report;
}
