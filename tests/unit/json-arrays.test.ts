// The JSON tensor reader and renderer against Python's own output (spec/vectors/json-render.json, made by
// tests/fixtures/make-json-vectors.py), plus seeded fuzzing: whatever the reader cuts renders back exactly.
import { describe, expect, it } from 'vitest';
import { encodeCanonical } from '../../src/core/store-format/canonical-cbor.js';
import { isJsonLayoutText, renderJsonArray, renderProblem } from '../../src/core/input-formats/json-array-render.js';
import { findJsonArrays, JSON_ARRAY_MIN_ELEMENTS } from '../../src/core/input-formats/json-arrays.js';
import { pythonFloatRepr } from '../../src/core/input-formats/python-float-repr.js';
import { decodeFileRecipe, encodeFileRecipe } from '../../src/core/store-format/objects/file-recipe.js';
import { loadVector } from './vectors.js';
import { prngUnit } from '../helpers/data.js';

interface ArrayVector {
  name: string;
  dtype: string;
  shape: number[];
  open: string[];
  sep: string[];
  close: string[];
}
interface DocVector {
  name: string;
  text: string;
  arrays: ArrayVector[];
}
const vectors = loadVector<{ repr: [string, string][]; documents: DocVector[] }>('json-render.json');
const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
/** The reader takes a file's bytes; these tests write texts whose characters are those bytes (latin1). */
const find = (text: string, rootName: string) => findJsonArrays(Buffer.from(text, 'latin1'), rootName);

