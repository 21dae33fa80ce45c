// FastCDC content-defined chunking (Xia et al., USENIX ATC 2016) with a 32-bit gear hash, normalised chunking
// (level 2) and cut-point skipping. The exact rule is spec/CHUNKING.md, "Cut rule"; spec/vectors/cdc.json pins it.
//
// For a piece data[start, end) let n = min(end - start, max). If n <= min the chunk is n bytes. Otherwise,
// with bits = log2(avg), maskS = the top (bits + 2) bits of a 32-bit word and maskL = the top (bits - 2) bits:
//   h = 0
//   for i = min .. n - 1:
//     h = (2 * h + GEAR_TABLE[data[start + i]]) mod 2^32
//     if (h & (i < avg ? maskS : maskL)) == 0: the chunk is i + 1 bytes
//   no cut point: the chunk is n bytes
// The hash only ever looks at data[start + min, start + n), so the answer depends on no byte at or past
// start + max: a streaming caller that keeps at least `max` bytes ahead (or has reached EOF) cuts exactly
// where a caller holding the whole input would.

import { CkvcError } from '../errors.js';
import { GEAR_TABLE } from './gear-table.js';

export interface CdcParams {
  min: number;
  avg: number;
  max: number;
} // avg a power of two

// Frozen: nextCdcChunkLength caches the checked mask width for this exact object.
export const DEFAULT_CDC: CdcParams = Object.freeze({ min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024 });

// The masks must leave at least one bit in maskL and fit in 32 bits in maskS.
const MIN_AVG_BITS = 3;
const MAX_AVG_BITS = 30;

/** Top `n` bits of a 32-bit word, as a signed int32 (so `h & mask` with an int32 `h` compares cleanly to 0). */
function topBits(n: number): number {
  return n >= 32 ? -1 : ~(0xffffffff >>> n) | 0;
}

/** Throws CKVC_BAD_ARGUMENT unless `p` can cut chunks (spec/CHUNKING.md); returns log2(avg). */
export function checkCdcParams(p: CdcParams): number {
  const { min, avg, max } = p;
  if (
    !Number.isSafeInteger(min) ||
    !Number.isSafeInteger(avg) ||
    !Number.isSafeInteger(max) ||
    min < 0 ||
    min > avg ||
    avg > max
  ) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'chunking parameters must be integers with 0 <= min <= avg <= max', {
      min,
      avg,
      max,
    });
  }
  const bits = Math.log2(avg);
  if (!Number.isInteger(bits) || bits < MIN_AVG_BITS || bits > MAX_AVG_BITS) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `chunking avg must be a power of two from 2^${MIN_AVG_BITS} to 2^${MAX_AVG_BITS}`,
      { min, avg, max },
    );
  }
  return bits;
}

const DEFAULT_BITS = checkCdcParams(DEFAULT_CDC);

/**
 * Length of the next chunk of `data[start, end)`. If end - start <= params.min, returns end - start. If no cut point
 * is found before min(end, start + max), returns min(end - start, max). The caller guarantees that unless this is the
 * last piece of the input, end - start >= params.max (so the result never depends on where the caller's buffer ends).
 */
export function nextCdcChunkLength(
  data: Uint8Array,
  start: number,
  end: number,
  params: CdcParams = DEFAULT_CDC,
): number {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end > data.length) {
    throw new CkvcError('CKVC_BAD_ARGUMENT', 'chunking range is outside the buffer', {
      start,
      end,
      length: data.length,
    });
  }
  const bits = params === DEFAULT_CDC ? DEFAULT_BITS : checkCdcParams(params);
  const { min, avg, max } = params;
  const len = end - start;
  if (len <= min) return len;
  const n = Math.min(len, max);
  const maskS = topBits(bits + 2);
  const maskL = topBits(bits - 2);
  const g = GEAR_TABLE;
  const normalEnd = start + Math.min(n, avg);
  const stop = start + n;
  let h = 0;
  let i = start + min;
  // Below avg: the stricter mask (cut points rarer).
  for (; i < normalEnd; i++) {
    h = ((h << 1) + g[data[i]!]!) | 0;
    if ((h & maskS) === 0) return i + 1 - start;
  }
  // From avg up to max: the looser mask (cut points likelier), pulling lengths towards avg.
  for (; i < stop; i++) {
    h = ((h << 1) + g[data[i]!]!) | 0;
    if ((h & maskL) === 0) return i + 1 - start;
  }
  return n;
}
