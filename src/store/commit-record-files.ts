// Folders of one JSON record per commit, `<commit ID>.json` (prune records, FORMAT.md §13; promise records,
// §13.2): listed the same way, so that a temp file of a write in progress, or anything else, is never a record.
import * as fs from 'node:fs/promises';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { ioError } from './durable-fs.js';

/** The commits that have a record in `dir` (none when the folder does not exist). */
async function commitRecordIds(dir: string): Promise<ObjectId[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(e, 'list', dir);
  }
  return names.filter((n) => n.endsWith('.json') && isObjectId(n.slice(0, -'.json'.length))).map((n) => n.slice(0, -5));
}

/** Every record of `dir`, each read by `readOne` (undefined: no record after all, e.g. removed meanwhile). */
export async function readCommitRecords<R>(
  dir: string,
  readOne: (commit: ObjectId) => Promise<R | undefined>,
): Promise<Map<ObjectId, R>> {
  const out = new Map<ObjectId, R>();
  for (const id of await commitRecordIds(dir)) {
    const r = await readOne(id);
    if (r) out.set(id, r);
  }
  return out;
}