describe('pythonFloatRepr', () => {
  it(`matches Python's repr on ${vectors.repr.length} doubles`, () => {
    const value = (bits: string) => Buffer.from(bits, 'hex').readDoubleLE(0);
    const bad = vectors.repr.filter(([bits, repr]) => pythonFloatRepr(value(bits)) !== repr);
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it('spells the edge cases as json.dump does', () => {
    const xs = [0, -0, NaN, Infinity, -Infinity, 1e-5, 1e-4, 1e16, 1e15, 1.5e16, 5e-324, 1e300];
    expect(xs.map(pythonFloatRepr)).toEqual([
      '0.0',
      '-0.0',
      'NaN',
      'Infinity',
      '-Infinity',
      '1e-05',
      '0.0001',
      '1e+16',
      '1000000000000000.0',
      '1.5e+16',
      '5e-324',
      '1e+300',
    ]);
  });

  it('round-trips random bit patterns through Number()', () => {
    const next = prngUnit(7);
    const view = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 20000; i++) {
      view.setUint32(0, Math.floor(next() * 2 ** 32));
      view.setUint32(4, Math.floor(next() * 2 ** 32));
      const x = view.getFloat64(0);
      if (Number.isNaN(x)) continue;
      expect(Object.is(Number(pythonFloatRepr(x).replace('Infinity', 'Infinity')), x)).toBe(true);
    }
  });
});

describe('findJsonArrays on json.dumps output', () => {
  for (const d of vectors.documents) {
    it(d.name, () => {
      const text = latin1(d.text);
      const found = find(text, 'root');
      expect(found).toBeDefined();
      expect(found!.map((a) => ({ name: a.name, dtype: a.dtype, shape: a.shape, ...a.layout }))).toEqual(d.arrays);
      for (const a of found!) {
        expect(isJsonLayoutText(a.layout.open.join('') + a.layout.sep.join('') + a.layout.close.join(''))).toBe(true);
        expect(renderJsonArray(a.layout, a.dtype, a.shape, a.data)).toBe(text.slice(a.start, a.end));
      }
    });
  }

  it('keeps I64 values exact at the int64 limits', () => {
    const d = vectors.documents.find((x) => x.name === 'int64 extremes')!;
    const [a] = find(latin1(d.text), 'root')!;
    const v = new BigInt64Array(a!.data.slice().buffer);
    expect([v[256], v[257]]).toEqual([2n ** 63n - 1n, -(2n ** 63n)]);
  });

  it('finds nothing in text that is not JSON, or nested beyond the cap', () => {
    expect(find('{"a": [1, 2', 'r')).toBeUndefined();
    expect(find('[1] x', 'r')).toBeUndefined();
    expect(find('['.repeat(100000) + ']'.repeat(100000), 'r')).toBeUndefined();
    expect(find('{"k\\ud800": 1}', 'r')).toEqual([]);
  });

  it('leaves arrays written in other styles as text', () => {
    const nums = Array.from({ length: 300 }, (_, i) => i / 7);
    const js = JSON.stringify({ a: nums.map((x) => x * 1e-5) }); // JavaScript writes 1e-7, Python 1e-07
    const upper = `[${nums.map((x) => pythonFloatRepr(x).replace('.', '.').toUpperCase()).join(', ')}, 1E5]`;
    const uneven = `[${nums.map(pythonFloatRepr).join(', ').replace(', ', ',  ')}]`;
    expect(find(js, 'r')).toEqual([]);
    expect(find(upper, 'r')).toEqual([]);
    expect(find(uneven, 'r')).toEqual([]);
    expect(find(`[${nums.map(pythonFloatRepr).join(', ')}]`, 'r')!.length).toBe(1);
  });
});

describe('seeded fuzz', () => {
  const piece = (next: () => number): string => {
    const n = Math.floor(next() * 600);
    const kind = Math.floor(next() * 4);
    const nums = Array.from({ length: n }, () =>
      kind === 0
        ? String(Math.floor((next() - 0.5) * 2 ** 40))
        : pythonFloatRepr((next() - 0.5) * 10 ** Math.floor(next() * 40 - 20)),
    );
    const sep = [', ', ',', ',\n  ', ' , '][Math.floor(next() * 4)]!;
    return `[${nums.join(sep)}]`;
  };

  it('cuts only what renders back, and never throws on mangled input', () => {
    const next = prngUnit(15);
    for (let round = 0; round < 200; round++) {
      let text = `{"a": ${piece(next)}, "b": {"c": [${piece(next)}, ${piece(next)}]}, "d": "x[1,2]"}`;
      if (round % 2) {
        const chars = text.split('');
        for (let m = 0; m < 3; m++) chars[Math.floor(next() * chars.length)] = ' ,[]0.e-"'[Math.floor(next() * 9)]!;
        text = chars.join('');
      }
      const found = find(text, 'r');
      for (const a of found ?? []) {
        expect(renderJsonArray(a.layout, a.dtype, a.shape, a.data)).toBe(text.slice(a.start, a.end));
        expect(a.shape.reduce((x, y) => x * y, 1)).toBeGreaterThanOrEqual(JSON_ARRAY_MIN_ELEMENTS);
      }
    }
  });
});

describe('the json key of a file recipe part (spec/FORMAT.md §5.3, spec/JSON.md §4)', () => {
  const id = 'ab'.repeat(32);
  const recipe = (json: unknown) => ({
    size: 10,
    b3: '00'.repeat(32),
    format: 'json',
    parts: [{ kind: 'tensor' as const, id, size: 10, name: 'w', json: json as never }],
  });

  it('round-trips a layout, and a part without one stays a plain tensor part', () => {
    const layout = { open: ['[\n  ', '['], sep: [',\n  ', ', '], close: ['\n]', ']'] };
    const part = decodeFileRecipe(encodeFileRecipe(recipe(layout))).parts[0];
    expect(part).toEqual({ kind: 'tensor', id, size: 10, name: 'w', json: layout });
    const plain = { ...recipe(undefined), parts: [{ kind: 'tensor' as const, id, size: 10, name: 'w' }] };
    expect(decodeFileRecipe(encodeFileRecipe(plain)).parts[0]).toEqual({ kind: 'tensor', id, size: 10, name: 'w' });
  });

  it('refuses layouts that are not list punctuation and whitespace, uneven, or in an unknown style', () => {
    const bad = (json: Record<string, unknown>) => {
      const part = { tensor: new Uint8Array(32).fill(0xab), size: 10, name: 'w', json: json as never };
      const bytes = encodeCanonical({ size: 10, b3: new Uint8Array(32), format: 'json', parts: [part] });
      try {
        decodeFileRecipe(bytes);
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'accepted';
    };
    const ok = { numbers: 'python', open: ['['], sep: [', '], close: [']'] };
    expect(bad(ok)).toBe('accepted');
    expect(bad({ ...ok, open: ['["x"'] })).toBe('CKVC_CORRUPT_OBJECT');
    expect(bad({ ...ok, sep: [', ', ','] })).toBe('CKVC_CORRUPT_OBJECT');
    expect(bad({ ...ok, numbers: 'javascript' })).toBe('CKVC_CORRUPT_OBJECT');
    expect(bad({ ...ok, close: [`${' '.repeat(5000)}]`] })).toBe('CKVC_CORRUPT_OBJECT');
  });

  it('renderProblem refuses tensors a layout cannot render', () => {
    const layout = { open: ['['], sep: [', '], close: [']'] };
    expect(renderProblem({ dtype: 'F64', shape: [300], size: 2400 }, layout)).toBeUndefined();
    expect(renderProblem({ dtype: 'F32', shape: [300], size: 1200 }, layout)).toMatch(/dtype F32/);
    expect(renderProblem({ dtype: 'F64', shape: [3, 100], size: 2400 }, layout)).toMatch(/dimensions/);
    expect(renderProblem({ dtype: 'I64', shape: [300], size: 2408 }, layout)).toMatch(/bytes/);
  });
});
