// The entropy estimates that choose how a byte plane is stored: the same values as the textbook formula on the same
// samples, whatever the plane's length, including those whose samples fill the c·log2(c) table to its end.
import { describe, expect, it } from 'vitest';
import { sampledEntropies } from '../../src/core/store-format/codec/plane-entropy.js';

/** -Σ p·log2(p) over the samples sampledEntropies takes (every step-th byte), computed the plain way. */
function reference(plane: Uint8Array, other?: Uint8Array): [number, number] {
  const step = Math.max(1, Math.floor(plane.length / 4096));
  const entropy = (value: (i: number) => number): number => {
    const counts = new Map<number, number>();
    let n = 0;
    for (let i = 0; i < plane.length; i += step, n++) counts.set(value(i), (counts.get(value(i)) ?? 0) + 1);
    let h = 0;
    for (const c of counts.values()) h -= (c / n) * Math.log2(c / n);
    return h;
  };
  return [entropy((i) => plane[i]!), other ? entropy((i) => plane[i]! ^ other[i]!) : Infinity];
}

/** Deterministic bytes: a few distinct values when `spread` is small, noise when it is 256. */
function bytes(length: number, seed: number, spread: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) % spread;
  }
  return out;
}

describe('sampledEntropies', () => {
  const lengths = [0, 1, 3, 4, 5, 63, 4095, 4096, 8191, 8192, 12287, 65536, 65537, 262143];
  for (const length of lengths) {
    it(`matches -Σ p·log2(p) on the same samples, ${length} bytes`, () => {
      for (const spread of [1, 2, 7, 256]) {
        const plane = bytes(length, length + spread, spread);
        const other = bytes(length, length * 3 + spread, spread);
        const [plain, xored] = sampledEntropies(plane, other);
        const [refPlain, refXored] = reference(plane, other);
        expect(plain).toBeCloseTo(refPlain, 12);
        expect(xored).toBeCloseTo(refXored, 12);
        expect(sampledEntropies(plane)[0]).toBe(plain);
        expect(sampledEntropies(plane)[1]).toBe(Infinity);
      }
    });
  }

  it('gives 0 for a constant plane at the most samples a plane can give (8,191: the table’s last counts)', () => {
    for (const length of [8191, 4096 * 2 + 4095]) {
      const [plain, xored] = sampledEntropies(new Uint8Array(length).fill(9), new Uint8Array(length).fill(9));
      expect(plain).toBe(0);
      expect(xored).toBe(0);
    }
  });

  it('gives 8 bits for a plane holding every byte value equally often, and 1 for two values', () => {
    const all = Uint8Array.from({ length: 4096 }, (_, i) => i % 256);
    expect(sampledEntropies(all)[0]).toBeCloseTo(8, 12);
    const two = Uint8Array.from({ length: 4096 }, (_, i) => (i % 2) * 200);
    expect(sampledEntropies(two, new Uint8Array(4096))).toEqual([1, 1]);
  });
});
