// Which data of which commit `ckvc prune` released (spec/FORMAT.md §13): pruned/<commit>.json.
// Records only ever widen: pruning again unites the globs and keeps the first time.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { fsyncDir, ioError, readFileIfExists, writeFileDurable } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import type { StoreLayout } from './store-layout.js';
import { readCommitRecords } from './commit-record-files.js';

export interface PruneRecord {
  commit: ObjectId;
  time: number;
  /** null: every tensor of the commit; otherwise the globs of the released tensors. */
  tensors: string[] | null;
  /** Absent: no file released whole (records before §13's `files`); null: every file; else path globs. */
  files?: string[] | null;
  /** The file did not parse: read as releasing nothing, and reported by verify. */
  unreadable?: true;
}

/** Unites two lists of globs: null (everything) wins; absent is nothing. */
function uniteGlobs(a: string[] | null | undefined, b: string[] | null | undefined): string[] | null | undefined {
  if (a === null || b === null) return null;
  if (a === undefined && b === undefined) return undefined;
  return [...new Set([...(a ?? []), ...(b ?? [])])].sort();
}

export function mergePruneRecords(a: PruneRecord | undefined, b: PruneRecord): PruneRecord {
  if (!a || a.unreadable) return b;
  const tensors = uniteGlobs(a.tensors, b.tensors) as string[] | null;
  const files = uniteGlobs(a.files, b.files);
  return { commit: a.commit, time: Math.min(a.time, b.time), tensors, ...(files !== undefined ? { files } : {}) };
}

const isGlobList = (v: unknown): v is string[] => Array.isArray(v) && v.every((g) => typeof g === 'string');

export class PruneRecords {
  private cache: Map<ObjectId, PruneRecord> | undefined;

  constructor(private readonly layout: StoreLayout) {}

  private file(commit: ObjectId): string {
    return path.join(this.layout.prunedDir, `${commit}.json`);
  }

  private async readOne(commit: ObjectId): Promise<PruneRecord | undefined> {
    const raw = await readFileIfExists(this.file(commit));
    if (!raw) return undefined;
    try {
      const r = JSON.parse(raw.toString('utf8')) as PruneRecord;
      const tensorsOk = r.tensors === null || isGlobList(r.tensors);
      const filesOk = r.files === undefined || r.files === null || isGlobList(r.files);
      if (r.commit !== commit || typeof r.time !== 'number' || !tensorsOk || !filesOk) throw new Error('fields');
      return { commit, time: r.time, tensors: r.tensors, ...(r.files !== undefined ? { files: r.files } : {}) };
    } catch {
      // Failing safe: an unreadable record releases nothing, so gc deletes nothing because of it (read as
      // "everything", a damaged record of one optimizer tensor would have cost the whole checkpoint). Data a gc
      // already freed under it is then reported missing, and verify names the file.
      return { commit, time: 0, tensors: [], unreadable: true };
    }
  }

  /** Every record, read once per process (prune records change rarely and only grow). */
  async all(): Promise<Map<ObjectId, PruneRecord>> {
    this.cache ??= await readCommitRecords(this.layout.prunedDir, (id) => this.readOne(id));
    return this.cache;
  }

  async get(commit: ObjectId): Promise<PruneRecord | undefined> {
    return (await this.all()).get(commit);
  }

  async add(record: PruneRecord): Promise<PruneRecord> {
    if (!isObjectId(record.commit))
      throw new CkvcError('CKVC_INTERNAL', `prune record for a non-ID ${record.commit}`, {});
    await fs.mkdir(this.layout.prunedDir, { recursive: true }).catch((e) => {
      throw ioError(e, 'create', this.layout.prunedDir);
    });
    const merged = mergePruneRecords(await this.readOne(record.commit), record);
    try {
      faultPoint('prune.record');
    } catch (e) {
      throw ioError(e, 'write', this.file(record.commit));
    }
    await writeFileDurable(this.file(record.commit), `${JSON.stringify(merged)}\n`);
    this.cache?.set(record.commit, merged);
    return merged;
  }

  /**
   * Takes a record back (`ckvc unprune`). The caller has checked, with gc excluded, that the data it released
   * is still there; the removal is durable before the command reports it.
   */
  async remove(commit: ObjectId): Promise<boolean> {
    const file = this.file(commit);
    try {
      await fs.unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError(e, 'remove', file);
    }
    await fsyncDir(this.layout.prunedDir);
    this.cache?.delete(commit);
    return true;
  }
}
