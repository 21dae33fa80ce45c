// Canonical CBOR (spec/FORMAT.md §3): the one encoding of a value, so equal values hash equal everywhere.
// Rules: definite lengths; shortest integer heads; map keys are text strings sorted by their encoded bytes
// (RFC 8949 §4.2.1, i.e. shorter keys first, then bytewise); integral numbers are integers; other numbers
// are always float64; no tags, no undefined. Decoding goes through cbor-x and the input is then compared with
// the encoding of the value it gave, as that is made: any input that is not the canonical form of its own value
// is refused, which also rejects tags, big integers, duplicate keys and non-shortest forms without a
// hand-written validator.
import { decode as cborxDecode } from 'cbor-x';
import { CkvcError } from '../errors.js';

export type CborValue = number | string | boolean | null | Uint8Array | CborValue[] | { [key: string]: CborValue };

const textEncoder = new TextEncoder();

/** Where encodeInto puts bytes: a growing buffer (encodeCanonical), or a comparison with bytes (decodeCanonical). */
interface Sink {
  byte(b: number): void;
  bytes(b: Uint8Array): void;
}

class ByteSink implements Sink {
  private buf = new Uint8Array(256);
  private len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Thrown inside encodeInto by a ByteMatcher at the first byte that differs; never leaves this file. */
const DIFFERS = new Error('not the canonical encoding');

/**
 * Compares the encoding with given bytes as it is made, instead of making it and comparing after: the check
 * every object read goes through (decodeCanonical) then allocates nothing and stops at the first difference.
 */
class ByteMatcher implements Sink {
  private pos = 0;
  constructor(private readonly expected: Uint8Array) {}
  byte(b: number): void {
    if (this.expected[this.pos] !== b) throw DIFFERS;
    this.pos++;
  }
  bytes(b: Uint8Array): void {
    const e = this.expected;
    const p = this.pos;
    if (p + b.length > e.length) throw DIFFERS;
    if (b.length > 64) {
      if (!Buffer.from(e.buffer, e.byteOffset + p, b.length).equals(b)) throw DIFFERS;
    } else for (let i = 0; i < b.length; i++) if (e[p + i] !== b[i]) throw DIFFERS;
    this.pos = p + b.length;
  }
  /** Whether the encoding covered the bytes exactly (it stopped at none of them, and left none over). */
  done(): boolean {
    return this.pos === this.expected.length;
  }
}

function head(out: Sink, major: number, n: number): void {
  const m = major << 5;
  if (n < 24) out.byte(m | n);
  else if (n < 0x100) {
    out.byte(m | 24);
    out.byte(n);
  } else if (n < 0x10000) {
    out.byte(m | 25);
    out.byte(n >>> 8);
    out.byte(n & 0xff);
  } else if (n < 0x100000000) {
    out.byte(m | 26);
    out.byte(n >>> 24);
    out.byte((n >>> 16) & 0xff);
    out.byte((n >>> 8) & 0xff);
    out.byte(n & 0xff);
  } else {
    out.byte(m | 27);
    const hi = Math.floor(n / 0x100000000);
    const lo = n >>> 0;
    out.byte(hi >>> 24);
    out.byte((hi >>> 16) & 0xff);
    out.byte((hi >>> 8) & 0xff);
    out.byte(hi & 0xff);
    out.byte(lo >>> 24);
    out.byte((lo >>> 16) & 0xff);
    out.byte((lo >>> 8) & 0xff);
    out.byte(lo & 0xff);
  }
}

/**
 * Encoded map keys by text: objects repeat a few field names thousands of times per commit (a recipe's `offset`,
 * `length`, `id`), and encoding each into a sink of its own was a tenth of a commit's CBOR time. Bounded, since
 * decoding checks objects from other people with whatever keys they hold.
 */
const encodedKeys = new Map<string, Uint8Array>();
const MAX_CACHED_KEYS = 1024;
const MAX_CACHED_KEY_LENGTH = 64;

function encodedKey(k: string, depth: number): Uint8Array {
  const known = encodedKeys.get(k);
  if (known) return known;
  const kb = new ByteSink();
  encodeInto(kb, k, depth);
  const bytes = kb.result();
  if (encodedKeys.size < MAX_CACHED_KEYS && k.length <= MAX_CACHED_KEY_LENGTH) encodedKeys.set(k, bytes);
  return bytes;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const FLOAT_BYTES = new Uint8Array(8);
const FLOAT_VIEW = new DataView(FLOAT_BYTES.buffer);

/**
 * A text string: ASCII byte by byte (field names, dtypes, hex IDs: most of the strings objects hold), the rest
 * through TextEncoder, whose call costs more than the copy for short strings.
 */
function encodeText(out: Sink, s: string): void {
  const n = s.length;
  if (n <= 64) {
    let ascii = true;
    for (let i = 0; i < n && ascii; i++) ascii = s.charCodeAt(i) < 0x80;
    if (ascii) {
      head(out, 3, n);
      for (let i = 0; i < n; i++) out.byte(s.charCodeAt(i));
      return;
    }
  }
  const b = textEncoder.encode(s);
  head(out, 3, b.length);
  out.bytes(b);
}

/** Indices of `keys` (encoded) in canonical order; an insertion sort, as maps here have a handful of keys. */
function canonicalOrder(keys: Uint8Array[]): number[] {
  const order = keys.map((_, i) => i);
  if (keys.length > 16) return order.sort((a, b) => compareBytes(keys[a]!, keys[b]!));
  for (let i = 1; i < order.length; i++) {
    const x = order[i]!;
    let j = i - 1;
    for (; j >= 0 && compareBytes(keys[order[j]!]!, keys[x]!) > 0; j--) order[j + 1] = order[j]!;
    order[j + 1] = x;
  }
  return order;
}

function encodeInto(out: Sink, v: unknown, depth: number): void {
  if (depth > 64) throw new CkvcError('CKVC_INTERNAL', 'CBOR value nested deeper than 64 levels');
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
      if (v >= 0) head(out, 0, v);
      else head(out, 1, -1 - v);
      return;
    }
    out.byte(0xfb);
    FLOAT_VIEW.setFloat64(0, Number.isNaN(v) ? NaN : v, false);
    out.bytes(FLOAT_BYTES);
    return;
  }
  if (typeof v === 'string') return encodeText(out, v);
  if (v === false) return out.byte(0xf4);
  if (v === true) return out.byte(0xf5);
  if (v === null) return out.byte(0xf6);
  if (v instanceof Uint8Array) {
    head(out, 2, v.length);
    out.bytes(v);
    return;
  }
  if (Array.isArray(v)) {
    head(out, 4, v.length);
    for (const item of v) encodeInto(out, item, depth + 1);
    return;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const encoded = keys.map((k) => {
      if (o[k] === undefined) throw new CkvcError('CKVC_INTERNAL', `CBOR map key "${k}" has an undefined value`);
      return encodedKey(k, depth + 1);
    });
    head(out, 5, keys.length);
    for (const i of canonicalOrder(encoded)) {
      out.bytes(encoded[i]!);
      encodeInto(out, o[keys[i]!], depth + 1);
    }
    return;
  }
  throw new CkvcError(
    'CKVC_INTERNAL',
    `value of type ${typeof v} (${Object.prototype.toString.call(v)}) has no canonical CBOR form`,
  );
}

