// `ckvc best --metric KEY` and `ckvc tag NAME --best KEY`: the best commit of a branch by one metric.
import { CkvcError } from '../core/errors.js';
import { defaultMetricMode, isBetter, type MetricMode } from '../core/metric-mode.js';
import { branchNamesOfCommits } from '../core/ref-name.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { CommitObject } from '../core/store-format/objects/commit-object.js';
import type { ObjectStore } from '../store/object-store.js';
import { REF_PREFIX } from '../store/ref-store.js';
import { currentBranch } from './refs.js';

export interface BestOptions {
  metric: string;
  mode?: MetricMode;
  branch?: string;
}

export interface BestResult {
  id: ObjectId;
  branch: string;
  metric: string;
  mode: MetricMode;
  /** Whether the mode was given or guessed from the metric's name. */
  modeGuessed: boolean;
  value: number;
  step?: number;
  time: number;
  message: string;
  metrics: Record<string, number>;
  /** How many commits of the branch carry the metric. */
  candidates: number;
}

/**
 * The commits made on `branch`: its first-parent chain, stopping where the chain reaches commits recorded as
 * made on another branch (the history it was started from; `ckvc branch NEW START` has none of its own yet). A
 * bundle's branch pulled as bundle/NAME holds the commits made on NAME.
 */
export async function* branchCommits(
  store: ObjectStore,
  branch: string,
  read: (id: ObjectId) => Promise<CommitObject> = (id) => store.readCommit(id),
): AsyncGenerator<{ id: ObjectId; commit: CommitObject }> {
  let id = await store.refs.read(REF_PREFIX.branch + branch);
  if (!id)
    throw new CkvcError(
      'CKVC_UNKNOWN_REVISION',
      `no branch named '${branch}' (or it has no commits); 'ckvc branch' lists branches`,
      { branch },
    );
  const names = branchNamesOfCommits(branch);
  while (id) {
    const commit = await read(id);
    if (commit.branch !== undefined && !names.includes(commit.branch)) return;
    yield { id, commit };
    // A shallow store's history stops at a graft (FORMAT.md §17): the branch's commits here end there.
    const first = commit.parents[0];
    id = first && (await store.parentsHeld(id, [first]))[0];
  }
}

/** The pick among a branch's commits, given newest first as branchCommits yields them; undefined when none has
 * the metric. Shared with the web page's curves (src/ui), which walk the branch through a commit cache. */
export async function pickBest(
  commits: AsyncIterable<{ id: ObjectId; commit: CommitObject }>,
  metric: string,
  mode: MetricMode,
): Promise<{ id: ObjectId; commit: CommitObject; value: number; candidates: number } | undefined> {
  let top: { id: ObjectId; commit: CommitObject; value: number } | undefined;
  let candidates = 0;
  for await (const { id, commit } of commits) {
    const v = commit.metrics?.[metric];
    if (v === undefined || !Number.isFinite(v)) continue; // NaN and ±Infinity never rank (FORMAT.md §5.5)
    candidates++;
    // Walking newest to oldest, an equal value replaces the current pick, so ties go to the earliest commit.
    if (!top || isBetter(v, top.value, mode) || v === top.value) top = { id, commit, value: v };
  }
  return top && { ...top, candidates };
}

export async function best(store: ObjectStore, opts: BestOptions): Promise<BestResult> {
  if (!opts.metric) throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the metric to rank by: --metric KEY', {});
  const branch = opts.branch ?? (await currentBranch(store));
  const mode = opts.mode ?? defaultMetricMode(opts.metric);
  const top = await pickBest(branchCommits(store, branch), opts.metric, mode);
  if (!top) {
    throw new CkvcError(
      'CKVC_NO_METRIC',
      `no commit on branch '${branch}' has the metric '${opts.metric}'; 'ckvc log ${branch} --metric ${opts.metric}' shows what is recorded`,
      { branch, metric: opts.metric },
    );
  }
  return {
    id: top.id,
    branch,
    metric: opts.metric,
    mode,
    modeGuessed: opts.mode === undefined,
    value: top.value,
    step: top.commit.step,
    time: top.commit.time,
    message: top.commit.message,
    metrics: top.commit.metrics ?? {},
    candidates: top.candidates,
  };
}
