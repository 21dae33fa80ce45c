// Byte grouping (byte-group.ts) for 2- and 4-byte elements, and the XOR of delta planes (plane-codec.ts), with
// WebAssembly's 128-bit SIMD: 16 bytes a step; grouping interleaves each plane's 16 bytes with two rounds of
// i8x16.shuffle. Un-grouping each chunk was the largest single cost on a checkout's main thread and grouping one
// of the largest on a commit's: the JS loops run at 1.5-2.5 GB/s, these, with the copies into and out of the
// module's memory, at 6-12 GB/s (README, Performance). The results are those of the JS loops, byte for byte;
// they remain the reference and the fallback: for other widths, for lengths that are not a whole number of
// 16-byte steps, for buffers larger than the module's 1 MiB regions, and where WebAssembly SIMD is missing.
//
// The module is small enough to be assembled here from its instructions (no build step, no binary in the
// repository): one exported memory of two regions (input at 0, output at 1 MiB) and five functions
// (src, dst, n): group2, ungroup2, group4, ungroup4 (n elements) and xor (n bytes, dst ^= src).

const REGION = 1 << 20;
const IN = 0;
const OUT = REGION;
/**
 * Smaller inputs stay with the JS loops (the kernels win from a few hundred bytes, but these are a tensor's
 * biases and norms), so that a command that handles only such never builds the module (~3 ms the first time).
 */
const MIN_BYTES = 4096;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, bytes: number[]): number[] => [id, ...uleb(bytes.length), ...bytes];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

