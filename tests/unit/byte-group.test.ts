import { describe, expect, it } from 'vitest';
import { groupBytes, ungroupBytes } from '../../src/core/store-format/codec/byte-group.js';
import { isCkvcError } from '../../src/core/errors.js';
import { loadVector } from './vectors.js';

interface ByteGroupVectors {
  cases: { width: number; input: string; grouped: string }[];
}

const vectors = loadVector<ByteGroupVectors>('byte-group.json');

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** The layout rule of spec/CHUNKING.md, written the slow obvious way. */
function reference(src: Uint8Array, width: number): Uint8Array {
  const n = Math.floor(src.length / width);
  const out: number[] = [];
  for (let j = 0; j < width; j++) for (let i = 0; i < n; i++) out.push(src[i * width + j]!);
  for (let k = n * width; k < src.length; k++) out.push(src[k]!);
  return Uint8Array.from(out);
}

function pseudoRandom(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 24;
  }
  return out;
}

describe('groupBytes / ungroupBytes', () => {
  it('matches the spec vectors', () => {
    expect(vectors.cases.length).toBeGreaterThanOrEqual(3);
    for (const c of vectors.cases) {
      expect(hex(groupBytes(unhex(c.input), c.width))).toBe(c.grouped);
      expect(hex(ungroupBytes(unhex(c.grouped), c.width))).toBe(c.input);
    }
  });

  it('has the documented layout on a known small example', () => {
    // Two 4-byte elements and a 3-byte tail.
    const src = Uint8Array.from([0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xb2, 0xb3, 1, 2, 3]);
    expect(Array.from(groupBytes(src, 4))).toEqual([0xa0, 0xb0, 0xa1, 0xb1, 0xa2, 0xb2, 0xa3, 0xb3, 1, 2, 3]);
    // Width 2: five elements and a 1-byte tail.
    expect(Array.from(groupBytes(src, 2))).toEqual([0xa0, 0xa2, 0xb0, 0xb2, 1, 0xa1, 0xa3, 0xb1, 0xb3, 2, 3]);
  });

  it('returns src itself for width 1', () => {
    const src = pseudoRandom(10, 3);
    expect(groupBytes(src, 1)).toBe(src);
    expect(ungroupBytes(src, 1)).toBe(src);
  });

  it('round-trips widths 1..8 and 16 for lengths 0..33, matching the reference layout', () => {
    for (const width of [1, 2, 3, 4, 5, 6, 7, 8, 16]) {
      for (let len = 0; len <= 33; len++) {
        const src = pseudoRandom(len, len * 31 + width);
        const g = groupBytes(src, width);
        expect(g.length).toBe(len);
        expect(hex(g), `width ${width} length ${len}`).toBe(hex(reference(src, width)));
        expect(hex(ungroupBytes(g, width))).toBe(hex(src));
      }
    }
  });

  it('round-trips large buffers and subarray views at odd offsets, without touching the input', () => {
    const backing = pseudoRandom((1 << 20) + 64, 99);
    for (const width of [2, 4, 8, 3]) {
      for (const [off, len] of [
        [0, 1 << 20],
        [1, (1 << 20) + 5],
        [3, 262_147],
      ] as const) {
        const src = backing.subarray(off, off + len);
        const copy = src.slice();
        const g = groupBytes(src, width);
        expect(g).not.toBe(src);
        expect(Buffer.from(src).equals(Buffer.from(copy))).toBe(true);
        if (len < 300_000) expect(Buffer.from(g).equals(Buffer.from(reference(src, width)))).toBe(true);
        const back = ungroupBytes(g, width);
        expect(Buffer.from(back).equals(Buffer.from(src))).toBe(true);
      }
    }
  });

  it('groups float32 exponent bytes together', () => {
    const f = new Float32Array(1024).map((_, i) => 1 + i / 1024);
    const bytes = new Uint8Array(f.buffer);
    const g = groupBytes(bytes, 4);
    // Little-endian float32 in [1, 2): byte 3 is always 0x3f; it lands as one run at the end.
    expect(g.subarray(3 * 1024).every((b) => b === 0x3f)).toBe(true);
  });

  it('rejects a width that is not a positive integer', () => {
    for (const w of [0, -1, 1.5, Number.NaN]) {
      for (const f of [groupBytes, ungroupBytes]) {
        let err: unknown;
        try {
          f(new Uint8Array(4), w);
        } catch (e) {
          err = e;
        }
        expect(isCkvcError(err, 'CKVC_BAD_ARGUMENT')).toBe(true);
      }
    }
  });
});
