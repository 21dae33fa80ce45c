// Fuzz target 4 (memory): what a record declares must not decide what a reader allocates before the bytes
// prove it. decodeBody (src/core/store-format/codec/record-codec.ts) is given tiny stored bodies that declare up to 64 MiB,
// and stored bodies that would inflate far past their raw_length; it must refuse with CKVC_CORRUPT_OBJECT
// while the process's memory stays flat. Kept in its own file: vitest runs each file in its own process, so
// the peak-RSS probe (process.resourceUsage().maxRSS) sees only what these tests do.
import { compress, decompress } from '@mongodb-js/zstd';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../src/core/store-format/codec/record-codec.js';
import { withZstdContentSize } from '../../src/core/store-format/codec/zstd-frame.js';
import { MAX_OBJECT_BYTES } from '../../src/core/store-format/pack-format.js';
import { attemptAsync, fmtMiB, FuzzStats, fuzzTimeout, memSample, MiB, Rng, scaled } from './fuzz-helpers.js';

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const RLE = 1;
const RAW = 0;

function blockHeader(size: number, type: number, last: boolean): number[] {
  const v = (size << 3) | (type << 1) | (last ? 1 : 0);
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff];
}

function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/**
 * A hand-made zstd frame (RFC 8878) of RLE blocks: `blocks` blocks of `blockSize` copies of `value`.
 * fcs undefined: no Frame_Content_Size, 128 KiB window; otherwise a 4-byte FCS, single-segment or not.
 */
function rleFrame(o: {
  fcs?: number;
  single?: boolean;
  blocks: number;
  blockSize: number;
  value?: number;
}): Uint8Array {
  const out = [...ZSTD_MAGIC];
  if (o.fcs === undefined) out.push(0x00, 0x38);
  else if (o.single) out.push(0xa0, ...u32le(o.fcs));
  else out.push(0x80, 0x38, ...u32le(o.fcs));
  for (let i = 0; i < o.blocks; i++) out.push(...blockHeader(o.blockSize, RLE, i === o.blocks - 1), o.value ?? 7);
  return Uint8Array.from(out);
}

describe('fuzz: decodeBody memory', () => {
  it('the hand-made frames are valid zstd', async () => {
    expect(
      (await decompress(Buffer.from(rleFrame({ fcs: 1000, single: true, blocks: 1, blockSize: 1000 })))).length,
    ).toBe(1000);
    expect((await decompress(Buffer.from(rleFrame({ blocks: 8, blockSize: 128 * 1024 })))).length).toBe(MiB);
  });

  it(
    'a tiny stored body declaring up to 64 MiB is refused without allocating the declared size',
    async () => {
      const stats = new FuzzStats('decodeBody-declared-64MiB');
      const oneKiB = await compress(Buffer.alloc(1024, 3), 1);
      const makers: [string, (rng: Rng, raw: number) => { codec: number; stored: Uint8Array }][] = [
        ['raw record, 16 bytes stored', (rng) => ({ codec: 0, stored: rng.bytes(16) })],
        [
          'frame header only',
          (rng, raw) => ({
            codec: rng.range(1, 4),
            stored: Uint8Array.from([...ZSTD_MAGIC, 0xa0, ...u32le(raw), ...rng.bytes(rng.int(17))]),
          }),
        ],
        [
          'single-segment frame, one small RLE block',
          (rng, raw) => ({
            codec: rng.range(1, 4),
            stored: rleFrame({ fcs: raw, single: true, blocks: 1, blockSize: 100 }),
          }),
        ],
        [
          'frame of 4 RLE blocks of 128 KiB',
          (rng, raw) => ({
            codec: rng.range(1, 4),
            stored: rleFrame({ fcs: raw, single: false, blocks: 4, blockSize: 128 * 1024 }),
          }),
        ],
        [
          'raw block claiming 2 MiB, 8 bytes present',
          (rng, raw) => ({
            codec: rng.range(1, 4),
            stored: Uint8Array.from([
              ...ZSTD_MAGIC,
              0xa0,
              ...u32le(raw),
              ...blockHeader((1 << 21) - 1, RAW, true),
              ...rng.bytes(8),
            ]),
          }),
        ],
        [
          'real 1 KiB frame patched to declare the size',
          (rng, raw) => ({ codec: rng.range(1, 4), stored: withZstdContentSize(oneKiB, raw) }),
        ],
      ];
      const before = memSample();
      const n = scaled(300);
      let slowest = 0;
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('declared-64MiB', i);
        const rawLength = rng.pick([
          MAX_OBJECT_BYTES,
          MAX_OBJECT_BYTES,
          MAX_OBJECT_BYTES - 1,
          32 * MiB,
          rng.range(MiB, MAX_OBJECT_BYTES),
        ]);
        const [name, make] = makers[i % makers.length]!;
        const { codec, stored } = make(rng, rawLength);
        const ops = [`${name}, codec ${codec}, raw_length ${rawLength}, ${stored.length} bytes stored`];
        const o = await attemptAsync(() => decodeBody(codec, stored, rawLength, 'fuzz'));
        slowest = Math.max(slowest, o.ms);
        if (stats.check(i, o, ['CKVC_CORRUPT_OBJECT'], ops, stored))
          stats.fail(i, `accepted ${o.value.length} bytes from ${stored.length} stored`, ops, stored);
      }
      const after = memSample();
      const grew = {
        arrayBuffers: after.arrayBuffers - before.arrayBuffers,
        rss: after.rss - before.rss,
        peak: after.maxRss - before.maxRss,
      };
      console.log(
        `decodeBody declared-64MiB: ${n} refusals, slowest ${slowest.toFixed(1)} ms; growth: arrayBuffers ${fmtMiB(grew.arrayBuffers)}, rss ${fmtMiB(grew.rss)}, peak rss ${fmtMiB(grew.peak)}`,
      );
      expect(stats.report()).toEqual([]);
      expect(grew.arrayBuffers).toBeLessThan(16 * MiB);
      expect(grew.rss).toBeLessThan(64 * MiB);
      expect(grew.peak).toBeLessThan(64 * MiB);
    },
    fuzzTimeout(),
  );

  // spec/FORMAT.md §4.3 and CHUNKING.md "zstd frames": a stored body is exactly one frame that declares raw_length,
  // "so a small record cannot inflate to an unbounded size". decodeBody checks only the first frame's header and
  // then hands the whole body to decompress(), which also decodes any frames that follow: 8 KiB of stored bytes
  // below make 256 MiB before the length check refuses them (a 64 MiB record could ask for 2 TiB).
  it('a stored body with a trailing frame is refused before it inflates past raw_length', async () => {
    const first = rleFrame({ fcs: 1000, single: true, blocks: 1, blockSize: 1000 });
    const trailing = rleFrame({ blocks: 2048, blockSize: 128 * 1024 }); // 256 MiB of RLE, 8 KiB stored
    const stored = Uint8Array.from([...first, ...trailing]);
    const before = memSample();
    const o = await attemptAsync(() => decodeBody(1, stored, 1000, 'fuzz'));
    const after = memSample();
    const peak = after.maxRss - before.maxRss;
    console.log(
      `decodeBody trailing-frame bomb (${stored.length} bytes stored, raw_length 1000): ${o.kind}${o.kind === 'refused' ? ` ${o.code}` : ''} in ${o.ms.toFixed(0)} ms, peak rss grew ${fmtMiB(peak)}`,
    );
    expect(o.kind === 'refused' ? o.code : o.kind).toBe('CKVC_CORRUPT_OBJECT');
    expect(peak, 'peak RSS growth while refusing an 8 KiB record').toBeLessThan(64 * MiB);
  });
});