const I32 = 0x7f;
const V128 = 0x7b;
// Locals: 0 src, 1 dst, 2 n (parameters); 3 i (byte offset within a plane), 4 p (offset in the interleaved
// buffer); 5-12 v128 temporaries.
const [SRC, DST, N, I, P] = [0, 1, 2, 3, 4];
const get = (l: number) => [0x20, l];
const set = (l: number) => [0x21, l];
/** i32.const of a non-negative value: signed LEB128 (64 takes two bytes, its 0x40 bit would read as a sign). */
function i32(v: number): number[] {
  const out = [0x41];
  for (;;) {
    const b = v & 0x7f;
    v >>>= 7;
    if (v === 0 && !(b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}
const ADD = [0x6a];
const MUL = [0x6c];
const load = (offset = 0) => [0xfd, 0x00, 4, ...uleb(offset)];
const store = (offset = 0) => [0xfd, 0x0b, 4, ...uleb(offset)];
const shuffle = (lanes: number[]) => [0xfd, 0x0d, ...lanes];

/** Pushes the address of plane `j`'s current 16 bytes: base + j * n + i. */
const planeAt = (base: number, j: number) => [...get(base), ...get(N), ...i32(j), ...MUL, ...ADD, ...get(I), ...ADD];

/** Bytes 0-7 of a interleaved with bytes 0-7 of b, and the same for bytes 8-15. */
const ZIP8_LO = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
const ZIP8_HI = ZIP8_LO.map((x) => x + 8);
/** The same with 2-byte units. */
const ZIP16_LO = [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23];
const ZIP16_HI = ZIP16_LO.map((x) => x + 8);
/** Every 2nd byte of a then of b (from offset 0 or 1): the inverse of ZIP8. */
const EVEN = Array.from({ length: 16 }, (_, k) => 2 * k);
const ODD = EVEN.map((x) => x + 1);
/** Bytes 0, 4, 8, 12 of a and b, then 1, 5, 9, 13 (t0); 2, 6, 10, 14, then 3, 7, 11, 15 (t1). */
const QUAD_01 = [0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29];
const QUAD_23 = QUAD_01.map((x) => x + 2);
const HALVES_LO = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const HALVES_HI = HALVES_LO.map((x) => x + 8);

/** A loop over 16-element steps: `step` is the body; i advances by 16, p by 16 * width. */
function kernel(width: number, interleavedIs: number, step: number[]): number[] {
  // biome-ignore format: one group of WebAssembly instructions a line
  const body = [
    ...get(interleavedIs),
    ...set(P),
    0x02, 0x40, // block
    0x03, 0x40, // loop
    ...get(I), ...get(N), 0x4f, 0x0d, 1, // i >= n: leave
    ...step,
    ...get(I), ...i32(16), ...ADD, ...set(I),
    ...get(P), ...i32(16 * width), ...ADD, ...set(P),
    0x0c, 0, // again
    0x0b, 0x0b, 0x0b, // end loop, block, function
  ];
  const locals = vec([
    [2, I32],
    [8, V128],
  ]);
  return [...uleb(locals.length + body.length), ...locals, ...body];
}

/** The kernels' code, built when the module is first needed (a command that groups nothing never builds it). */
function functions(): [string, number[]][] {
  // biome-ignore format: one group of WebAssembly instructions a line
  const UNGROUP2 = kernel(2, DST, [
    ...planeAt(SRC, 0), ...load(), ...set(5),
    ...planeAt(SRC, 1), ...load(), ...set(6),
    ...get(P), ...get(5), ...get(6), ...shuffle(ZIP8_LO), ...store(0),
    ...get(P), ...get(5), ...get(6), ...shuffle(ZIP8_HI), ...store(16),
  ]);

  // biome-ignore format: one group of WebAssembly instructions a line
  const GROUP2 = kernel(2, SRC, [
    ...get(P), ...load(0), ...set(5),
    ...get(P), ...load(16), ...set(6),
    ...planeAt(DST, 0), ...get(5), ...get(6), ...shuffle(EVEN), ...store(),
    ...planeAt(DST, 1), ...get(5), ...get(6), ...shuffle(ODD), ...store(),
  ]);

  // biome-ignore format: one group of WebAssembly instructions a line
  const UNGROUP4 = kernel(4, DST, [
    ...planeAt(SRC, 0), ...load(), ...set(5),
    ...planeAt(SRC, 1), ...load(), ...set(6),
    ...planeAt(SRC, 2), ...load(), ...set(7),
    ...planeAt(SRC, 3), ...load(), ...set(8),
    // 5 = bytes 0 and 1 of elements 0-7, 6 = of elements 8-15; 7 and 8 the same for bytes 2 and 3.
    ...get(5), ...get(6), ...shuffle(ZIP8_LO), ...get(5), ...get(6), ...shuffle(ZIP8_HI), ...set(6), ...set(5),
    ...get(7), ...get(8), ...shuffle(ZIP8_LO), ...get(7), ...get(8), ...shuffle(ZIP8_HI), ...set(8), ...set(7),
    ...get(P), ...get(5), ...get(7), ...shuffle(ZIP16_LO), ...store(0),
    ...get(P), ...get(5), ...get(7), ...shuffle(ZIP16_HI), ...store(16),
    ...get(P), ...get(6), ...get(8), ...shuffle(ZIP16_LO), ...store(32),
    ...get(P), ...get(6), ...get(8), ...shuffle(ZIP16_HI), ...store(48),
  ]);

  // biome-ignore format: one group of WebAssembly instructions a line
  const GROUP4 = kernel(4, SRC, [
    ...get(P), ...load(0), ...set(5),
    ...get(P), ...load(16), ...set(6),
    ...get(P), ...load(32), ...set(7),
    ...get(P), ...load(48), ...set(8),
    // 9 = bytes 0 and 1 of elements 0-7, 10 = bytes 2 and 3 of them; 11 and 12 the same for elements 8-15.
    ...get(5), ...get(6), ...shuffle(QUAD_01), ...set(9),
    ...get(5), ...get(6), ...shuffle(QUAD_23), ...set(10),
    ...get(7), ...get(8), ...shuffle(QUAD_01), ...set(11),
    ...get(7), ...get(8), ...shuffle(QUAD_23), ...set(12),
    ...planeAt(DST, 0), ...get(9), ...get(11), ...shuffle(HALVES_LO), ...store(),
    ...planeAt(DST, 1), ...get(9), ...get(11), ...shuffle(HALVES_HI), ...store(),
    ...planeAt(DST, 2), ...get(10), ...get(12), ...shuffle(HALVES_LO), ...store(),
    ...planeAt(DST, 3), ...get(10), ...get(12), ...shuffle(HALVES_HI), ...store(),
  ]);

  /** dst[k] ^= src[k]: with width 1, p is dst + i. */
  // biome-ignore format: one group of WebAssembly instructions a line
  const XOR = kernel(1, DST, [...get(P), ...planeAt(SRC, 0), ...load(), ...get(P), ...load(), 0xfd, 0x51, ...store()]);

  return [
    ['group2', GROUP2],
    ['ungroup2', UNGROUP2],
    ['group4', GROUP4],
    ['ungroup4', UNGROUP4],
    ['xor', XOR],
  ];
}

function moduleBytes(fns: [string, number[]][]): Uint8Array {
  const pages = (2 * REGION) / 65536;
  // biome-ignore format: the module's sections, one a line
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), 0]])), // (i32, i32, i32) -> ()
    ...section(3, vec(fns.map(() => [0]))),
    ...section(5, vec([[0x01, ...uleb(pages), ...uleb(pages)]])), // fixed size: its buffer never detaches
    ...section(7, vec([[...name('memory'), 0x02, 0], ...fns.map(([n], k) => [...name(n), 0x00, k])])),
    ...section(10, vec(fns.map(([, code]) => code))),
  ]);
}

