// A branch's metric summary (spec/FORMAT.md §8, key 'b'): for every metric recorded on the commits made on a
// branch up to a tip, how many commits carry a finite value and which commit holds the lowest and the highest.
// It lets `best` answer from one index entry instead of walking the branch, whatever its length.
//
// The summary of a tip is a pure function of the tip and the branch name (the walk that `best` does: the
// first-parent chain, stopping at commits made on another branch), because commits never change. So an entry
// stays true for its own tip for ever, and a newer tip's summary is the entry's plus the commits walked from
// the newer tip down to the entry's tip, folded oldest first. Folding in that order with "strictly better
// replaces" keeps the earliest of equal values, the tie rule `best` has always had.
import { isBetter, type MetricMode } from '../metric-mode.js';
import { decodeCanonical, encodeCanonical, type CborValue } from './canonical-cbor.js';
import { idFromBytes, idToBytes, type ObjectId } from './object-id.js';

export interface MetricExtremes {
  /** Commits whose value of this metric is finite. */
  count: number;
  min: { value: number; id: ObjectId };
  max: { value: number; id: ObjectId };
}

export interface BranchSummary {
  tip: ObjectId;
  metrics: Map<string, MetricExtremes>;
}

/** The summary of a branch with no commits of its own at `tip`. */
export function emptySummary(tip: ObjectId): BranchSummary {
  return { tip, metrics: new Map() };
}

/** `summary` extended by one commit on top of it (its new tip); NaN and ±Infinity never rank (FORMAT.md §5.5). */
export function addCommit(summary: BranchSummary, id: ObjectId, metrics: Record<string, number>): BranchSummary {
  const out = new Map(summary.metrics);
  for (const [name, value] of Object.entries(metrics)) {
    if (!Number.isFinite(value)) continue;
    const seen = out.get(name);
    if (!seen) {
      out.set(name, { count: 1, min: { value, id }, max: { value, id } });
      continue;
    }
    out.set(name, {
      count: seen.count + 1,
      min: isBetter(value, seen.min.value, 'min') ? { value, id } : seen.min,
      max: isBetter(value, seen.max.value, 'max') ? { value, id } : seen.max,
    });
  }
  return { tip: id, metrics: out };
}

/** The best commit for `metric` in `mode`, and how many commits carry the metric; undefined when none does. */
export function pickFromSummary(
  summary: BranchSummary,
  metric: string,
  mode: MetricMode,
): { id: ObjectId; value: number; candidates: number } | undefined {
  const m = summary.metrics.get(metric);
  if (!m) return undefined;
  const top = mode === 'min' ? m.min : m.max;
  return { id: top.id, value: top.value, candidates: m.count };
}

/** Longest summary an index entry may hold: beyond it `best` walks the branch (the answer is the same). */
export const MAX_SUMMARY_METRICS = 4096;

export function encodeBranchSummary(s: BranchSummary): Uint8Array {
  const metrics: { [name: string]: CborValue } = {};
  for (const [name, m] of s.metrics) {
    metrics[name] = [m.count, m.min.value, idToBytes(m.min.id), m.max.value, idToBytes(m.max.id)];
  }
  return encodeCanonical({ tip: idToBytes(s.tip), metrics });
}

/**
 * The entry's summary, or undefined for anything else: the index is derived data, so a damaged entry only costs
 * `best` a walk of the branch, never a wrong answer or an error.
 */
export function decodeBranchSummary(bytes: Uint8Array): BranchSummary | undefined {
  try {
    const v = decodeCanonical(bytes, 'branch summary');
    if (!isMap(v) || !(v.tip instanceof Uint8Array) || !isMap(v.metrics)) return undefined;
    const entries = Object.entries(v.metrics);
    if (entries.length > MAX_SUMMARY_METRICS) return undefined;
    const metrics = new Map<string, MetricExtremes>();
    for (const [name, e] of entries) {
      if (!Array.isArray(e) || e.length !== 5) return undefined;
      const [count, minValue, minId, maxValue, maxId] = e;
      if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) return undefined;
      if (!isFiniteNumber(minValue) || !isFiniteNumber(maxValue) || minValue > maxValue) return undefined;
      if (!(minId instanceof Uint8Array) || !(maxId instanceof Uint8Array)) return undefined;
      metrics.set(name, {
        count,
        min: { value: minValue, id: idFromBytes(minId, 'branch summary') },
        max: { value: maxValue, id: idFromBytes(maxId, 'branch summary') },
      });
    }
    return { tip: idFromBytes(v.tip, 'branch summary'), metrics };
  } catch {
    return undefined;
  }
}

const isMap = (v: CborValue | undefined): v is { [key: string]: CborValue } =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

const isFiniteNumber = (v: CborValue | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
