import { describe, expect, it } from 'vitest';
import { groupBytes, ungroupBytes } from '../../src/core/store-format/codec/byte-group.js';
import { xorInto } from '../../src/core/store-format/codec/plane-codec.js';
import { simdTranspose, simdXor } from '../../src/core/store-format/codec/simd-kernels.js';
import { randomBytes } from '../helpers/data.js';

/** The layout rule of spec/CHUNKING.md, written the slow obvious way. */
function grouped(src: Uint8Array, width: number): Buffer {
  const n = Math.floor(src.length / width);
  const out = Buffer.alloc(src.length);
  for (let j = 0; j < width; j++) for (let i = 0; i < n; i++) out[j * n + i] = src[i * width + j]!;
  out.set(src.subarray(n * width), n * width);
  return out;
}

describe('SIMD kernels (WebAssembly)', () => {
  // Every length here is a whole number of 16-element steps within one 1 MiB region: the kernels must run
  // (Node 20 has WebAssembly SIMD), so these compare the kernels themselves with the layout rule.
  const lengths = (width: number) => [4096, 4096 + 16 * width, 65_536, 262_144 - 16 * width, 262_144, 1 << 20];

  it('group and un-group 2- and 4-byte elements exactly as the layout rule says', () => {
    for (const width of [2, 4]) {
      for (const len of lengths(width)) {
        const src = randomBytes(len + width, len);
        const out = Buffer.alloc(len);
        expect(simdTranspose('group', src, width, out), `width ${width} length ${len}`).toBe(true);
        expect(out.equals(grouped(src, width)), `group, width ${width} length ${len}`).toBe(true);
        const back = Buffer.alloc(len);
        expect(simdTranspose('ungroup', out, width, back)).toBe(true);
        expect(back.equals(src), `ungroup, width ${width} length ${len}`).toBe(true);
      }
    }
  });

  it('leave what they do not apply to to the JS loops, which give the same bytes', () => {
    const cases: [number, number][] = [
      [8, 262_144], // width 8 has no kernel
      [3, 262_143],
      [4, 4096 + 4], // not a whole number of 16-element steps
      [2, 4096 + 2],
      [4, (1 << 20) + 64], // larger than a region
      [4, 1024], // small inputs stay with the JS loops
    ];
    for (const [width, len] of cases) {
      const src = randomBytes(len * 7 + width, len);
      const out = Buffer.alloc(len, 0xee);
      expect(simdTranspose('group', src, width, out), `width ${width} length ${len}`).toBe(false);
      expect(out.every((b) => b === 0xee)).toBe(true);
      const g = groupBytes(src, width);
      expect(Buffer.from(g).equals(grouped(src, width)), `width ${width} length ${len}`).toBe(true);
      expect(Buffer.from(ungroupBytes(g, width)).equals(src)).toBe(true);
    }
  });

  it('XOR whole 16-byte steps, leave the tail to the caller, and allow the output to be an input', () => {
    for (const len of [4096, 4096 + 15, 65_536, 65_536 + 7, 1 << 20, (1 << 20) + 33]) {
      const a = randomBytes(len, len);
      const b = randomBytes(len + 1, len);
      const want = Buffer.alloc(len);
      for (let i = 0; i < len; i++) want[i] = a[i]! ^ b[i]!;
      const out = Buffer.alloc(len);
      const done = simdXor(out, a, b);
      expect(done).toBe(len > 1 << 20 ? 0 : len - (len % 16));
      expect(out.subarray(0, done).equals(want.subarray(0, done))).toBe(true);
      expect(Buffer.from(xorInto(Buffer.alloc(len), a, b)).equals(want), `length ${len}`).toBe(true);
      const inPlace = Buffer.from(a);
      expect(Buffer.from(xorInto(inPlace, inPlace, b)).equals(want)).toBe(true);
      const intoB = Buffer.from(b);
      expect(Buffer.from(xorInto(intoB, a, intoB)).equals(want)).toBe(true);
    }
    expect(simdXor(Buffer.alloc(1024), Buffer.alloc(1024), Buffer.alloc(1024))).toBe(0);
  });
});
