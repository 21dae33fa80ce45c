// Verifying every record of a pack (a received bundle; a store's packs for verify --read-data) one by one decodes
// each delta record through its whole chain, so a series of N commits costs 1 + 2 + ... + N chain links per chunk
// (a delta-coded series of 8 real 99 MB checkpoints: 5.3 s to verify as a bundle). Here each delta record is
// verified right after its base, and the last verified bases' bytes are remembered, so each record is decoded
// once, against its base. Chains are verified side by side, a bounded number of bytes at a time, so that both
// cores work. Nothing here trusts the order or the links it is given: every record is still decoded and hashed,
// only a chunk whose own hash matched is remembered, and the chain bound still counts, per plane, the links a
// read through the chain would open under a remembered base.
import { scratch } from '../core/buffer-pool.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { CODECS } from '../core/store-format/pack-format.js';
import type { BaseLocator, ObjectLocation, PackReader } from './pack-reader.js';
import type { KnownChunk } from './plane-chain.js';

/** Verified bases remembered for the deltas still to come (the oldest forgotten first). */
const KEPT_BYTES = 16 * 1024 * 1024;
/** Raw bytes of records being decoded at once (a record larger than this runs alone). */
const IN_FLIGHT_BYTES = 32 * 1024 * 1024;
/** Chains verified side by side: enough to keep the zstd threads and the main thread busy on two cores. */
const WORKERS = 4;

export interface ChainOrderOptions {
  /** Where a base outside `records` is found; without it, the pack reader's own locator (the store's index). */
  locateBase?: BaseLocator;
  /** Whether a verified chunk may serve the deltas on it from memory (default: all may). */
  remember?: (id: ObjectId) => boolean;
  /** The base a delta record names, when the caller has read it already (else it is read here). */
  baseIdOf?: (record: ObjectLocation) => ObjectId | undefined;
  /** Called with each verified object, in chain order. */
  onObject?: (record: ObjectLocation, bytes: Uint8Array) => void;
  /** The error to throw for a record that failed (the first failure stops the rest). */
  failure?: (record: ObjectLocation, e: unknown) => unknown;
  /** Instead: told of each record that failed, and the others are still verified (verify --read-data). */
  problem?: (record: ObjectLocation, e: unknown) => void;
}

/** Decodes and hash-checks every record of `records`, each against its base once. */
export async function verifyInChainOrder(
  packs: PackReader,
  records: ObjectLocation[],
  opts: ChainOrderOptions,
): Promise<void> {
  const tasks = await chainTasks(packs, records, opts);
  // Bases remembered, oldest first: a delta follows its base in its task, so the one it needs is among the
  // last few verified; one evicted sooner is decoded through its chain, as a store read does.
  const kept = new Map<ObjectId, KnownChunk>();
  let keptBytes = 0;
  const keep = (id: ObjectId, chunk: KnownChunk) => {
    const size = chunk.bytes.length;
    if (kept.has(id) || size > KEPT_BYTES) return;
    for (const [oldId, old] of kept) {
      if (keptBytes + size <= KEPT_BYTES) break;
      kept.delete(oldId);
      keptBytes -= old.bytes.length;
    }
    kept.set(id, chunk);
    keptBytes += size;
  };
  const budget = new ByteBudget(IN_FLIGHT_BYTES);
  let failed: unknown;
  let next = 0;
  const known = (id: ObjectId) => kept.get(id);

  const verify = async (t: Step) => {
    const { record } = t;
    const { entry } = record;
    await budget.take(entry.rawLength);
    if (failed !== undefined && !opts.problem) {
      budget.give(entry.rawLength);
      return;
    }
    // Only a chunk can be a base (a delta on any other object is refused, as a read through the chain refuses it).
    const asBase = t.deltas && entry.type === 'chunk';
    try {
      // A chunk no delta here builds on is read into the pool and handed back once verified (the big records:
      // a fresh buffer each page-faulted on every read); onObject looks at it and keeps nothing.
      const pooled = entry.type === 'chunk' && !asBase;
      const pool = pooled ? scratch : undefined;
      const got = await packs.readVerified(record, entry.id, entry.type, opts.locateBase, known, asBase, pool);
      opts.onObject?.(record, got.bytes);
      if (got.known && (opts.remember?.(entry.id) ?? true)) keep(entry.id, got.known);
      // Decoded bytes a delta does not keep go back too (release ignores what the pool did not make).
      if (got.known?.bytes !== got.bytes) scratch.release(got.bytes);
    } catch (e) {
      // With `problem`, the deltas on it decode through their chains, and fail there.
      if (!opts.problem) throw opts.failure ? opts.failure(record, e) : e;
      opts.problem(record, e);
    } finally {
      budget.give(entry.rawLength);
    }
  };

  const worker = async () => {
    while (failed === undefined && next < tasks.length) {
      const task = tasks[next++]!;
      for (const t of task) {
        if (failed !== undefined) return;
        try {
          await verify(t);
        } catch (e) {
          failed ??= e;
          return;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WORKERS, tasks.length) }, worker));
  if (failed !== undefined) throw failed;
}

