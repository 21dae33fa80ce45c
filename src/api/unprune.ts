// `ckvc unprune REV...`: takes prune records back while the data they released is still in the store (until gc
// has deleted it; spec/FORMAT.md §13). With gc excluded, every chunk the commit needs is checked first: a
// record is removed only when the commit then checks out whole.
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { registerWriter } from '../store/gc-exclusion.js';
import type { ObjectStore } from '../store/object-store.js';
import { walkObjects } from '../store/object-walk.js';
import { resolveRevision } from '../store/revision-resolver.js';

export interface UnpruneResult {
  /** Commits whose record was removed. */
  restored: { id: ObjectId; rev: string; tensors: string[] | null; files?: string[] | null; prunedAt: number }[];
  /** Revisions that had no record (nothing to take back). */
  notPruned: { id: ObjectId; rev: string }[];
}

export async function unprune(store: ObjectStore, revs: string[]): Promise<UnpruneResult> {
  if (!revs.length)
    throw new CkvcError('CKVC_BAD_ARGUMENT', "name at least one pruned commit ('ckvc log' marks them)", {});
  const targets: { id: ObjectId; rev: string }[] = [];
  for (const rev of revs) targets.push({ id: (await resolveRevision(store, rev)).id, rev });
  // As a writer: gc cannot run between the check below and the record's removal.
  const registration = await registerWriter(store.layout);
  try {
    const out: UnpruneResult = { restored: [], notPruned: [] };
    const records = await store.pruned.all();
    for (const t of targets) {
      const rec = records.get(t.id);
      if (!rec) {
        out.notPruned.push(t);
        continue;
      }
      const chunks: ObjectId[] = [];
      await walkObjects(store, [t.id], {
        stopAt: (id) => id !== t.id,
        visit: (r) => {
          if (r.kind === 'chunk') chunks.push(r.id);
        },
      }).catch((e) => {
        if (e instanceof CkvcError && e.code === 'CKVC_MISSING_OBJECT') throw gone(t.rev, t.id, 1);
        throw e;
      });
      let missing = 0;
      for (let i = 0; i < chunks.length; i += 4096)
        missing += (await store.locate(chunks.slice(i, i + 4096))).filter((l) => !l).length;
      if (missing) throw gone(t.rev, t.id, missing);
    }
    for (const t of targets) {
      const rec = records.get(t.id);
      if (!rec) continue;
      await store.pruned.remove(t.id);
      out.restored.push({
        ...t,
        tensors: rec.tensors,
        ...(rec.files !== undefined ? { files: rec.files } : {}),
        prunedAt: rec.time,
      });
    }
    return out;
  } finally {
    await registration.release();
  }
}

function gone(rev: string, id: ObjectId, missing: number): CkvcError {
  return new CkvcError(
    'CKVC_PRUNED',
    `${rev} (${id.slice(0, 12)}) cannot be unpruned: 'ckvc gc' has already deleted ${missing} object(s) of the data its prune released; nothing was changed. A fetch does not bring data of commits this store holds: in a store that still has it, pack a branch or tag holding ${id.slice(0, 12)} ('ckvc pack BRANCH -o FILE'), then here 'ckvc pull FILE' and unprune again`,
    { commit: id, missing },
  );
}
