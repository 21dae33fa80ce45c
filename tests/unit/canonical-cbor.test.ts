import { describe, expect, it } from 'vitest';
import { decodeCanonical, encodeCanonical, type CborValue } from '../../src/core/store-format/canonical-cbor.js';
import { isCkvcError } from '../../src/core/errors.js';
import { hex, loadVector, unhex } from './vectors.js';

const vectors = loadVector('canonical-cbor.json');
const fromJson = (v: any): CborValue =>
  v && typeof v === 'object' && '$bytes' in v
    ? unhex(v.$bytes)
    : Array.isArray(v)
      ? v.map(fromJson)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)]))
        : v;

describe('canonical CBOR (spec/vectors/canonical-cbor.json)', () => {
  for (const v of vectors.valid) {
    it(`encodes ${v.name}`, () => {
      expect(hex(encodeCanonical(fromJson(v.value)))).toBe(v.cbor);
    });
    it(`decodes ${v.name} and accepts it as canonical`, () => {
      const back = decodeCanonical(unhex(v.cbor), v.name);
      expect(hex(encodeCanonical(back))).toBe(v.cbor);
    });
  }
  for (const v of vectors.invalid) {
    it(`refuses ${v.name}`, () => {
      let err: unknown;
      try {
        decodeCanonical(unhex(v.cbor), v.name);
      } catch (e) {
        err = e;
      }
      expect(isCkvcError(err, 'CKVC_CORRUPT_OBJECT')).toBe(true);
    });
  }
  it('encodes map keys independently of insertion order', () => {
    expect(hex(encodeCanonical({ b: 1, a: { y: 2, x: 3 } }))).toBe(hex(encodeCanonical({ a: { x: 3, y: 2 }, b: 1 })));
  });
  it('refuses values with no canonical form', () => {
    expect(() => encodeCanonical(new Date() as unknown as CborValue)).toThrow();
    expect(() => encodeCanonical({ a: undefined } as unknown as CborValue)).toThrow();
  });
  it('round-trips 64-bit integers that are safe in JS', () => {
    const big = Number.MAX_SAFE_INTEGER;
    expect(decodeCanonical(encodeCanonical({ t: big }), 'big')).toEqual({ t: big });
  });
});
