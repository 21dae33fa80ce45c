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

/** Running totals; kernels load them into locals, loop, and store them back. */
interface Sums {
  changed: number;
  d2: number;
  a2: number;
  maxAbs: number;
  nonFinite: number;
}

type ChangedKernel = (a: Uint8Array, b: Uint8Array, s: Sums) => void;
type UnchangedKernel = (a: Uint8Array, s: Sums) => void;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// ---- 16-bit floats: one table lookup per element beats bit twiddling, and 256 KiB stays in cache.

let f16Table: Float32Array | undefined;
let bf16Table: Float32Array | undefined;

function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const exp = (h >>> 10) & 31;
    const mant = h & 1023;
    const mag = exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant === 0 ? Infinity : NaN) : (1024 + mant) * 2 ** (exp - 25);
    t[h] = h & 0x8000 ? -mag : mag;
  }
  return (f16Table = t);
}

function bfloatTable(): Float32Array {
  if (bf16Table) return bf16Table;
  // A bfloat16 is the top half of a float32.
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = h << 16;
  return (bf16Table = new Float32Array(bits.buffer));
}

function changed16(t: Float32Array): ChangedKernel {
  return (a, b, s) => {
    const ua = new Uint16Array(a.buffer, a.byteOffset, a.length >>> 1);
    const ub = new Uint16Array(b.buffer, b.byteOffset, b.length >>> 1);
    let { changed, d2, a2, maxAbs, nonFinite } = s;
    for (let i = 0; i < ua.length; i++) {
      const p = ua[i]!;
      const q = ub[i]!;
      const x = t[p]!;
      if (p === q) {
        if (x - x === 0) a2 += x * x;
        else nonFinite++;
        continue;
      }
      changed++;
      const y = t[q]!;
      if (x - x === 0 && y - y === 0) {
        a2 += x * x;
        const d = x - y;
        d2 += d * d;
        const ad = d < 0 ? -d : d;
        if (ad > maxAbs) maxAbs = ad;
      } else nonFinite++;
    }
    Object.assign(s, { changed, d2, a2, maxAbs, nonFinite });
  };
}

function unchanged16(t: Float32Array): UnchangedKernel {
  return (a, s) => {
    const ua = new Uint16Array(a.buffer, a.byteOffset, a.length >>> 1);
    let { a2, nonFinite } = s;
    for (let i = 0; i < ua.length; i++) {
      const x = t[ua[i]!]!;
      if (x - x === 0) a2 += x * x;
      else nonFinite++;
    }
    s.a2 = a2;
    s.nonFinite = nonFinite;
  };
}

// ---- 32/64-bit floats. Equal values have equal bits except 0/-0; unequal values differ in bits except NaNs
// with the same payload, so the integer view is only read on those two rare paths.

const changedF32: ChangedKernel = (a, b, s) => {
  const n = a.length >>> 2;
  const fa = new Float32Array(a.buffer, a.byteOffset, n);
  const fb = new Float32Array(b.buffer, b.byteOffset, n);
  const ua = new Uint32Array(a.buffer, a.byteOffset, n);
  const ub = new Uint32Array(b.buffer, b.byteOffset, n);
  let { changed, d2, a2, maxAbs, nonFinite } = s;
  for (let i = 0; i < n; i++) {
    const x = fa[i]!;
    const y = fb[i]!;
    if (x === y) {
      if (x - x !== 0) nonFinite++;
      else {
        a2 += x * x;
        if (x === 0 && 1 / x !== 1 / y) changed++;
      }
    } else if (x - x === 0 && y - y === 0) {
      changed++;
      a2 += x * x;
      const d = x - y;
      d2 += d * d;
      const ad = d < 0 ? -d : d;
      if (ad > maxAbs) maxAbs = ad;
    } else {
      nonFinite++;
      if (ua[i] !== ub[i]) changed++;
    }
  }
  Object.assign(s, { changed, d2, a2, maxAbs, nonFinite });
};

const changedF64: ChangedKernel = (a, b, s) => {
  const n = a.length >>> 3;
  const fa = new Float64Array(a.buffer, a.byteOffset, n);
  const fb = new Float64Array(b.buffer, b.byteOffset, n);
  const ua = new Uint32Array(a.buffer, a.byteOffset, 2 * n);
  const ub = new Uint32Array(b.buffer, b.byteOffset, 2 * n);
  let { changed, d2, a2, maxAbs, nonFinite } = s;
  for (let i = 0; i < n; i++) {
    const x = fa[i]!;
    const y = fb[i]!;
    if (x === y) {
      if (x - x !== 0) nonFinite++;
      else {
        a2 += x * x;
        if (x === 0 && 1 / x !== 1 / y) changed++;
      }
    } else if (x - x === 0 && y - y === 0) {
      changed++;
      a2 += x * x;
      const d = x - y;
      d2 += d * d;
      const ad = d < 0 ? -d : d;
      if (ad > maxAbs) maxAbs = ad;
    } else {
      nonFinite++;
      if (ua[2 * i] !== ub[2 * i] || ua[2 * i + 1] !== ub[2 * i + 1]) changed++;
    }
  }
  Object.assign(s, { changed, d2, a2, maxAbs, nonFinite });
};

const unchangedF32: UnchangedKernel = (a, s) => {
  const fa = new Float32Array(a.buffer, a.byteOffset, a.length >>> 2);
  let { a2, nonFinite } = s;
  for (let i = 0; i < fa.length; i++) {
    const x = fa[i]!;
    if (x - x === 0) a2 += x * x;
    else nonFinite++;
  }
  s.a2 = a2;
  s.nonFinite = nonFinite;
};

