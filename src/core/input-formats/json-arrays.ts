// Finds the numeric arrays of a JSON document that can be stored as tensors (spec/JSON.md §2): lists of numbers,
// nested to equal lengths, that renderJsonArray turns back into exactly the bytes they were read from. Works on
// the file's bytes themselves (json-text-bytes.ts says why). Anything that is not JSON, too deep,
// or not reproduced byte for byte is simply not an array here: the caller keeps those bytes verbatim.
import type { JsonArrayDtype, JsonArrayLayout } from './json-array-render.js';
import { isSpace, NumericNestingReader } from './json-numeric-nesting.js';

export { JSON_ARRAY_MAX_DIMS } from './json-numeric-nesting.js';

/** Fewer numbers than this stay text: a tensor's own records would cost about what it saves (spec/JSON.md §2). */
export const JSON_ARRAY_MIN_ELEMENTS = 256;
/** Deeper documents are not read at all (bounded recursion on untrusted input). */
export const JSON_MAX_DEPTH = 256;

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

/** End of a scalar token (number, true, false, null, NaN, Infinity): the next delimiter or whitespace. */
function scalarEnd(t: Uint8Array, p: number): number {
  for (; p < t.length; p++) {
    const c = t[p]!;
    if (c === 0x2c || c === 0x5d || c === 0x7d || isSpace(c)) break;
  }
  return p;
}

/**
 * One nesting reader for every array of every document (only the one being read is in it): its number buffers
 * grow to the largest array read so far and stay, instead of growing again from 1024 numbers (1 MB for each
 * snapshot of the JSON series) for every document a long-lived committer reads, in fresh memory whose first touch
 * costs a page fault per 4 KiB (30% fewer in the reader's first passes over the series). Documents are read one at
 * a time: findJsonArrays is synchronous.
 */
const nesting = new NumericNestingReader();

class JsonArrayFinder {
  private pos = 0;
  private readonly path: string[] = [];
  private readonly names = new Set<string>();
  readonly found: JsonArray[] = [];

  constructor(
    private readonly t: Uint8Array,
    private readonly rootName: string,
    private readonly nesting: NumericNestingReader,
  ) {}

  run(): void {
    this.value(0);
    this.ws();
    if (this.pos !== this.t.length) throw new NotJson();
  }

  private ws(): void {
    while (this.pos < this.t.length && isSpace(this.t[this.pos]!)) this.pos++;
  }

  private expect(c: number): void {
    if (this.t[this.pos] !== c) throw new NotJson();
    this.pos++;
  }

  private value(depth: number): void {
    if (depth > JSON_MAX_DEPTH) throw new NotJson();
    this.ws();
    const c = this.t[this.pos];
    if (c === LBRACE) this.object(depth);
    else if (c === OPEN) this.array(depth);
    else if (c === QUOTE) this.string();
    else {
      const end = scalarEnd(this.t, this.pos);
      if (end === this.pos) throw new NotJson();
      this.pos = end;
    }
  }

  /** Skips a string; returns where its text between the quotes (still escaped) starts. */
  private string(): number {
    const start = ++this.pos;
    for (;;) {
      const c = this.t[this.pos];
      if (c === undefined) throw new NotJson();
      if (c === 0x22) break;
      this.pos += c === 0x5c ? 2 : 1;
    }
    this.pos++;
    return start;
  }

  private object(depth: number): void {
    this.pos++;
    this.ws();
    if (this.t[this.pos] === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.t[this.pos] !== QUOTE) throw new NotJson();
      const start = this.string();
      const raw = Buffer.from(this.t.buffer, this.t.byteOffset + start, this.pos - 1 - start).toString('utf8');
      let key: string;
      try {
        key = JSON.parse(`"${raw}"`) as string;
      } catch {
        throw new NotJson();
      }
      this.ws();
      this.expect(COLON);
      this.path.push(key);
      this.value(depth + 1);
      this.path.pop();
      this.ws();
      if (this.t[this.pos] === RBRACE) break;
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
    if (this.t[this.pos] === CLOSE) {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      this.path.push(String(i));
      this.value(depth + 1);
      this.path.pop();
      this.ws();
      if (this.t[this.pos] === CLOSE) break;
      this.expect(COMMA);
    }
    this.pos++;
  }

  /**
   * The numeric array starting at `start` if it is one and renders back to its own bytes; 'too small' (with
   * pos past it) when it is numeric, rectangular and shorter than the minimum, so nothing inside it can be.
   */
  private numericArray(start: number): JsonArray | 'too small' | undefined {
    const nesting = this.nesting.read(this.t, start);
    if (!nesting) return undefined;
    const { end, dims, layout, count } = nesting;
    if (count < JSON_ARRAY_MIN_ELEMENTS) {
      this.pos = end;
      return 'too small';
    }
    const name = this.path.length ? this.path.join('/') : this.rootName;
    if (this.names.has(name)) return undefined;
    const elements = this.nesting.elements();
    if (!elements) return undefined;
    return { start, end, name, dtype: elements.dtype, shape: dims, layout, data: elements.data };
  }
}

/** The arrays to store as tensors, in text order, or undefined when the text is not a JSON document. */
export function findJsonArrays(text: Uint8Array, rootName: string): JsonArray[] | undefined {
  const finder = new JsonArrayFinder(text, rootName, nesting);
  try {
    finder.run();
  } catch (e) {
    if (e instanceof NotJson) return undefined;
    throw e;
  } finally {
    nesting.release();
  }
  return finder.found;
}
