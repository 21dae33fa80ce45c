// Reads one candidate tensor of a JSON text (spec/JSON.md §2): lists of numbers nested to equal, non-zero lengths,
// with the same text at each place of the layout, and the numbers themselves in the same pass (each number's
// characters are looked at once: python-float-read's scanNumberToken finds its end and reads it). One reader serves
// every array (json-arrays.ts), so its buffers and its methods' compiled code are reused: a commit is often one
// short process, where most of the reading happens before the JIT has warmed up.
import type { JsonArrayDtype, JsonArrayLayout } from './json-array-render.js';
import { latin1Text, startsWithText } from './json-text-bytes.js';
import { INTEGER_TOKEN, NO_NUMBER, PYTHON_FLOAT, scanNumberToken, scanned } from './python-float-read.js';

/** Deeper numeric nesting is not a tensor. */
export const JSON_ARRAY_MAX_DIMS = 32;

const OPEN = 0x5b;
const CLOSE = 0x5d;
const COMMA = 0x2c;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** The token's int64 value into out[i] when it is written as Python writes that int (no '+', '-0' or leading 0). */
function readInt64(t: Uint8Array, start: number, end: number, out: DataView, i: number): boolean {
  const negative = t[start] === 0x2d;
  const first = negative ? start + 1 : start;
  const len = end - first;
  if (len === 0 || len > 19 || (t[first] === 0x30 && (len > 1 || negative))) return false;
  let x = 0;
  for (let p = first; p < end; p++) {
    const c = t[p]!;
    if (c < 0x30 || c > 0x39) return false;
    if (len < 16) x = x * 10 + (c - 0x30); // exact: under 10^15
  }
  if (len < 16) {
    if (negative) x = -x;
    const hi = Math.floor(x / 4294967296);
    out.setUint32(8 * i, x - hi * 4294967296, true);
    out.setInt32(8 * i + 4, hi, true);
    return true;
  }
  const v = BigInt(latin1Text(t, start, end));
  if (v < INT64_MIN || v > INT64_MAX) return false;
  out.setBigInt64(8 * i, v, true);
  return true;
}

const INITIAL_NUMBERS = 1024;
/** A reader keeps buffers for up to this many numbers between documents (8 MiB of doubles). */
const KEPT_NUMBERS = 1024 * 1024;
const NO_TEXT = new Uint8Array(0);

/** Where each integer token of an array starts and ends in the text, in a pair of typed arrays grown as needed. */
class TokenSpans {
  starts = new Int32Array(INITIAL_NUMBERS);
  ends = new Int32Array(INITIAL_NUMBERS);
  count = 0;

  push(start: number, end: number): void {
    if (this.count === this.starts.length) {
      this.starts = grown(this.starts);
      this.ends = grown(this.ends);
    }
    this.starts[this.count] = start;
    this.ends[this.count++] = end;
  }
}

function grown<T extends Int32Array | Float64Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

/** Records the first text seen at one place of the layout; false when a later one differs from it. */
function same(list: string[], k: number, t: Uint8Array, from: number, to: number): boolean {
  const seen = list[k];
  if (seen === undefined) {
    list[k] = latin1Text(t, from, to);
    return true;
  }
  return seen.length === to - from && startsWithText(t, from, seen);
}

export interface NumericNesting {
  /** Just past the closing `]`. */
  end: number;
  dims: number[];
  layout: JsonArrayLayout;
  /** How many numbers the lists hold. */
  count: number;
}

export class NumericNestingReader {
  private t: Uint8Array = NO_TEXT;
  private p = 0;
  private dims: number[] = [];
  private layout: JsonArrayLayout = { open: [], sep: [], close: [] };
  private leaf = -1;
  private count = 0;
  /** Every token so far is an integer literal (their spans are in `ints`). */
  private intLike = true;
  /** Every token so far is Python's repr of the double stored at its place in `values`. */
  private floats = true;
  private values = new Float64Array(INITIAL_NUMBERS);
  private ints = new TokenSpans();

