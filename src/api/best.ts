// `ckvc best --metric KEY` and `ckvc tag NAME --best KEY`: the best commit of a branch by one metric.
import { CkvcError } from '../core/errors.js';
import { defaultMetricMode, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
import { didYouMean } from '../core/similar-names.js';
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

/** How far back a refusal looks for the metric names a branch records (a typo is checked against these). */
const NAMES_FROM_COMMITS = 200;

/**
 * The metric names the branch's newest commits record, most recent first: what a mistyped name meant. Undefined
 * when they cannot be read (a damaged branch): the refusal then stands without them.
 */
async function recentMetricNames(store: ObjectStore, branch: string): Promise<string[] | undefined> {
  const names = new Set<string>();
  let n = 0;
  try {
    const src = await branchSource(store, branch);
    for await (const { commit } of commitsMadeUnder(store, src.names, src.tip)) {
      for (const k of Object.keys(commit.metrics ?? {})) names.add(k);
      if (++n >= NAMES_FROM_COMMITS) break;
    }
  } catch (e) {
    if (!(e instanceof CkvcError)) throw e;
    return undefined;
  }
  return [...names];
}

export async function best(store: ObjectStore, opts: BestOptions): Promise<BestResult> {
  if (!opts.metric) throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the metric to rank by: --metric KEY', {});
  const branch = opts.branch ?? (await currentBranch(store));
  const mode = opts.mode ?? defaultMetricMode(opts.metric);
  const top = await bestByMetric(store, branch, opts.metric, mode);
  if (!top) {
    const recorded = await recentMetricNames(store, branch);
    const listed =
      recorded === undefined
        ? ''
        : recorded.length
          ? `; its newest commits record ${recorded
              .slice(0, 8)
              .map((m) => `'${m}'`)
              .join(', ')}${recorded.length > 8 ? ', ...' : ''}`
          : '; its newest commits record no metric (commit --metric KEY=VALUE records one)';
    throw new CkvcError(
      'CKVC_NO_METRIC',
      `no commit on branch '${branch}' has the metric '${opts.metric}'${didYouMean(opts.metric, recorded ?? [])}${listed}`,
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
