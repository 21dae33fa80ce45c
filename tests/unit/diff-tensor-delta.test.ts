import { describe, expect, it } from 'vitest';
import {
  dtypeWidth,
  isNumericDtype,
  TensorDeltaAccumulator,
  type NumericDtype,
  type TensorDelta,
} from '../../src/core/diff/tensor-delta.js';
import { isCkvcError } from '../../src/core/errors.js';

const ALL: NumericDtype[] = ['F64', 'F32', 'F16', 'BF16', 'I8', 'I16', 'I32', 'I64', 'U8', 'U16', 'U32', 'U64'];
const SIGNED: NumericDtype[] = ['F64', 'F32', 'F16', 'BF16', 'I8', 'I16', 'I32', 'I64'];

// Bit patterns worked out by hand from the formats (sign | biased exponent | mantissa), not computed by code
// shared with the implementation.
const F16_BITS = new Map<number, number>([
  [0, 0x0000],
  [1, 0x3c00],
  [2, 0x4000],
  [3, 0x4200],
  [4, 0x4400],
  [0.5, 0x3800],
  [-1, 0xbc00],
  [-1.5, 0xbe00],
  [-2, 0xc000],
]);
const BF16_BITS = new Map<number, number>([
  [0, 0x0000],
  [1, 0x3f80],
  [2, 0x4000],
  [3, 0x4040],
  [4, 0x4080],
  [0.5, 0x3f00],
  [-1, 0xbf80],
  [-1.5, 0xbfc0],
  [-2, 0xc000],
]);

function bits16(table: Map<number, number>, v: number): number {
  const b = table.get(v);
  if (b === undefined) throw new Error(`no hand-written bits for ${v}`);
  return b;
}

/** Little-endian bytes of `values` as `dtype`, starting `offset` bytes into a fresh buffer. */
function encode(dtype: NumericDtype, values: (number | bigint)[], offset = 0): Uint8Array {
  const w = dtypeWidth(dtype);
  const buf = new Uint8Array(offset + values.length * w + 8).subarray(offset, offset + values.length * w);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (const [i, v] of values.entries()) {
    const at = i * w;
    const n = Number(v);
    switch (dtype) {
      case 'F64':
        dv.setFloat64(at, n, true);
        break;
      case 'F32':
        dv.setFloat32(at, n, true);
        break;
      case 'F16':
        dv.setUint16(at, bits16(F16_BITS, n), true);
        break;
      case 'BF16':
        dv.setUint16(at, bits16(BF16_BITS, n), true);
        break;
      case 'I8':
        dv.setInt8(at, n);
        break;
      case 'U8':
        dv.setUint8(at, n);
        break;
      case 'I16':
        dv.setInt16(at, n, true);
        break;
      case 'U16':
        dv.setUint16(at, n, true);
        break;
      case 'I32':
        dv.setInt32(at, n, true);
        break;
      case 'U32':
        dv.setUint32(at, n, true);
        break;
      case 'I64':
        dv.setBigInt64(at, BigInt(v), true);
        break;
      case 'U64':
        dv.setBigUint64(at, BigInt(v), true);
        break;
    }
  }
  return buf;
}

function delta(dtype: NumericDtype, a: Uint8Array, b: Uint8Array): TensorDelta {
  const acc = new TensorDeltaAccumulator(dtype);
  acc.addChanged(a, b);
  return acc.result();
}

function f32Raw(words: number[]): Uint8Array {
  return new Uint8Array(new Uint32Array(words).buffer);
}

function caught(f: () => void): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('dtype helpers', () => {
  it('knows the numeric dtypes and their widths', () => {
    expect(ALL.map(dtypeWidth)).toEqual([8, 4, 2, 2, 1, 2, 4, 8, 1, 2, 4, 8]);
    for (const d of ALL) expect(isNumericDtype(d)).toBe(true);
    for (const d of ['BOOL', 'F8_E4M3', 'f32', '', '__proto__', 'toString']) expect(isNumericDtype(d)).toBe(false);
  });
});