  /**
   * Lets go of the text read last, and of buffers grown past KEPT_NUMBERS (one huge array must not hold its
   * memory for the rest of the process); what is kept is reused by the next document.
   */
  release(): void {
    this.t = NO_TEXT;
    if (this.values.length > KEPT_NUMBERS) this.values = new Float64Array(INITIAL_NUMBERS);
    if (this.ints.starts.length > KEPT_NUMBERS) this.ints = new TokenSpans();
  }

  /**
   * Reads lists of number tokens nested to equal, non-zero lengths from the `[` at `start`, with the same text
   * at each place of the layout (every open, separator and close of one level alike). Undefined for anything else.
   */
  read(t: Uint8Array, start: number): NumericNesting | undefined {
    this.t = t;
    this.p = start;
    this.dims = [];
    this.layout = { open: [], sep: [], close: [] };
    this.leaf = -1;
    this.count = 0;
    this.intLike = true;
    this.floats = true;
    this.ints.count = 0;
    if (!this.level(0) || this.leaf < 0) return undefined;
    for (let k = 0; k <= this.leaf; k++) this.layout.sep[k] ??= ', '; // one-item lists: never rendered, recorded
    return { end: this.p, dims: this.dims, layout: this.layout, count: this.count };
  }

  /**
   * The element bytes of the lists read last when every number renders back as its own text (spec/JSON.md §2,
   * §3): I64 when all are integer literals, else F64. With every open, sep and close of a level equal (read checked
   * them), this is renderJsonArray(...) === text, decided number by number instead of building the text.
   */
  elements(): { dtype: JsonArrayDtype; data: Uint8Array } | undefined {
    if (this.intLike) {
      const { starts, ends, count } = this.ints;
      const data = new Uint8Array(8 * count);
      const view = new DataView(data.buffer);
      for (let i = 0; i < count; i++) if (!readInt64(this.t, starts[i]!, ends[i]!, view, i)) return undefined;
      return { dtype: 'I64', data };
    }
    if (!this.floats) return undefined;
    return { dtype: 'F64', data: new Uint8Array(this.values.slice(0, this.count).buffer) };
  }

  private skipWs(): void {
    const t = this.t;
    let p = this.p;
    while (p < t.length && isSpace(t[p]!)) p++;
    this.p = p;
  }

  private level(k: number): boolean {
    if (k >= JSON_ARRAY_MAX_DIMS) return false;
    const t = this.t;
    const layout = this.layout;
    const open = this.p++;
    this.skipWs();
    if (!same(layout.open, k, t, open, this.p)) return false;
    if (this.leaf < 0) this.leaf = t[this.p] === OPEN ? -1 : k;
    let count = 0;
    for (;;) {
      if (this.leaf < 0 || k < this.leaf) {
        if (t[this.p] !== OPEN || !this.level(k + 1)) return false;
        count++;
      } else {
        if (!this.number()) return false;
        count++;
        // The common case, the separator seen before and no more whitespace after it, without skipping twice.
        const sep = layout.sep[k];
        const p = this.p;
        if (sep !== undefined && startsWithText(t, p, sep) && !isSpace(t[p + sep.length]!)) {
          this.p = p + sep.length;
          continue;
        }
      }
      const itemEnd = this.p;
      this.skipWs();
      if (t[this.p] === CLOSE) {
        this.p++;
        if (!same(layout.close, k, t, itemEnd, this.p)) return false;
        break;
      }
      if (t[this.p] !== COMMA) return false;
      this.p++;
      this.skipWs();
      if (!same(layout.sep, k, t, itemEnd, this.p)) return false;
    }
    if (this.dims[k] === undefined) this.dims[k] = count;
    return this.dims[k] === count;
  }

  /** Reads the number token at p into the next element; false when no number starts there. */
  private number(): boolean {
    const i = this.count;
    if (i === this.values.length) this.values = grown(this.values);
    const start = this.p;
    const kind = scanNumberToken(this.t, start, this.values, i);
    if (kind === NO_NUMBER) return false;
    const end = scanned.end;
    if (kind !== INTEGER_TOKEN) this.intLike = false;
    else if (this.intLike) this.ints.push(start, end);
    if (kind !== PYTHON_FLOAT) this.floats = false;
    this.count = i + 1;
    this.p = end;
    return true;
  }
}
