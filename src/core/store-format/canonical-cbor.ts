// Canonical CBOR (spec/FORMAT.md §3): the one encoding of a value, so equal values hash equal everywhere.
// Rules: definite lengths; shortest integer heads; map keys are text strings sorted by their encoded bytes
// (RFC 8949 §4.2.1, i.e. shorter keys first, then bytewise); integral numbers are integers; other numbers
// are always float64; no tags, no undefined. Decoding goes through cbor-x and is then re-encoded: any input
// that is not the canonical form of its own value is refused, which also rejects tags, big integers,
// duplicate keys and non-shortest forms without a hand-written validator.
import { decode as cborxDecode } from 'cbor-x';
import { CkvcError } from '../errors.js';

export type CborValue = number | string | boolean | null | Uint8Array | CborValue[] | { [key: string]: CborValue };

const textEncoder = new TextEncoder();

class ByteSink {
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

function head(out: ByteSink, major: number, n: number): void {
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

function encodeInto(out: ByteSink, v: unknown, depth: number): void {
  if (depth > 64) throw new CkvcError('CKVC_INTERNAL', 'CBOR value nested deeper than 64 levels');
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
      if (v >= 0) head(out, 0, v);
      else head(out, 1, -1 - v);
      return;
    }
    out.byte(0xfb);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, Number.isNaN(v) ? NaN : v, false);
    out.bytes(b);
    return;
  }
  if (typeof v === 'string') {
    const b = textEncoder.encode(v);
    head(out, 3, b.length);
    out.bytes(b);
    return;
  }
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
    const entries = Object.entries(v as Record<string, unknown>).map(([k, val]) => {
      if (val === undefined) throw new CkvcError('CKVC_INTERNAL', `CBOR map key "${k}" has an undefined value`);
      return [encodedKey(k, depth + 1), val] as const;
    });
    entries.sort((a, b) => compareBytes(a[0], b[0]));
    head(out, 5, entries.length);
    for (const [kb, val] of entries) {
      out.bytes(kb);
      encodeInto(out, val, depth + 1);
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

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** Decodes and insists the input is canonical. `where` names the object for the error message. */
export function decodeCanonical(bytes: Uint8Array, where: string): CborValue {
  let value: unknown;
  try {
    value = cborxDecode(bytes);
  } catch (e) {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: not valid CBOR (${(e as Error).message})`, { where });
  }
  let again: Uint8Array;
  try {
    value = integersAsNumbers(value);
    again = encodeCanonical(value as CborValue);
  } catch {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: CBOR holds a value ckvc objects never contain`, { where });
  }
  if (!sameBytes(again, bytes)) {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: CBOR is not in canonical form`, { where });
  }
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
