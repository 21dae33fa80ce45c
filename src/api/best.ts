// `ckvc best --metric KEY` and `ckvc tag NAME --best KEY`: the best commit of a branch by one metric.
import { CkvcError } from '../core/errors.js';
import { defaultMetricMode, type MetricMode } from '../core/metric-mode.js';
import { branchNamesOfCommits } from '../core/ref-name.js';
import {
  addCommit,
  type BranchSummary,
  decodeBranchSummary,
  emptySummary,
  encodeBranchSummary,
  MAX_SUMMARY_METRICS,
  pickFromSummary,
} from '../core/store-format/branch-summary.js';
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
  yield* commitsMadeOn(store, branch, await branchTip(store, branch), read);
}

async function branchTip(store: ObjectStore, branch: string): Promise<ObjectId> {
  const id = await store.refs.read(REF_PREFIX.branch + branch);
  if (!id)
    throw new CkvcError(
      'CKVC_UNKNOWN_REVISION',
      `no branch named '${branch}' (or it has no commits); 'ckvc branch' lists branches`,
      { branch },
    );
  return id;
}

async function* commitsMadeOn(
  store: ObjectStore,
  branch: string,
  tip: ObjectId,
  read: (id: ObjectId) => Promise<CommitObject> = (id) => store.readCommit(id),
): AsyncGenerator<{ id: ObjectId; commit: CommitObject }> {
  const names = branchNamesOfCommits(branch);
  let id: ObjectId | undefined = tip;
  while (id) {
    const commit = await read(id);
    if (commit.branch !== undefined && !names.includes(commit.branch)) return;
    yield { id, commit };
    // A shallow store's history stops at a graft (FORMAT.md §17): the branch's commits here end there.
    const first = commit.parents[0];
    id = first && (await store.parentsHeld(id, [first]))[0];
  }
}

/**
 * The metric summary of `branch` at its tip (FORMAT.md §8, 'b' keys): the index's entry for the branch, extended
 * by the commits made since the entry's tip, or the whole branch walked when the entry is missing or its tip is
 * not on the branch any more (moved by a pull, a reset, an older ckvc). `complete` is false when the walk went
 * through a shallow store's graft, whose history may still grow: such a summary is used, never stored.
 */
export async function branchSummary(
  store: ObjectStore,
  branch: string,
  opts: { ignoreEntry?: boolean } = {},
): Promise<{ summary: BranchSummary; complete: boolean }> {
  const tip = await branchTip(store, branch);
  const entry = opts.ignoreEntry
    ? undefined
    : await store.index.session((s) => s.branchSummary(branch)).then((b) => b && decodeBranchSummary(b));
  const grafts = await store.shallowCommits();
  const since: { id: ObjectId; commit: CommitObject }[] = [];
  let base = emptySummary(tip);
  let complete = true;
  for await (const c of commitsMadeOn(store, branch, tip)) {
    if (c.id === entry?.tip) {
      base = entry;
      break;
    }
    if (grafts.has(c.id)) complete = false;
    since.push(c);
  }
  return { summary: { ...foldCommits(base, since), tip }, complete };
}

/**
 * Brings the branch's summary entry up to its tip; a commit calls it once its branch has moved, so that `best`
 * reads one entry instead of walking the branch. Usually one commit is folded in; after the branch moved some
 * other way, the commits since the entry's tip.
 */
export async function recordBranchSummary(store: ObjectStore, branch: string): Promise<void> {
  const { summary, complete } = await branchSummary(store, branch);
  if (!complete || summary.metrics.size > MAX_SUMMARY_METRICS) return;
  await store.index.session((s) => s.putBranchSummary(branch, encodeBranchSummary(summary)));
}

/** `base` extended by `commits` made on top of it, given newest first as branchCommits yields them. */
export function foldCommits(
  base: BranchSummary,
  commits: readonly { id: ObjectId; commit: CommitObject }[],
): BranchSummary {
  let summary = base;
  for (let i = commits.length - 1; i >= 0; i--)
    summary = addCommit(summary, commits[i]!.id, commits[i]!.commit.metrics);
  return summary;
}

export async function best(store: ObjectStore, opts: BestOptions): Promise<BestResult> {
  if (!opts.metric) throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the metric to rank by: --metric KEY', {});
  const branch = opts.branch ?? (await currentBranch(store));
  const mode = opts.mode ?? defaultMetricMode(opts.metric);
  const top = await bestOnBranch(store, branch, opts.metric, mode);
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

async function bestOnBranch(store: ObjectStore, branch: string, metric: string, mode: MetricMode) {
  for (const ignoreEntry of [false, true]) {
    const pick = pickFromSummary((await branchSummary(store, branch, { ignoreEntry })).summary, metric, mode);
    if (!pick) return undefined;
    const commit = await store.readCommit(pick.id).catch(() => undefined);
    const value = commit?.metrics?.[metric];
    // The entry is derived data: should the commit it names not hold the value it recorded, walk the branch.
    if (commit && value === pick.value) return { id: pick.id, commit, value, candidates: pick.candidates };
  }
  throw new CkvcError('CKVC_INTERNAL', `the best commit of '${branch}' by '${metric}' could not be read back`, {
    branch,
    metric,
  });
}
