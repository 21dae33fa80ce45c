// `ckvc best --metric KEY` and `ckvc tag NAME --best KEY`: the best commit of a branch by one metric.
import { CkvcError } from '../core/errors.js';
import { defaultMetricMode, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { didYouMean } from '../core/similar-names.js';
import { decodeSummaryTip } from '../core/store-format/branch-summary.js';
import { branchSource, commitsMadeUnder } from './branch-commits.js';
import { bestByMetric } from './branch-summary.js';
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

/** How many metric names a refusal looks at (a typo is checked against these). */
const NAMES_LISTED = 1000;
/** How far back a branch whose summary entries are not its tip's (a remote-tracking one has none) is walked. */
const NAMES_FROM_COMMITS = 50;

/**
 * The metric names the branch records, for a refusal: what a mistyped name meant. They come from its summary
 * entries (FORMAT.md §8: one per metric, read without walking the branch) when those are true for its tip, else
 * from its newest commits made on it. Undefined when they cannot be read (a damaged branch): the refusal then
 * stands without them.
 */
async function recordedMetricNames(store: ObjectStore, branch: string): Promise<string[] | undefined> {
  try {
    const src = await branchSource(store, branch);
    // The entries are this branch's only when they are true for its tip: a deleted branch's stay behind for a
    // new one of that name, and a branch made at another's commit has none yet. Else its commits are read.
    if (!src.tracking) {
      const summary = await store.index.session(async (s) => {
        const tip = await s.summaryTip(branch);
        return tip && decodeSummaryTip(tip)?.tip === src.tip ? s.summaryMetricNames(branch, NAMES_LISTED) : undefined;
      });
      if (summary) return summary;
    }
    const names = new Set<string>();
    let n = 0;
    for await (const { commit } of commitsMadeUnder(store, src.names, src.tip)) {
      for (const k of Object.keys(commit.metrics ?? {})) names.add(k);
      if (++n >= NAMES_FROM_COMMITS) break;
    }
    return [...names];
  } catch (e) {
    if (!(e instanceof CkvcError)) throw e;
    return undefined;
  }
}

export async function best(store: ObjectStore, opts: BestOptions): Promise<BestResult> {
  if (!opts.metric) throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the metric to rank by: --metric KEY', {});
  const branch = opts.branch ?? (await currentBranch(store));
  const mode = opts.mode ?? defaultMetricMode(opts.metric);
  const top = await bestByMetric(store, branch, opts.metric, mode);
  if (!top) {
    const recorded = await recordedMetricNames(store, branch);
    // Values that are all NaN or infinite leave no summary entry: an empty list says nothing, rather than "none".
    const listed = recorded?.length
      ? `; it records ${recorded
          .slice(0, 8)
          .map((m) => `'${m}'`)
          .join(', ')}${recorded.length > 8 ? ', ...' : ''}`
      : '';
    throw new CkvcError(
      'CKVC_NO_METRIC',
      `no commit on branch '${branch}' has a value of the metric '${opts.metric}' to rank${didYouMean(opts.metric, recorded ?? [])}${listed}; NaN and inf values are not ranked`,
      { branch, metric: opts.metric, recorded: recorded ?? null },
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
