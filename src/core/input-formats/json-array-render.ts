// Renders a numeric tensor as the JSON text Python's `json.dump` wrote for it (spec/JSON.md §3): the one rule
// both ingest (which keeps an array as a tensor only if this reproduces its bytes exactly) and checkout use.
import { pythonFloatRepr } from './python-float-repr.js';

/**
 * The text around the numbers, per nesting level (index 0 is the outermost list): what opens a list, what
 * separates its items and what closes it, e.g. `[`, `, `, `]` for json.dump's defaults.
 */
export interface JsonArrayLayout {
  open: string[];
  sep: string[];
  close: string[];
}

export type JsonArrayDtype = 'F64' | 'I64';

/** Layout strings hold only list punctuation and JSON whitespace, and are short (recipes are untrusted). */
export const JSON_LAYOUT_MAX_CHARS = 4096;
const LAYOUT_TEXT = /^[[\],\t\n\r ]*$/;

export function isJsonLayoutText(s: string): boolean {
  return s.length <= JSON_LAYOUT_MAX_CHARS && LAYOUT_TEXT.test(s);
}

const TWO_32 = 4294967296;
const TWO_21 = 2097152;

/** The decimal text of element i of little-endian int64 data, given as 32-bit halves. */
function int64Text(u32: Uint32Array, i32: Int32Array, i: number): string {
  const lo = u32[2 * i]!;
  const hi = i32[2 * i + 1]!;
  if (hi >= -TWO_21 && hi < TWO_21) return String(hi * TWO_32 + lo); // |value| < 2^53: exact as a double
  return ((BigInt(hi) << 32n) + BigInt(lo)).toString();
}

/** The elements as an 8-byte-aligned buffer of their own, for the typed-array views below. */
function aligned(data: Uint8Array): ArrayBuffer {
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

/** Rendered tensors are made whole in memory at checkout; ingest never makes one this large (JSON_MAX_BYTES). */
export const RENDERED_TENSOR_MAX_BYTES = 1024 ** 3;

/** Why a stored tensor cannot be rendered with `layout`, or undefined when it can (recipes are untrusted). */
export function renderProblem(
  t: { dtype: string; shape: number[]; size: number; order?: 'F' },
  layout: JsonArrayLayout,
): string | undefined {
  if (t.dtype !== 'F64' && t.dtype !== 'I64') return `has dtype ${t.dtype}, which is not rendered as JSON (F64, I64)`;
  if (t.order) return 'is in column-major order, which is not rendered as JSON';
  const levels = layout.open.length;
  if (t.shape.length !== levels) return `has ${t.shape.length} dimensions, its JSON layout ${levels}`;
  if (t.size > RENDERED_TENSOR_MAX_BYTES)
    return `is ${t.size} bytes, more than ${RENDERED_TENSOR_MAX_BYTES} are rendered as JSON`;
  const elements = t.shape.reduce((a, d) => a * d, 1);
  return elements * 8 === t.size ? undefined : `has shape ${JSON.stringify(t.shape)} but ${t.size} bytes`;
}

/** The text of element i of `data` (little-endian F64 or I64 elements). */
export function elementText(dtype: JsonArrayDtype, data: Uint8Array): (i: number) => string {
  const buf = aligned(data);
  if (dtype === 'F64') {
    const f64 = new Float64Array(buf);
    return (i) => pythonFloatRepr(f64[i]!);
  }
  const u32 = new Uint32Array(buf);
  const i32 = new Int32Array(buf);
  return (i) => int64Text(u32, i32, i);
}

/**
 * The JSON text of `data` (little-endian F64 or I64 elements, row-major `shape`), laid out by `layout`.
 * The caller has checked that layout has one entry per dimension and data holds product(shape) elements.
 */
export function renderJsonArray(
  layout: JsonArrayLayout,
  dtype: JsonArrayDtype,
  shape: number[],
  data: Uint8Array,
): string {
  const text = elementText(dtype, data);
  const out: string[] = [];
  let next = 0;
  const last = shape.length - 1;
  const level = (k: number): void => {
    const n = shape[k]!;
    if (k === last) {
      let s = layout.open[k]!;
      const sep = layout.sep[k]!;
      for (let i = 0; i < n; i++) s += i === 0 ? text(next++) : sep + text(next++);
      out.push(s + layout.close[k]!);
      return;
    }
    out.push(layout.open[k]!);
    for (let i = 0; i < n; i++) {
      if (i > 0) out.push(layout.sep[k]!);
      level(k + 1);
    }
    out.push(layout.close[k]!);
  };
  level(0);
  return out.join('');
}
