// `ckvc prune`: release the tensor data of old commits while keeping every commit, config and metric forever
// (spec/FORMAT.md §13). It only writes prune records; `ckvc gc` deletes what nothing else needs.
import { CkvcError } from '../core/errors.js';
import { globToRegExp } from '../core/glob.js';
import { listTreeFiles } from '../store/checkout.js';
import { defaultMetricMode, isBetter, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { mergePruneRecords } from '../store/prune-records.js';
import { gcRoots, liveObjects } from '../store/reachability.js';
import { branchCommits } from './best.js';
import { parseCount } from './commit-input.js';
import { currentBranch } from './refs.js';

export interface PruneOptions {
  keepLast: number;
  branch?: string;
  keepTagged?: boolean;
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
  pruned: { id: ObjectId; step?: number; message: string }[];
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
  // Whatever a branch, alias (or, with --keep-tagged, a tag) names is in use right now.
  const named = new Map<ObjectId, string[]>();
  const kinds = opts.keepTagged ? (['branch', 'alias', 'tag'] as const) : (['branch', 'alias'] as const);
  for (const kind of kinds) {
    for (const r of await store.refs.list(kind)) {
      const target = kind === 'tag' && (await store.typeOf(r.id)) === 'tag' ? (await store.readTag(r.id)).target : r.id;
      named.set(target, [...(named.get(target) ?? []), `${kind} ${r.name}`]);
    }
  }
  for (const c of commits) for (const n of named.get(c.id) ?? []) keep(c.id, n);
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
    pruned: toPrune.map((c) => ({ id: c.id, step: c.step, message: c.message })),
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
  const seen = new Set<string>();
  for (const id of commits) {
    for (const f of await listTreeFiles(store, (await store.readCommit(id)).tree)) {
      if (seen.has(`${f.path}\0${f.id}`)) continue;
      seen.add(`${f.path}\0${f.id}`);
      for (const part of (await store.readFileRecipe(f.id)).parts) {
        if (part.kind !== 'tensor') continue;
        const hit = bare.find((g) => !g.re.test(part.name) && g.re.test(`${f.path}:${part.name}`));
        if (hit) {
          throw new CkvcError('CKVC_BAD_ARGUMENT', `--tensors '${hit.glob}' reaches across the ':' of '${f.path}:${part.name}': ckvc matches a glob without ':' against tensor names only, but older versions also matched it against FILE:NAME, where it would release '${part.name}' too; say which file you mean ('${f.path}:${hit.glob}') or use a glob that stops before the ':'`, { glob: hit.glob, path: f.path, tensor: part.name });
        }
      }
    }
  }
}
