import { compress, decompress } from '@mongodb-js/zstd';
import { describe, expect, it } from 'vitest';
import { withZstdContentSize, zstdFrameContentSize } from '../../src/core/store-format/codec/zstd-frame.js';
import { isCkvcError } from '../../src/core/errors.js';

const MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function frame(...rest: number[]): Uint8Array {
  return Uint8Array.from([...MAGIC, ...rest]);
}

function expectHeaderError(f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(isCkvcError(err, 'CKVC_CORRUPT_OBJECT'), String(err)).toBe(true);
  expect((err as { data: Record<string, unknown> }).data.reason).toBe('zstd-header');
}

describe('zstdFrameContentSize', () => {
  const SIZES = [0, 1, 255, 256, 65535, 65536 + 256, 1 << 20];

  async function realFrame(size: number): Promise<{ input: Buffer; z: Buffer }> {
    const input = Buffer.alloc(size);
    for (let i = 0; i < size; i++) input[i] = (i * 7 + (i >>> 9)) & 0xff;
    return { input, z: await compress(input, 3) };
  }

  it('parses real frames from @mongodb-js/zstd (which leaves the size out of non-empty frames)', async () => {
    for (const size of SIZES) {
      const { z } = await realFrame(size);
      const declared = zstdFrameContentSize(new Uint8Array(z.buffer, z.byteOffset, z.length));
      // compress() streams: only the empty frame is single-segment with a 1-byte size.
      expect(declared, `size ${size}`).toBe(size === 0 ? 0 : undefined);
    }
  });

  it('withZstdContentSize makes real frames declare their size, and libzstd still decodes them', async () => {
    for (const size of SIZES) {
      const { input, z } = await realFrame(size);
      const fixed = withZstdContentSize(z, size);
      expect(zstdFrameContentSize(fixed), `size ${size}`).toBe(size);
      if (size === 0) expect(fixed).toBe(z); // already declared
      // From a subarray view that does not start at offset 0 of its buffer.
      const shifted = new Uint8Array(fixed.length + 3);
      shifted.set(fixed, 3);
      expect(zstdFrameContentSize(shifted.subarray(3))).toBe(size);
      const back = await decompress(Buffer.from(fixed));
      expect(back.equals(input)).toBe(true);
    }
  });

  it('withZstdContentSize picks the 2-, 4- or 8-byte field by size', () => {
    const bare = frame(0x04, 0x58, 0xaa, 0xbb); // checksum flag, Window_Descriptor, then (pretend) block bytes
    const cases: [number, number, number[]][] = [
      [0, 0x84, [0, 0, 0, 0]],
      [255, 0x84, [0xff, 0, 0, 0]],
      [256, 0x44, [0, 0]],
      [65791, 0x44, [0xff, 0xff]],
      [65792, 0x84, [0x00, 0x01, 0x01, 0x00]],
      [2 ** 32 - 1, 0x84, [0xff, 0xff, 0xff, 0xff]],
      [2 ** 32 + 5, 0xc4, [5, 0, 0, 0, 1, 0, 0, 0]],
      [Number.MAX_SAFE_INTEGER, 0xc4, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]],
    ];
    for (const [size, fhd, fcs] of cases) {
      const out = withZstdContentSize(bare, size);
      expect(Array.from(out), `size ${size}`).toEqual([...MAGIC, fhd, 0x58, ...fcs, 0xaa, 0xbb]);
      expect(zstdFrameContentSize(out)).toBe(size);
    }
    // After a Dictionary_ID field.
    expect(Array.from(withZstdContentSize(frame(0x02, 0x58, 1, 2, 9), 300))).toEqual([
      ...MAGIC,
      0x42,
      0x58,
      1,
      2,
      44,
      0,
      9,
    ]);
    expect(bare.length).toBe(8); // the input is not modified
  });

  it('withZstdContentSize refuses a conflicting size, a bad size and a bad header', () => {
    const internal = (f: () => unknown): void => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isCkvcError(err, 'CKVC_INTERNAL'), String(err)).toBe(true);
    };
    internal(() => withZstdContentSize(frame(0x20, 7), 8));
    internal(() => withZstdContentSize(frame(0x00, 0x58), -1));
    internal(() => withZstdContentSize(frame(0x00, 0x58), 1.5));
    internal(() => withZstdContentSize(frame(0x00, 0x58), 2 ** 53));
    expect(Array.from(withZstdContentSize(frame(0x20, 7), 7))).toEqual([...MAGIC, 0x20, 7]);
    expectHeaderError(() => withZstdContentSize(frame(0x00), 5));
    expectHeaderError(() => withZstdContentSize(Uint8Array.from([1, 2, 3, 4, 0, 0]), 5));
  });

  it('a frame that declares less than it holds is refused by the decompressor too', async () => {
    const { z } = await realFrame(1 << 20);
    await expect(decompress(Buffer.from(withZstdContentSize(z, 1000)))).rejects.toThrow();
  });

  it('a frame that declares more than it holds either fails or decodes short (so readers also check the output length)', async () => {
    for (const size of [5000, 1 << 20]) {
      const { z } = await realFrame(size);
      const outcome = await decompress(Buffer.from(withZstdContentSize(z, size + 1))).then(
        (out) => out.length,
        () => 'error',
      );
      expect(outcome === 'error' || outcome === size, `size ${size}: ${outcome}`).toBe(true);
    }
  });

  it('decodes every Frame_Content_Size form', () => {
    // Single segment, FCS flag 0: 1-byte size.
    expect(zstdFrameContentSize(frame(0x20, 200))).toBe(200);
    // Not single segment, FCS flag 0: absent (Window_Descriptor follows).
    expect(zstdFrameContentSize(frame(0x00, 0x58))).toBeUndefined();
    // FCS flag 1: 2 bytes + 256.
    expect(zstdFrameContentSize(frame(0x60, 0x00, 0x00))).toBe(256);
    expect(zstdFrameContentSize(frame(0x60, 0xff, 0xff))).toBe(65535 + 256);
    expect(zstdFrameContentSize(frame(0x40, 0x58, 0x34, 0x12))).toBe(0x1234 + 256);
    // FCS flag 2: 4 bytes.
    expect(zstdFrameContentSize(frame(0xa0, 0x78, 0x56, 0x34, 0x12))).toBe(0x12345678);
    expect(zstdFrameContentSize(frame(0xa0, 0xff, 0xff, 0xff, 0xff))).toBe(0xffffffff);
    // FCS flag 3: 8 bytes.
    expect(zstdFrameContentSize(frame(0xe0, 1, 0, 0, 0, 2, 0, 0, 0))).toBe(2 * 2 ** 32 + 1);
    expect(zstdFrameContentSize(frame(0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0))).toBe(
      Number.MAX_SAFE_INTEGER,
    );
    expect(zstdFrameContentSize(frame(0xe0, 0, 0, 0, 0, 0, 0, 0, 0x80))).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    // The checksum flag does not move anything.
    expect(zstdFrameContentSize(frame(0x24, 9))).toBe(9);
  });

  it('skips the Window_Descriptor and Dictionary_ID fields', () => {
    // Dictionary_ID flag 1/2/3 -> 1/2/4 bytes, single segment, 1-byte FCS.
    expect(zstdFrameContentSize(frame(0x21, 0xaa, 42))).toBe(42);
    expect(zstdFrameContentSize(frame(0x22, 0xaa, 0xbb, 42))).toBe(42);
    expect(zstdFrameContentSize(frame(0x23, 0xaa, 0xbb, 0xcc, 0xdd, 42))).toBe(42);
    // Window_Descriptor + 4-byte Dictionary_ID + 4-byte FCS.
    expect(zstdFrameContentSize(frame(0x83, 0x58, 1, 2, 3, 4, 0x10, 0x27, 0, 0))).toBe(10000);
    // Window_Descriptor + 2-byte Dictionary_ID + 2-byte FCS.
    expect(zstdFrameContentSize(frame(0x42, 0x58, 1, 2, 0x01, 0x00))).toBe(257);
    // Window_Descriptor + 1-byte Dictionary_ID, no FCS.
    expect(zstdFrameContentSize(frame(0x01, 0x58, 7))).toBeUndefined();
  });

  it('refuses a wrong magic number', () => {
    expectHeaderError(() => zstdFrameContentSize(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfe, 0x20, 0])));
    expectHeaderError(() => zstdFrameContentSize(Uint8Array.from([0x50, 0x2a, 0x4d, 0x18, 0x20, 0]))); // skippable frame
    expectHeaderError(() => zstdFrameContentSize(new TextEncoder().encode('not a zstd frame')));
  });

  it('refuses a truncated header or a set reserved bit', () => {
    expectHeaderError(() => zstdFrameContentSize(new Uint8Array(0)));
    expectHeaderError(() => zstdFrameContentSize(Uint8Array.from(MAGIC)));
    expectHeaderError(() => zstdFrameContentSize(frame(0x20)));
    expectHeaderError(() => zstdFrameContentSize(frame(0x00)));
    expectHeaderError(() => zstdFrameContentSize(frame(0x60, 0x01)));
    expectHeaderError(() => zstdFrameContentSize(frame(0xa0, 1, 2, 3)));
    expectHeaderError(() => zstdFrameContentSize(frame(0xe0, 1, 2, 3, 4, 5, 6, 7)));
    expectHeaderError(() => zstdFrameContentSize(frame(0x83, 0x58, 1, 2, 3, 4, 0x10, 0x27, 0)));
    expectHeaderError(() => zstdFrameContentSize(frame(0x23, 1, 2, 3)));
    expectHeaderError(() => zstdFrameContentSize(frame(0x28, 5)));
  });
});
