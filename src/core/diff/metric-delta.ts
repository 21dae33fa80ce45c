// Metric differences between two commits, one row per key in either, for `ckvc diff`-style reports.

export interface MetricChange {
  key: string;
  old?: number;
  new?: number;
  delta?: number;
  /** delta as a percentage of |old|; null when old is 0 (no meaningful ratio). */
  percent?: number | null;
}

export function diffMetrics(a: Record<string, number>, b: Record<string, number>): MetricChange[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  // Code-unit order, not localeCompare: the output must not depend on the user's locale.
  const sorted = [...keys].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0));
  return sorted.map((key) => {
    const inA = Object.hasOwn(a, key);
    const inB = Object.hasOwn(b, key);
    const row: MetricChange = { key };
    if (inA) row.old = a[key];
    if (inB) row.new = b[key];
    if (inA && inB) {
      const old = a[key] as number;
      const delta = (b[key] as number) - old;
      row.delta = delta;
      row.percent = old === 0 ? null : (delta / Math.abs(old)) * 100;
    }
    return row;
  });
}
