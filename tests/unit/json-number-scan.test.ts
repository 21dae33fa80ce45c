// scanNumberToken (spec/JSON.md §2, §3) reads a number token in one pass: it finds the token's end itself and
// decides on the way whether the text is Python's repr of a double. Its verdict must be exactly the slow rule's:
// the token ends where numberTokenEnd says, it is a Python float if and only if pythonFloatRepr(Number(text)) is
// the text (with that double), and an integer literal when it has no '.', exponent, NaN or Infinity. Seeded: a
// failure replays from its seed. The arrays test checks the reader built on it cuts what it should and no more.
import { describe, expect, it } from 'vitest';
import { renderJsonArray } from '../../src/core/input-formats/json-array-render.js';
import { findJsonArrays } from '../../src/core/input-formats/json-arrays.js';
import {
  INTEGER_TOKEN,
  NO_NUMBER,
  numberTokenEnd,
  OTHER_TOKEN,
  PYTHON_FLOAT,
  scanNumberToken,
  scanned,
} from '../../src/core/input-formats/python-float-read.js';
import { pythonFloatRepr } from '../../src/core/input-formats/python-float-repr.js';
import { prngUnit } from '../helpers/data.js';

const out = new Float64Array(1);
const view = new DataView(new ArrayBuffer(8));
/** The readers take a file's bytes; these tests write texts whose characters are those bytes (latin1). */
const bytes = (t: string) => Buffer.from(t, 'latin1');
const find = (text: string, rootName: string) => findJsonArrays(bytes(text), rootName);

/** The slow rule's verdict on the token at `start` of `t`, as text to compare. */
function expected(t: string, start: number): string {
  const c = t.charCodeAt(start);
  if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x4e || c === 0x49)) return 'none';
  const end = numberTokenEnd(bytes(t), start);
  const text = t.slice(start, end);
  if (!/[.eEIN]/.test(text)) return `int ${end}`;
  const x = Number(text);
  return pythonFloatRepr(x) === text ? `float ${end} ${Object.is(x, -0) ? '-0' : x}` : `other ${end}`;
}

function scannedVerdict(t: string, start: number): string {
  const kind = scanNumberToken(bytes(t), start, out, 0);
  if (kind === NO_NUMBER) return 'none';
  if (kind === INTEGER_TOKEN) return `int ${scanned.end}`;
  if (kind === OTHER_TOKEN) return `other ${scanned.end}`;
  expect(kind).toBe(PYTHON_FLOAT);
  return `float ${scanned.end} ${Object.is(out[0], -0) ? '-0' : out[0]}`;
}

function bitsDouble(hi: number, lo: number): number {
  view.setUint32(0, hi >>> 0);
  view.setUint32(4, lo >>> 0);
  return view.getFloat64(0);
}

/** Doubles of every kind the reader meets, and the edges of its fast path. */
function doubleKinds(next: () => number): (() => number)[] {
  const ulps = (x: number, k: number) => {
    view.setFloat64(0, x);
    view.setBigUint64(0, view.getBigUint64(0) + BigInt(k));
    return view.getFloat64(0);
  };
  const around = (x: number) => ulps(x, Math.floor(next() * 9) - 4);
  return [
    () => bitsDouble(next() * 2 ** 32, next() * 2 ** 32),
    () => bitsDouble(next() * 2 ** 20, next() * 2 ** 32) * (next() < 0.5 ? 1 : -1), // subnormal
    () => Math.fround((next() - 0.5) * 0.3), // float32 weights, as most snapshots hold
    () => around([1e16, 1e-5, 1e-4, 1e15, 9007199254740992, 1e22, 1e23, 5e-324, 2.2250738585072014e-308][i9(next)]!),
    () => (next() < 0.5 ? -0 : 0),
    () => Math.round((next() - 0.5) * 2 ** 12), // integers in a float list: 3.0
    () => (next() - 0.5) * 10 ** Math.floor(next() * 60 - 30),
    () => Number(`${Math.floor(next() * 1e6)}e${Math.floor(next() * 40 - 20)}`),
  ];
}
const i9 = (next: () => number) => Math.floor(next() * 9);

