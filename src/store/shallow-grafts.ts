// Where a shallow store's history stops (spec/FORMAT.md §17): shallow/<commit>, one file per grafted commit.
// A graft only ever says "the parents of this commit that are absent are expected to be absent": the walk skips
// those and nothing else, so a graft can never hide, or let gc free, an object the store holds.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId, type ObjectType } from '../core/store-format/object-id.js';
import { fsyncDir, ioError, writeFileDurable } from './durable-fs.js';
import type { StoreLayout } from './store-layout.js';

export class ShallowGrafts {
  private cache: Set<ObjectId> | undefined;

  constructor(private readonly layout: StoreLayout) {}

  private file(commit: ObjectId): string {
    return path.join(this.layout.shallowDir, commit);
  }

  /** Every grafted commit, read once per process (grafts are few and change only on import). */
  async all(): Promise<ReadonlySet<ObjectId>> {
    if (this.cache) return this.cache;
    let names: string[] = [];
    try {
      names = await fs.readdir(this.layout.shallowDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(e, 'list', this.layout.shallowDir);
    }
    // Temp files of a write in progress (and anything else) are not grafts: only a bare object ID is.
    this.cache = new Set(names.filter(isObjectId));
    return this.cache;
  }

  async add(commit: ObjectId): Promise<void> {
    if (!isObjectId(commit)) throw new CkvcError('CKVC_INTERNAL', `graft for a non-ID ${commit}`, {});
    if ((await this.all()).has(commit)) return;
    await fs.mkdir(this.layout.shallowDir, { recursive: true }).catch((e) => {
      throw ioError(e, 'create', this.layout.shallowDir);
    });
    await writeFileDurable(this.file(commit), `${commit}\n`);
    this.cache?.add(commit);
  }

  async remove(commit: ObjectId): Promise<void> {
    try {
      await fs.unlink(this.file(commit));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw ioError(e, 'remove', this.file(commit));
    }
    await fsyncDir(this.layout.shallowDir);
    this.cache?.delete(commit);
  }

  /**
   * Removes the grafts whose parents are all present now (a later full pull or fetch brought the history): a
   * graft that cuts nothing is stale. `typeOf` and `parentsOf` read the store.
   */
  async settle(
    typeOf: (id: ObjectId) => Promise<ObjectType | undefined>,
    parentsOf: (id: ObjectId) => Promise<ObjectId[]>,
  ): Promise<ObjectId[]> {
    const removed: ObjectId[] = [];
    for (const commit of [...(await this.all())]) {
      if ((await typeOf(commit)) !== 'commit') continue;
      const parents = await parentsOf(commit);
      let absent = false;
      for (const p of parents) if ((await typeOf(p)) === undefined) absent = true;
      if (absent) continue;
      await this.remove(commit);
      removed.push(commit);
    }
    return removed;
  }
}