type Kernel = (src: number, dst: number, n: number) => void;
/** What this file uses of the WebAssembly global (Node's type definitions leave it to the DOM library). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
interface Module {
  bytes: Uint8Array;
  kernels: Record<string, Kernel>;
}

/** Undefined until first asked for; null where this Node has no WebAssembly SIMD (or no WebAssembly). */
let instance: Module | null | undefined;

function module(): Module | null {
  if (instance === undefined) {
    try {
      const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
      if (!wasm) throw new Error('no WebAssembly');
      const fns = functions();
      const { exports } = new wasm.Instance(new wasm.Module(moduleBytes(fns)));
      const memory = exports.memory as { buffer: ArrayBuffer };
      const kernels = Object.fromEntries(fns.map(([n]) => [n, exports[n] as Kernel]));
      instance = { bytes: new Uint8Array(memory.buffer), kernels };
    } catch {
      instance = null;
    }
  }
  return instance;
}

/**
 * Groups (or un-groups) `src` into `out` (same length) with the SIMD kernels and returns true, or returns false
 * without touching `out` when they do not apply; the caller then runs byte-group.ts's loops.
 */
export function simdTranspose(
  direction: 'group' | 'ungroup',
  src: Uint8Array,
  width: number,
  out: Uint8Array,
): boolean {
  const len = src.length;
  if ((width !== 2 && width !== 4) || len < MIN_BYTES || len > REGION || len % (16 * width) !== 0) return false;
  const m = module();
  if (!m) return false;
  m.bytes.set(src, IN);
  m.kernels[`${direction}${width}`]!(IN, OUT, len / width);
  out.set(m.bytes.subarray(OUT, OUT + len));
  return true;
}

/**
 * out = a XOR b (same lengths) for the leading whole 16-byte steps with the SIMD kernel; returns how many bytes
 * it did (0 when it does not apply), the caller XORs the rest.
 */
export function simdXor(out: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  const len = a.length - (a.length % 16);
  if (len < MIN_BYTES || len > REGION || b.length < len || out.length < len) return 0;
  const m = module();
  if (!m) return 0;
  m.bytes.set(a.subarray(0, len), IN);
  m.bytes.set(b.subarray(0, len), OUT);
  m.kernels.xor!(IN, OUT, len);
  out.set(m.bytes.subarray(OUT, OUT + len));
  return len;
}
