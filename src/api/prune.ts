// `ckvc prune`: release the tensor data of old commits while keeping every commit, config and metric forever
// (spec/FORMAT.md §13). It only writes prune records; `ckvc gc` deletes what nothing else needs.
import { CkvcError } from '../core/errors.js';
import { globToRegExp } from '../core/glob.js';
import { defaultMetricMode, isBetter, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { walkObjects } from '../store/object-walk.js';
import { mergePruneRecords } from '../store/prune-records.js';
import { gcRoots, liveObjects } from '../store/reachability.js';
import { branchCommits } from './best.js';
import { parseCount } from './commit-input.js';
import { currentBranch } from './refs.js';

export interface PruneOptions {
  keepLast: number;
  branch?: string;
  /** Prune commits a tag names too (by default they are kept, like those a branch or alias names). */
  includeTagged?: boolean;
  keepBest?: number;
  metric?: string;
  mode?: MetricMode;
  /** Release only the tensors matching these globs (default: all tensors). */
  tensors?: string[];
  dryRun?: boolean;
}

export interface PruneResult {
  branch: string;
  dryRun: boolean;
  tensors: string[] | null;
  kept: { id: ObjectId; step?: number; message: string; reasons: string[] }[];
  /** `names`: the tags naming a commit pruned with includeTagged (gc keeps its bytes while a name points at it). */
  pruned: { id: ObjectId; step?: number; message: string; names?: string[] }[];
  /** Objects and stored bytes that no longer have a reader: what `ckvc gc` will free (after its grace period). */
  releasedObjects: number;
  releasedBytes: number;
}

export async function prune(store: ObjectStore, opts: PruneOptions): Promise<PruneResult> {
  const keepLast = parseCount(opts.keepLast, 'keep-last');
  if (keepLast === undefined || keepLast < 1) throw new CkvcError('CKVC_BAD_ARGUMENT', '--keep-last N needs N >= 1 (the newest commit of a branch is always kept)', {});
  const keepBest = parseCount(opts.keepBest, 'keep-best') ?? 0;
  if (keepBest > 0 && !opts.metric) throw new CkvcError('CKVC_BAD_ARGUMENT', '--keep-best K needs --metric KEY to rank by', {});
  const tensors = opts.tensors?.length ? [...new Set(opts.tensors)].sort() : null;
  tensors?.forEach(globToRegExp); // a bad glob fails before anything is written
  const branch = opts.branch ?? (await currentBranch(store));

  const commits: { id: ObjectId; step?: number; message: string; metrics: Record<string, number> }[] = [];
  for await (const { id, commit } of branchCommits(store, branch)) commits.push({ id, step: commit.step, message: commit.message, metrics: commit.metrics ?? {} });

  const reasons = new Map<ObjectId, string[]>();
  const keep = (id: ObjectId, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);
  commits.slice(0, keepLast).forEach((c) => keep(c.id, `last ${keepLast}`));
  // Whatever a branch, alias or tag names is in use (a tag marks an agent someone chose to keep); tags only
  // with --include-tagged, which the user has to say.
  const named = new Map<ObjectId, string[]>();
  for (const kind of ['branch', 'alias', 'tag'] as const) {
    for (const r of await store.refs.list(kind)) {
      let target = r.id;
      for (let hops = 0; hops < 64 && (await store.typeOf(target)) === 'tag'; hops++) target = (await store.readTag(target)).target;
      named.set(target, [...(named.get(target) ?? []), `${kind} ${r.name}`]);
    }
  }
  const taggedPruned = new Map<ObjectId, string[]>();
  for (const c of commits) {
    for (const n of named.get(c.id) ?? []) {
      if (opts.includeTagged && n.startsWith('tag ')) taggedPruned.set(c.id, [...(taggedPruned.get(c.id) ?? []), n]);
      else keep(c.id, n);
    }
  }
  if (keepBest > 0) {
    const metric = opts.metric!;
    const mode = opts.mode ?? defaultMetricMode(metric);
    const ranked = commits.filter((c) => c.metrics[metric] !== undefined)
      .map((c, order) => ({ c, order }))
      // Stable: among equal values the older commit (later in newest-first order) ranks first, as in `best`.
      .sort((a, b) => (isBetter(a.c.metrics[metric]!, b.c.metrics[metric], mode) ? -1 : isBetter(b.c.metrics[metric]!, a.c.metrics[metric], mode) ? 1 : b.order - a.order));
    ranked.slice(0, keepBest).forEach(({ c }) => keep(c.id, `best ${keepBest} by ${metric} (${mode})`));
  }

  const toPrune = commits.filter((c) => !reasons.has(c.id));
  if (tensors) await refuseGlobsReachingAcrossFiles(store, toPrune.map((c) => c.id), tensors);
  const now = Date.now();
  const before = await store.pruned.all();
  const after = new Map(before);
  for (const c of toPrune) after.set(c.id, mergePruneRecords(before.get(c.id), { commit: c.id, time: now, tensors }));

  // What gc will be able to free: live now, dead once these records exist.
  const roots = await gcRoots(store);
  const liveBefore = await liveObjects(store, roots, before);
  const liveAfter = await liveObjects(store, roots, after);
  const released = [...liveBefore].filter((id) => !liveAfter.has(id));
  const locs = await store.locate(released);
  const releasedBytes = locs.reduce((a, l) => a + (l?.entry.storedLength ?? 0), 0);

  if (!opts.dryRun) for (const c of toPrune) await store.pruned.add({ commit: c.id, time: now, tensors });
  return {
    branch, dryRun: Boolean(opts.dryRun), tensors,
    kept: commits.filter((c) => reasons.has(c.id)).map((c) => ({ id: c.id, step: c.step, message: c.message, reasons: reasons.get(c.id)! })),
    pruned: toPrune.map((c) => ({ id: c.id, step: c.step, message: c.message, ...(taggedPruned.has(c.id) ? { names: taggedPruned.get(c.id) } : {}) })),
    releasedObjects: released.length,
    releasedBytes,
  };
}

/**
 * A glob without ':' matches tensor names only (spec/FORMAT.md §13), but ckvc before that rule also tried it
 * against `<file>:<name>`, where `model.*` reaches every tensor of `model.safetensors`. A record holding such a
 * glob would release more data under an older ckvc (a second site, a bundle's receiver) than here, so it is
 * refused, with the spelling that means the same to every version.
 */
async function refuseGlobsReachingAcrossFiles(store: ObjectStore, commits: ObjectId[], globs: string[]): Promise<void> {
  const bare = globs.filter((g) => !g.includes(':')).map((g) => ({ glob: g, re: globToRegExp(g) }));
  if (bare.length === 0) return;
  const pruning = new Set(commits);
  // Under a record with globs the walk sees each file at every path it has in these commits.
  await walkObjects(store, commits, {
    recordOf: () => ({ tensors: globs }),
    stopAt: (id) => !pruning.has(id),
    depth: 'files',
    visit: (r) => {
      if (r.kind !== 'file') return;
      for (const part of r.recipe.parts) {
        if (part.kind !== 'tensor') continue;
        const hit = bare.find((g) => !g.re.test(part.name) && g.re.test(`${r.path}:${part.name}`));
        if (hit) {
          throw new CkvcError('CKVC_BAD_ARGUMENT', `--tensors '${hit.glob}' reaches across the ':' of '${r.path}:${part.name}': ckvc matches a glob without ':' against tensor names only, but older versions also matched it against FILE:NAME, where it would release '${part.name}' too; say which file you mean ('${r.path}:${hit.glob}') or use a glob that stops before the ':'`, { glob: hit.glob, path: r.path, tensor: part.name });
        }
      }
    },
  });
}
