// Tensor-delta kernels for integer dtypes (8 to 64 bits, signed and unsigned), following the element rules of
// tensor-delta.ts. Integers have no NaN or infinity, so nonFinite is never touched.

import { sameRange, type ChangedKernel, type Kernels, type Sums } from './delta-kernel.js';

// ---- Integers up to 32 bits are exact in float64. One function per array type keeps each loop's element
// access monomorphic, which is worth several times the speed of a shared generic loop. Integer ranges that
// are unchanged go through the same kernels with b = a: they are rare and small in checkpoints.

function addIntChange(d: number, s: Sums): void {
  s.changed++;
  s.d2 += d * d;
  const ad = d < 0 ? -d : d;
  if (ad > s.maxAbs) s.maxAbs = ad;
}

export const changedI8: ChangedKernel = (a, b, s) => {
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
export const changedU8: ChangedKernel = (a, b, s) => {
  let a2 = s.a2;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    a2 += x * x;
    if (x !== y) addIntChange(x - y, s);
  }
  s.a2 = a2;
};
export const changedI16: ChangedKernel = (a, b, s) => {
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
export const changedU16: ChangedKernel = (a, b, s) => {
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
export const changedI32: ChangedKernel = (a, b, s) => {
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
export const changedU32: ChangedKernel = (a, b, s) => {
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

/** Kernels of I64 (signed) or U64: read as 32-bit halves, so views need 4-byte alignment. */
export function int64(signed: boolean): Kernels {
  const changed = changed64(signed);
  return { align: 4, swap: 4, changed, unchanged: sameRange(changed) };
}
