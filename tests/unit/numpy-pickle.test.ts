// The NumPy-in-pickle reader (spec/ARCHIVES.md §4) on pickles Python wrote (tests/fixtures/numpy_state_*.pkl, made
// by tests/fixtures/make-numpy-pickles.py; MANIFEST.json lists the arrays and the sha256 of their bytes), and
// seeded fuzzing: a damaged or hostile pickle is only ever "not understood", never a crash or a wrong range.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNumpyPickle } from '../../src/core/input-formats/numpy-pickle.js';
import { PickleNotUnderstood } from '../../src/core/input-formats/pickle-values.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { prngUnit } from '../helpers/data.js';

type Arrays = Record<string, [string, number[], string]>;
const MANIFEST = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'MANIFEST.json'), 'utf8')) as Record<
  string,
  { arrays?: Arrays }
>;
const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(FIXTURES, f)));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('readNumpyPickle on pickles written by Python', () => {
  for (const f of ['numpy_state_p3.pkl', 'numpy_state_p4.pkl', 'numpy_state_p5.pkl', 'numpy_state_np1_p3.pkl']) {
    it(`${f}: every array, named by keys and indices, with its exact bytes`, () => {
      const b = read(f);
      const found = readNumpyPickle(b, 'state');
      const got = Object.fromEntries(found.map((a) => [a.name, [a.dtype, a.shape, sha(b.subarray(a.start, a.end))]]));
      expect(got).toEqual(MANIFEST[f]!.arrays);
      expect(found.find((a) => a.name === 'fortran')!.order).toBe('F');
      expect(found.filter((a) => a.order).length).toBe(1);
      found.slice(1).forEach((a, i) => {
        expect(a.start).toBeGreaterThanOrEqual(found[i]!.end);
      });
    });
  }

  it('protocol 2 keeps array bytes as text-encoded strings: nothing to cut', () => {
    expect(readNumpyPickle(read('numpy_state_p2.pkl'), 'state')).toEqual([]);
  });

  it('a truncated pickle is not understood', () => {
    expect(() => readNumpyPickle(read('numpy_state_cut.pkl'), 'state')).toThrow(PickleNotUnderstood);
  });

  it('hostile pickles are not understood, in bounded work', () => {
    const proto = [0x80, 0x04];
    // (The cap on created objects is the shared machine's, tested with torch's data.pkl reader.)
    // A chain of diamonds: each list holds the previous one twice through the memo (2^40 paths).
    const chain: number[] = [...proto, 0x5d, 0x94];
    for (let i = 0; i < 40; i++) chain.push(0x68, i, 0x68, i, 0x86, 0x94); // BINGET i, BINGET i, TUPLE2, MEMOIZE
    chain.push(0x2e);
    expect(() => readNumpyPickle(new Uint8Array(chain), 's')).toThrow(PickleNotUnderstood);
  });
});

describe('seeded fuzz of readNumpyPickle', () => {
  it('damaged pickles give either "not understood" or arrays inside the pickle, in order, sized by their shape', () => {
    const base = read('numpy_state_p4.pkl');
    const next = prngUnit(42);
    let understood = 0;
    for (let round = 0; round < 400; round++) {
      const b = base.slice(0, round % 5 === 0 ? Math.floor(next() * base.length) : base.length);
      for (let m = 0; m < 1 + (round % 4); m++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
      let found: ReturnType<typeof readNumpyPickle>;
      try {
        found = readNumpyPickle(b, 's');
      } catch (e) {
        expect(e).toBeInstanceOf(PickleNotUnderstood);
        continue;
      }
      understood++;
      let end = 0;
      for (const a of found) {
        expect(a.start).toBeGreaterThanOrEqual(end);
        expect(a.end).toBeLessThanOrEqual(b.length);
        end = a.end;
      }
    }
    expect(understood).toBeGreaterThan(0);
  });
});
