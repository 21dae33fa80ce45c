// Checking out data that `ckvc prune` released is refused (spec/FORMAT.md §13), whether or not gc has run yet:
// the refusal names the file, when it was released and what, and what is left of the commit.
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { fileDataReleased, fileReleased, tensorReleased, type TreeFile } from '../store/object-walk.js';
import { releasedWording } from '../core/released-wording.js';
import type { PruneRecord } from '../store/prune-records.js';

/** When a record released data, and what, in the words both refusals use. */
export function prunedWording(rec: PruneRecord): { when: string; which: string } {
  return {
    when: `${new Date(rec.time).toISOString().replace('T', ' ').slice(0, 16)} UTC`,
    which: releasedWording(rec),
  };
}

/** A file whose tensor data a prune record released cannot be rebuilt, whether or not gc has run yet. */
export async function refusePruned(store: ObjectStore, id: ObjectId, files: TreeFile[]): Promise<void> {
  const rec = await store.pruned.get(id);
  if (!rec) return;
  for (const f of files) {
    const recipe = await store.readFileRecipe(f.id);
    if (!fileDataReleased(rec, f.path, recipe)) continue;
    const released = recipe.parts
      .filter((p) => p.kind === 'tensor' && tensorReleased(rec, f.path, p))
      .map((p) => (p as { name: string }).name);
    const { when, which } = prunedWording(rec);
    const tensors = released.length ? `${released.length} tensor(s) in this file, e.g. '${released[0]}'` : '';
    const what = fileReleased(rec, f.path) ? `the whole file${tensors ? `, ${tensors}` : ''}` : tensors;
    throw new CkvcError(
      'CKVC_PRUNED',
      `${f.path} of commit ${id.slice(0, 12)} cannot be checked out: 'ckvc prune' released ${which} of this commit on ${when} (${what}); its config, metrics and file list remain ('ckvc show ${id.slice(0, 12)}'); use --path to take other files`,
      { commit: id, path: f.path, prunedAt: rec.time, tensors: released },
    );
  }
}
