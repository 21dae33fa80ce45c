// What a partial fetch left out (spec/FORMAT.md §13.2): promised/<commit>.json says that of this commit only the
// data of the tensors some filter selects was fetched, and that the rest is available from the named remote.
// Unlike a prune record it releases nothing: gc ignores it, and it goes away once the data is all here.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { tensorSelection } from '../core/glob.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { fsyncDir, ioError, readFileIfExists, writeFileDurable } from './durable-fs.js';
import type { ReleaseRecord } from './object-walk.js';
import type { StoreLayout } from './store-layout.js';
import { readCommitRecords } from './commit-record-files.js';

export interface PromiseRecord {
  commit: ObjectId;
  /** The remote the left-out data is available from (a name of remotes.json). */
  remote: string;
  /** When the first partial fetch of this commit recorded it (ms since the epoch). */
  time: number;
  /** Each partial fetch's filter: tensor globs, '!' excluding. A tensor some filter selects has its data here. */
  filters: string[][];
}

/** Filters and globs a record may hold: bounded, since a record is read by every walk. */
const MAX_FILTERS = 64;
const MAX_GLOBS = 256;
const MAX_GLOB_LENGTH = 1000;

/** Checks a fetch filter (the globs of `fetch --filter tensors:GLOB`): non-empty, bounded, each glob valid. */
export function checkFilter(globs: string[], where: string): string[] {
  if (globs.length === 0 || globs.length > MAX_GLOBS || globs.some((g) => g.length > MAX_GLOB_LENGTH))
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${where}: a filter holds 1 to ${MAX_GLOBS} tensor globs of at most ${MAX_GLOB_LENGTH} characters each`,
      { count: globs.length },
    );
  tensorSelection(globs, '--filter');
  return globs;
}

/** The walk's view of a commit with a prune record and a promise: released data plus what was left out. */
export function withPromise(
  released: ReleaseRecord | undefined,
  promise: PromiseRecord | undefined,
): ReleaseRecord | undefined {
  if (!promise) return released;
  return { ...(released ?? { tensors: [] }), keep: promise.filters };
}

/** The walk's view of a filter applied to a commit (what a filtered plan sends, PROTOCOL.md §4). */
export function withFilter(
  released: ReleaseRecord | undefined,
  filter: string[] | undefined,
): ReleaseRecord | undefined {
  if (!filter) return released;
  // One `keep` list per filter, so the walk compiles its globs once rather than once per commit.
  let keep = keepOfFilter.get(filter);
  if (!keep) keepOfFilter.set(filter, (keep = [filter]));
  return { ...(released ?? { tensors: [] }), keep };
}

const keepOfFilter = new WeakMap<string[], string[][]>();

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((g) => typeof g === 'string');

export class PromiseRecords {
  private cache: Map<ObjectId, PromiseRecord> | undefined;

  constructor(private readonly layout: StoreLayout) {}

  private get dir(): string {
    return path.join(this.layout.root, 'promised');
  }

  private file(commit: ObjectId): string {
    return path.join(this.dir, `${commit}.json`);
  }

  private async readOne(commit: ObjectId): Promise<PromiseRecord | undefined> {
    const raw = await readFileIfExists(this.file(commit));
    if (!raw) return undefined;
    try {
      const r = JSON.parse(raw.toString('utf8')) as PromiseRecord;
      const filtersOk = Array.isArray(r.filters) && r.filters.length <= MAX_FILTERS && r.filters.every(isStringList);
      if (r.commit !== commit || typeof r.remote !== 'string' || typeof r.time !== 'number' || !filtersOk)
        throw new Error('fields');
      for (const f of r.filters) checkFilter(f, `promise record ${commit.slice(0, 12)}`); // the rule a fetch applies
      return { commit, remote: r.remote, time: r.time, filters: r.filters };
    } catch {
      // An unreadable record promises everything: no tensor data of the commit is taken to be here, so verify
      // reports nothing missing wrongly, and checkout asks for what it lacks. gc ignores promises either way.
      return { commit, remote: '', time: 0, filters: [] };
    }
  }

  /** Every record, read once per process. */
  async all(): Promise<Map<ObjectId, PromiseRecord>> {
    this.cache ??= await readCommitRecords(this.dir, (id) => this.readOne(id));
    return this.cache;
  }

  async get(commit: ObjectId): Promise<PromiseRecord | undefined> {
    return (await this.all()).get(commit);
  }

  /**
   * Records that only `filter`'s tensors of `commit` were fetched from `remote`: added to an existing record of
   * the commit (one more filter: more is here), written durably before the objects arrive.
   */
  async add(commit: ObjectId, remote: string, filter: string[], time = Date.now()): Promise<void> {
    if (!isObjectId(commit)) throw new CkvcError('CKVC_INTERNAL', `promise record for a non-ID ${commit}`, {});
    await fs.mkdir(this.dir, { recursive: true }).catch((e) => {
      throw ioError(e, 'create', this.dir);
    });
    const cur = await this.readOne(commit);
    const has = (f: string[]) => cur?.filters.some((g) => JSON.stringify(g) === JSON.stringify(f));
    if (cur && has(filter)) return;
    const filters = [...(cur?.filters ?? []), filter].slice(-MAX_FILTERS);
    const rec: PromiseRecord = { commit, remote: cur?.remote || remote, time: cur?.time || time, filters };
    for (let attempt = 1; ; attempt++) {
      try {
        await writeFileDurable(this.file(commit), `${JSON.stringify(rec)}\n`);
        break;
      } catch (e) {
        // Another fetch that failed took the folder away as it emptied it (removeFolderIfEmpty): made again.
        if ((e as CkvcError).data?.errno !== 'ENOENT' || attempt === 3) throw e;
        await fs.mkdir(this.dir, { recursive: true }).catch((e2) => {
          throw ioError(e2, 'create', this.dir);
        });
      }
    }
    this.cache?.set(commit, rec);
  }

  /**
   * Removes the folder when no record is left in it: a filtered fetch that failed leaves the store as it was, not
   * with the empty folder its records were written to.
   */
  async removeFolderIfEmpty(): Promise<void> {
    try {
      await fs.rmdir(this.dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST') return;
      throw ioError(e, 'remove', this.dir);
    }
    await fsyncDir(this.layout.root);
  }

  /** Drops the record of a commit whose data is all here now (the caller checked). */
  async remove(commit: ObjectId): Promise<boolean> {
    const file = this.file(commit);
    try {
      await fs.unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError(e, 'remove', file);
    }
    await fsyncDir(this.dir);
    this.cache?.delete(commit);
    return true;
  }
}
