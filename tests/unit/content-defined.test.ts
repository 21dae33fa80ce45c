import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CDC, nextCdcChunkLength, type CdcParams } from '../../src/core/chunking/content-defined.js';
import { GEAR_TABLE } from '../../src/core/chunking/gear-table.js';
import { isCkvcError } from '../../src/core/errors.js';
import { loadVector } from './vectors.js';

interface CdcVectors {
  gear_table: { first8: string[]; sha256_le: string };
  inputs: {
    xorshift32: { seed: string; length: number; first16: string; sha256: string };
    zeros: { length: number };
  };
  cases: { input: 'xorshift32' | 'zeros'; params: CdcParams; chunk_lengths: number[] }[];
}

const vectors = loadVector<CdcVectors>('cdc.json');

/** The xorshift32 (13, 17, 5) byte stream of spec/CHUNKING.md: each step's state appended little-endian. */
function xorshiftBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let p = 0; p < length; p += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[p] = x & 0xff;
    if (p + 1 < length) out[p + 1] = (x >>> 8) & 0xff;
    if (p + 2 < length) out[p + 2] = (x >>> 16) & 0xff;
    if (p + 3 < length) out[p + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

function chunkAll(data: Uint8Array, params: CdcParams = DEFAULT_CDC): number[] {
  const lengths: number[] = [];
  for (let pos = 0; pos < data.length; ) {
    const n = nextCdcChunkLength(data, pos, data.length, params);
    lengths.push(n);
    pos += n;
  }
  return lengths;
}

/** Chunk as a streaming reader would: hold a window of the input, refill whenever fewer than `max` bytes remain before EOF. */
function chunkStreaming(data: Uint8Array, windowSizes: () => number, params: CdcParams = DEFAULT_CDC): number[] {
  const lengths: number[] = [];
  let winStart = 0;
  let window = new Uint8Array(0);
  let pos = 0; // offset in `data` of the next chunk
  while (pos < data.length) {
    let avail = winStart + window.length - pos;
    if (avail < params.max && winStart + window.length < data.length) {
      const size = Math.max(params.max, windowSizes());
      window = data.slice(pos, Math.min(data.length, pos + size)); // a fresh copy: nothing past it is reachable
      winStart = pos;
      avail = window.length;
    }
    const n = nextCdcChunkLength(window, pos - winStart, pos - winStart + avail, params);
    lengths.push(n);
    pos += n;
  }
  return lengths;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('gear table', () => {
  it('is SplitMix64(seed 0) high words, as in spec/vectors/cdc.json', () => {
    expect(GEAR_TABLE).toBeInstanceOf(Uint32Array);
    expect(GEAR_TABLE.length).toBe(256);
    expect(Array.from(GEAR_TABLE.subarray(0, 8), (g) => g.toString(16).padStart(8, '0'))).toEqual(
      vectors.gear_table.first8,
    );
    const le = new Uint8Array(1024);
    GEAR_TABLE.forEach((g, i) => {
      new DataView(le.buffer).setUint32(i * 4, g, true);
    });
    expect(sha(le)).toBe(vectors.gear_table.sha256_le);
    expect(new Set(GEAR_TABLE).size).toBe(256);
  });
});

describe('nextCdcChunkLength', () => {
  const random16 = xorshiftBytes(0xc0ffee11, 16 << 20);

  it('matches the spec vectors', () => {
    const v = vectors.inputs.xorshift32;
    const xs = xorshiftBytes(Number(v.seed), v.length);
    expect(Buffer.from(xs.subarray(0, 16)).toString('hex')).toBe(v.first16);
    expect(sha(xs)).toBe(v.sha256);
    const inputs = { xorshift32: xs, zeros: new Uint8Array(vectors.inputs.zeros.length) };
    expect(vectors.cases.length).toBeGreaterThanOrEqual(3);
    for (const c of vectors.cases) {
      expect(chunkAll(inputs[c.input], c.params), `${c.input} ${JSON.stringify(c.params)}`).toEqual(c.chunk_lengths);
    }
  });

  it('is deterministic and keeps every chunk but the last within [min, max]', () => {
    const a = chunkAll(random16);
    expect(chunkAll(random16)).toEqual(a);
    expect(a.reduce((s, n) => s + n, 0)).toBe(random16.length);
    for (const n of a.slice(0, -1)) {
      expect(n).toBeGreaterThanOrEqual(DEFAULT_CDC.min);
      expect(n).toBeLessThanOrEqual(DEFAULT_CDC.max);
    }
    const last = a[a.length - 1]!;
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThanOrEqual(DEFAULT_CDC.max);
    // Normalised chunking keeps the mean near avg (random data: roughly 1.1 x avg).
    const mean = random16.length / a.length;
    expect(mean).toBeGreaterThan(DEFAULT_CDC.avg * 0.8);
    expect(mean).toBeLessThan(DEFAULT_CDC.avg * 1.5);
  });

  it('re-synchronises after an insertion near the start', () => {
    const inserted = new Uint8Array(random16.length + 17);
    inserted.set(random16.subarray(0, 1000));
    inserted.set(xorshiftBytes(7, 17), 1000);
    inserted.set(random16.subarray(1000), 1017);
    const hashes = (data: Uint8Array): string[] => {
      const out: string[] = [];
      let pos = 0;
      for (const n of chunkAll(data)) {
        out.push(sha(data.subarray(pos, pos + n)));
        pos += n;
      }
      return out;
    };
    const before = hashes(random16);
    const after = hashes(inserted);
    const kept = new Set(before);
    const changed = after.filter((h) => !kept.has(h)).length;
    expect(before.length).toBeGreaterThan(40);
    expect(changed).toBeLessThanOrEqual(2);
    expect(after.slice(-10)).toEqual(before.slice(-10));
  });

  it('gives the same boundaries through any streaming window of at least max bytes', () => {
    const whole = chunkAll(random16);
    const max = DEFAULT_CDC.max;
    for (const size of [max, max + 1, max + 4095, 3 * max + 7, 5 * max]) {
      expect(
        chunkStreaming(random16, () => size),
        `window ${size}`,
      ).toEqual(whole);
    }
    let r = 12345;
    const jitter = (): number => {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      return max + (r % (2 * max));
    };
    expect(chunkStreaming(random16, jitter)).toEqual(whole);
  });

  it('agrees with the whole-buffer answer on small params, arbitrary sub-ranges and offsets', () => {
    const small: CdcParams = { min: 256, avg: 1024, max: 4096 };
    const data = random16.subarray(0, 200_000);
    const whole = chunkAll(data, small);
    for (const n of whole.slice(0, -1)) {
      expect(n).toBeGreaterThanOrEqual(small.min);
      expect(n).toBeLessThanOrEqual(small.max);
    }
    // A chunk start inside a larger buffer, with the range cut at exactly max bytes, gives the same length.
    let pos = 0;
    for (const n of whole) {
      const end = Math.min(data.length, pos + small.max);
      expect(nextCdcChunkLength(random16, pos, end, small)).toBe(n);
      pos += n;
    }
  });

  it('handles short and edge ranges', () => {
    const d = random16.subarray(0, DEFAULT_CDC.max * 2);
    expect(nextCdcChunkLength(d, 0, 0)).toBe(0);
    expect(nextCdcChunkLength(d, 10, 10)).toBe(0);
    expect(nextCdcChunkLength(d, 0, 1)).toBe(1);
    expect(nextCdcChunkLength(d, 5, 5 + DEFAULT_CDC.min)).toBe(DEFAULT_CDC.min);
    const n = nextCdcChunkLength(d, 0, d.length);
    expect(n).toBeGreaterThan(DEFAULT_CDC.min);
    expect(n).toBeLessThanOrEqual(DEFAULT_CDC.max);
    expect(nextCdcChunkLength(new Uint8Array(3 * DEFAULT_CDC.max), 0, 3 * DEFAULT_CDC.max)).toBe(DEFAULT_CDC.max);
    // min = avg = max: fixed-size chunks.
    expect(nextCdcChunkLength(d, 0, d.length, { min: 4096, avg: 4096, max: 4096 })).toBe(4096);
  });

  it('rejects bad ranges and parameters', () => {
    const d = new Uint8Array(100);
    const bad = (f: () => unknown): void => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isCkvcError(err, 'CKVC_BAD_ARGUMENT'), String(err)).toBe(true);
    };
    bad(() => nextCdcChunkLength(d, -1, 10));
    bad(() => nextCdcChunkLength(d, 20, 10));
    bad(() => nextCdcChunkLength(d, 0, 101));
    bad(() => nextCdcChunkLength(d, 0.5, 10));
    bad(() => nextCdcChunkLength(d, 0, 100, { min: 10, avg: 1000, max: 4096 }));
    bad(() => nextCdcChunkLength(d, 0, 100, { min: 10, avg: 1024, max: 512 }));
    bad(() => nextCdcChunkLength(d, 0, 100, { min: 2048, avg: 1024, max: 4096 }));
    bad(() => nextCdcChunkLength(d, 0, 100, { min: 0, avg: 4, max: 8 }));
    bad(() => nextCdcChunkLength(d, 0, 100, { min: 0, avg: 2 ** 31, max: 2 ** 32 }));
  });
});
