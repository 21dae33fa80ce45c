// The order-0 entropy estimates that decide how a byte plane is stored (plane-codec.ts): raw, compressed, or XORed
// with its base's plane. They run on the main thread for every plane of every chunk a commit stores (1,600 planes
// for a 98.8 MB checkpoint), so both halves are shaped for speed:
// - the histogram is kept in 4 interleaved copies, one per sample of each group of 4. A plane of few distinct
//   bytes (an exponent plane, an XOR of barely changed bytes) sends almost every sample to one counter, and each
//   increment then waits for the one before it; 4 copies let 4 run at once (full's commit: 52 -> ~25 ms);
// - the entropy comes from a table of c·log2(c) rather than a logarithm per counter: H = log2(n) - Σ c·log2(c) / n,
//   the same value as -Σ p·log2(p) to within rounding (an estimate compared with thresholds, never stored).

/** Samples per plane, evenly spaced: enough to tell noise from structure. */
const SAMPLE_BYTES = 4 * 1024;
const LANES = 4;
const plainCounts = new Uint32Array(256 * LANES);
const xorCounts = new Uint32Array(256 * LANES);
/** c·log2(c) for every count a histogram can hold: at most 2 · SAMPLE_BYTES samples are taken (see step). */
let countLog2Count: Float64Array | undefined;

function countLog2CountTable(): Float64Array {
  const t = new Float64Array(2 * SAMPLE_BYTES + 1);
  for (let c = 2; c < t.length; c++) t[c] = c * Math.log2(c);
  return t;
}

/** Bits per byte of the `n` samples counted in `counts` (LANES copies, interleaved per byte value). */
function entropyOf(counts: Uint32Array, n: number): number {
  if (n === 0) return 0;
  const table = (countLog2Count ??= countLog2CountTable());
  let sum = 0;
  for (let b = 0; b < counts.length; b += LANES)
    sum += table[counts[b]! + counts[b + 1]! + counts[b + 2]! + counts[b + 3]!]!;
  // Rounding can take a constant plane's 0 a hair below it.
  return Math.max(0, Math.log2(n) - sum / n);
}

/**
 * Order-0 entropy of an evenly spaced sample of `plane`, and of the same sample XORed with `other` (Infinity
 * without it), in bits per byte. One pass for both: the strided reads of the plane were most of the cost.
 */
export function sampledEntropies(plane: Uint8Array, other?: Uint8Array): [plain: number, xored: number] {
  const len = plane.length;
  // len < (step + 1) · SAMPLE_BYTES, so at most 2 · SAMPLE_BYTES samples: the table's size.
  const step = Math.max(1, Math.floor(len / SAMPLE_BYTES));
  const step2 = 2 * step;
  const step3 = 3 * step;
  const p = plainCounts;
  p.fill(0);
  let i = 0;
  let n = 0;
  if (!other) {
    for (; i + step3 < len; i += 4 * step, n += 4) {
      p[plane[i]! << 2]!++;
      p[(plane[i + step]! << 2) | 1]!++;
      p[(plane[i + step2]! << 2) | 2]!++;
      p[(plane[i + step3]! << 2) | 3]!++;
    }
    for (; i < len; i += step, n++) p[plane[i]! << 2]!++;
    return [entropyOf(p, n), Infinity];
  }
  const x = xorCounts;
  x.fill(0);
  for (; i + step3 < len; i += 4 * step, n += 4) {
    const a0 = plane[i]!;
    const a1 = plane[i + step]!;
    const a2 = plane[i + step2]!;
    const a3 = plane[i + step3]!;
    p[a0 << 2]!++;
    p[(a1 << 2) | 1]!++;
    p[(a2 << 2) | 2]!++;
    p[(a3 << 2) | 3]!++;
    x[(a0 ^ other[i]!) << 2]!++;
    x[((a1 ^ other[i + step]!) << 2) | 1]!++;
    x[((a2 ^ other[i + step2]!) << 2) | 2]!++;
    x[((a3 ^ other[i + step3]!) << 2) | 3]!++;
  }
  for (; i < len; i += step, n++) {
    const b = plane[i]!;
    p[b << 2]!++;
    x[(b ^ other[i]!) << 2]!++;
  }
  return [entropyOf(p, n), entropyOf(x, n)];
}
