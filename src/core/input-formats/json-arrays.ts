// Finds the numeric arrays of a JSON document that can be stored as tensors (spec/JSON.md §2): lists of numbers,
// nested to equal lengths, that renderJsonArray turns back into exactly the bytes they were read from. Works on
// the file's bytes as a latin1 string, so string offsets are byte offsets. Anything that is not JSON, too deep,
// or not reproduced byte for byte is simply not an array here: the caller keeps those bytes verbatim.
import type { JsonArrayDtype, JsonArrayLayout } from './json-array-render.js';
import { readPythonFloat } from './python-float-read.js';

/** Fewer numbers than this stay text: a tensor's own records would cost about what it saves (spec/JSON.md §2). */
export const JSON_ARRAY_MIN_ELEMENTS = 256;
/** Deeper documents are not read at all (bounded recursion on untrusted input). */
export const JSON_MAX_DEPTH = 256;
/** Deeper numeric nesting is not a tensor. */
export const JSON_ARRAY_MAX_DIMS = 32;

export interface JsonArray {
  /** Byte range of the array's text, from its `[` to its `]`. */
  start: number;
  end: number;
  /** Object keys and list indices from the root, joined by '/'; the root value itself is `rootName`. */
  name: string;
  dtype: JsonArrayDtype;
  shape: number[];
  layout: JsonArrayLayout;
  /** Little-endian element bytes, row-major. */
  data: Uint8Array;
}

class NotJson extends Error {}

// Character codes: the scan compares codes rather than one-character strings.
const OPEN = 0x5b;
const CLOSE = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const COMMA = 0x2c;
const QUOTE = 0x22;
const COLON = 0x3a;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** '.', 'e', 'E', 'I' (Infinity), 'N' (NaN): a token with one is not an integer literal. */
function notIntChar(c: number): boolean {
  return c === 0x2e || c === 0x65 || c === 0x45 || c === 0x49 || c === 0x4e;
}

/** End of a scalar token (number, true, false, null, NaN, Infinity): the next delimiter or whitespace. */
function scalarEnd(t: string, p: number): number {
  for (; p < t.length; p++) {
    const c = t.charCodeAt(p);
    if (c === 0x2c || c === 0x5d || c === 0x7d || isSpace(c)) break;
  }
  return p;
}

/** End of the number token at p (a digit, '-', or NaN / Infinity first), or -1 when there is none. */
function numberEnd(t: string, p: number): number {
  const c = t.charCodeAt(p);
  if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x4e || c === 0x49)) return -1;
  // Ends at a delimiter or at whitespace or another control character (which no number holds).
  for (p++; p < t.length; p++) {
    const d = t.charCodeAt(p);
    if (d === 0x2c || d === 0x5d || d === 0x7d || d <= 0x20) break;
  }
  return p;
}