const unchangedF64: UnchangedKernel = (a, s) => {
  const fa = new Float64Array(a.buffer, a.byteOffset, a.length >>> 3);
  let { a2, nonFinite } = s;
  for (let i = 0; i < fa.length; i++) {
    const x = fa[i]!;
    if (x - x === 0) a2 += x * x;
    else nonFinite++;
  }
  s.a2 = a2;
  s.nonFinite = nonFinite;
};

// ---- Integers up to 32 bits are exact in float64. One function per array type keeps each loop's element
// access monomorphic, which is worth several times the speed of a shared generic loop. Integer ranges that
// are unchanged go through the same kernels with b = a: they are rare and small in checkpoints.

function addIntChange(d: number, s: Sums): void {
  s.changed++;
  s.d2 += d * d;
  const ad = d < 0 ? -d : d;
  if (ad > s.maxAbs) s.maxAbs = ad;
}

const changedI8: ChangedKernel = (a, b, s) => {
  const va = new Int8Array(a.buffer, a.byteOffset, a.length);
  const vb = new Int8Array(b.buffer, b.byteOffset, b.length);
  let a2 = s.a2;
  for (let i = 0; i < va.length; i++) {
    const x = va[i]!;
    const y = vb[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};
const changedU8: ChangedKernel = (a, b, s) => {
  let a2 = s.a2;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};
const changedI16: ChangedKernel = (a, b, s) => {
  const va = new Int16Array(a.buffer, a.byteOffset, a.length >>> 1);
  const vb = new Int16Array(b.buffer, b.byteOffset, b.length >>> 1);
  let a2 = s.a2;
  for (let i = 0; i < va.length; i++) {
    const x = va[i]!;
    const y = vb[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};
const changedU16: ChangedKernel = (a, b, s) => {
  const va = new Uint16Array(a.buffer, a.byteOffset, a.length >>> 1);
  const vb = new Uint16Array(b.buffer, b.byteOffset, b.length >>> 1);
  let a2 = s.a2;
  for (let i = 0; i < va.length; i++) {
    const x = va[i]!;
    const y = vb[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};
const changedI32: ChangedKernel = (a, b, s) => {
  const va = new Int32Array(a.buffer, a.byteOffset, a.length >>> 2);
  const vb = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
  let a2 = s.a2;
  for (let i = 0; i < va.length; i++) {
    const x = va[i]!;
    const y = vb[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};
const changedU32: ChangedKernel = (a, b, s) => {
  const va = new Uint32Array(a.buffer, a.byteOffset, a.length >>> 2);
  const vb = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
  let a2 = s.a2;
  for (let i = 0; i < va.length; i++) {
    const x = va[i]!;
    const y = vb[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};

// 64-bit integers are read as two 32-bit halves (no BigInt on the hot path): value = hi * 2^32 + lo, and the
// difference is formed from the exact differences of the halves, rounding once.
function changed64(signed: boolean): ChangedKernel {
  return (a, b, s) => {
    const n = a.length >>> 3;
    const la = new Uint32Array(a.buffer, a.byteOffset, 2 * n);
    const lb = new Uint32Array(b.buffer, b.byteOffset, 2 * n);
    const ha = signed ? new Int32Array(a.buffer, a.byteOffset, 2 * n) : la;
    const hb = signed ? new Int32Array(b.buffer, b.byteOffset, 2 * n) : lb;
    let a2 = s.a2;
    for (let j = 0; j < 2 * n; j += 2) {
      const xl = la[j]!;
      const yl = lb[j]!;
      const xh = ha[j + 1]!;
      const yh = hb[j + 1]!;
      const x = xh * 4294967296 + xl;
      a2 += x * x;
      if (xl !== yl || xh !== yh) addIntChange((xh - yh) * 4294967296 + (xl - yl), s);
    }
    s.a2 = a2;
  };
}

function sameRange(changed: ChangedKernel): UnchangedKernel {
  return (a, s) => changed(a, a, s);
}

interface Kernels {
  /** byteOffset alignment the views need. */
  align: number;
  /** Unit whose bytes are reversed when copying on a big-endian host (the 32-bit halves for 64-bit ints). */
  swap: number;
  changed: ChangedKernel;
  unchanged: UnchangedKernel;
}

function int64(signed: boolean): Kernels {
  const changed = changed64(signed);
  return { align: 4, swap: 4, changed, unchanged: sameRange(changed) };
}

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
    if (!isNumericDtype(dtype)) throw new CkvcError('CKVC_INTERNAL', `tensor delta of non-numeric dtype ${JSON.stringify(dtype)}`, { dtype });
    this.width = WIDTH[dtype];
    this.kernels = kernelsFor(dtype);
  }

  private check(length: number, what: string): void {
    if (length % this.width !== 0) {
      throw new CkvcError('CKVC_INTERNAL', `tensor delta: ${what} range of ${length} bytes is not whole ${this.dtype} elements`, {
        dtype: this.dtype,
        length,
      });
    }
  }

  private direct(x: Uint8Array): boolean {
    return LITTLE_ENDIAN && x.byteOffset % this.kernels.align === 0;
  }

  /** Equal-length little-endian byte ranges at the same offset of tensors a and b. */
  addChanged(a: Uint8Array, b: Uint8Array): void {
    if (a.length !== b.length) {
      throw new CkvcError('CKVC_INTERNAL', `tensor delta: ranges of ${a.length} and ${b.length} bytes differ in length`, {
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
      for (let at = 0; at < a.length; at += BLOCK) unchanged(copyNative(a.subarray(at, Math.min(at + BLOCK, a.length)), sa, swap), this.sums);
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
