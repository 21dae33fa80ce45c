// Objects of a received bundle (its quarantine pack), optionally over a store: what the walk reads when a
// bundle is verified on its own (`ckvc verify FILE`) or checked against the store it is about to enter.
import { CkvcError } from '../core/errors.js';
import type { ObjectId, ObjectType } from '../core/store-format/object-id.js';
import { decodeCommit, type CommitObject } from '../core/store-format/objects/commit-object.js';
import { decodeFileRecipe, type FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { decodeTag, type TagObject } from '../core/store-format/objects/tag-object.js';
import { decodeTensor, type TensorObject } from '../core/store-format/objects/tensor-object.js';
import { decodeTree, type TreeObject } from '../core/store-format/objects/tree-object.js';
import type { PackEntry } from '../core/store-format/pack-format.js';
import type { ObjectStore } from '../store/object-store.js';
import type { ObjectSource } from '../store/object-walk.js';
import { PackReader } from '../store/pack-reader.js';
import type { ReceivedBundle } from './bundle-reader.js';

/** Reads objects from the quarantine pack first, then the store (if any). */
export class Overlay implements ObjectSource {
  private readonly byId = new Map<ObjectId, PackEntry>();
  private readonly packs: PackReader | undefined;

  constructor(
    private readonly store: ObjectStore | undefined,
    private readonly rb: ReceivedBundle | undefined,
  ) {
    for (const e of rb?.entries ?? []) this.byId.set(e.id, e);
    this.packs = rb && new PackReader(rb.quarantine);
    this.packs?.setBaseLocator(async (id) => {
      const e = this.byId.get(id);
      return e && { packId: this.rb!.packId!, entry: e };
    });
  }

  inBundle(id: ObjectId): boolean {
    return this.byId.has(id);
  }

  async typeOf(id: ObjectId): Promise<ObjectType | undefined> {
    return this.byId.get(id)?.type ?? (await this.store?.typeOf(id));
  }

  async read(id: ObjectId, type: ObjectType): Promise<Uint8Array> {
    const e = this.byId.get(id);
    if (e) return this.packs!.readObject({ packId: this.rb!.packId!, entry: e }, id, type);
    if (!this.store)
      throw new CkvcError('CKVC_MISSING_OBJECT', `${type} ${id.slice(0, 16)} is not in the bundle`, { id, what: type });
    return this.store.readRaw(id, type);
  }

  /**
   * A record of the bundle as it is stored, to copy verbatim (it was verified when the bundle was received), or,
   * for a delta record, which needs its base, its element width: the caller stores it decoded, on its own.
   */
  async storedRecord(
    id: ObjectId,
  ): Promise<{ entry: PackEntry; body: Buffer } | { entry: PackEntry; deltaWidth: number } | undefined> {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    const loc = { packId: this.rb!.packId!, entry };
    const head = await this.packs!.readDeltaHead(loc);
    if (head) return { entry, deltaWidth: head.width };
    return { entry, body: await this.packs!.readStoredRecord(loc, id, { verify: false }) };
  }

  async readTag(id: ObjectId): Promise<TagObject> {
    return decodeTag(await this.read(id, 'tag'), `tag ${id.slice(0, 12)}`);
  }

  async readCommit(id: ObjectId): Promise<CommitObject> {
    return decodeCommit(await this.read(id, 'commit'), `commit ${id.slice(0, 12)}`);
  }

  async readTree(id: ObjectId): Promise<TreeObject> {
    return decodeTree(await this.read(id, 'tree'), `tree ${id.slice(0, 12)}`);
  }

  async readFileRecipe(id: ObjectId): Promise<FileRecipe> {
    return decodeFileRecipe(await this.read(id, 'file'), `file ${id.slice(0, 12)}`);
  }

  async readTensor(id: ObjectId): Promise<TensorObject> {
    return decodeTensor(await this.read(id, 'tensor'), `tensor ${id.slice(0, 12)}`);
  }

  /** The store's grafts and the commits the bundle declares shallow (BUNDLE.md §2). */
  async shallowCommits(): Promise<ReadonlySet<ObjectId>> {
    const declared = this.rb?.header.shallow ?? [];
    const own = (await this.store?.shallowCommits()) ?? new Set<ObjectId>();
    return declared.length ? new Set([...own, ...declared]) : own;
  }

  async close(): Promise<void> {
    await this.packs?.close();
  }

  /** Both ends may be new, in the bundle. */
  async parentsOf(id: ObjectId): Promise<ObjectId[]> {
    const type = await this.typeOf(id);
    if (type === 'tag') return [(await this.readTag(id)).target];
    if (type === 'commit') return (await this.readCommit(id)).parents;
    return [];
  }
}