/** The token's int64 value into out[i] when it is written as Python writes that int (no '+', '-0' or leading 0). */
function readInt64(t: string, start: number, end: number, out: DataView, i: number): boolean {
  const negative = t.charCodeAt(start) === 0x2d;
  const first = negative ? start + 1 : start;
  const len = end - first;
  if (len === 0 || len > 19 || (t.charCodeAt(first) === 0x30 && (len > 1 || negative))) return false;
  let x = 0;
  for (let p = first; p < end; p++) {
    const c = t.charCodeAt(p);
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
  const v = BigInt(t.slice(start, end));
  if (v < INT64_MIN || v > INT64_MAX) return false;
  out.setBigInt64(8 * i, v, true);
  return true;
}

/**
 * Element bytes for the tokens, when each renders back to its own text: I64 when all are integer literals, else
 * F64 (spec/JSON.md §2, §3). Undefined when any token is not exactly what renderJsonArray writes for its value.
 */
function elementBytes(t: string, tokens: TokenSpans, intLike: boolean): ElementBytes | undefined {
  const { starts, ends, count } = tokens;
  if (intLike) {
    const data = new Uint8Array(8 * count);
    const view = new DataView(data.buffer);
    for (let i = 0; i < count; i++) if (!readInt64(t, starts[i]!, ends[i]!, view, i)) return undefined;
    return { dtype: 'I64', data };
  }
  const f = new Float64Array(count);
  for (let i = 0; i < count; i++) if (!readPythonFloat(t, starts[i]!, ends[i]!, f, i)) return undefined;
  return { dtype: 'F64', data: new Uint8Array(f.buffer) };
}

interface ElementBytes {
  dtype: JsonArrayDtype;
  data: Uint8Array;
}

/** Where each number of an array starts and ends in the text, in a pair of typed arrays grown as needed. */
class TokenSpans {
  starts: Int32Array;
  ends: Int32Array;
  count = 0;

  /** A number takes two bytes of text at least ("1,"); an eighth of the text is room enough for most files. */
  constructor(textLength: number) {
    const capacity = Math.min(Math.max(1024, textLength >> 3), 1 << 22);
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
  }

  push(start: number, end: number): void {
    if (this.count === this.starts.length) {
      this.starts = grown(this.starts);
      this.ends = grown(this.ends);
    }
    this.starts[this.count] = start;
    this.ends[this.count++] = end;
  }
}

function grown(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

class JsonArrayFinder {
  private pos = 0;
  private readonly path: string[] = [];
  private readonly names = new Set<string>();
  /** Reused by every array: only the one being read is in it. */
  private readonly tokens: TokenSpans;
  readonly found: JsonArray[] = [];

  constructor(
    private readonly t: string,
    private readonly rootName: string,
  ) {
    this.tokens = new TokenSpans(t.length);
  }

  run(): void {
    this.value(0);
    this.ws();
    if (this.pos !== this.t.length) throw new NotJson();
  }

  private ws(): void {
    while (this.pos < this.t.length && isSpace(this.t.charCodeAt(this.pos))) this.pos++;
  }

  private expect(c: number): void {
    if (this.t.charCodeAt(this.pos) !== c) throw new NotJson();
    this.pos++;
  }

  private value(depth: number): void {
    if (depth > JSON_MAX_DEPTH) throw new NotJson();
    this.ws();
    const c = this.t.charCodeAt(this.pos);
    if (c === LBRACE) this.object(depth);
    else if (c === OPEN) this.array(depth);
    else if (c === QUOTE) this.string();
    else {
      const end = scalarEnd(this.t, this.pos);
      if (end === this.pos) throw new NotJson();
      this.pos = end;
    }
  }

  /** Skips a string; returns its text between the quotes, still escaped. */
  private string(): string {
    const start = ++this.pos;
    for (;;) {
      const c = this.t.charCodeAt(this.pos);
      if (Number.isNaN(c)) throw new NotJson();
      if (c === 0x22) break;
      this.pos += c === 0x5c ? 2 : 1;
    }
    return this.t.slice(start, this.pos++);
  }

  private object(depth: number): void {
    this.pos++;
    this.ws();
    if (this.t.charCodeAt(this.pos) === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.t.charCodeAt(this.pos) !== QUOTE) throw new NotJson();
      const raw = this.string();
      let key: string;
      try {
        key = JSON.parse(`"${Buffer.from(raw, 'latin1').toString('utf8')}"`) as string;
      } catch {
        throw new NotJson();
      }
      this.ws();
      this.expect(COLON);
      this.path.push(key);
      this.value(depth + 1);
      this.path.pop();
      this.ws();
      if (this.t.charCodeAt(this.pos) === RBRACE) break;
      this.expect(COMMA);
    }
    this.pos++;
  }

  private array(depth: number): void {
    const start = this.pos;
    const numeric = this.numericArray(start);
    if (numeric === 'too small') return;
    if (numeric) {
      this.found.push(numeric);
      this.names.add(numeric.name);
      this.pos = numeric.end;
      return;
    }
    this.pos = start + 1;
    this.ws();
    if (this.t.charCodeAt(this.pos) === CLOSE) {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      this.path.push(String(i));
      this.value(depth + 1);
      this.path.pop();
      this.ws();
      if (this.t.charCodeAt(this.pos) === CLOSE) break;
      this.expect(COMMA);
    }
    this.pos++;
  }

  /**
   * The numeric array starting at `start` if it is one and renders back to its own bytes; 'too small' (with
   * pos past it) when it is numeric, rectangular and shorter than the minimum, so nothing inside it can be.
   */
  private numericArray(start: number): JsonArray | 'too small' | undefined {
    const shape = readNumericNesting(this.t, start, this.tokens);
    if (!shape) return undefined;
    const { end, dims, tokens, layout, intLike } = shape;
    if (tokens.count < JSON_ARRAY_MIN_ELEMENTS) {
      this.pos = end;
      return 'too small';
    }
    const name = this.path.length ? this.path.join('/') : this.rootName;
    if (this.names.has(name)) return undefined;
    // With every open, sep and close of a level equal (readNumericNesting checked), this is
    // renderJsonArray(...) === text, decided number by number instead of building the text.
    const elements = elementBytes(this.t, tokens, intLike);
    if (!elements) return undefined;
    return { start, end, name, dtype: elements.dtype, shape: dims, layout, data: elements.data };
  }
}

interface NumericNesting {
  end: number;
  dims: number[];
  tokens: TokenSpans;
  layout: JsonArrayLayout;
  /** No token has a '.', an exponent, NaN or Infinity. */
  intLike: boolean;
}

/** Records the first text seen at one place of the layout; false when a later one differs from it. */
function same(list: string[], k: number, t: string, from: number, to: number): boolean {
  const seen = list[k];
  if (seen === undefined) {
    list[k] = t.slice(from, to);
    return true;
  }
  return seen.length === to - from && t.startsWith(seen, from);
}

/**
 * Reads lists of scalar tokens nested to equal, non-zero lengths from the `[` at `start`, with the same text
 * at each place of the layout (every open, separator and close of one level alike). Undefined for anything else.
 */
function readNumericNesting(t: string, start: number, tokens: TokenSpans): NumericNesting | undefined {
  const dims: number[] = [];
  const layout: JsonArrayLayout = { open: [], sep: [], close: [] };
  tokens.count = 0;
  let leaf = -1;
  let intLike = true;
  let p = start;
  const skipWs = () => {
    while (p < t.length && isSpace(t.charCodeAt(p))) p++;
  };
  const level = (k: number): boolean => {
    if (k >= JSON_ARRAY_MAX_DIMS) return false;
    const open = p++;
    skipWs();
    if (!same(layout.open, k, t, open, p)) return false;
    if (leaf < 0) leaf = t.charCodeAt(p) === OPEN ? -1 : k;
    let count = 0;
    for (;;) {
      if (leaf < 0 || k < leaf) {
        if (t.charCodeAt(p) !== OPEN || !level(k + 1)) return false;
      } else {
        const end = numberEnd(t, p);
        if (end < 0) return false;
        if (intLike) for (let q = p; q < end; q++) if (notIntChar(t.charCodeAt(q))) intLike = false;
        tokens.push(p, end);
        p = end;
        count++;
        // The common case, the separator seen before and no more whitespace after it, without skipping twice.
        const sep = layout.sep[k];
        if (sep !== undefined && t.startsWith(sep, p) && !isSpace(t.charCodeAt(p + sep.length))) {
          p += sep.length;
          continue;
        }
      }
      if (k < leaf) count++;
      const itemEnd = p;
      skipWs();
      if (t.charCodeAt(p) === CLOSE) {
        p++;
        if (!same(layout.close, k, t, itemEnd, p)) return false;
        break;
      }
      if (t.charCodeAt(p) !== COMMA) return false;
      p++;
      skipWs();
      if (!same(layout.sep, k, t, itemEnd, p)) return false;
    }
    if (dims[k] === undefined) dims[k] = count;
    return dims[k] === count;
  };
  if (!level(0) || leaf < 0) return undefined;
  for (let k = 0; k <= leaf; k++) layout.sep[k] ??= ', '; // one-item lists: never rendered, still recorded
  return { end: p, dims, tokens, layout, intLike };
}

/** The arrays to store as tensors, in text order, or undefined when the text is not a JSON document. */
export function findJsonArrays(text: string, rootName: string): JsonArray[] | undefined {
  const finder = new JsonArrayFinder(text, rootName);
  try {
    finder.run();
  } catch (e) {
    if (e instanceof NotJson) return undefined;
    throw e;
  }
  return finder.found;
}
