// The live set for gc (spec/FORMAT.md §15): everything reachable from refs, aliases and every reflog line,
// minus the tensor data that prune records released. Strict: any object that cannot be read stops the walk,
// because gc must never decide "dead" about data it could not see the users of.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { tensorGlob, tensorMatches, type TensorGlob } from '../core/glob.js';
import { isObjectId, type ObjectId } from '../core/object-id.js';
import { ioError } from './durable-fs.js';
import { listFilesBelow } from './file-walk.js';
import type { ObjectStore } from './object-store.js';
import type { PruneRecord } from './prune-records.js';

/** Every ID named by a reflog line, old or new. */
async function reflogIds(store: ObjectStore): Promise<Set<ObjectId>> {
  const out = new Set<ObjectId>();
  for (const rel of await listFilesBelow(store.layout.logsDir)) {
    const p = path.join(store.layout.logsDir, ...rel.split('/'));
    const text = await fs.readFile(p, 'utf8').catch((err) => { throw ioError(err, 'read', p); });
    for (const line of text.split('\n')) {
      for (const word of line.split(' ', 2)) if (isObjectId(word) && !/^0+$/.test(word)) out.add(word);
    }
  }
  return out;
}

export interface Roots {
  refs: ObjectId[];
  reflog: ObjectId[];
}

export async function gcRoots(store: ObjectStore): Promise<Roots> {
  const refs: ObjectId[] = [];
  for (const kind of ['branch', 'tag', 'alias', 'remote'] as const) {
    // A damaged ref stops gc: what it pointed at cannot be known, so nothing may be called dead.
    for (const r of await store.refs.list(kind)) refs.push(r.id);
  }
  return { refs, reflog: [...(await reflogIds(store))] };
}

type Release = 'none' | 'all' | TensorGlob[];

/**
 * Live object IDs. Reflog IDs whose objects are gone (a commit a failed command never finished) are skipped;
 * a ref pointing at a missing object is an error.
 */
export async function liveObjects(store: ObjectStore, roots: Roots, pruned: Map<ObjectId, PruneRecord>): Promise<Set<ObjectId>> {
  const live = new Set<ObjectId>();
  // Trees, files and tensors are walked once per release context: a tensor reached from a pruned commit
  // without its chunks may be reached again from a kept commit, with them.
  const walked = new Map<ObjectId, Set<string>>();
  const firstIn = (id: ObjectId, ctx: string) => {
    const s = walked.get(id) ?? new Set<string>();
    if (s.has(ctx)) return false;
    s.add(ctx);
    walked.set(id, s);
    return true;
  };
  const reflogSet = new Set(roots.reflog);
  const stack: ObjectId[] = [...roots.refs, ...roots.reflog];
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    const type = await store.typeOf(id);
    if (type === undefined) {
      if (reflogSet.has(id) && !roots.refs.includes(id)) continue;
      throw new CkvcError('CKVC_MISSING_OBJECT', `object ${id.slice(0, 16)} that history needs is missing; run 'ckvc verify' and fix the store before gc`, { id });
    }
    live.add(id);
    if (type === 'tag') {
      stack.push((await store.readTag(id)).target);
      continue;
    }
    if (type !== 'commit') continue;
    const c = await store.readCommit(id);
    stack.push(...c.parents);
    if (c.config) live.add(c.config.snapshot);
    const rec = pruned.get(id);
    const release: Release = !rec ? 'none' : rec.tensors === null ? 'all' : rec.tensors.map(tensorGlob);
    const ctx = !rec ? 'none' : rec.tensors === null ? 'all' : JSON.stringify(rec.tensors);
    await walkTree(store, c.tree, '', release, ctx, live, firstIn);
  }
  return live;
}

async function walkTree(store: ObjectStore, id: ObjectId, dir: string, release: Release, ctx: string, live: Set<ObjectId>, firstIn: (id: ObjectId, ctx: string) => boolean): Promise<void> {
  // Glob contexts depend on the path, so the per-context shortcut applies to 'none' and 'all' only.
  if (!Array.isArray(release) && !firstIn(id, ctx)) return;
  live.add(id);
  for (const e of (await store.readTree(id)).entries) {
    const p = dir ? `${dir}/${e.name}` : e.name;
    if (e.type === 'tree') {
      await walkTree(store, e.id, p, release, ctx, live, firstIn);
      continue;
    }
    live.add(e.id);
    if (!Array.isArray(release) && !firstIn(e.id, ctx)) continue;
    for (const part of (await store.readFileRecipe(e.id)).parts) {
      live.add(part.id);
      if (part.kind === 'chunk') continue;
      const released = release === 'all' || (Array.isArray(release) && tensorMatches(release, p, part.name));
      if (released || !firstIn(part.id, 'data')) continue;
      for (const chunk of (await store.readTensor(part.id)).chunks) live.add(chunk);
    }
  }
}

/** Is this tensor (in file `p` of the commit) released by the record? */
export function tensorReleased(rec: PruneRecord | undefined, filePath: string, tensorName: string): boolean {
  if (!rec) return false;
  if (rec.tensors === null) return true;
  return tensorMatches(rec.tensors.map(tensorGlob), filePath, tensorName);
}
