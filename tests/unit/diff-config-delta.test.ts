import { describe, expect, it } from 'vitest';
import { diffConfig, formatKeyPath } from '../../src/core/diff/config-delta.js';

describe('formatKeyPath', () => {
  it('joins identifiers with dots and indices with brackets', () => {
    expect(formatKeyPath([])).toBe('');
    expect(formatKeyPath(['optimizer', 'lr'])).toBe('optimizer.lr');
    expect(formatKeyPath(['layers', 2, 'units'])).toBe('layers[2].units');
    expect(formatKeyPath([0, 1])).toBe('[0][1]');
    expect(formatKeyPath(['_private', 'drop-out', 'x9'])).toBe('_private.drop-out.x9');
  });

  it('quotes keys that are not identifiers as JSON strings', () => {
    expect(formatKeyPath(['a.b'])).toBe('["a.b"]');
    expect(formatKeyPath(['model', 'a.b', 'c'])).toBe('model["a.b"].c');
    expect(formatKeyPath(['m', '0'])).toBe('m["0"]');
    expect(formatKeyPath(['m', ''])).toBe('m[""]');
    expect(formatKeyPath(['m', 'say "hi"'])).toBe('m["say \\"hi\\""]');
    expect(formatKeyPath(['m', '-x', 'é'])).toBe('m["-x"]["é"]');
  });
});