describe('TensorDeltaAccumulator', () => {
  it.each(ALL)('%s: a=[3,4,0,1] b=[3,0,0,2]', (dtype) => {
    expect(delta(dtype, encode(dtype, [3, 4, 0, 1]), encode(dtype, [3, 0, 0, 2]))).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: Math.sqrt(16 + 1),
      l2A: Math.sqrt(9 + 16 + 0 + 1),
      relative: Math.sqrt(17) / Math.sqrt(26),
      maxAbsDiff: 4,
      nonFinite: 0,
    });
  });

  it.each(SIGNED)('%s: negative values a=[-2,3,-1,4] b=[1,3,-1,-2]', (dtype) => {
    // differences -3, 0, 0, 6
    expect(delta(dtype, encode(dtype, [-2, 3, -1, 4]), encode(dtype, [1, 3, -1, -2]))).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: Math.sqrt(9 + 36),
      l2A: Math.sqrt(4 + 9 + 1 + 16),
      relative: Math.sqrt(45) / Math.sqrt(30),
      maxAbsDiff: 6,
      nonFinite: 0,
    });
  });

  it.each(['F64', 'F32', 'F16', 'BF16'] as NumericDtype[])('%s: fractions a=[0.5,-1.5] b=[-1.5,0.5]', (dtype) => {
    const r = delta(dtype, encode(dtype, [0.5, -1.5]), encode(dtype, [-1.5, 0.5]));
    expect(r).toMatchObject({ changedElements: 2, l2Diff: Math.sqrt(8), l2A: Math.sqrt(0.25 + 2.25), maxAbsDiff: 2 });
  });

  it('F16 subnormals decode exactly', () => {
    // 0x0001 is the smallest subnormal, 2^-24; 0x03ff the largest, 1023 * 2^-24.
    const a = new Uint8Array(new Uint16Array([0x0001, 0x03ff]).buffer);
    const b = new Uint8Array(new Uint16Array([0x0000, 0x0000]).buffer);
    expect(delta('F16', a, b)).toMatchObject({
      changedElements: 2,
      maxAbsDiff: 1023 * 2 ** -24,
      l2A: Math.sqrt((1 + 1023 ** 2) * 2 ** -48),
    });
  });

  it('I64/U64: large and negative values, differences formed exactly', () => {
    const big = 2n ** 62n;
    // -5 -> 3 (diff -8), 2^62 -> 2^62 + 1 (diff -1, below double precision of the values), -1 unchanged.
    const r = delta('I64', encode('I64', [-5n, big, -1n]), encode('I64', [3n, big + 1n, -1n]));
    expect(r).toMatchObject({
      elements: 3,
      changedElements: 2,
      l2Diff: Math.sqrt(64 + 1),
      maxAbsDiff: 8,
      nonFinite: 0,
    });
    expect(r.l2A).toBe(2 ** 62); // 25 + 2^124 + 1 rounds to 2^124 in float64
    const min = delta('I64', encode('I64', [-(2n ** 63n)]), encode('I64', [2n ** 63n - 1n]));
    expect(min).toMatchObject({ changedElements: 1, maxAbsDiff: 2 ** 64, l2A: 2 ** 63 });

    const top = 2n ** 64n - 1n;
    const u = delta('U64', encode('U64', [top, 7n]), encode('U64', [top - 1n, 10n]));
    expect(u).toMatchObject({ changedElements: 2, l2Diff: Math.sqrt(1 + 9), maxAbsDiff: 3, l2A: 2 ** 64 });
  });

  it('integer extremes', () => {
    expect(delta('I8', encode('I8', [-128]), encode('I8', [127]))).toMatchObject({ maxAbsDiff: 255, l2A: 128 });
    expect(delta('U32', encode('U32', [0]), encode('U32', [2 ** 32 - 1]))).toMatchObject({
      maxAbsDiff: 2 ** 32 - 1,
      relative: null,
    });
    expect(delta('I32', encode('I32', [-(2 ** 31)]), encode('I32', [2 ** 31 - 1]))).toMatchObject({
      maxAbsDiff: 2 ** 32 - 1,
    });
  });

  it.each(ALL)('%s: unaligned byteOffsets give the same result as aligned ones', (dtype) => {
    const a = [3, 4, 0, 1, 2, 0, 1, 3, 4, 2, 0, 1, 1];
    const b = [3, 0, 0, 2, 2, 1, 1, 4, 3, 2, 0, 0, 1];
    const expected = delta(dtype, encode(dtype, a), encode(dtype, b));
    for (const [oa, ob] of [
      [1, 1],
      [1, 3],
      [0, 2],
      [5, 0],
      [3, 7],
    ] as const) {
      const ua = encode(dtype, a, oa);
      const ub = encode(dtype, b, ob);
      expect([ua.byteOffset, ub.byteOffset]).toEqual([oa, ob]);
      expect(delta(dtype, ua, ub)).toEqual(expected);
      const unchanged = new TensorDeltaAccumulator(dtype);
      unchanged.addUnchanged(ua);
      expect(unchanged.result()).toEqual(delta(dtype, encode(dtype, a), encode(dtype, a)));
    }
  });

  it.each(ALL)('%s: addUnchanged(x) equals addChanged(x, x)', (dtype) => {
    const x = encode(dtype, [3, 4, 0, 1, 2]);
    const acc = new TensorDeltaAccumulator(dtype);
    acc.addUnchanged(x);
    expect(acc.result()).toEqual({
      elements: 5,
      changedElements: 0,
      l2Diff: 0,
      l2A: Math.sqrt(30),
      relative: 0,
      maxAbsDiff: 0,
      nonFinite: 0,
    });
    expect(acc.result()).toEqual(delta(dtype, x, x.slice()));
  });

  it('ranges split across many calls, aligned or not, sum to exactly the one-call result', () => {
    // More than one 64 KiB copy block, with values whose sums round, so any reordering would show.
    const n = 40_000;
    const fa = new Float32Array(n);
    const fb = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      fa[i] = Math.sin(i) * 0.37;
      fb[i] = i % 1000 < 300 ? fa[i]! : fa[i]! + Math.cos(i) * 1e-3;
    }
    const a = new Uint8Array(fa.buffer);
    const b = new Uint8Array(fb.buffer);
    const whole = delta('F32', a, b);
    expect(whole.elements).toBe(n);
    expect(whole.changedElements).toBeGreaterThan(0.6 * n);

    for (const offset of [0, 1, 2]) {
      const copyA = new Uint8Array(a.length + offset).subarray(offset);
      const copyB = new Uint8Array(b.length + offset).subarray(offset);
      copyA.set(a);
      copyB.set(b);
      const acc = new TensorDeltaAccumulator('F32');
      // Ranges of 1000 elements: the first 300 of each are identical in a and b and go through addUnchanged;
      // the rest are fed in uneven pieces.
      for (let at = 0; at < n; at += 1000) {
        acc.addUnchanged(copyA.subarray(at * 4, (at + 300) * 4));
        for (const [s, e] of [
          [300, 301],
          [301, 677],
          [677, 1000],
        ] as const) {
          acc.addChanged(copyA.subarray((at + s) * 4, (at + e) * 4), copyB.subarray((at + s) * 4, (at + e) * 4));
        }
      }
      expect(acc.result()).toEqual(whole);
    }
    const big = new TensorDeltaAccumulator('F32');
    big.addChanged(a.subarray(0, 80_000), b.subarray(0, 80_000));
    big.addChanged(a.subarray(80_000), b.subarray(80_000));
    expect(big.result()).toEqual(whole);
  });

  it('counts NaN and ±Inf in nonFinite and leaves them out of the sums', () => {
    const NAN = 0x7fc00000;
    const NAN2 = 0x7fc00001;
    const INF = 0x7f800000;
    const one = 0x3f800000;
    const two = 0x40000000;
    const five = 0x40a00000;
    // [NaN=NaN same bits, 1->Inf, Inf=Inf, 2->5, NaN->other NaN]
    const a = f32Raw([NAN, one, INF, two, NAN]);
    const b = f32Raw([NAN, INF, INF, five, NAN2]);
    expect(delta('F32', a, b)).toEqual({
      elements: 5,
      changedElements: 3,
      l2Diff: 3,
      l2A: 2,
      relative: 1.5,
      maxAbsDiff: 3,
      nonFinite: 4,
    });
    const u = new TensorDeltaAccumulator('F32');
    u.addUnchanged(a);
    expect(u.result()).toMatchObject({ elements: 5, nonFinite: 3, l2A: Math.sqrt(1 + 4), changedElements: 0 });

    const u16 = (words: number[]): Uint8Array => new Uint8Array(new Uint16Array(words).buffer);
    // [NaN=NaN, 1->Inf, -Inf=-Inf, 2->4]
    const f16 = delta('F16', u16([0x7e00, 0x3c00, 0xfc00, 0x4000]), u16([0x7e00, 0x7c00, 0xfc00, 0x4400]));
    expect(f16).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: 2,
      l2A: 2,
      relative: 1,
      maxAbsDiff: 2,
      nonFinite: 3,
    });
    const bf16 = delta('BF16', u16([0x7fc0, 0x3f80]), u16([0x3f80, 0x3f80]));
    expect(bf16).toEqual({
      elements: 2,
      changedElements: 1,
      l2Diff: 0,
      l2A: 1,
      relative: 0,
      maxAbsDiff: 0,
      nonFinite: 1,
    });

    const f64 = new Float64Array([NaN, -Infinity, 1]);
    const g64 = new Float64Array([NaN, 0, 1.5]);
    expect(delta('F64', new Uint8Array(f64.buffer), new Uint8Array(g64.buffer))).toEqual({
      elements: 3,
      changedElements: 2,
      l2Diff: 0.5,
      l2A: 1,
      relative: 0.5,
      maxAbsDiff: 0.5,
      nonFinite: 2,
    });
  });

  it('0 -> -0 changes the bytes but not the sums; relative is 0 for all-zero and null for a zero base', () => {
    const r = delta('F32', encode('F32', [0, 0]), encode('F32', [-0, 0]));
    expect(r).toEqual({ elements: 2, changedElements: 1, l2Diff: 0, l2A: 0, relative: 0, maxAbsDiff: 0, nonFinite: 0 });
    expect(delta('F64', encode('F64', [-0]), encode('F64', [0])).changedElements).toBe(1);
    expect(delta('F32', encode('F32', [0, 0]), encode('F32', [0, 2]))).toMatchObject({
      l2Diff: 2,
      l2A: 0,
      relative: null,
    });
    const empty = new TensorDeltaAccumulator('BF16').result();
    expect(empty).toEqual({
      elements: 0,
      changedElements: 0,
      l2Diff: 0,
      l2A: 0,
      relative: 0,
      maxAbsDiff: 0,
      nonFinite: 0,
    });
  });

  it('rejects ranges that are not whole elements, or of unequal length, with CKVC_INTERNAL', () => {
    const f32 = new TensorDeltaAccumulator('F32');
    expect(
      isCkvcError(
        caught(() => f32.addChanged(new Uint8Array(6), new Uint8Array(6))),
        'CKVC_INTERNAL',
      ),
    ).toBe(true);
    expect(
      isCkvcError(
        caught(() => f32.addChanged(new Uint8Array(8), new Uint8Array(4))),
        'CKVC_INTERNAL',
      ),
    ).toBe(true);
    const i16 = new TensorDeltaAccumulator('I16');
    const u64 = new TensorDeltaAccumulator('U64');
    expect(
      isCkvcError(
        caught(() => i16.addUnchanged(new Uint8Array(5))),
        'CKVC_INTERNAL',
      ),
    ).toBe(true);
    expect(
      isCkvcError(
        caught(() => u64.addUnchanged(new Uint8Array(12))),
        'CKVC_INTERNAL',
      ),
    ).toBe(true);
    expect(
      isCkvcError(
        caught(() => new TensorDeltaAccumulator('BOOL' as NumericDtype)),
        'CKVC_INTERNAL',
      ),
    ).toBe(true);
    // The failed calls left nothing behind.
    expect(f32.result().elements).toBe(0);
  });

  it('streams F32 quickly (64 MiB well under 5 s)', () => {
    const chunk = 1 << 20;
    const fa = new Float32Array(chunk / 4);
    const fb = new Float32Array(chunk / 4);
    for (let i = 0; i < fa.length; i++) {
      fa[i] = Math.sin(i);
      fb[i] = fa[i]! + (i & 1 ? 1e-3 : 0);
    }
    const a = new Uint8Array(fa.buffer);
    const b = new Uint8Array(fb.buffer);
    const acc = new TensorDeltaAccumulator('F32');
    const t0 = performance.now();
    for (let i = 0; i < 64; i++) acc.addChanged(a, b);
    const seconds = (performance.now() - t0) / 1000;
    expect(acc.result().elements).toBe(16 * chunk);
    expect(seconds).toBeLessThan(5);
  });
});
