// Promotes a verified quarantine into the store (spec/BUNDLE.md §4): check that every object the new refs
// reach is in the bundle or already in the store, move the pack into packs/, index it, record prune records,
// then move refs by compare-and-swap. A failure before the pack moves leaves the store exactly as it was.
import * as fs from 'node:fs/promises';
import { bad } from '../core/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import { tensorGlob, tensorMatches } from '../core/glob.js';
import type { ObjectId, ObjectType } from '../core/object-id.js';
import { decodeCommit } from '../core/objects/commit-object.js';
import { decodeFileRecipe } from '../core/objects/file-recipe.js';
import { decodeTag } from '../core/objects/tag-object.js';
import { decodeTensor } from '../core/objects/tensor-object.js';
import { decodeTree } from '../core/objects/tree-object.js';
import type { PackEntry } from '../core/pack-format.js';
import { fsyncDir, ioError } from '../store/durable-fs.js';
import { isAncestor } from '../store/ancestry.js';
import { faultPoint } from '../store/fault-injection.js';
import { registerWriter } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { PackReader } from '../store/pack-reader.js';
import type { ReceivedBundle } from './bundle-reader.js';

export interface RefUpdate {
  name: string;
  old: ObjectId | null;
  new: ObjectId;
  forced: boolean;
  skipped?: 'unchanged';
}

export interface ImportOptions {
  /** Map a bundle ref name to the local ref to set (or undefined to leave it). */
  targetRef: (name: string) => string | undefined;
  force?: boolean;
  who: string;
  message: string;
}

export interface ImportResult {
  objects: number;
  newObjects: number;
  packId?: string;
  refs: RefUpdate[];
}

/** Reads objects from the quarantine pack first, then the store. */
class Overlay {
  private readonly byId = new Map<ObjectId, PackEntry>();
  private readonly packs: PackReader | undefined;

  constructor(private readonly store: ObjectStore, private readonly rb: ReceivedBundle | undefined) {
    for (const e of rb?.entries ?? []) this.byId.set(e.id, e);
    this.packs = rb && new PackReader(rb.quarantine);
  }

  inBundle(id: ObjectId): boolean {
    return this.byId.has(id);
  }

  async typeOf(id: ObjectId): Promise<ObjectType | undefined> {
    return this.byId.get(id)?.type ?? (await this.store.typeOf(id));
  }

  async read(id: ObjectId, type: ObjectType): Promise<Uint8Array> {
    const e = this.byId.get(id);
    if (e) return this.packs!.readObject({ packId: this.rb!.packId!, entry: e }, id, type);
    return this.store.readRaw(id, type);
  }

  async close(): Promise<void> {
    await this.packs?.close();
  }

  /** Both ends may be new, in the bundle. */
  async parentsOf(id: ObjectId): Promise<ObjectId[]> {
    const type = await this.typeOf(id);
    if (type === 'tag') return [decodeTag(await this.read(id, 'tag'), 'tag').target];
    if (type === 'commit') return decodeCommit(await this.read(id, 'commit'), 'commit').parents;
    return [];
  }
}

/**
 * Every object reachable from the tips must be in the bundle or the store. With a bundle, only its commits are
 * walked (history the store holds is complete there, verify's promise); without one (a push whose objects were
 * stored first), the walk stops at commits a ref of the store already names.
 */