describe('diffConfig', () => {
  it('finds changes, additions and removals in nested objects', () => {
    const a = { optimizer: { name: 'adam', lr: 0.001, betas: [0.9, 0.999] }, seed: 1, dropout: 0.1 };
    const b = { optimizer: { name: 'adam', lr: 0.0003, betas: [0.9, 0.95], wd: 0.01 }, seed: 1, batch: 64 };
    expect(diffConfig(a, b)).toEqual([
      { path: 'batch', kind: 'added', new: 64 },
      { path: 'dropout', kind: 'removed', old: 0.1 },
      { path: 'optimizer.betas[1]', kind: 'changed', old: 0.999, new: 0.95 },
      { path: 'optimizer.lr', kind: 'changed', old: 0.001, new: 0.0003 },
      { path: 'optimizer.wd', kind: 'added', new: 0.01 },
    ]);
  });

  it('identical and reordered configs have no changes', () => {
    const a = { model: { layers: [{ units: 64, act: 'relu' }], name: 'mlp' }, lr: 1e-3, tags: null };
    expect(diffConfig(a, structuredClone(a))).toEqual([]);
    const reordered = { lr: 1e-3, tags: null, model: { name: 'mlp', layers: [{ act: 'relu', units: 64 }] } };
    expect(diffConfig(a, reordered)).toEqual([]);
    expect(diffConfig(null, null)).toEqual([]);
    expect(diffConfig({}, {})).toEqual([]);
  });

  it('compares arrays element by element as they grow and shrink', () => {
    const a = { layers: [{ units: 64 }, { units: 32 }, { units: 16 }] };
    const grown = { layers: [{ units: 64 }, { units: 48 }, { units: 16 }, { units: 8 }, { units: 4 }] };
    expect(diffConfig(a, grown)).toEqual([
      { path: 'layers[1].units', kind: 'changed', old: 32, new: 48 },
      { path: 'layers[3]', kind: 'added', new: { units: 8 } },
      { path: 'layers[4]', kind: 'added', new: { units: 4 } },
    ]);
    expect(diffConfig(a, { layers: [{ units: 64 }] })).toEqual([
      { path: 'layers[1]', kind: 'removed', old: { units: 32 } },
      { path: 'layers[2]', kind: 'removed', old: { units: 16 } },
    ]);
    expect(diffConfig([1, 2], [1, 2, 3])).toEqual([{ path: '[2]', kind: 'added', new: 3 }]);
    // Moving elements is a change at each index, not a reorder.
    expect(diffConfig({ x: [1, 2] }, { x: [2, 1] })).toEqual([
      { path: 'x[0]', kind: 'changed', old: 1, new: 2 },
      { path: 'x[1]', kind: 'changed', old: 2, new: 1 },
    ]);
  });

  it('reports a type change once, with the whole old and new values', () => {
    expect(diffConfig({ sched: { kind: 'cosine', warmup: 100 } }, { sched: 'constant' })).toEqual([
      { path: 'sched', kind: 'changed', old: { kind: 'cosine', warmup: 100 }, new: 'constant' },
    ]);
    expect(diffConfig({ s: [1, 2] }, { s: { 0: 1, 1: 2 } })).toEqual([
      { path: 's', kind: 'changed', old: [1, 2], new: { 0: 1, 1: 2 } },
    ]);
    expect(diffConfig({ s: null }, { s: {} })).toEqual([{ path: 's', kind: 'changed', old: null, new: {} }]);
    expect(diffConfig({ s: [] }, { s: null })).toEqual([{ path: 's', kind: 'changed', old: [], new: null }]);
    expect(diffConfig({ n: 1 }, { n: '1' })).toEqual([{ path: 'n', kind: 'changed', old: 1, new: '1' }]);
    expect(diffConfig({ f: false }, { f: 0 })).toEqual([{ path: 'f', kind: 'changed', old: false, new: 0 }]);
    expect(diffConfig([1], { a: 1 })).toEqual([{ path: '', kind: 'changed', old: [1], new: { a: 1 } }]);
  });

  it('reports a changed root scalar at the empty path', () => {
    expect(diffConfig(1, 2)).toEqual([{ path: '', kind: 'changed', old: 1, new: 2 }]);
    expect(diffConfig('a', 'a')).toEqual([]);
  });

  it('treats 0 and -0 as equal and NaN as equal to NaN', () => {
    expect(diffConfig({ x: 0, y: Number.NaN }, { x: -0, y: Number.NaN })).toEqual([]);
    expect(diffConfig({ y: Number.NaN }, { y: 1 })).toEqual([{ path: 'y', kind: 'changed', old: Number.NaN, new: 1 }]);
  });

  it('quotes keys that are not identifiers', () => {
    const a = { 'model.name': 'a', data: { '0': 'x', 'train-split': 0.9, 'with space': 1 } };
    const b = { 'model.name': 'b', data: { '0': 'y', 'train-split': 0.8 } };
    expect(diffConfig(a, b)).toEqual([
      { path: '["model.name"]', kind: 'changed', old: 'a', new: 'b' },
      { path: 'data.train-split', kind: 'changed', old: 0.9, new: 0.8 },
      { path: 'data["0"]', kind: 'changed', old: 'x', new: 'y' },
      { path: 'data["with space"]', kind: 'removed', old: 1 },
    ]);
  });

  it('sorts by path in code-unit order', () => {
    const a = { b: 1, B: 1, a: { z: 1, y: 1 }, list: new Array(12).fill(0) };
    const b = { b: 2, B: 2, a: { z: 2, y: 2 }, list: new Array(12).fill(1) };
    const paths = diffConfig(a, b).map((c) => c.path);
    expect(paths).toEqual([...paths].sort());
    expect(paths.slice(0, 5)).toEqual(['B', 'a.y', 'a.z', 'b', 'list[0]']);
    expect(paths.indexOf('list[10]')).toBeLessThan(paths.indexOf('list[2]'));
  });

  it('handles a key named __proto__ as an ordinary key', () => {
    const a = JSON.parse('{"__proto__": {"x": 1}, "k": 1}') as unknown;
    const b = JSON.parse('{"__proto__": {"x": 2}, "constructor": 3}') as unknown;
    expect(diffConfig(a, b)).toEqual([
      { path: '__proto__.x', kind: 'changed', old: 1, new: 2 },
      { path: 'constructor', kind: 'added', new: 3 },
      { path: 'k', kind: 'removed', old: 1 },
    ]);
    // Keys that only exist on Object.prototype are not keys of the config.
    expect(diffConfig({ toString: 1 }, {})).toEqual([{ path: 'toString', kind: 'removed', old: 1 }]);
    expect(diffConfig({}, { hasOwnProperty: 1 })).toEqual([{ path: 'hasOwnProperty', kind: 'added', new: 1 }]);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