export function encodeCanonical(v: CborValue): Uint8Array {
  const out = new ByteSink();
  encodeInto(out, v, 0);
  return out.result();
}

const notCanonical = (where: string) =>
  new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: CBOR is not in canonical form`, { where });

/** Decodes and insists the input is canonical. `where` names the object for the error message. */
export function decodeCanonical(bytes: Uint8Array, where: string): CborValue {
  let value: unknown;
  try {
    value = cborxDecode(bytes);
  } catch (e) {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: not valid CBOR (${(e as Error).message})`, { where });
  }
  const matcher = new ByteMatcher(bytes);
  try {
    value = integersAsNumbers(value);
    encodeInto(matcher, value, 0);
  } catch (e) {
    if (e === DIFFERS) throw notCanonical(where);
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: CBOR holds a value ckvc objects never contain`, { where });
  }
  if (!matcher.done()) throw notCanonical(where);
  return value as CborValue;
}

// cbor-x returns 64-bit integers as bigint; ckvc's integers (times, sizes) are all safe JS numbers.
function integersAsNumbers(v: unknown): unknown {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
      throw new Error('integer out of range');
    return Number(v);
  }
  if (Array.isArray(v)) return v.map(integersAsNumbers);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = integersAsNumbers(o[k]);
  }
  return v;
}
