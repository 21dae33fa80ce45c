// Byte-level safetensors header parser and validator. Pure code (no fs, no node: imports): callers read
// the first 8 bytes, then the header bytes, and hand them in with the file size.
//
// The rules follow the reference implementation (the Rust `safetensors` crate, `SafeTensors::read_metadata`
// + `Metadata::validate`, parsed with serde_json), made stricter where the reference is silently lenient
// (duplicate keys) and reported with a stable `rule` string per failure. spec/SAFETENSORS.md lists them.

import { CkvcError } from '../errors.js';

/** The reference refuses headers longer than this (bytes, not counting the 8-byte length prefix). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Every dtype the reference `Dtype` enum knows, with its width in bits per element. */
export const SAFETENSORS_DTYPE_BITS: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
});

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute file offset of the first byte: 8 + headerLength + data_offsets[0]. */
  begin: number;
  /** Absolute file offset one past the last byte: 8 + headerLength + data_offsets[1]. */
  end: number;
}

export interface SafetensorsLayout {
  headerLength: number;
  /** = 8 + headerLength */
  dataStart: number;
  metadata: Record<string, string> | undefined;
  /** Sorted by (begin, end, name); only zero-size tensors can share a begin. */
  tensors: SafetensorsTensorInfo[];
}

const ELEMENT_WIDTH: Readonly<Record<string, number>> = Object.freeze({
  F16: 2,
  BF16: 2,
  I16: 2,
  U16: 2,
  F32: 4,
  I32: 4,
  U32: 4,
  C64: 4, // complex64 = two f32 parts: group bytes like F32
  F64: 8,
  I64: 8,
  U64: 8,
});

