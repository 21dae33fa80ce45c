// Branch metric summaries (spec/FORMAT.md §8, 'b' keys) against spec/vectors/branch-summary.json, and the fold
// against the rule it replaces: walking the branch newest first, an equal value replacing the pick.
import { describe, expect, it } from 'vitest';
import { isBetter, type MetricMode } from '../../src/core/metric-mode.js';
import {
  addCommits,
  decodeMetricExtremes,
  decodeSummaryTip,
  encodeMetricExtremes,
  encodeSummaryTip,
  type MetricExtremes,
  pickExtreme,
} from '../../src/core/store-format/branch-summary.js';
import { branchSummaryKey } from '../../src/core/store-format/index-keys.js';
import { hex, loadVector, unhex } from './vectors.js';

type Fields = [number, number, string, number, string];
const v = loadVector('branch-summary.json');
const num = (x: number | string) => (typeof x === 'number' ? x : Number(x));
const fieldsOf = (m: MetricExtremes): Fields => [m.count, m.min.value, m.min.id, m.max.value, m.max.id];

describe('branch summary entries', () => {
  it.each(v.keys as { branch: string; metric?: string; key: string }[])('key of $branch $metric', (k) => {
    expect(hex(branchSummaryKey(k.branch, k.metric))).toBe(k.key);
  });

  it.each(v.tips as { hex: string; tip: string; graft?: string }[])('tip entry %#', (e) => {
    const t = decodeSummaryTip(unhex(e.hex));
    expect(t).toEqual({ tip: e.tip, ...(e.graft ? { graft: e.graft } : {}) });
    expect(hex(encodeSummaryTip(t!))).toBe(e.hex);
  });

  it.each(v.metrics as { hex: string; entry: Fields }[])('metric entry %#', (e) => {
    const m = decodeMetricExtremes(unhex(e.hex));
    expect(fieldsOf(m!)).toEqual(e.entry);
    expect(hex(encodeMetricExtremes(m!))).toBe(e.hex);
  });

  it.each(v.damaged as { kind: string; why: string; hex: string }[])(
    'reads a damaged $kind entry as none: $why',
    (e) => {
      const decode = e.kind === 'tip' ? decodeSummaryTip : decodeMetricExtremes;
      expect(decode(unhex(e.hex))).toBeUndefined();
    },
  );
});

describe('folding commits', () => {
  it.each(v.folds as { commits: { id: string; metrics: Record<string, number | string> }[] }[])(
    'gives the vector entries %#',
    (f) => {
      const got = addCommits(
        new Map(),
        f.commits.map((c) => ({
          id: c.id,
          metrics: Object.fromEntries(Object.entries(c.metrics).map(([k, x]) => [k, num(x)])),
        })),
      );
      const want = (f as unknown as { metrics: Record<string, Fields> }).metrics;
      expect(Object.fromEntries([...got].map(([k, m]) => [k, fieldsOf(m)]))).toEqual(want);
    },
  );

  // The walk 'best' made before summaries existed: newest first, a better or equal value replaces the pick.
  const pickByWalk = (commits: { id: string; metrics: Record<string, number> }[], metric: string, mode: MetricMode) => {
    let top: { id: string; value: number } | undefined;
    let candidates = 0;
    for (const c of [...commits].reverse()) {
      const x = c.metrics[metric];
      if (x === undefined || !Number.isFinite(x)) continue;
      candidates++;
      if (!top || isBetter(x, top.value, mode) || x === top.value) top = { id: c.id, value: x };
    }
    return top && { ...top, candidates };
  };

  it('picks what walking the branch picks, on 2,000 seeded histories, split into stored entries and a walk anywhere', () => {
    let seed = 17;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values = [0, -0, 1, 1, 2, 0.5, -3, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-300];
    for (let h = 0; h < 2000; h++) {
      const commits = Array.from({ length: 1 + Math.floor(rand() * 12) }, (_, i) => {
        const metrics: Record<string, number> = {};
        for (const k of ['loss', 'acc', 'eval/score'])
          if (rand() < 0.6) metrics[k] = values[Math.floor(rand() * values.length)]!;
        return { id: `${h.toString(16).padStart(8, '0')}${i.toString(16).padStart(56, '0')}`, metrics };
      });
      // The entries cover the first `cut` commits (stored, read back); the rest are folded on top, as best does.
      const cut = Math.floor(rand() * (commits.length + 1));
      const stored = new Map(
        [...addCommits(new Map(), commits.slice(0, cut))].map(([k, m]) => [
          k,
          decodeMetricExtremes(encodeMetricExtremes(m))!,
        ]),
      );
      const all = addCommits(stored, commits.slice(cut));
      for (const metric of ['loss', 'acc', 'eval/score', 'absent'])
        for (const mode of ['min', 'max'] as const) {
          const want = pickByWalk(commits, metric, mode);
          const got = pickExtreme(all.get(metric), mode);
          // -0 is stored as 0 (canonical CBOR): equal for every comparison best makes.
          expect(got && { ...got, value: got.value + 0 }).toEqual(want && { ...want, value: want.value + 0 });
        }
    }
  });
});
