// How much one tensor moved between two checkpoints: changed element count, L2 norms of the difference and of
// the old tensor, and the largest absolute change. It streams: callers feed the byte ranges of a tensor in
// order, and ranges whose chunk is shared by both checkpoints go through addUnchanged without reading b.
//
// Everything is summed in float64, sequentially into one accumulator, so splitting a tensor into ranges at
// any element boundary gives bit-identical results. Known limits of float64:
// - I64/U64 values beyond 2^53 are rounded to the nearest double; differences are rounded once from the exact
//   difference (built from the 32-bit halves), so a change of 1 near 2^62 still counts and shows as 1.
// - Squares of F64 values beyond ~1e154 (and differences of finite F64 values that overflow) are Infinity.
//
// Element rules: an element is changed when its bytes differ (so 0 -> -0 and one NaN payload -> another are
// changes, identical NaNs are not). An element where a or b is NaN or ±Inf is counted in nonFinite and left
// out of every sum and of maxAbsDiff. addUnchanged(x) gives exactly what addChanged(x, x) would.

import { CkvcError } from '../errors.js';
import { sameRange, type Kernels, type Sums } from './delta-kernel.js';
import {
  bfloatTable,
  changed16,
  changedF32,
  changedF64,
  halfTable,
  unchanged16,
  unchangedF32,
  unchangedF64,
} from './float-delta-kernels.js';
import { changedI8, changedI16, changedI32, changedU8, changedU16, changedU32, int64 } from './int-delta-kernels.js';

export type NumericDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I8' | 'I16' | 'I32' | 'I64' | 'U8' | 'U16' | 'U32' | 'U64';

const WIDTH: Record<NumericDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I8: 1,
  I16: 2,
  I32: 4,
  I64: 8,
  U8: 1,
  U16: 2,
  U32: 4,
  U64: 8,
};

export function isNumericDtype(dtype: string): dtype is NumericDtype {
  return Object.hasOwn(WIDTH, dtype);
}

/** Bytes per element. */
export function dtypeWidth(dtype: NumericDtype): number {
  return WIDTH[dtype];
}

export interface TensorDelta {
  elements: number;
  changedElements: number;
  l2Diff: number;
  l2A: number;
  relative: number | null;
  maxAbsDiff: number;
  nonFinite: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function kernelsFor(dtype: NumericDtype): Kernels {
  switch (dtype) {
    case 'F64':
      return { align: 8, swap: 8, changed: changedF64, unchanged: unchangedF64 };
    case 'F32':
      return { align: 4, swap: 4, changed: changedF32, unchanged: unchangedF32 };
    case 'F16':
      return { align: 2, swap: 2, changed: changed16(halfTable()), unchanged: unchanged16(halfTable()) };
    case 'BF16':
      return { align: 2, swap: 2, changed: changed16(bfloatTable()), unchanged: unchanged16(bfloatTable()) };
    case 'I8':
      return { align: 1, swap: 1, changed: changedI8, unchanged: sameRange(changedI8) };
    case 'U8':
      return { align: 1, swap: 1, changed: changedU8, unchanged: sameRange(changedU8) };
    case 'I16':
      return { align: 2, swap: 2, changed: changedI16, unchanged: sameRange(changedI16) };
    case 'U16':
      return { align: 2, swap: 2, changed: changedU16, unchanged: sameRange(changedU16) };
    case 'I32':
      return { align: 4, swap: 4, changed: changedI32, unchanged: sameRange(changedI32) };
    case 'U32':
      return { align: 4, swap: 4, changed: changedU32, unchanged: sameRange(changedU32) };
    case 'I64':
      return int64(true);
    case 'U64':
      return int64(false);
  }
}

/** Unaligned (or big-endian-host) ranges are copied through scratch buffers this big, in order. */
const BLOCK = 64 * 1024;

function copyNative(src: Uint8Array, dst: Uint8Array, swap: number): Uint8Array {
  const out = dst.subarray(0, src.length);
  if (LITTLE_ENDIAN || swap === 1) {
    out.set(src);
    return out;
  }
  for (let i = 0; i < src.length; i += swap) for (let k = 0; k < swap; k++) out[i + k] = src[i + swap - 1 - k]!;
  return out;
}

export class TensorDeltaAccumulator {
  private readonly width: number;
  private readonly kernels: Kernels;
  private readonly sums: Sums = { changed: 0, d2: 0, a2: 0, maxAbs: 0, nonFinite: 0 };
  private elements = 0;
  private scratchA: Uint8Array | undefined;
  private scratchB: Uint8Array | undefined;

  constructor(readonly dtype: NumericDtype) {
    if (!isNumericDtype(dtype)) {
      throw new CkvcError('CKVC_INTERNAL', `tensor delta of non-numeric dtype ${JSON.stringify(dtype)}`, { dtype });
    }
    this.width = WIDTH[dtype];
    this.kernels = kernelsFor(dtype);
  }

  private check(length: number, what: string): void {
    if (length % this.width !== 0) {
      const message = `tensor delta: ${what} range of ${length} bytes is not whole ${this.dtype} elements`;
      throw new CkvcError('CKVC_INTERNAL', message, { dtype: this.dtype, length });
    }
  }

  private direct(x: Uint8Array): boolean {
    return LITTLE_ENDIAN && x.byteOffset % this.kernels.align === 0;
  }

  /** Equal-length little-endian byte ranges at the same offset of tensors a and b. */
  addChanged(a: Uint8Array, b: Uint8Array): void {
    if (a.length !== b.length) {
      const message = `tensor delta: ranges of ${a.length} and ${b.length} bytes differ in length`;
      throw new CkvcError('CKVC_INTERNAL', message, {
        dtype: this.dtype,
        lengthA: a.length,
        lengthB: b.length,
      });
    }
    this.check(a.length, 'changed');
    const { changed, swap } = this.kernels;
    if (this.direct(a) && this.direct(b)) changed(a, b, this.sums);
    else {
      const sa = (this.scratchA ??= new Uint8Array(BLOCK));
      const sb = (this.scratchB ??= new Uint8Array(BLOCK));
      for (let at = 0; at < a.length; at += BLOCK) {
        const end = Math.min(at + BLOCK, a.length);
        changed(copyNative(a.subarray(at, end), sa, swap), copyNative(b.subarray(at, end), sb, swap), this.sums);
      }
    }
    this.elements += a.length / this.width;
  }

  /** A range known identical in both tensors (same chunk): only its norm and finiteness matter. */
  addUnchanged(a: Uint8Array): void {
    this.check(a.length, 'unchanged');
    const { unchanged, swap } = this.kernels;
    if (this.direct(a)) unchanged(a, this.sums);
    else {
      const sa = (this.scratchA ??= new Uint8Array(BLOCK));
      for (let at = 0; at < a.length; at += BLOCK) {
        unchanged(copyNative(a.subarray(at, Math.min(at + BLOCK, a.length)), sa, swap), this.sums);
      }
    }
    this.elements += a.length / this.width;
  }

  result(): TensorDelta {
    const s = this.sums;
    const l2Diff = Math.sqrt(s.d2);
    const l2A = Math.sqrt(s.a2);
    return {
      elements: this.elements,
      changedElements: s.changed,
      l2Diff,
      l2A,
      relative: l2A === 0 ? (l2Diff === 0 ? 0 : null) : l2Diff / l2A,
      maxAbsDiff: s.maxAbs,
      nonFinite: s.nonFinite,
    };
  }
}
