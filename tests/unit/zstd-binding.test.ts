import { describe, expect, it } from 'vitest';
import { zstd } from '../../src/core/store-format/codec/zstd-binding.js';
import { ZSTD_LEVELS } from '../../src/core/store-format/codec/record-codec.js';

/** Text with repeats at many distances: higher levels find more of them. */
function text(bytes: number): Buffer {
  const words = ['weight', 'bias', 'layer', 'norm', 'attention', 'query', 'key', 'value', 'mlp', 'proj'];
  let s = '';
  let x = 12345;
  while (s.length < bytes) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += `${words[x % words.length]}.${(x >>> 8) % 97}=${(x >>> 16) % 1000} `;
  }
  return Buffer.from(s.slice(0, bytes));
}

describe('zstd binding', () => {
  it('compresses at the level it is given (the package index.js dropped it: every frame was level 3)', async () => {
    const z = await zstd();
    const input = text(256 * 1024);
    const sizes = new Map<number, number>();
    for (const level of [1, 19]) {
      const frame = await z.compress(input, level);
      expect(Buffer.compare(await z.decompress(frame), input)).toBe(0);
      sizes.set(level, frame.length);
    }
    expect(sizes.get(19)!).toBeLessThan(sizes.get(1)!);
  });

  it('writes byte planes at level 1 and other bytes at level 3', () => {
    expect(ZSTD_LEVELS).toEqual({ planes: 1, bytes: 3 });
  });

  it('gives its errors a JS stack and the package prefix', async () => {
    const z = await zstd();
    const err = await z.decompress(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^zstd: /);
    expect((err as Error).stack).toContain('zstd-binding');
  });
});
