// Which way is better for a metric when the user does not say: lower for losses and errors, higher otherwise.
// Guessing wrong would silently pick the worst checkpoint, so callers report the mode they used.
export type MetricMode = 'min' | 'max';

const LOWER_IS_BETTER = /(loss|err|error|perplexity|ppl|mse|mae|rmse|wer|cer|regret|nll|cost|latency|distance)/i;

export function defaultMetricMode(key: string): MetricMode {
  return LOWER_IS_BETTER.test(key) ? 'min' : 'max';
}

/** Strictly better: ties keep the earlier commit. */
export function isBetter(candidate: number, current: number | undefined, mode: MetricMode): boolean {
  if (!Number.isFinite(candidate)) return false;
  if (current === undefined || !Number.isFinite(current)) return true;
  return mode === 'max' ? candidate > current : candidate < current;
}
