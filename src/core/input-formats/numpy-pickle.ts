// Finds the NumPy arrays inside a pickle (pickle.dump of dicts and lists of arrays, as JAX and NumPy users save
// params and optimizer state) WITHOUT unpickling: the symbolic machine runs the opcodes, then this walk looks for
// the two shapes NumPy writes (spec/ARCHIVES.md §4) and names each array by the dict keys and list indices that
// lead to it. Only arrays whose raw bytes lie in the pickle as one byte string are reported; anything else
// (object, structured or big-endian arrays, protocol 2's text-encoded bytes, scalars) is left to stay verbatim.
import { Machine } from './pickle-machine.js';
import { PickleNotUnderstood, type Value } from './pickle-values.js';

export interface NumpyPickleArray {
  /** Dict keys and list/tuple indices from the root joined by '/'; the root itself is `rootName`. */
  name: string;
  /** Byte range of the array's raw data inside the pickle. */
  start: number;
  end: number;
  dtype: string;
  shape: number[];
  /** Column-major data (a Fortran-order array of two or more dimensions). */
  order?: 'F';
}

const MAX_DEPTH = 64;
const MAX_NAME_CHARS = 1024;
const MAX_ARRAYS = 1_000_000;

/** NumPy type codes ckvc stores as tensors, and their safetensors dtypes; the element width is the code's digit. */
const DTYPES: Record<string, string> = {
  f2: 'F16',
  f4: 'F32',
  f8: 'F64',
  i1: 'I8',
  i2: 'I16',
  i4: 'I32',
  i8: 'I64',
  u1: 'U8',
  u2: 'U16',
  u4: 'U32',
  u8: 'U64',
  b1: 'BOOL',
};
const RECONSTRUCT = new Set(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct']);
const FROMBUFFER = new Set(['numpy.core.numeric._frombuffer', 'numpy._core.numeric._frombuffer']);

type Obj = Exclude<Value, null | boolean | number | string>;
const isObj = (v: Value | undefined): v is Obj => typeof v === 'object' && v !== null;
const globalName = (v: Value | undefined) => (isObj(v) && v.k === 'global' ? v.name : undefined);
const items = (v: Value | undefined) => (isObj(v) && (v.k === 'tuple' || v.k === 'list') ? v.items : undefined);

function uintList(v: Value | undefined): number[] | undefined {
  const xs = items(v);
  if (!xs?.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) return undefined;
  return xs as number[];
}

/**
 * `numpy.dtype('f4', False, True)` with BUILD state `(3, '<', None, None, None, -1, -1, 0)`: a plain little-endian
 * (or byte-order-free) type of a known code, without fields or subarrays. Undefined for anything else.
 */
function plainDtype(v: Value | undefined): { dtype: string; width: number } | undefined {
  if (!isObj(v) || v.k !== 'call' || globalName(v.fn) !== 'numpy.dtype') return undefined;
  const code = items(v.args)?.[0];
  const state = items(v.state);
  if (typeof code !== 'string' || !Object.hasOwn(DTYPES, code) || !state) return undefined;
  const [, order, subarray, names, fields] = state;
  if ((order !== '<' && order !== '|') || subarray !== null || names !== null || fields !== null) return undefined;
  return { dtype: DTYPES[code]!, width: Number(code[1]) };
}

/** The array a recognised call builds, located in the pickle, or undefined. */
function arrayOf(v: Obj): Omit<NumpyPickleArray, 'name'> | undefined {
  if (v.k !== 'call') return undefined;
  const fn = globalName(v.fn);
  let dt: Value | undefined, shapeV: Value | undefined, raw: Value | undefined, fortran: boolean;
  if (fn && RECONSTRUCT.has(fn)) {
    // _reconstruct(ndarray, (0,), b'b') then BUILD (version, shape, dtype, is_fortran, rawdata)
    const st = items(v.state);
    if (st?.length !== 5 || st[0] !== 1 || typeof st[3] !== 'boolean') return undefined;
    [shapeV, dt, fortran, raw] = [st[1], st[2], st[3], st[4]];
  } else if (fn && FROMBUFFER.has(fn)) {
    // protocol 5: _frombuffer(PickleBuffer (in-band BYTEARRAY8 or bytes), dtype, shape, order)
    const a = items(v.args);
    if (a?.length !== 4 || (a[3] !== 'C' && a[3] !== 'F')) return undefined;
    [raw, dt, shapeV, fortran] = [a[0], a[1], a[2], a[3] === 'F'];
  } else return undefined;
  const d = plainDtype(dt);
  const shape = uintList(shapeV);
  if (!d || !shape || !isObj(raw) || raw.k !== 'bytes') return undefined;
  const elements = shape.reduce((a, n) => a * n, 1);
  if (elements * d.width !== raw.end - raw.start) return undefined;
  const order = fortran && shape.length > 1 ? { order: 'F' as const } : {};
  return { start: raw.start, end: raw.end, dtype: d.dtype, shape, ...order };
}

class ArrayWalk {
  readonly found: NumpyPickleArray[] = [];
  private readonly taken = new Set<number>();
  private readonly names = new Set<string>();
  private readonly active = new Set<Value>();
  private budget: number;

  constructor(pickleBytes: number) {
    this.budget = 1_000_000 + 16 * pickleBytes;
  }

  visit(v: Value, name: string, depth: number): void {
    if (!isObj(v) || depth > MAX_DEPTH || this.active.has(v)) return;
    if (--this.budget < 0) {
      throw new PickleNotUnderstood('the pickle refers to the same objects too many times to walk');
    }
    this.active.add(v);
    try {
      this.inner(v, name, depth);
    } finally {
      this.active.delete(v);
    }
  }

  private inner(v: Obj, name: string, depth: number): void {
    const join = (key: Value | undefined): string | undefined => {
      const part =
        typeof key === 'string' ? key : typeof key === 'number' && Number.isSafeInteger(key) ? String(key) : undefined;
      return part === undefined ? undefined : name === '' ? part : `${name}/${part}`;
    };
    const a = arrayOf(v);
    if (a) {
      // The same array reached twice (a shared memo entry) is cut once, under its first name.
      if (this.taken.has(a.start) || this.names.has(name) || name.length > MAX_NAME_CHARS) return;
      if (this.found.length >= MAX_ARRAYS) throw new PickleNotUnderstood(`more than ${MAX_ARRAYS} arrays`);
      this.taken.add(a.start);
      this.names.add(name);
      this.found.push({ name, ...a });
      return;
    }
    if (v.k === 'dict' || v.k === 'call') {
      for (const [k, x] of v.entries) {
        const n = join(k);
        if (n !== undefined) this.visit(x, n, depth + 1);
      }
    }
    if (v.k === 'list' || v.k === 'tuple')
      v.items.forEach((x, i) => {
        this.visit(x, join(i)!, depth + 1);
      });
    if (v.k === 'call') {
      // A named tuple or dataclass (an optimizer state): its fields are its arguments, by position, or its state.
      items(v.args)?.forEach((x, i) => {
        this.visit(x, join(i)!, depth + 1);
      });
      if (v.state !== undefined && v.state !== null) this.visit(v.state, name, depth + 1);
    }
  }
}

/**
 * The NumPy arrays of a pickle, sorted by position (their byte ranges never overlap). Throws PickleNotUnderstood
 * when the stream is not one the symbolic machine follows; the caller then keeps the file as opaque bytes.
 */
export function readNumpyPickle(pkl: Uint8Array, rootName: string): NumpyPickleArray[] {
  const root = new Machine(pkl).run();
  const walk = new ArrayWalk(pkl.length);
  walk.visit(root, '', 0);
  return walk.found.map((a) => (a.name === '' ? { ...a, name: rootName } : a)).sort((x, y) => x.start - y.start);
}
