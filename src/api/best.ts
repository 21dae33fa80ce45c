// `ckvc best --metric KEY` and `ckvc tag NAME --best KEY`: the best commit of a branch by one metric.
import { CkvcError } from '../core/errors.js';
import { defaultMetricMode, type MetricMode } from '../core/metric-mode.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import type { ObjectStore } from '../store/object-store.js';
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

export async function best(store: ObjectStore, opts: BestOptions): Promise<BestResult> {
  if (!opts.metric) throw new CkvcError('CKVC_BAD_ARGUMENT', 'give the metric to rank by: --metric KEY', {});
  const branch = opts.branch ?? (await currentBranch(store));
  const mode = opts.mode ?? defaultMetricMode(opts.metric);
  const top = await bestByMetric(store, branch, opts.metric, mode);
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
