// `ckvc status` and `ckvc stats`: where the store is, what HEAD is on, and what dedup and compression buy.
import * as fs from 'node:fs/promises';
import type { ObjectId, ObjectType } from '../core/object-id.js';
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
}

export async function stats(store: ObjectStore): Promise<StatsResult> {
  const tips = [...(await store.refs.list('branch')), ...(await store.refs.list('tag'))].map((r) => r.id);
  const seen = new Set<ObjectId>();
  let logical = 0;
  let commits = 0;
  const treeSizes = new Map<ObjectId, number>();
  while (tips.length) {
    const id = tips.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if ((await store.typeOf(id)) === 'tag') {
      tips.push((await store.readTag(id)).target);
      continue;
    }
    const c = await store.readCommit(id);
    commits++;
    tips.push(...c.parents);
    if (!treeSizes.has(c.tree)) {
      const t = await store.readTree(c.tree);
      treeSizes.set(c.tree, t.entries.reduce((a, e) => a + e.size, 0));
    }
    logical += treeSizes.get(c.tree)!;
  }
  const totals = await store.index.session((s) => s.totals(), { sync: true });
  const objects: StatsResult['objects'] = {};
  let unique = 0;
  for (const [t, v] of totals) {
    objects[t] = v.count;
    unique += v.rawBytes;
  }
  let storedBytes = 0;
  const packIds = await listPackIds(store.layout);
  for (const p of packIds) storedBytes += (await fs.stat(store.layout.packFile(p))).size;
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    commits,
    logicalBytes: logical, uniqueBytes: unique, storedBytes,
    dedupRatio: ratio(logical, unique), compressionRatio: ratio(unique, storedBytes), totalRatio: ratio(logical, storedBytes),
    packs: packIds.size, objects,
  };
}