/** The repr and the spellings one step away from it: what the fast path must tell apart. */
function spellings(x: number): string[] {
  const repr = pythonFloatRepr(x);
  const js = String(x);
  const m = /^(-?)([0-9.]+)(e.*)?$/.exec(repr);
  const near = m
    ? [`${m[2]!.slice(0, -1)}`, `${m[2]}1`, `${m[2]}0`, `${m[2]!.slice(0, -1)}${(Number(m[2]!.at(-1)) + 1) % 10}`].map(
        (b) => m[1]! + b + (m[3] ?? ''),
      )
    : [];
  return [repr, js, `${js}.0`, repr.replace('e-0', 'e-'), repr.replace('e', 'E'), ...near];
}

describe('scanNumberToken', () => {
  it('gives the slow rule’s verdict, end and value on seeded doubles, near misses and every delimiter', () => {
    const next = prngUnit(41);
    const kinds = doubleKinds(next);
    const after = [',', ']', '}', ' ', '\n', '\t', '', 'x', '.5', 'e5', '-1', ', 1'];
    const disagreements: string[] = [];
    for (let i = 0; i < 12000; i++) {
      const x = kinds[i % kinds.length]!();
      for (const text of spellings(x)) {
        const t = `[${text}${after[Math.floor(next() * after.length)]}`;
        const want = expected(t, 1);
        const got = scannedVerdict(t, 1);
        if (want !== got) disagreements.push(`${JSON.stringify(t)}: ${got}, expected ${want}`);
      }
    }
    expect(disagreements.slice(0, 5)).toEqual([]);
  });

  it('reads integer literals, junk and the non-finite spellings as the slow rule does', () => {
    const texts = ['0', '-0', '007', '12', '-', '--1', '1-2', '9223372036854775808', '12345678901234567890123'];
    const more = ['NaN', '-NaN', 'Infinity', '-Infinity', 'Inf', '1e+1e', '1.0.0', '.5', '1.', '0.0', '-0.0', '0.00'];
    for (const text of [...texts, ...more, 'a', '"1"', '+1', ' 1']) {
      for (const t of [`${text},`, text, `${text}]`]) expect(scannedVerdict(t, 0), t).toBe(expected(t, 0));
    }
  });
});

describe('the arrays the one-pass reader cuts', () => {
  const floats = (next: () => number, n: number) =>
    Array.from({ length: n }, () => pythonFloatRepr(Math.fround((next() - 0.5) * 0.2)));

  it('cuts float lists with zeros, -0.0, tiny and huge values, and keeps lists holding an integer as text', () => {
    const next = prngUnit(43);
    const edge = ['0.0', '-0.0', '1e-05', '0.0001', '1e+16', '1000000000000000.0', '5e-324', 'NaN', '-Infinity'];
    const good = [...floats(next, 300), ...edge];
    const text = (items: string[]) => `{"w": [${items.join(', ')}]}`;
    const [a] = find(text(good), 'r')!;
    expect(a?.dtype).toBe('F64');
    expect(renderJsonArray(a!.layout, 'F64', a!.shape, a!.data)).toBe(`[${good.join(', ')}]`);
    expect(find(text([...good.slice(0, 150), '3', ...good.slice(150)]), 'r')).toEqual([]);
    expect(find(text(['3', ...good]), 'r')).toEqual([]);
    const ints = Array.from({ length: 300 }, (_, i) => String(i * 7919 - 1e6));
    expect(find(text(ints), 'r')![0]!.dtype).toBe('I64');
    expect(find(text([...ints, '1.5']), 'r')).toEqual([]);
  });

  it('a matrix with one number in another spelling is cut row by row, that row left as text', () => {
    const next = prngUnit(47);
    const rows = Array.from({ length: 4 }, () => floats(next, 300));
    rows[2]![17] = '1E-5';
    const text = `{"m": [${rows.map((r) => `[${r.join(', ')}]`).join(', ')}]}`;
    const found = find(text, 'r')!;
    expect(found.map((a) => [a.name, a.shape])).toEqual([
      ['m/0', [300]],
      ['m/1', [300]],
      ['m/3', [300]],
    ]);
    for (const a of found) expect(renderJsonArray(a.layout, a.dtype, a.shape, a.data)).toBe(text.slice(a.start, a.end));
  });
});