export async function checkClosure(store: ObjectStore, source: ReceivedBundle | ObjectId, where: string): Promise<void> {
  const rb = typeof source === 'string' ? undefined : source;
  const tips = rb ? rb.header.refs.map((r) => r.id) : [source as ObjectId];
  if (rb) {
    const missingPrereq: ObjectId[] = [];
    for (const p of rb.header.prerequisites) if ((await store.typeOf(p)) === undefined) missingPrereq.push(p);
    if (missingPrereq.length) {
      throw new CkvcError('CKVC_MISSING_PREREQUISITE', `${where} needs ${missingPrereq.length} commit(s) this store does not have: ${missingPrereq.map((p) => p.slice(0, 12)).join(', ')}; import the bundle(s) or pull the history they belong to first`, { missing: missingPrereq });
    }
  }
  const known = new Set<ObjectId>();
  if (!rb) for (const kind of ['branch', 'tag', 'alias', 'remote'] as const) for (const r of await store.refs.list(kind, { skipCorrupt: true })) known.add(r.id);
  const o = new Overlay(store, rb);
  try {
    const pruned = new Map<ObjectId, { tensors: string[] | null }>(rb ? rb.header.pruned.map((p) => [p.commit, p]) : [...(await store.pruned.all())]);
    const seen = new Set<string>();
    const missing = (id: ObjectId, what: string) => bad(where, `is incomplete: ${what} ${id.slice(0, 16)} is neither ${rb ? 'in the bundle nor ' : ''}in the store`, { id });
    const stack: ObjectId[] = [...tips];
    const checkChunks = async (ids: ObjectId[]) => {
      const absent = ids.filter((id) => !o.inBundle(id));
      if (!absent.length) return;
      const locs = await store.locate(absent);
      locs.forEach((l, i) => { if (!l) throw missing(absent[i]!, 'chunk'); });
    };
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const type = await o.typeOf(id);
      if (type === undefined) throw missing(id, 'commit');
      if (rb ? !o.inBundle(id) : known.has(id)) continue;
      if (type === 'tag') {
        stack.push(decodeTag(await o.read(id, 'tag'), `tag ${id.slice(0, 12)}`).target);
        continue;
      }
      if (type !== 'commit') throw bad(where, `ref or parent ${id.slice(0, 16)} is a ${type}, not a commit`);
      const c = decodeCommit(await o.read(id, 'commit'), `commit ${id.slice(0, 12)}`);
      stack.push(...c.parents);
      if (c.config) await checkChunks([c.config.snapshot]);
      const rec = pruned.get(id);
      const globs = rec?.tensors ? rec.tensors.map(tensorGlob) : undefined;
      const walkTree = async (treeId: ObjectId, dir: string): Promise<void> => {
        if ((await o.typeOf(treeId)) !== 'tree') throw missing(treeId, 'tree');
        for (const e of decodeTree(await o.read(treeId, 'tree'), `tree ${treeId.slice(0, 12)}`).entries) {
          const p = dir ? `${dir}/${e.name}` : e.name;
          if (e.type === 'tree') {
            await walkTree(e.id, p);
            continue;
          }
          if ((await o.typeOf(e.id)) !== 'file') throw missing(e.id, 'file');
          const key = `${e.id}:${rec ? id : '-'}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const recipe = decodeFileRecipe(await o.read(e.id, 'file'), `file ${p}`);
          await checkChunks(recipe.parts.filter((x) => x.kind === 'chunk').map((x) => x.id));
          for (const part of recipe.parts) {
            if (part.kind !== 'tensor') continue;
            if ((await o.typeOf(part.id)) !== 'tensor') throw missing(part.id, 'tensor');
            const released = rec && (rec.tensors === null || tensorMatches(globs!, p, part.name));
            if (released || seen.has(part.id)) continue;
            seen.add(part.id);
            await checkChunks(decodeTensor(await o.read(part.id, 'tensor'), `tensor ${part.name}`).chunks);
          }
        }
      };
      await walkTree(c.tree, '');
    }
  } finally {
    await o.close();
  }
}

function receiveFault(step: 'receive.verified' | 'receive.moved' | 'receive.indexed', p: string): void {
  try {
    faultPoint(step);
  } catch (e) {
    throw ioError(e, 'store the received objects in', p);
  }
}

/** Moves a verified quarantine pack into the store and indexes it; records its prune records. */
export async function promoteObjects(store: ObjectStore, rb: ReceivedBundle): Promise<{ objects: number; newObjects: number }> {
  let newObjects = 0;
  receiveFault('receive.verified', store.layout.packsDir);
  if (rb.packId) {
    const present = await store.locate(rb.entries.map((e) => e.id));
    newObjects = present.filter((l) => !l).length;
    const dest = store.layout.packFile(rb.packId);
    await fs.mkdir(store.layout.packsDir, { recursive: true });
    await fs.rename(rb.quarantine.packFile(rb.packId), dest).catch((e) => { throw ioError(e, 'move the received pack to', dest); });
    await fsyncDir(store.layout.packsDir);
    receiveFault('receive.moved', store.layout.packsDir);
    const bodies = new Map<ObjectId, Uint8Array>();
    for (const e of rb.entries) if (e.type === 'commit') bodies.set(e.id, await store.packs.readObject({ packId: rb.packId, entry: e }, e.id, 'commit'));
    await store.index.session((s) => s.addPack({ packId: rb.packId!, entries: rb.entries }, bodies));
    receiveFault('receive.indexed', store.layout.indexDir);
  }
  for (const p of rb.header.pruned) await store.pruned.add(p);
  return { objects: rb.entries.length, newObjects };
}

export async function importBundle(store: ObjectStore, rb: ReceivedBundle, opts: ImportOptions, where: string): Promise<ImportResult> {
  const registration = await registerWriter(store.layout);
  try {
    await checkClosure(store, rb, where);
    // Every ref move is checked before the pack is promoted, and they are made as one batch: a refusal of
    // any of them changes nothing.
    const chosen = rb.header.refs.flatMap((r) => {
      const target = opts.targetRef(r.name);
      return target ? [{ target, id: r.id }] : [];
    });
    const current = await store.refs.readMany(chosen.map((c) => c.target));
    const plan: RefUpdate[] = chosen.map((c, i) => {
      const cur = current[i] ?? null;
      return { name: c.target, old: cur, new: c.id, forced: false, ...(cur === c.id ? { skipped: 'unchanged' as const } : {}) };
    });
    const moves = plan.filter((u) => !u.skipped).map((u) => ({ name: u.name, next: u.new, expect: u.old }));
    await store.refs.checkMoves(moves);
    const o = new Overlay(store, rb);
    const refused: RefUpdate[] = [];
    try {
      for (const u of plan) {
        if (u.skipped || u.old === null) continue;
        const isTag = u.name.startsWith('refs/tags/');
        const ff = !isTag && (await isAncestor((id) => o.parentsOf(id), u.old, u.new));
        if (!ff && !opts.force) refused.push(u);
        u.forced = !ff;
      }
    } finally {
      await o.close();
    }
    if (refused.length) {
      const u = refused[0]!;
      const isTag = u.name.startsWith('refs/tags/');
      const more = refused.length > 1 ? ` (and ${refused.length - 1} more: ${refused.slice(1, 4).map((r) => r.name).join(', ')}${refused.length > 4 ? ', ...' : ''})` : '';
      throw new CkvcError('CKVC_NON_FAST_FORWARD', `${u.name} is at ${u.old!.slice(0, 12)}, which ${isTag ? 'differs' : `is not an ancestor of ${u.new.slice(0, 12)}`}${more}; nothing was changed: fetch and reconcile first, or use --force to replace it`, { ref: u.name, old: u.old, new: u.new, refused: refused.map((r) => r.name) });
    }
    const { newObjects } = await promoteObjects(store, rb);
    await store.refs.updateMany(moves, { who: opts.who, message: opts.message });
    return { objects: rb.entries.length, newObjects, packId: rb.packId, refs: plan };
  } finally {
    await registration.release();
  }
}
