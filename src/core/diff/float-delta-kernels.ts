// Tensor-delta kernels for floating-point dtypes (F16, BF16, F32, F64), following the element rules of
// tensor-delta.ts: a change is a change of bytes, and NaN or ±Inf on either side counts in nonFinite only.

import type { ChangedKernel, UnchangedKernel } from './delta-kernel.js';

// ---- 16-bit floats: one table lookup per element beats bit twiddling, and 256 KiB stays in cache.

let f16Table: Float32Array | undefined;
let bf16Table: Float32Array | undefined;

export function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const exp = (h >>> 10) & 31;
    const mant = h & 1023;
    const special = mant === 0 ? Infinity : NaN;
    const mag = exp === 0 ? mant * 2 ** -24 : exp === 31 ? special : (1024 + mant) * 2 ** (exp - 25);
    t[h] = h & 0x8000 ? -mag : mag;
  }
  return (f16Table = t);
}

export function bfloatTable(): Float32Array {
  if (bf16Table) return bf16Table;
  // A bfloat16 is the top half of a float32.
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = h << 16;
  return (bf16Table = new Float32Array(bits.buffer));
}

export function changed16(t: Float32Array): ChangedKernel {
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

export function unchanged16(t: Float32Array): UnchangedKernel {
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

export const changedF32: ChangedKernel = (a, b, s) => {
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

export const changedF64: ChangedKernel = (a, b, s) => {
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

export const unchangedF32: UnchangedKernel = (a, s) => {
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

export const unchangedF64: UnchangedKernel = (a, s) => {
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
