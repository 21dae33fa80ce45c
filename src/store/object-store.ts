// An open store: reading verified objects by ID, and starting writes. Every read goes pack -> decode -> hash
// check, so a damaged byte is an error with a code, never data.
import { setTimeout as sleep } from 'node:timers/promises';
import { CkvcError, isCkvcError } from '../core/errors.js';
import { objectId, type ObjectId, type ObjectType } from '../core/store-format/object-id.js';
import { decodeCommit, type CommitObject } from '../core/store-format/objects/commit-object.js';
import { decodeFileRecipe, type FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { decodeTag, type TagObject } from '../core/store-format/objects/tag-object.js';
import { decodeTensor, type TensorObject } from '../core/store-format/objects/tensor-object.js';
import { decodeTree, type TreeObject } from '../core/store-format/objects/tree-object.js';
import { type BufferPool, scratch } from '../core/buffer-pool.js';
import type { PackEntry } from '../core/store-format/pack-format.js';
import { AliasDefinitions } from './alias-definitions.js';
import { BaseCacheReader, BaseCacheWriter } from './base-cache.js';
import { BaseLocations, type BaseLookups } from './base-locations.js';
import type { DecodedObjects } from './decoded-objects.js';
import { ConfigLabels } from './config-labels.js';
import { chainRoot } from './delta-chains.js';
import { ObjectIndex, type IndexedPack } from './object-index.js';
import { PruneRecords } from './prune-records.js';
import { ObjectWriter } from './object-writer.js';
import { type BaseLocator, PackReader, type GroupedObject, type ObjectLocation } from './pack-reader.js';
import { RecentChunks } from './recent-chunks.js';
import { RefStore } from './ref-store.js';
import { ShallowGrafts } from './shallow-grafts.js';
import { findStore, readStoreConfig, StoreLayout, type StoreConfig } from './store-layout.js';

export class ObjectStore {
  readonly packs: PackReader;
  readonly index: ObjectIndex;
  readonly refs: RefStore;
  readonly pruned: PruneRecords;
  readonly shallow: ShallowGrafts;
  readonly aliases: AliasDefinitions;
  readonly configLabels: ConfigLabels;
  /**
   * Tells the user of work a command did beyond what was asked (data a partial fetch left out, fetched on demand).
   * The CLI prints these lines; other callers may listen or not.
   */
  notify?: (message: string) => void;
  private readonly baseLocations: BaseLocations;
  /** The last commit's tensor chunks (through this handle), for the next one's delta bases (recent-chunks.ts). */
  private readonly recentChunks = new RecentChunks();
  /** The delta-base cache as the last commit before this handle's writer left it (base-cache.ts); null: none. */
  private baseCache: BaseCacheReader | null | undefined;
  private writersMade = 0;

  /** `decoded`: a long-lived process's memory of objects read before (decoded-objects.ts); one-shot opens have none. */
  private constructor(
    readonly layout: StoreLayout,
    readonly config: StoreConfig,
    private readonly decoded?: DecodedObjects,
  ) {
    this.packs = new PackReader(layout);
    const byIndex: BaseLocator = async (id) => (await this.locate([id]))[0];
    // Readers of packs that cannot retry (verify, gc, consolidation, bundles) locate delta bases by the index.
    this.packs.setBaseLocator(byIndex);
    this.baseLocations = new BaseLocations(this.packs, byIndex);
    this.index = new ObjectIndex(layout, this.packs, (packId, entries) => this.commitBodiesIn(packId, entries));
    this.refs = new RefStore(layout);
    this.pruned = new PruneRecords(layout);
    this.shallow = new ShallowGrafts(layout);
    this.aliases = new AliasDefinitions(layout);
    this.configLabels = new ConfigLabels(layout);
  }

  static async open(explicit?: string, cwd?: string, decoded?: DecodedObjects): Promise<ObjectStore> {
    const root = await findStore(explicit, cwd);
    const layout = new StoreLayout(root);
    return new ObjectStore(layout, await readStoreConfig(layout), decoded);
  }

  get root(): string {
    return this.layout.root;
  }

  async close(): Promise<void> {
    this.forgetBaseCache();
    await this.index.close();
    await this.packs.close();
  }

  /**
   * `cacheBases`: the chunks written are left for the next commit's delta bases (spec/FORMAT.md §18); for a
   * commit's data, not for what only rides along (a commit object retried, a tag).
   */
  writer(opts: { cacheBases?: boolean } = {}): ObjectWriter {
    this.index.forWriting();
    // The cache as the commits before this one left it: a long-lived handle reads the file its last commit wrote.
    this.forgetBaseCache();
    // A handle's first writer keeps no copies: most handles (a CLI command) write once and close.
    const remember = this.writersMade++ > 0;
    return new ObjectWriter(
      this.layout,
      this.index,
      (id, width, maxDepth) => this.readDeltaBase(id, width, maxDepth),
      false,
      remember ? this.recentChunks : undefined,
      opts.cacheBases ? BaseCacheWriter.create(this.layout) : undefined,
    );
  }

  private forgetBaseCache(): void {
    this.baseCache = undefined;
  }

  /** A writer that only counts what would be new: nothing is written (commit --dry-run). */
  countingWriter(): ObjectWriter {
    return new ObjectWriter(this.layout, this.index, undefined, true);
  }

  /** Locations of `ids`; objects not found trigger one re-sync of the index with the packs on disk. */
  async locate(ids: ObjectId[]): Promise<(ObjectLocation | undefined)[]> {
    const first = await this.index.session((s) => s.locate(ids));
    if (first.every(Boolean)) return first;
    return this.index.session((s) => s.locate(ids), { sync: true });
  }

  async locateAll(ids: ObjectId[], what: string): Promise<ObjectLocation[]> {
    const locs = await this.locate(ids);
    return locs.map((l, i) => {
      if (!l) throw missing(ids[i]!, what);
      return l;
    });
  }

  async has(id: ObjectId): Promise<boolean> {
    return Boolean((await this.locate([id]))[0]);
  }

  async readRaw(id: ObjectId, type: ObjectType, loc?: ObjectLocation): Promise<Uint8Array> {
    return this.readLocated(loc ?? (await this.locateAll([id], type))[0]!, id, type);
  }

  /**
   * Reads an object at a known location. A gc or consolidation may delete the pack (or a delta base's pack) after
   * this process located the object: the index is then re-synced and the read tried again at the new location.
   * A few times, because a busy store may repack more than once while one read runs.
   */
  async readLocated(
    loc: ObjectLocation,
    id: ObjectId,
    type: ObjectType,
    pool?: BufferPool,
    /** 'caller': the bytes' hash is the caller's to check before using them (PackReader.readObject). */
    hashCheck: 'here' | 'caller' = 'here',
  ): Promise<Uint8Array> {
    return this.withRelocation(loc, id, (l, locateBase) =>
      this.packs.readObject(l, id, type, pool, locateBase, hashCheck),
    );
  }

  /**
   * A chunk's bytes grouped by `width` (verified, or remembered from this handle's last commit: recent-chunks.ts)
   * and the length of the delta chain behind them: what a writer encoding against it needs (it bounds the chain).
   * Undefined when the store does not hold it.
   */
  async readChunkGrouped(id: ObjectId, width: number, maxDepth?: number): Promise<GroupedObject | undefined> {
    const loc = (await this.locate([id]))[0];
    if (!loc) return undefined;
    return (
      this.recentChunks.get(loc, width, maxDepth) ??
      (await this.cachedChunkGrouped(loc, id, width, maxDepth)) ??
      this.withRelocation(loc, id, (l, locateBase) => this.packs.readChunkGrouped(l, id, width, locateBase, maxDepth))
    );
  }

  /**
   * readChunkGrouped from the delta-base cache: the bytes from the cache (verified there), the chain's depth and
   * costs from the store's records, read as headers and plane tables (the record itself whole: the planes it
   * stores as they are must match, PackReader.readChunkShape). Undefined when the cache cannot answer.
   */
  private async cachedChunkGrouped(
    loc: ObjectLocation,
    id: ObjectId,
    width: number,
    maxDepth?: number,
  ): Promise<GroupedObject | undefined> {
    if (this.baseCache === undefined) this.baseCache = BaseCacheReader.open(this.layout) ?? null;
    const cache = this.baseCache;
    const grouped = cache?.has(id) ? cache.readGrouped(id, loc.entry.rawLength, width) : undefined;
    if (!grouped) return undefined;
    const shape = await this.withRelocation(loc, id, (l, locateBase) =>
      this.packs.readChunkShape(l, id, width, grouped, locateBase),
    ).catch((e: unknown) => {
      scratch.release(grouped);
      throw e;
    });
    if (shape && (maxDepth === undefined || shape.depth <= maxDepth)) return { grouped, ...shape };
    scratch.release(grouped);
    return shape && { grouped: undefined, ...shape };
  }

  /**
   * The base a writer offers a new record of chunk `id`'s lineage (the parent commit's chunk at the same place):
   * `id` itself, or, when its chain is already deeper than `maxDepth`, the first record of that chain (stored
   * without a base), so that the chain starts again one base deep instead of with a plain copy (spec/FORMAT.md
   * §4.3). On sparse embeddings trained 10 checkpoints, a plain copy every 9th cost a fifth of the store.
   */
  async readDeltaBase(
    id: ObjectId,
    width: number,
    maxDepth: number,
  ): Promise<(GroupedObject & { id: ObjectId }) | undefined> {
    const got = await this.readChunkGrouped(id, width, maxDepth);
    // Deeper than maxDepth: not decoded, or decoded whole when stored at another width (no chain to cut short).
    if (!got || got.depth <= maxDepth) return got && { ...got, id };
    const root = await chainRoot(this, id);
    const fromRoot = root === undefined || root === id ? undefined : await this.readChunkGrouped(root, width, maxDepth);
    if (!fromRoot) return { ...got, id };
    if (got.grouped) scratch.release(got.grouped);
    return { ...fromRoot, id: root! };
  }

  /**
   * Runs `read` at `loc`; its delta bases are located through `baseLocations` (from packs' tables of contents)
   * until a read that used such a location fails: that read is tried again with the index's locations alone.
   */
  private async withRelocation<T>(
    loc: ObjectLocation,
    id: ObjectId,
    read: (l: ObjectLocation, locateBase?: BaseLocator) => Promise<T>,
  ): Promise<T> {
    let fromToc = true;
    for (let attempt = 0; ; attempt++) {
      const lookups: BaseLookups = { fromMemory: false };
      try {
        return await read(loc, fromToc ? (b) => this.baseLocations.find(b, lookups) : undefined);
      } catch (e) {
        if (lookups.fromMemory && isCkvcError(e)) {
          this.baseLocations.clear();
          fromToc = false;
          attempt--;
          continue;
        }
        // Only a pack file gone from disk is a reason to look again; a missing object or damage is reported.
        if (!(isCkvcError(e, 'CKVC_MISSING_OBJECT') && e.data.pack !== undefined) || attempt >= RELOCATE_TRIES) throw e;
        if (attempt > 0) await sleep(10 * 4 ** attempt);
        const again = (await this.index.session((s) => s.locate([id]), { sync: true }))[0];
        if (!again) throw e;
        loc = again;
      }
    }
  }

  /** Grafted commits (FORMAT.md §17): the walk cuts their absent parents. */
  shallowCommits(): Promise<ReadonlySet<ObjectId>> {
    return this.shallow.all();
  }

  /** A commit's parents less those its graft cuts (FORMAT.md §17): what a commit-by-commit walk can follow. */
  async parentsHeld(id: ObjectId, parents: ObjectId[]): Promise<ObjectId[]> {
    if (!parents.length || !(await this.shallow.all()).has(id)) return parents;
    const out: ObjectId[] = [];
    for (const p of parents) if ((await this.typeOf(p)) !== undefined) out.push(p);
    return out;
  }

  async typeOf(id: ObjectId): Promise<ObjectType | undefined> {
    return this.decoded?.typeOf(this.root, id) ?? (await this.locate([id]))[0]?.entry.type;
  }

  async readCommit(id: ObjectId): Promise<CommitObject> {
    return this.remembered(id, 'commit', async () => {
      const cached = await this.index.session((s) => s.commitBody(id));
      // The cache is checked like a pack record: a body that does not hash to its ID is ignored.
      if (cached && objectId('commit', cached) === id) return decodeCommit(cached, `commit ${id.slice(0, 12)}`);
      return decodeCommit(await this.readRaw(id, 'commit'), `commit ${id.slice(0, 12)}`);
    });
  }

  async readTree(id: ObjectId): Promise<TreeObject> {
    return this.remembered(id, 'tree', async () =>
      decodeTree(await this.readRaw(id, 'tree'), `tree ${id.slice(0, 12)}`),
    );
  }

  async readFileRecipe(id: ObjectId, loc?: ObjectLocation): Promise<FileRecipe> {
    return this.remembered(id, 'file', async () =>
      decodeFileRecipe(await this.readRaw(id, 'file', loc), `file ${id.slice(0, 12)}`),
    );
  }

  private async remembered<T>(id: ObjectId, type: 'commit' | 'tree' | 'file', read: () => Promise<T>): Promise<T> {
    const known = this.decoded?.get<T>(this.root, id, type);
    if (known !== undefined) return known;
    const value = await read();
    this.decoded?.keep(this.root, id, type, value);
    return value;
  }

  async readTensor(id: ObjectId, loc?: ObjectLocation): Promise<TensorObject> {
    return decodeTensor(await this.readRaw(id, 'tensor', loc), `tensor ${id.slice(0, 12)}`);
  }

  async readTag(id: ObjectId): Promise<TagObject> {
    return decodeTag(await this.readRaw(id, 'tag'), `tag ${id.slice(0, 12)}`);
  }

  /**
   * Indexes a pack now in packs/, with the bodies of its commits (FORMAT.md §8); its copies are the ones read from
   * now on, but for the objects `keepIndexed` names.
   */
  async indexPack(pack: IndexedPack): Promise<void> {
    const bodies = await this.commitBodiesIn(pack.packId, pack.entries);
    await this.index.session((s) => s.addPack(pack, bodies));
  }

  private async commitBodiesIn(packId: string, entries: PackEntry[]): Promise<Map<ObjectId, Uint8Array>> {
    const out = new Map<ObjectId, Uint8Array>();
    for (const e of entries) {
      if (e.type !== 'commit') continue;
      try {
        out.set(e.id, await this.packs.readObject({ packId, entry: e }, e.id, 'commit'));
      } catch (err) {
        if (!(err instanceof CkvcError)) throw err; // a damaged commit is left to verify to report
      }
    }
    return out;
  }
}

/** Re-syncs of the index a read may make when packs vanish under it (gc, consolidation in other processes). */
const RELOCATE_TRIES = 4;

export function missing(id: ObjectId, what: string): CkvcError {
  return new CkvcError(
    'CKVC_MISSING_OBJECT',
    `${what} ${id.slice(0, 16)} is missing from the store; run 'ckvc verify' to see what is affected`,
    { id, what },
  );
}
