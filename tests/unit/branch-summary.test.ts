// Branch metric summaries (spec/FORMAT.md §8, 'b' keys) against spec/vectors/branch-summary.json, and the fold
// against the rule it replaces: walking the branch newest first, an equal value replacing the pick.
import { describe, expect, it } from 'vitest';
import { isBetter, type MetricMode } from '../../src/core/metric-mode.js';
import {
  addCommit,
  type BranchSummary,
  decodeBranchSummary,
  emptySummary,
  encodeBranchSummary,
  pickFromSummary,
} from '../../src/core/store-format/branch-summary.js';
import { hex, loadVector, unhex } from './vectors.js';

type Fields = [number, number, string, number, string];
const v = loadVector('branch-summary.json');
const num = (x: number | string) => (typeof x === 'number' ? x : Number(x));
const fieldsOf = (s: BranchSummary) =>
  Object.fromEntries([...s.metrics].map(([k, m]) => [k, [m.count, m.min.value, m.min.id, m.max.value, m.max.id]]));

describe('branch summary entries', () => {
  it.each(v.entries as { hex: string; tip: string; metrics: Record<string, Fields> }[])(
    'decodes and re-encodes %#',
    (e) => {
      const s = decodeBranchSummary(unhex(e.hex));
      expect(s?.tip).toBe(e.tip);
      expect(fieldsOf(s!)).toEqual(e.metrics);
      expect(hex(encodeBranchSummary(s!))).toBe(e.hex);
    },
  );

  it.each(v.damaged as { why: string; hex: string }[])('reads a damaged entry as none: $why', (e) => {
    expect(decodeBranchSummary(unhex(e.hex))).toBeUndefined();
  });
});

describe('folding commits', () => {
  it.each(v.folds as { commits: { id: string; metrics: Record<string, number | string> }[]; tip: string }[])(
    'gives the vector summary %#',
    (f) => {
      let s = emptySummary(f.commits[0]!.id);
      for (const c of f.commits)
        s = addCommit(s, c.id, Object.fromEntries(Object.entries(c.metrics).map(([k, x]) => [k, num(x)])));
      expect(s.tip).toBe(f.tip);
      expect(fieldsOf(s)).toEqual((f as unknown as { metrics: unknown }).metrics);
      expect(decodeBranchSummary(encodeBranchSummary(s))).toEqual(s);
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

  it('picks what walking the branch picks, on 2,000 seeded histories, split into an entry and a walk anywhere', () => {
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
      // The entry covers the first `cut` commits (stored, read back); the rest are folded on top, as best does.
      const cut = Math.floor(rand() * (commits.length + 1));
      let s = emptySummary(commits[0]!.id);
      for (const c of commits.slice(0, cut)) s = addCommit(s, c.id, c.metrics);
      s = decodeBranchSummary(encodeBranchSummary(s))!;
      for (const c of commits.slice(cut)) s = addCommit(s, c.id, c.metrics);
      for (const metric of ['loss', 'acc', 'eval/score', 'absent'])
        for (const mode of ['min', 'max'] as const) {
          const want = pickByWalk(commits, metric, mode);
          const got = pickFromSummary(s, metric, mode);
          expect(got && { ...got, value: got.value === 0 ? 0 : got.value }).toEqual(
            want && { ...want, value: want.value === 0 ? 0 : want.value },
          );
        }
    }
  });
});
