// readPythonFloat (the JSON reader's number check, spec/JSON.md §3) must give exactly the verdict of rendering:
// accept a text if and only if it is pythonFloatRepr of the double it reads as, with that double. Checked against
// Python's own repr (spec/vectors/json-render.json) and, seeded, against the renderer on doubles of every kind and
// on texts one digit off, one digit longer or shorter, or with a trailing zero: the near misses the fast path's
// arithmetic has to tell apart.
import { describe, expect, it } from 'vitest';
import { readPythonFloat } from '../../src/core/input-formats/python-float-read.js';
import { pythonFloatRepr } from '../../src/core/input-formats/python-float-repr.js';
import { prngUnit } from '../helpers/data.js';
import { loadVector } from './vectors.js';

const out = new Float64Array(1);

/** readPythonFloat's verdict and value, and the renderer's, as comparable text. */
function verdicts(text: string): { read: string; rendered: string } {
  const padded = ` [${text}, `; // offsets inside a larger text, as the reader sees numbers
  const ok = readPythonFloat(Buffer.from(padded, 'latin1'), 2, 2 + text.length, out, 0);
  const x = Number(text);
  const show = (accepted: boolean, v: number) => (accepted ? `${text} = ${Object.is(v, -0) ? '-0' : v}` : `${text} no`);
  return { read: show(ok, out[0]!), rendered: show(pythonFloatRepr(x) === text, x) };
}

function nearMisses(repr: string): string[] {
  const m = /^(-?)([0-9.]+)(e.*)?$/.exec(repr);
  if (!m) return [repr];
  const [, sign, body, exp = ''] = m as unknown as [string, string, string, string | undefined];
  const last = Number(body.at(-1));
  const lastOff = [last - 1, last + 1].filter((d) => d >= 0 && d <= 9).map((d) => body.slice(0, -1) + d);
  return [repr, ...[...lastOff, body.slice(0, -1), `${body}1`, `${body}0`].map((b) => sign + b + exp)];
}

describe('readPythonFloat', () => {
  it("accepts Python's own repr of every vector double, with that double", () => {
    const { repr } = loadVector<{ repr: [string, string][] }>('json-render.json');
    const bad = repr.filter(([bits, text]) => {
      const ok = readPythonFloat(Buffer.from(text, 'latin1'), 0, text.length, out, 0);
      return !ok || !Object.is(out[0], Buffer.from(bits, 'hex').readDoubleLE(0));
    });
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it('agrees with rendering on seeded doubles and their near misses', () => {
    const next = prngUnit(29);
    const view = new DataView(new ArrayBuffer(8));
    const kinds: (() => number)[] = [
      () => {
        view.setUint32(0, Math.floor(next() * 2 ** 32));
        view.setUint32(4, Math.floor(next() * 2 ** 32));
        return view.getFloat64(0);
      },
      () => Math.fround((next() - 0.5) * 0.3), // float32 weights, as most snapshots hold
      () => (next() - 0.5) * 10 ** Math.floor(next() * 44 - 22),
      () => Math.round((next() - 0.5) * 2 ** 20) / 2 ** Math.floor(next() * 30),
      () => Number(`${Math.floor(next() * 1e6)}e${Math.floor(next() * 40 - 20)}`),
      () => 2 ** Math.floor(next() * 200 - 100) * (next() < 0.5 ? 1 : -1),
    ];
    const disagreements: { read: string; rendered: string }[] = [];
    for (let i = 0; i < 30000; i++) {
      for (const text of nearMisses(pythonFloatRepr(kinds[i % kinds.length]!()))) {
        const v = verdicts(text);
        if (v.read !== v.rendered) disagreements.push(v);
      }
    }
    expect(disagreements.slice(0, 5)).toEqual([]);
  });

  it('agrees with rendering on layouts Python does not write', () => {
    const texts = [
      '0.0',
      '-0.0',
      '0.00',
      '0',
      '1',
      '1.0',
      '1.',
      '.5',
      '01.5',
      '1e5',
      '1e+05',
      '1e+16',
      '1.0e+16',
      '1e16',
      '1e-05',
      '0.0001',
      '0.00001',
      '1e-04',
      'NaN',
      '-NaN',
      'Infinity',
      '-Infinity',
      '1e+016',
      '5e-324',
      '9007199254740993.0',
      '1000000000000000.0',
      '10000000000000000.0',
      '1E5',
      '-',
      '0.30000000000000004',
      '0.3000000000000000444',
      '1.7976931348623157e+308',
      '2.2250738585072014e-308',
      '1.6730117797851563e+16',
      '1.6730117797851564e+16',
      '100.0',
      '100.50',
      '1.5e-5',
      '1.5e-005',
      '+1.0',
      '1.0.0',
      '1e+1e',
    ];
    const disagreements = texts.map(verdicts).filter((v) => v.read !== v.rendered);
    expect(disagreements).toEqual([]);
  });
});
