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
  it('orders and encodes keys by their bytes however many distinct keys were seen before (encoded keys are cached, boundedly)', () => {
    // A reference encoding of one text key, written out here: head (major type 3) and UTF-8 bytes.
    const keyBytes = (k: string) => {
      const b = Buffer.from(k, 'utf8');
      const n = b.length;
      const h = n < 24 ? [0x60 | n] : n < 256 ? [0x78, n] : [0x79, n >> 8, n & 0xff];
      return Buffer.concat([Buffer.from(h), b]);
    };
    // More keys than the cache holds, long ones it never holds, and non-ASCII ones, over several objects.
    const keys = Array.from({ length: 3000 }, (_, i) =>
      i % 7 === 0 ? `k${i}-`.repeat(20) : i % 5 === 0 ? `é${i}` : `k${i}`,
    );
    for (let start = 0; start < keys.length; start += 500) {
      const obj = Object.fromEntries(keys.slice(start, start + 500).map((k, i) => [k, i]));
      const bytes = Buffer.from(encodeCanonical(obj));
      const sorted = Object.keys(obj).sort((a, b) => Buffer.compare(keyBytes(a), keyBytes(b)));
      const expected = Buffer.concat([
        Buffer.from([0xb9, 0x01, 0xf4]), // map of 500
        ...sorted.map((k) => Buffer.concat([keyBytes(k), Buffer.from(encodeCanonical(obj[k]!))])),
      ]);
      expect(bytes.equals(expected)).toBe(true);
      expect(decodeCanonical(bytes, 'many keys')).toEqual(obj);
    }
  });
  it('encodes text the same on both sides of the short-ASCII path, and refuses over-long heads of byte strings', () => {
    // Text up to 64 characters that is all ASCII is written character by character, the rest through
    // TextEncoder. (A byte string's contents always match when read back: only its head can differ.)
    const texts = [
      'a'.repeat(64),
      'a'.repeat(65),
      `${'a'.repeat(63)}é`,
      'é'.repeat(40),
      '\u007f',
      '\u0080',
      'x\ud800y',
    ];
    for (const t of texts) {
      const utf8 = Buffer.from(t, 'utf8');
      const h = utf8.length < 24 ? [0x60 | utf8.length] : [0x78, utf8.length];
      expect(hex(encodeCanonical(t))).toBe(hex(Buffer.concat([Buffer.from(h), utf8])));
      expect(decodeCanonical(encodeCanonical({ t }), t)).toEqual({ t: utf8.toString('utf8') }); // a lone surrogate is U+FFFD
    }
    for (const n of [64, 65, 1000]) {
      const bytes = Buffer.from(encodeCanonical({ b: new Uint8Array(n).fill(7) }));
      expect(Buffer.from((decodeCanonical(bytes, 'bytes') as { b: Uint8Array }).b).equals(Buffer.alloc(n, 7))).toBe(
        true,
      );
      // One byte changed, at the end of the byte string: still valid CBOR, another value, so its bytes pass.
      const other = Buffer.from(bytes);
      other[other.length - 1] = 8;
      expect((decodeCanonical(other, 'other') as { b: Uint8Array }).b[n - 1]).toBe(8);
      // The same bytes with a longer head than needed: refused, whichever way the byte string is compared.
      const long = Buffer.concat([
        bytes.subarray(0, 3),
        Buffer.from([0x5a]),
        Buffer.alloc(4),
        bytes.subarray(3 + (n < 256 ? 2 : 3)),
      ]);
      long.writeUInt32BE(n, 4);
      expect(() => decodeCanonical(long, 'long head')).toThrow(/not in canonical form/);
    }
  });
  it('round-trips 64-bit integers that are safe in JS', () => {
    const big = Number.MAX_SAFE_INTEGER;
    expect(decodeCanonical(encodeCanonical({ t: big }), 'big')).toEqual({ t: big });
  });
});
