import { describe, expect, it } from 'vitest';
import { diffMetrics } from '../../src/core/diff/metric-delta.js';

describe('diffMetrics', () => {
  it('lists every key of either side, sorted, with delta and percent where both exist', () => {
    expect(diffMetrics({ loss: 0.5, acc: 0.8, lr: 0.001 }, { loss: 0.25, acc: 0.9, eval_loss: 0.4 })).toEqual([
      { key: 'acc', old: 0.8, new: 0.9, delta: 0.9 - 0.8, percent: ((0.9 - 0.8) / 0.8) * 100 },
      { key: 'eval_loss', new: 0.4 },
      { key: 'loss', old: 0.5, new: 0.25, delta: -0.25, percent: -50 },
      { key: 'lr', old: 0.001 },
    ]);
  });

  it('divides by |old|, so a rise from a negative value is a positive percent', () => {
    expect(diffMetrics({ reward: -4 }, { reward: -2 })).toEqual([
      { key: 'reward', old: -4, new: -2, delta: 2, percent: 50 },
    ]);
    expect(diffMetrics({ reward: -2 }, { reward: -4 })).toEqual([
      { key: 'reward', old: -2, new: -4, delta: -2, percent: -100 },
    ]);
  });

  it('has a null percent when old is 0', () => {
    expect(diffMetrics({ x: 0 }, { x: 3 })).toEqual([{ key: 'x', old: 0, new: 3, delta: 3, percent: null }]);
    expect(diffMetrics({ x: -0 }, { x: 0 })).toEqual([{ key: 'x', old: -0, new: 0, delta: 0, percent: null }]);
  });

  it('omits delta and percent when a side is missing, and handles empty maps', () => {
    const [only] = diffMetrics({ a: 1 }, {});
    expect(only).toEqual({ key: 'a', old: 1 });
    expect(Object.keys(only!)).toEqual(['key', 'old']);
    expect(diffMetrics({}, {})).toEqual([]);
  });

  it('sorts keys in code-unit order', () => {
    const keys = diffMetrics({ b: 1, B: 1, a: 1 }, { 'a/x': 1, _z: 1, é: 1 }).map((m) => m.key);
    expect(keys).toEqual(['B', '_z', 'a', 'a/x', 'b', 'é']);
  });

  it('treats __proto__ and prototype method names as ordinary metric names', () => {
    const a = JSON.parse('{"__proto__": 1}') as Record<string, number>;
    expect(diffMetrics(a, { toString: 2 })).toEqual([
      { key: '__proto__', old: 1 },
      { key: 'toString', new: 2 },
    ]);
  });
});