interface Step {
  record: ObjectLocation;
  /** Whether any of the records is a delta on it (then it is remembered once verified). */
  deltas: boolean;
}

/**
 * The records grouped into tasks, each a record with no base among them followed by the records that build on
 * it, depth first (a delta right after its base). Records no task reaches (a loop of bases: hostile) come last,
 * one per task, and fail as a chain longer than the bound when decoded. A record whose delta head cannot be read
 * is a task of its own: its decoding reports the damage.
 */
async function chainTasks(packs: PackReader, records: ObjectLocation[], opts: ChainOrderOptions): Promise<Step[][]> {
  const ids = new Set(records.map((r) => r.entry.id));
  /** Records that are deltas on another record: they are reached from their base, not tasks' roots. */
  const onBase = new Set<ObjectId>();
  const deltasOn = new Map<ObjectId, ObjectLocation[]>();
  for (const record of records) {
    if (record.entry.codec !== CODECS.xorPlanes) continue;
    let base: ObjectId | undefined;
    try {
      base = opts.baseIdOf?.(record) ?? (await packs.readDeltaBaseId(record));
    } catch (e) {
      if (!opts.problem) throw opts.failure ? opts.failure(record, e) : e;
      continue;
    }
    if (base === undefined || !ids.has(base) || base === record.entry.id) continue;
    onBase.add(record.entry.id);
    const list = deltasOn.get(base) ?? [];
    list.push(record);
    deltasOn.set(base, list);
  }
  const step = (record: ObjectLocation): Step => ({ record, deltas: deltasOn.has(record.entry.id) });
  // By record, not ID: a store may hold an object twice (in two packs), and verify reads both.
  const placed = new Set<ObjectLocation>();
  const tasks: Step[][] = [];
  for (const root of records) {
    if (onBase.has(root.entry.id) || placed.has(root)) continue;
    const task: Step[] = [];
    const stack = [root];
    while (stack.length) {
      const r = stack.pop()!;
      if (placed.has(r)) continue;
      placed.add(r);
      task.push(step(r));
      const on = deltasOn.get(r.entry.id);
      if (on) for (let i = on.length - 1; i >= 0; i--) stack.push(on[i]!);
    }
    tasks.push(task);
  }
  for (const r of records) if (!placed.has(r)) tasks.push([{ record: r, deltas: false }]);
  return tasks;
}

/** Admits work while the bytes in flight stay under a bound; one item larger than the bound runs alone. */
class ByteBudget {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async take(n: number): Promise<void> {
    while (this.used > 0 && this.used + n > this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.used += n;
  }

  give(n: number): void {
    this.used -= n;
    for (const wake of this.waiting.splice(0)) wake();
  }
}
