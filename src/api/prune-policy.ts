// Which commits of a branch `ckvc prune` keeps (spec/FORMAT.md §13): the newest N, those within a duration of the
// branch's newest commit (as restic's --keep-within), the best K by a metric, and whatever a name points at.
import { defaultMetricMode, isBetter, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { branchCommits } from './branch-commits.js';

export interface KeepPolicy {
  keepLast?: number;
  /** Milliseconds: a commit at most this much older than the branch's newest commit is kept (boundary included). */
  keepWithinMs?: number;
  keepWithinText?: string;
  keepBest?: number;
  metric?: string;
  mode?: MetricMode;
  includeTagged?: boolean;
}

export interface BranchCommit {
  id: ObjectId;
  branch: string;
  time: number;
  step?: number;
  message: string;
  metrics: Record<string, number>;
}

export interface BranchSelection {
  kept: (BranchCommit & { reasons: string[] })[];
  /** `names`: the tags naming a commit pruned with includeTagged. */
  pruned: (BranchCommit & { names?: string[] })[];
}

/** Every commit a branch, alias or tag names (annotated tags followed), with those names. */
export async function namedCommits(store: ObjectStore): Promise<Map<ObjectId, string[]>> {
  const named = new Map<ObjectId, string[]>();
  for (const kind of ['branch', 'alias', 'tag'] as const) {
    for (const r of await store.refs.list(kind)) {
      let target = r.id;
      for (let hops = 0; hops < 64 && (await store.typeOf(target)) === 'tag'; hops++) {
        target = (await store.readTag(target)).target;
      }
      named.set(target, [...(named.get(target) ?? []), `${kind} ${r.name}`]);
    }
  }
  return named;
}

export async function selectForPrune(
  store: ObjectStore,
  branch: string,
  policy: KeepPolicy,
  named: Map<ObjectId, string[]>,
): Promise<BranchSelection> {
  const commits: BranchCommit[] = [];
  for await (const { id, commit } of branchCommits(store, branch)) {
    const { time, step, message } = commit;
    commits.push({ id, branch, time, step, message, metrics: commit.metrics ?? {} });
  }
  const reasons = new Map<ObjectId, string[]>();
  const keep = (id: ObjectId, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);
  // The newest commit of a branch is always kept: the branch names it.
  if (policy.keepLast)
    commits.slice(0, policy.keepLast).forEach((c) => {
      keep(c.id, `last ${policy.keepLast}`);
    });
  if (policy.keepWithinMs !== undefined && commits.length) {
    const since = commits[0]!.time - policy.keepWithinMs;
    commits
      .filter((c) => c.time >= since)
      .forEach((c) => {
        keep(c.id, `within ${policy.keepWithinText} of the newest`);
      });
  }
  // Whatever a branch, alias or tag names is in use (a tag marks an agent someone chose to keep); tags only
  // with --include-tagged, which the user has to say.
  const taggedPruned = new Map<ObjectId, string[]>();
  for (const c of commits) {
    for (const n of named.get(c.id) ?? []) {
      if (policy.includeTagged && n.startsWith('tag ')) taggedPruned.set(c.id, [...(taggedPruned.get(c.id) ?? []), n]);
      else keep(c.id, n);
    }
  }
  if (policy.keepBest && policy.metric) {
    const metric = policy.metric;
    const mode = policy.mode ?? defaultMetricMode(metric);
    const value = (c: BranchCommit) => c.metrics[metric];
    const ranked = commits
      .filter((c) => value(c) !== undefined && Number.isFinite(value(c)))
      .map((c, order) => ({ c, order }))
      // Stable: among equal values the older commit (later in newest-first order) ranks first, as in `best`.
      .sort((a, b) => {
        if (isBetter(value(a.c)!, value(b.c), mode)) return -1;
        return isBetter(value(b.c)!, value(a.c), mode) ? 1 : b.order - a.order;
      });
    ranked.slice(0, policy.keepBest).forEach(({ c }) => {
      keep(c.id, `best ${policy.keepBest} by ${metric} (${mode})`);
    });
  }
  return {
    kept: commits.filter((c) => reasons.has(c.id)).map((c) => ({ ...c, reasons: reasons.get(c.id)! })),
    pruned: commits
      .filter((c) => !reasons.has(c.id))
      .map((c) => (taggedPruned.has(c.id) ? { ...c, names: taggedPruned.get(c.id) } : c)),
  };
}
