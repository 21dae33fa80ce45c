// `ckvc status` and `ckvc stats`: where the store is, what HEAD is on, and what dedup and compression buy.
import { PromiseRecords } from '../store/promise-records.js';
import * as fs from 'node:fs/promises';
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import { decodeTree } from '../core/store-format/objects/tree-object.js';
import { listPackIds } from '../store/object-index.js';
import type { IndexTotals } from '../store/index-totals.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';

export interface StatusResult {
  store: string;
  head: { branch?: string; detached?: ObjectId };
  tip?: { id: ObjectId; message: string; time: number; metrics: Record<string, number>; step?: number };
  branches: number;
  tags: number;
}

export async function status(store: ObjectStore): Promise<StatusResult> {
  const head = await store.refs.readHead();
  const tipId = head.kind === 'detached' ? head.id : await store.refs.read(REF_PREFIX.branch + head.branch);
  let tip: StatusResult['tip'];
  if (tipId) {
    const c = await store.readCommit(tipId);
    tip = { id: tipId, message: c.message, time: c.time, metrics: c.metrics, step: c.step };
  }
  return {
    store: store.root,
    head: head.kind === 'branch' ? { branch: head.branch } : { detached: head.id },
    tip,
    branches: (await store.refs.list('branch', { skipCorrupt: true })).length,
    tags: (await store.refs.list('tag', { skipCorrupt: true })).length,
  };
}

export interface StatsResult {
  commits: number;
  /** Bytes of every file of every commit reachable from a branch or tag, as separate folders would hold them. */
  logicalBytes: number;
  /**
   * File data after deduplication, before compression: the chunks of file bytes the store holds (config
   * snapshots and metadata objects are in `metadataBytes`), at most `logicalBytes` (see `stats`).
   */
  uniqueBytes: number;
  /** Commits, trees, file recipes, tensor descriptions, tags and config snapshots: raw bytes. */
  metadataBytes: number;
  /** Bytes of pack files on disk. */
  storedBytes: number;
  dedupRatio: number;
  compressionRatio: number;
  totalRatio: number;
  packs: number;
  objects: Partial<Record<ObjectType, number>>;
  /** Chunks stored as XOR deltas against a base (FORMAT.md §4.3): how many, their bytes before and after. */
  deltas: { chunks: number; rawBytes: number; storedBytes: number; ratio: number };
  /** Commits a partial fetch left tensor data out of, by the remote that has it (FORMAT.md §13.2). */
  partial: Record<string, number>;
}

export async function stats(store: ObjectStore): Promise<StatsResult> {
  // Linear in the history, and nothing in it per pack: commit bodies come from the index's cache (§8), the
  // distinct trees are located in one index batch and read in pack order, and only the refs' tips are asked
  // for their type (a parent is always a commit).
  // Every ref's history counts, fetched ones too: after a fetch the store's bytes are the remote-tracking refs'.
  const kinds = ['branch', 'tag', 'alias', 'remote'] as const;
  const tips = (await Promise.all(kinds.map((k) => store.refs.list(k)))).flat().map((r) => r.id);
  const seen = new Set<ObjectId>();
  const treeOf: ObjectId[] = [];
  const configs = new Set<ObjectId>();
  const pending: ObjectId[] = [];
  for (let id of tips) {
    for (let hops = 0; hops < 64 && (await store.typeOf(id)) === 'tag'; hops++) id = (await store.readTag(id)).target;
    pending.push(id);
  }
  while (pending.length) {
    const id = pending.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const c = await store.readCommit(id);
    treeOf.push(c.tree);
    if (c.config) configs.add(c.config.snapshot);
    pending.push(...(await store.parentsHeld(id, c.parents)));
  }
  const trees = [...new Set(treeOf)];
  const locs = await store.locateAll(trees, 'tree');
  const order = trees
    .map((_, i) => i)
    .sort((a, b) =>
      locs[a]!.packId < locs[b]!.packId
        ? -1
        : locs[a]!.packId > locs[b]!.packId
          ? 1
          : locs[a]!.entry.offset - locs[b]!.entry.offset,
    );
  const treeSizes = new Map<ObjectId, number>();
  for (const i of order) {
    const t = decodeTree(await store.readLocated(locs[i]!, trees[i]!, 'tree'), `tree ${trees[i]!.slice(0, 12)}`);
    treeSizes.set(
      trees[i]!,
      t.entries.reduce((a, e) => a + e.size, 0),
    );
  }
  const commits = treeOf.length;
  const logical = treeOf.reduce((a, t) => a + treeSizes.get(t)!, 0);
  const totals = await store.index.session((s) => s.totals(), { sync: true });
  const objects: StatsResult['objects'] = {};
  for (const [t, v] of totals) objects[t] = v.count;
  const { unique, metadata } = await dataAndMetadata(store, totals, [...configs], logical);
  const d = totals.get('chunk')?.deltas ?? { count: 0, rawBytes: 0, storedBytes: 0 };
  let storedBytes = 0;
  const packIds = await listPackIds(store.layout);
  for (const p of packIds) storedBytes += (await fs.stat(store.layout.packFile(p))).size;
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    commits,
    logicalBytes: logical,
    uniqueBytes: unique,
    metadataBytes: metadata,
    storedBytes,
    dedupRatio: ratio(logical, unique),
    compressionRatio: ratio(unique, storedBytes),
    totalRatio: ratio(logical, storedBytes),
    packs: packIds.size,
    objects,
    deltas: {
      chunks: d.count,
      rawBytes: d.rawBytes,
      storedBytes: d.storedBytes,
      ratio: ratio(d.rawBytes, d.storedBytes),
    },
    partial: await partialCommits(store),
  };
}

/** Promise records by remote: what `unique` and `stored` leave out because it was not fetched. */
async function partialCommits(store: ObjectStore): Promise<Record<string, number>> {
  // Counted in a Map: a remote named like an Object member (hasOwnProperty) must not start from the member.
  const out = new Map<string, number>();
  for (const r of (await new PromiseRecords(store.layout).all()).values())
    out.set(r.remote, (out.get(r.remote) ?? 0) + 1);
  return Object.fromEntries(out);
}

/**
 * Splits the index's raw bytes into file data and metadata. File data are the chunks that are not config
 * snapshots; every such chunk is a whole part of some file (a recipe's parts add up to its size, FORMAT.md §5),
 * so the distinct data a reachable history uses is at most its logical bytes. Chunks no branch or tag reaches (a
 * deleted branch or reflog entry awaiting gc, an interrupted commit) are held too, and counting them could put
 * unique above logical: the figure is capped at logical, since telling them apart would take a walk of every
 * recipe and tensor in the history (gc's mark), which stats avoids to stay fast. `gc` frees them.
 */
async function dataAndMetadata(
  store: ObjectStore,
  totals: IndexTotals,
  configSnapshots: ObjectId[],
  logical: number,
): Promise<{ unique: number; metadata: number }> {
  let all = 0;
  for (const v of totals.values()) all += v.rawBytes;
  const configBytes = (await store.locate(configSnapshots)).reduce((a, l) => a + (l?.entry.rawLength ?? 0), 0);
  const data = (totals.get('chunk')?.rawBytes ?? 0) - configBytes;
  return { unique: Math.min(data, logical), metadata: all - data };
}
