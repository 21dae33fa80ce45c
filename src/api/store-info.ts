// `ckvc status` and `ckvc stats`: where the store is, what HEAD is on, and what dedup and compression buy.
import * as fs from 'node:fs/promises';
import type { ObjectId, ObjectType } from '../core/object-id.js';
import { decodeTree } from '../core/objects/tree-object.js';
import { listPackIds } from '../store/object-index.js';
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
  /** Bytes of every file of every commit, as separate folders of checkpoints would hold them. */
  logicalBytes: number;
  /** Distinct object bytes after deduplication, before compression. */
  uniqueBytes: number;
  /** Bytes of pack files on disk. */
  storedBytes: number;
  dedupRatio: number;
  compressionRatio: number;
  totalRatio: number;
  packs: number;
  objects: Partial<Record<ObjectType, number>>;
  /** Chunks stored as XOR deltas against a base (FORMAT.md §4.3): how many, their bytes before and after. */
  deltas: { chunks: number; rawBytes: number; storedBytes: number; ratio: number };
}

export async function stats(store: ObjectStore): Promise<StatsResult> {
  // Linear in the history, and nothing in it per pack: commit bodies come from the index's cache (§8), the
  // distinct trees are located in one index batch and read in pack order, and only the refs' tips are asked
  // for their type (a parent is always a commit).
  const tips = [...(await store.refs.list('branch')), ...(await store.refs.list('tag'))].map((r) => r.id);
  const seen = new Set<ObjectId>();
  const treeOf: ObjectId[] = [];
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
    pending.push(...c.parents);
  }
  const trees = [...new Set(treeOf)];
  const locs = await store.locateAll(trees, 'tree');
  const order = trees.map((_, i) => i).sort((a, b) => (locs[a]!.packId < locs[b]!.packId ? -1 : locs[a]!.packId > locs[b]!.packId ? 1 : locs[a]!.entry.offset - locs[b]!.entry.offset));
  const treeSizes = new Map<ObjectId, number>();
  for (const i of order) {
    const t = decodeTree(await store.readLocated(locs[i]!, trees[i]!, 'tree'), `tree ${trees[i]!.slice(0, 12)}`);
    treeSizes.set(trees[i]!, t.entries.reduce((a, e) => a + e.size, 0));
  }
  const commits = treeOf.length;
  const logical = treeOf.reduce((a, t) => a + treeSizes.get(t)!, 0);
  const totals = await store.index.session((s) => s.totals(), { sync: true });
  const objects: StatsResult['objects'] = {};
  let unique = 0;
  for (const [t, v] of totals) {
    objects[t] = v.count;
    unique += v.rawBytes;
  }
  const d = totals.get('chunk')?.deltas ?? { count: 0, rawBytes: 0, storedBytes: 0 };
  let storedBytes = 0;
  const packIds = await listPackIds(store.layout);
  for (const p of packIds) storedBytes += (await fs.stat(store.layout.packFile(p))).size;
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    commits,
    logicalBytes: logical, uniqueBytes: unique, storedBytes,
    dedupRatio: ratio(logical, unique), compressionRatio: ratio(unique, storedBytes), totalRatio: ratio(logical, storedBytes),
    packs: packIds.size, objects,
    deltas: { chunks: d.count, rawBytes: d.rawBytes, storedBytes: d.storedBytes, ratio: ratio(d.rawBytes, d.storedBytes) },
  };
}
