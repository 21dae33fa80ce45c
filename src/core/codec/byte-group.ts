// ZipNN-style byte grouping (spec/CHUNKING.md, "Byte grouping"). Tensor elements of `width` bytes are split
// into planes: byte 0 of every element, then byte 1 of every element, ... The exponent/sign bytes of floats
// then sit together and zstd compresses them far better than the interleaved form.
//
// Layout for src of length L and n = floor(L / width) whole elements:
//   out[j * n + i] = src[i * width + j]   for 0 <= i < n, 0 <= j < width
//   out[n * width + k] = src[n * width + k] for 0 <= k < L % width (the tail, verbatim)
// width 1 is the identity (src itself is returned). Pure byte shuffling: no dependence on platform endianness.

import { CkvcError } from '../errors.js';

function checkWidth(width: number): void {
  if (!Number.isSafeInteger(width) || width < 1) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'byte-group width must be a positive integer', { width });
  }
}

/** Split `src` into byte planes of `width`-byte elements; a tail of src.length % width bytes is kept verbatim at the end. */
export function groupBytes(src: Uint8Array, width: number): Uint8Array {
  checkWidth(width);
  if (width === 1) return src;
  const len = src.length;
  const n = Math.floor(len / width);
  const body = n * width;
  const out = new Uint8Array(len);
  if (width === 2) {
    for (let i = 0, p = 0; i < n; i++, p += 2) {
      out[i] = src[p]!;
      out[n + i] = src[p + 1]!;
    }
  } else if (width === 4) {
    const n2 = 2 * n;
    const n3 = 3 * n;
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      out[i] = src[p]!;
      out[n + i] = src[p + 1]!;
      out[n2 + i] = src[p + 2]!;
      out[n3 + i] = src[p + 3]!;
    }
  } else if (width === 8) {
    const n2 = 2 * n;
    const n3 = 3 * n;
    const n4 = 4 * n;
    const n5 = 5 * n;
    const n6 = 6 * n;
    const n7 = 7 * n;
    for (let i = 0, p = 0; i < n; i++, p += 8) {
      out[i] = src[p]!;
      out[n + i] = src[p + 1]!;
      out[n2 + i] = src[p + 2]!;
      out[n3 + i] = src[p + 3]!;
      out[n4 + i] = src[p + 4]!;
      out[n5 + i] = src[p + 5]!;
      out[n6 + i] = src[p + 6]!;
      out[n7 + i] = src[p + 7]!;
    }
  } else {
    for (let j = 0, o = 0; j < width; j++) {
      for (let p = j; p < body; p += width) out[o++] = src[p]!;
    }
  }
  if (body < len) out.set(src.subarray(body), body);
  return out;
}

/** Exact inverse of groupBytes: ungroupBytes(groupBytes(x, w), w) equals x for every x and w. */
export function ungroupBytes(src: Uint8Array, width: number): Uint8Array {
  checkWidth(width);
  if (width === 1) return src;
  const len = src.length;
  const n = Math.floor(len / width);
  const body = n * width;
  const out = new Uint8Array(len);
  if (width === 2) {
    for (let i = 0, p = 0; i < n; i++, p += 2) {
      out[p] = src[i]!;
      out[p + 1] = src[n + i]!;
    }
  } else if (width === 4) {
    const n2 = 2 * n;
    const n3 = 3 * n;
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      out[p] = src[i]!;
      out[p + 1] = src[n + i]!;
      out[p + 2] = src[n2 + i]!;
      out[p + 3] = src[n3 + i]!;
    }
  } else if (width === 8) {
    const n2 = 2 * n;
    const n3 = 3 * n;
    const n4 = 4 * n;
    const n5 = 5 * n;
    const n6 = 6 * n;
    const n7 = 7 * n;
    for (let i = 0, p = 0; i < n; i++, p += 8) {
      out[p] = src[i]!;
      out[p + 1] = src[n + i]!;
      out[p + 2] = src[n2 + i]!;
      out[p + 3] = src[n3 + i]!;
      out[p + 4] = src[n4 + i]!;
      out[p + 5] = src[n5 + i]!;
      out[p + 6] = src[n6 + i]!;
      out[p + 7] = src[n7 + i]!;
    }
  } else {
    for (let j = 0, o = 0; j < width; j++) {
      for (let p = j; p < body; p += width) out[p] = src[o++]!;
    }
  }
  if (body < len) out.set(src.subarray(body), body);
  return out;
}
