// What a tensor-delta kernel is: a loop over one byte range of a dtype that adds to the running sums. The
// kernels themselves live in float-delta-kernels.ts and int-delta-kernels.ts; tensor-delta.ts picks them.

/** Running totals; kernels load them into locals, loop, and store them back. */
export interface Sums {
  changed: number;
  d2: number;
  a2: number;
  maxAbs: number;
  nonFinite: number;
}

export type ChangedKernel = (a: Uint8Array, b: Uint8Array, s: Sums) => void;
export type UnchangedKernel = (a: Uint8Array, s: Sums) => void;

export interface Kernels {
  /** byteOffset alignment the views need. */
  align: number;
  /** Unit whose bytes are reversed when copying on a big-endian host (the 32-bit halves for 64-bit ints). */
  swap: number;
  changed: ChangedKernel;
  unchanged: UnchangedKernel;
}

/** The unchanged kernel of a dtype whose changed kernel is cheap enough to run with b = a. */
export function sameRange(changed: ChangedKernel): UnchangedKernel {
  return (a, s) => changed(a, a, s);
}
