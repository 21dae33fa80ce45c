// A branch's metric summary (spec/FORMAT.md §8, 'b' keys): for every metric recorded on the commits made on a
// branch up to a tip, how many commits carry a finite value and which commit holds the lowest and the highest.
// It lets `best` answer from two index entries instead of walking the branch, whatever its length.
//
// The summary of a tip is a function of the tip and the branch name alone (the walk `best` does: the first-parent
// chain, stopping at commits made on another branch, or at a shallow graft), because commits never change. So an
// entry stays true for its tip, and a newer tip's summary is the entry's plus the commits walked from the newer
// tip down to the entry's tip, folded oldest first. Folding in that order with "strictly better replaces" keeps
// the earliest of equal values, the tie rule `best` has always had. Each metric has an entry of its own, so a
// commit rewrites only the metrics it carries, however many the branch has seen.
import { isBetter, type MetricMode } from '../metric-mode.js';
import { decodeCanonical, encodeCanonical, type CborValue } from './canonical-cbor.js';
import { idFromBytes, idToBytes, type ObjectId } from './object-id.js';

export interface MetricExtremes {
  /** Commits whose value of this metric is finite. */
  count: number;
  min: { value: number; id: ObjectId };
  max: { value: number; id: ObjectId };
}

/**
 * The tip a branch's metric entries are true for, and the shallow graft (FORMAT.md §17) its walk stopped at, if
 * it stopped at one: the entries hold only while that commit's first parent is still missing.
 */
export interface SummaryTip {
  tip: ObjectId;
  graft?: ObjectId;
}

/** `seen` extended by one newer commit's value; NaN and ±Infinity never rank (FORMAT.md §5.5). */
function addValue(seen: MetricExtremes | undefined, id: ObjectId, value: number): MetricExtremes | undefined {
  if (!Number.isFinite(value)) return seen;
  if (!seen) return { count: 1, min: { value, id }, max: { value, id } };
  return {
    count: seen.count + 1,
    min: isBetter(value, seen.min.value, 'min') ? { value, id } : seen.min,
    max: isBetter(value, seen.max.value, 'max') ? { value, id } : seen.max,
  };
}

/** Each metric's extremes (or only `only`'s) over `commits`, given oldest first, on top of `base`. */
export function addCommits(
  base: ReadonlyMap<string, MetricExtremes>,
  commits: Iterable<{ id: ObjectId; metrics: Record<string, number> }>,
  only?: string,
): Map<string, MetricExtremes> {
  const out = new Map(base);
  for (const c of commits) {
    for (const [name, value] of only === undefined ? Object.entries(c.metrics) : [[only, c.metrics[only]] as const]) {
      const next = value === undefined ? undefined : addValue(out.get(name), c.id, value);
      if (next) out.set(name, next);
    }
  }
  return out;
}

/** The best commit in `mode`, and how many commits carry the metric; undefined when none does. */
export function pickExtreme(
  m: MetricExtremes | undefined,
  mode: MetricMode,
): { id: ObjectId; value: number; candidates: number } | undefined {
  if (!m) return undefined;
  const top = mode === 'min' ? m.min : m.max;
  return { id: top.id, value: top.value, candidates: m.count };
}

export function encodeSummaryTip(t: SummaryTip): Uint8Array {
  return encodeCanonical(t.graft ? { tip: idToBytes(t.tip), graft: idToBytes(t.graft) } : { tip: idToBytes(t.tip) });
}

export function encodeMetricExtremes(m: MetricExtremes): Uint8Array {
  return encodeCanonical([m.count, m.min.value, idToBytes(m.min.id), m.max.value, idToBytes(m.max.id)]);
}

/**
 * The entries read back, or undefined for anything else: the index is derived data, so a damaged entry only costs
 * `best` a walk of the branch, never a wrong answer or an error.
 */
export function decodeSummaryTip(bytes: Uint8Array): SummaryTip | undefined {
  const v = decodeQuietly(bytes);
  if (!isMap(v) || !(v.tip instanceof Uint8Array)) return undefined;
  if (Object.keys(v).some((k) => k !== 'tip' && k !== 'graft')) return undefined;
  if (v.graft !== undefined && !(v.graft instanceof Uint8Array)) return undefined;
  const { tip, graft } = v;
  return quietly(() => ({
    tip: idFromBytes(tip, 'branch summary'),
    ...(graft instanceof Uint8Array ? { graft: idFromBytes(graft, 'branch summary') } : {}),
  }));
}

export function decodeMetricExtremes(bytes: Uint8Array): MetricExtremes | undefined {
  const e = decodeQuietly(bytes);
  if (!Array.isArray(e) || e.length !== 5) return undefined;
  const [count, minValue, minId, maxValue, maxId] = e;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) return undefined;
  if (!isFiniteNumber(minValue) || !isFiniteNumber(maxValue) || minValue > maxValue) return undefined;
  if (!(minId instanceof Uint8Array) || !(maxId instanceof Uint8Array)) return undefined;
  return quietly(() => ({
    count,
    min: { value: minValue, id: idFromBytes(minId, 'branch summary') },
    max: { value: maxValue, id: idFromBytes(maxId, 'branch summary') },
  }));
}

function decodeQuietly(bytes: Uint8Array): CborValue | undefined {
  return quietly(() => decodeCanonical(bytes, 'branch summary'));
}

function quietly<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

const isMap = (v: CborValue | undefined): v is { [key: string]: CborValue } =>
  v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

const isFiniteNumber = (v: CborValue | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