/** Bytes per element for byte-grouping codecs; 1 for byte and sub-byte dtypes (and anything unknown). */
export function safetensorsElementWidth(dtype: string): number {
  return Object.hasOwn(ELEMENT_WIDTH, dtype) ? (ELEMENT_WIDTH[dtype] as number) : 1;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

function fail(rule: string, message: string, source: string | undefined, details: Record<string, unknown> = {}): never {
  const data: Record<string, unknown> = { rule };
  if (source !== undefined) data.source = source;
  Object.assign(data, details);
  const text = source !== undefined ? `${source}: ${message}` : message;
  throw new CkvcError('CKVC_BAD_SAFETENSORS', text, data);
}

function checkFileSize(fileSize: number): void {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new CkvcError('CKVC_INTERNAL', `safetensors: fileSize must be a non-negative safe integer, got ${String(fileSize)}`, {
      fileSize,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Length prefix

/**
 * Reads the little-endian u64 header length from the first 8 bytes of a file of `fileSize` bytes.
 * Rejects files shorter than 8 bytes, lengths above SAFETENSORS_MAX_HEADER_BYTES and headers running past
 * the end of the file.
 */
export function readSafetensorsHeaderLength(first8: Uint8Array, fileSize: number, source?: string): number {
  checkFileSize(fileSize);
  if (fileSize < 8 || first8.length < 8) {
    fail('file-too-small', `file is ${Math.min(fileSize, first8.length)} bytes, shorter than the 8-byte header length prefix`, source, {
      fileSize,
    });
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  if (hi !== 0 || lo > SAFETENSORS_MAX_HEADER_BYTES) {
    const declared = (BigInt(hi) << 32n) | BigInt(lo);
    fail(
      'header-too-large',
      `header length prefix says ${declared} bytes, more than the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`,
      source,
      { headerLength: declared.toString(), limit: SAFETENSORS_MAX_HEADER_BYTES },
    );
  }
  if (8 + lo > fileSize) {
    fail(
      'header-out-of-bounds',
      `header length prefix says ${lo} bytes but the file has only ${fileSize - 8} bytes after the prefix`,
      source,
      { headerLength: lo, fileSize },
    );
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------------------
// A strict JSON parser (RFC 8259, with serde_json's extra refusals): objects keep every key in order, so
// duplicates can be seen; numbers keep their literal text, so `1.0`, `1e2` and `-0` can be told apart from
// integers (serde_json refuses them as usize); lone UTF-16 surrogate escapes, non-finite numbers and
// nesting deeper than serde_json's recursion limit are refused like serde_json does.

class JsonNumber {
  constructor(readonly raw: string) {}
}

class JsonObject {
  readonly keys: string[] = [];
  readonly values: JsonValue[] = [];
}

// A plain non-negative integer literal of at most 15 digits is a JS number; every other number literal is a
// JsonNumber holding its text.
type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | JsonObject;

class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

// serde_json starts with remaining_depth = 128 and fails when an opening bracket brings it to 0.
const MAX_JSON_DEPTH = 127;

class JsonParser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipWs();
    const value = this.parseValue();
    this.skipWs();
    if (this.pos < this.text.length) this.error('unexpected data after the JSON value');
    return value;
  }

  private error(message: string): never {
    throw new JsonSyntaxError(message, this.pos);
  }

  private skipWs(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private parseValue(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.parseObject();
      case 0x5b /* [ */:
        return this.parseArray();
      case 0x22 /* " */:
        return this.parseString();
      case 0x74 /* t */:
        return this.parseLiteral('true', true);
      case 0x66 /* f */:
        return this.parseLiteral('false', false);
      case 0x6e /* n */:
        return this.parseLiteral('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        if (Number.isNaN(c)) this.error('unexpected end of JSON');
        this.error(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    }
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.error('invalid literal');
    this.pos += word.length;
    return value;
  }

  private enter(): void {
    if (++this.depth > MAX_JSON_DEPTH) this.error(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
  }

  private parseObject(): JsonObject {
    this.enter();
    this.pos++; // {
    const obj = new JsonObject();
    this.skipWs();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      this.depth--;
      return obj;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) this.error('expected a string key');
      obj.keys.push(this.parseString());
      this.skipWs();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.error("expected ':'");
      this.pos++;
      this.skipWs();
      obj.values.push(this.parseValue());
      this.skipWs();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWs();
      } else if (c === 0x7d) {
        this.pos++;
        this.depth--;
        return obj;
      } else {
        this.error("expected ',' or '}'");
      }
    }
  }

  private parseArray(): JsonValue[] {
    this.enter();
    this.pos++; // [
    const arr: JsonValue[] = [];
    this.skipWs();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      this.depth--;
      return arr;
    }
    for (;;) {
      arr.push(this.parseValue());
      this.skipWs();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWs();
      } else if (c === 0x5d) {
        this.pos++;
        this.depth--;
        return arr;
      } else {
        this.error("expected ',' or ']'");
      }
    }
  }

  private parseString(): string {
    const t = this.text;
    let p = this.pos + 1; // after the opening quote
    let start = p;
    let out = '';
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out === '' ? t.slice(start, p) : out + t.slice(start, p);
      }
      if (c === 0x5c) {
        out += t.slice(start, p);
        this.pos = p;
        out += this.parseEscape();
        p = this.pos;
        start = p;
        continue;
      }
      if (Number.isNaN(c)) {
        this.pos = p;
        this.error('unterminated string');
      }
      if (c < 0x20) {
        this.pos = p;
        this.error('control character in string');
      }
      p++;
    }
  }

  // At a backslash; consumes the escape and returns the text it stands for.
  private parseEscape(): string {
    const t = this.text;
    const c = t.charCodeAt(this.pos + 1);
    this.pos += 2;
    switch (c) {
      case 0x22:
        return '"';
      case 0x5c:
        return '\\';
      case 0x2f:
        return '/';
      case 0x62:
        return '\b';
      case 0x66:
        return '\f';
      case 0x6e:
        return '\n';
      case 0x72:
        return '\r';
      case 0x74:
        return '\t';
      case 0x75: {
        const u = this.readHex4();
        if (u >= 0xdc00 && u <= 0xdfff) this.error('lone trailing surrogate in \\u escape');
        if (u >= 0xd800 && u <= 0xdbff) {
          if (t.charCodeAt(this.pos) !== 0x5c || t.charCodeAt(this.pos + 1) !== 0x75) {
            this.error('lone leading surrogate in \\u escape');
          }
          this.pos += 2;
          const low = this.readHex4();
          if (low < 0xdc00 || low > 0xdfff) this.error('lone leading surrogate in \\u escape');
          return String.fromCharCode(u, low);
        }
        return String.fromCharCode(u);
      }
      default:
        this.pos -= 1;
        this.error('invalid escape');
    }
  }

  private readHex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.text.charCodeAt(this.pos + i);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else {
        this.pos += i;
        this.error('invalid \\u escape');
      }
      v = v * 16 + d;
    }
    this.pos += 4;
    return v;
  }

  private parseNumber(): number | JsonNumber {
    const t = this.text;
    const start = this.pos;
    let p = start;
    // fast path: up to 15 digits, no sign, fraction or exponent (always a safe integer)
    let c = t.charCodeAt(p);
    if (c >= 0x31 && c <= 0x39) {
      let v = 0;
      do {
        v = v * 10 + (c - 0x30);
        c = t.charCodeAt(++p);
      } while (c >= 0x30 && c <= 0x39);
      if (p - start <= 15 && c !== 0x2e && c !== 0x65 && c !== 0x45) {
        this.pos = p;
        return v;
      }
      p = start;
    } else if (c === 0x30) {
      c = t.charCodeAt(p + 1);
      if (c !== 0x2e && c !== 0x65 && c !== 0x45 && !(c >= 0x30 && c <= 0x39)) {
        this.pos = p + 1;
        return 0;
      }
    }
    const digits = (): void => {
      const s = p;
      while (p < t.length && t.charCodeAt(p) >= 0x30 && t.charCodeAt(p) <= 0x39) p++;
      if (p === s) {
        this.pos = p;
        this.error('invalid number');
      }
    };
    if (t.charCodeAt(p) === 0x2d) p++;
    if (t.charCodeAt(p) === 0x30) p++;
    else digits();
    if (t.charCodeAt(p) === 0x2e) {
      p++;
      digits();
    }
    const e = t.charCodeAt(p);
    if (e === 0x65 || e === 0x45) {
      p++;
      const s = t.charCodeAt(p);
      if (s === 0x2b || s === 0x2d) p++;
      digits();
    }
    const raw = t.slice(start, p);
    this.pos = p;
    // serde_json refuses numbers outside the f64 range ("number out of range"); JSON.parse gives Infinity.
    if (!Number.isFinite(Number(raw))) {
      this.pos = start;
      this.error('number out of range');
    }
    return new JsonNumber(raw);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Header parsing and validation

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A non-negative integer written as one (no sign, fraction or exponent) that fits a JS safe integer. */
function asIndex(v: JsonValue): number | undefined {
  if (typeof v === 'number') return v;
  if (!(v instanceof JsonNumber)) return undefined;
  const raw = v.raw;
  if (raw.length > 16) return undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  if (raw.length > 1 && raw.charCodeAt(0) === 0x30) return undefined; // cannot happen in valid JSON
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

function describe(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (v instanceof JsonNumber) return `the number ${v.raw.length > 40 ? v.raw.slice(0, 40) + '…' : v.raw}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return 'an object';
}

interface Pending {
  name: string;
  dtype: string;
  shape: number[];
  b: number; // relative data offsets
  e: number;
}

/**
 * Parses and validates the N header bytes (without the 8-byte length prefix) of a safetensors file of
 * `fileSize` bytes. Throws CkvcError('CKVC_BAD_SAFETENSORS', …, { rule, source, … }) on the first broken rule.
 */
export function parseSafetensorsHeader(header: Uint8Array, fileSize: number, source?: string): SafetensorsLayout {
  checkFileSize(fileSize);
  const headerLength = header.length;
  if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) {
    fail('header-too-large', `header is ${headerLength} bytes, more than the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`, source, {
      headerLength,
      limit: SAFETENSORS_MAX_HEADER_BYTES,
    });
  }
  if (fileSize < 8) {
    fail('file-too-small', `file is ${fileSize} bytes, shorter than the 8-byte header length prefix`, source, { fileSize });
  }
  if (8 + headerLength > fileSize) {
    fail(
      'header-out-of-bounds',
      `header is ${headerLength} bytes but the file has only ${fileSize - 8} bytes after the length prefix`,
      source,
      { headerLength, fileSize },
    );
  }
  const dataStart = 8 + headerLength;

  let text: string;
  try {
    text = UTF8.decode(header);
  } catch {
    fail('header-not-utf8', `header (${headerLength} bytes at offset 8) is not valid UTF-8`, source, { headerLength });
  }

  let root: JsonValue;
  try {
    root = new JsonParser(text).parseDocument();
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    fail('header-not-json', `header is not valid JSON: ${e.message} at character ${e.position}`, source, {
      position: e.position,
      reason: e.message,
    });
  }
  if (!(root instanceof JsonObject)) {
    fail('header-not-object', `header JSON is ${describe(root)}, not an object`, source);
  }
  if (header[0] !== 0x7b) {
    fail('header-start', `header must begin with '{' but its first byte is 0x${(header[0] ?? 0).toString(16).padStart(2, '0')}`, source, {
      firstByte: header[0],
    });
  }

  // --- entries
  const seen = new Set<string>();
  let metadata: Record<string, string> | undefined;
  const pending: Pending[] = [];
  const { keys, values } = root;
  for (let i = 0; i < keys.length; i++) {
    const name = keys[i] as string;
    const value = values[i] as JsonValue;
    if (seen.has(name)) {
      fail('duplicate-name', `header has the key ${JSON.stringify(name)} more than once`, source, { name });
    }
    seen.add(name);

    if (name === '__metadata__') {
      metadata = readMetadata(value, source);
      continue;
    }

    const q = (): string => JSON.stringify(name);
    if (!(value instanceof JsonObject)) {
      fail('bad-entry', `tensor ${q()}: entry is ${describe(value)}, not an object`, source, { name });
    }
    let dtypeV: JsonValue | undefined;
    let shapeV: JsonValue | undefined;
    let offsetsV: JsonValue | undefined;
    for (let k = 0; k < value.keys.length; k++) {
      const key = value.keys[k] as string;
      const v = value.values[k] as JsonValue;
      if (key === 'dtype' || key === 'shape' || key === 'data_offsets') {
        const prev = key === 'dtype' ? dtypeV : key === 'shape' ? shapeV : offsetsV;
        if (prev !== undefined) fail('bad-entry', `tensor ${q()}: field "${key}" appears more than once`, source, { name, field: key });
        if (key === 'dtype') dtypeV = v;
        else if (key === 'shape') shapeV = v;
        else offsetsV = v;
      }
      // other keys are ignored, as the reference (serde without deny_unknown_fields) does
    }
    if (dtypeV === undefined || shapeV === undefined || offsetsV === undefined) {
      const field = dtypeV === undefined ? 'dtype' : shapeV === undefined ? 'shape' : 'data_offsets';
      fail('bad-entry', `tensor ${q()}: missing field "${field}"`, source, { name, field });
    }

    if (typeof dtypeV !== 'string') {
      fail('bad-entry', `tensor ${q()}: dtype is ${describe(dtypeV)}, not a string`, source, { name, field: 'dtype' });
    }
    if (!Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtypeV)) {
      fail('unknown-dtype', `tensor ${q()}: unknown dtype ${JSON.stringify(dtypeV)}`, source, { name, dtype: dtypeV });
    }

    if (!Array.isArray(shapeV)) {
      fail('bad-shape', `tensor ${q()}: shape is ${describe(shapeV)}, not an array`, source, { name });
    }
    const shape: number[] = new Array<number>(shapeV.length);
    for (let d = 0; d < shapeV.length; d++) {
      const n = asIndex(shapeV[d] as JsonValue);
      if (n === undefined) {
        fail('bad-shape', `tensor ${q()}: shape[${d}] is ${describe(shapeV[d])}, not a non-negative integer up to 2^53-1`, source, {
          name,
          index: d,
        });
      }
      shape[d] = n;
    }

    if (!Array.isArray(offsetsV) || offsetsV.length !== 2) {
      fail('bad-offsets', `tensor ${q()}: data_offsets is ${describe(offsetsV)}, not an array of 2`, source, { name });
    }
    const b = asIndex(offsetsV[0] as JsonValue);
    const e = asIndex(offsetsV[1] as JsonValue);
    if (b === undefined || e === undefined) {
      const which = b === undefined ? 0 : 1;
      fail(
        'bad-offsets',
        `tensor ${q()}: data_offsets[${which}] is ${describe(offsetsV[which])}, not a non-negative integer up to 2^53-1`,
        source,
        { name, index: which },
      );
    }
    if (b > e) {
      fail('bad-offsets', `tensor ${q()}: data_offsets [${b}, ${e}] begin after they end`, source, { name, dataOffsets: [b, e] });
    }
    pending.push({ name, dtype: dtypeV, shape, b, e });
  }

  // --- layout: sort as the reference does (by data_offsets), names break ties between zero-size tensors
  pending.sort((x, y) => x.b - y.b || x.e - y.e || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));

  const dataLength = fileSize - dataStart;
  const tensors: SafetensorsTensorInfo[] = new Array<SafetensorsTensorInfo>(pending.length);
  let cursor = 0;
  let prevName: string | undefined;
  for (let i = 0; i < pending.length; i++) {
    const t = pending[i] as Pending;
    const q = (): string => JSON.stringify(t.name);
    if (t.b !== cursor) {
      const after = prevName === undefined ? 'the data section starts at 0' : `the previous tensor ${JSON.stringify(prevName)} ends at ${cursor}`;
      const what = t.b > cursor ? `a gap of ${t.b - cursor} bytes` : `an overlap of ${cursor - t.b} bytes`;
      fail('gap-or-overlap', `tensor ${q()}: data_offsets [${t.b}, ${t.e}] start at ${t.b} but ${after} (${what})`, source, {
        name: t.name,
        dataOffsets: [t.b, t.e],
        expectedBegin: cursor,
      });
    }
    cursor = t.e;
    prevName = t.name;

    let numel = 1;
    for (const d of t.shape) {
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) {
        fail('numel-overflow', `tensor ${q()}: shape [${t.shape.join(', ')}] has more than 2^53-1 elements`, source, {
          name: t.name,
          shape: t.shape,
        });
      }
    }
    const bits = SAFETENSORS_DTYPE_BITS[t.dtype] as number;
    let bytes: number;
    if (bits % 8 === 0) {
      bytes = numel * (bits / 8);
      if (!Number.isSafeInteger(bytes)) {
        fail('numel-overflow', `tensor ${q()}: ${t.dtype} shape [${t.shape.join(', ')}] is more than 2^53-1 bytes`, source, {
          name: t.name,
          shape: t.shape,
          dtype: t.dtype,
        });
      }
    } else {
      const tailBits = (numel % 8) * bits;
      if (tailBits % 8 !== 0) {
        fail(
          'size-mismatch',
          `tensor ${q()}: ${numel} elements of ${t.dtype} (${bits} bits each) is not a whole number of bytes`,
          source,
          { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [t.b, t.e] },
        );
      }
      bytes = Math.floor(numel / 8) * bits + tailBits / 8;
    }
    if (t.e - t.b !== bytes) {
      fail(
        'size-mismatch',
        `tensor ${q()}: data_offsets [${t.b}, ${t.e}] hold ${t.e - t.b} bytes but ${t.dtype} shape [${t.shape.join(', ')}] needs ${bytes}`,
        source,
        { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [t.b, t.e], expectedBytes: bytes },
      );
    }
    tensors[i] = { name: t.name, dtype: t.dtype, shape: t.shape, begin: dataStart + t.b, end: dataStart + t.e };
  }

  if (cursor < dataLength) {
    const at = prevName === undefined ? 'there are no tensors' : `the last tensor ${JSON.stringify(prevName)} ends at ${cursor}`;
    fail('trailing-bytes', `data section is ${dataLength} bytes but ${at}: ${dataLength - cursor} bytes are not covered by any tensor`, source, {
      dataLength,
      coveredLength: cursor,
    });
  }
  if (cursor > dataLength) {
    fail(
      'data-truncated',
      `the last tensor ${JSON.stringify(prevName)} ends at data offset ${cursor} but the data section is only ${dataLength} bytes (file truncated?)`,
      source,
      { dataLength, coveredLength: cursor, name: prevName },
    );
  }

  return { headerLength, dataStart, metadata, tensors };
}

function readMetadata(value: JsonValue, source: string | undefined): Record<string, string> | undefined {
  // The reference types __metadata__ as Option<HashMap<String, String>>: null means "absent".
  if (value === null) return undefined;
  if (!(value instanceof JsonObject)) {
    fail('bad-metadata', `__metadata__ is ${describe(value)}, not an object of strings`, source);
  }
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (let k = 0; k < value.keys.length; k++) {
    const key = value.keys[k] as string;
    const v = value.values[k] as JsonValue;
    if (seen.has(key)) fail('bad-metadata', `__metadata__ has the key ${JSON.stringify(key)} more than once`, source, { key });
    seen.add(key);
    if (typeof v !== 'string') {
      fail('bad-metadata', `__metadata__[${JSON.stringify(key)}] is ${describe(v)}, not a string`, source, { key });
    }
    // defineProperty, so a key named "__proto__" becomes an own property instead of touching the prototype
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
