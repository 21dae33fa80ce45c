// NumPy .npy headers (format versions 1.0, 2.0 and 3.0), read the way numpy.lib.format reads them, including
// its 10,000-byte header cap. Pure code: callers hand in the first bytes of the array file.
// spec/ARCHIVES.md §3 lists the rules and which arrays become tensors.

export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** numpy refuses headers longer than this unless told otherwise (`max_header_size`). */
export const NPY_MAX_HEADER_BYTES = 10_000;
/** Enough leading bytes to hold any header we accept: magic, version, length field, header. */
export const NPY_PREFIX_BYTES = 12 + NPY_MAX_HEADER_BYTES;

export class NpyRefusal extends Error {}

export interface NpyDtype {
  /** A safetensors dtype name, so the array can be diffed and written into a safetensors subset. */
  dtype: string;
  bytes: number;
}

// Little-endian (or byte-sized) numeric types only: those are bytes a safetensors reader understands.
const DESCR_DTYPES: Readonly<Record<string, NpyDtype>> = Object.freeze({
  '|b1': { dtype: 'BOOL', bytes: 1 },
  '|i1': { dtype: 'I8', bytes: 1 },
  '|u1': { dtype: 'U8', bytes: 1 },
  '<i2': { dtype: 'I16', bytes: 2 },
  '<u2': { dtype: 'U16', bytes: 2 },
  '<i4': { dtype: 'I32', bytes: 4 },
  '<u4': { dtype: 'U32', bytes: 4 },
  '<i8': { dtype: 'I64', bytes: 8 },
  '<u8': { dtype: 'U64', bytes: 8 },
  '<f2': { dtype: 'F16', bytes: 2 },
  '<f4': { dtype: 'F32', bytes: 4 },
  '<f8': { dtype: 'F64', bytes: 8 },
  '<c8': { dtype: 'C64', bytes: 8 },
});

export interface NpyHeader {
  version: 1 | 2 | 3;
  /** Bytes from the start of the array file to its first data byte. */
  dataOffset: number;
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Undefined for dtypes ckvc keeps as opaque bytes (object arrays, structured, strings, big-endian). */
  known?: NpyDtype;
  /** Data bytes a known dtype implies (numel × width). */
  dataBytes?: number;
}

/** True when the bytes start like an .npy file. */
export function isNpy(first: Uint8Array): boolean {
  return first.length >= NPY_MAGIC.length && NPY_MAGIC.every((b, i) => first[i] === b);
}

/** Parses the preamble and header from `prefix` (the first bytes; at most NPY_PREFIX_BYTES are needed). */
export function parseNpyHeader(prefix: Uint8Array): NpyHeader {
  if (!isNpy(prefix)) throw new NpyRefusal('does not start with the .npy magic bytes');
  if (prefix.length < 10) throw new NpyRefusal('is shorter than an .npy preamble');
  const major = prefix[6]!;
  const minor = prefix[7]!;
  if ((major !== 1 && major !== 2 && major !== 3) || minor !== 0)
    throw new NpyRefusal(`has .npy format version ${major}.${minor} (known: 1.0, 2.0, 3.0)`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (prefix.length < 8 + lengthBytes) throw new NpyRefusal('is shorter than an .npy preamble');
  let headerLength = 0;
  for (let i = lengthBytes - 1; i >= 0; i--) headerLength = headerLength * 256 + prefix[8 + i]!;
  if (headerLength > NPY_MAX_HEADER_BYTES)
    throw new NpyRefusal(`declares a ${headerLength}-byte header (numpy's cap is ${NPY_MAX_HEADER_BYTES})`);
  const start = 8 + lengthBytes;
  if (prefix.length < start + headerLength) throw new NpyRefusal('ends inside its header');
  const raw = prefix.subarray(start, start + headerLength);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(raw);
  } catch {
    throw new NpyRefusal('has a header that is not valid text for its version');
  }
  if (!text.endsWith('\n')) throw new NpyRefusal('has a header that does not end with a newline');
  const dict = new LiteralParser(text, major < 3).dict();
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (dict.size !== 3 || descr === undefined || fortran === undefined || shape === undefined) {
    throw new NpyRefusal('has a header whose keys are not exactly descr, fortran_order and shape');
  }
  if (typeof fortran !== 'boolean') throw new NpyRefusal('has a non-boolean fortran_order');
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0))
    throw new NpyRefusal('has a shape that is not a tuple of non-negative integers');
  const header: NpyHeader = {
    version: major,
    dataOffset: start + headerLength,
    descr: typeof descr === 'string' ? descr : '(structured)',
    fortranOrder: fortran,
    shape: shape as number[],
  };
  const known = typeof descr === 'string' && Object.hasOwn(DESCR_DTYPES, descr) ? DESCR_DTYPES[descr] : undefined;
  if (known) {
    let numel = 1;
    for (const d of header.shape) numel *= d;
    const dataBytes = numel * known.bytes;
    if (!Number.isSafeInteger(dataBytes)) throw new NpyRefusal('has a shape too large to address');
    header.known = known;
    header.dataBytes = dataBytes;
  }
  return header;
}

type Literal = string | number | boolean | null | Literal[] | Map<string, Literal>;

/**
 * The part of Python's literal syntax that numpy writes in .npy headers: dicts, tuples, lists, str, int, bool,
 * accepted exactly as numpy's `ast.literal_eval` would (a header numpy cannot load must not become a tensor).
 */
class LiteralParser {
  private i = 0;

  /** `longSuffix`: numpy strips Python 2's `3L` from version 1 and 2 headers only. */
  constructor(
    private readonly s: string,
    private readonly longSuffix: boolean,
  ) {}

  /** Python's tokenizer whitespace only (not NBSP, vertical tab or Unicode spaces, which JavaScript's \s takes). */
  private ws(): void {
    while (this.i < this.s.length && ' \t\f\r\n'.includes(this.s[this.i]!)) this.i++;
  }

  private fail(what: string): never {
    throw new NpyRefusal(`has a header numpy would not parse (${what} at character ${this.i})`);
  }

  private eat(c: string): boolean {
    this.ws();
    if (this.s[this.i] === c) {
      this.i++;
      return true;
    }
    return false;
  }

  dict(): Map<string, Literal> {
    const v = this.value(0);
    this.ws();
    if (this.i !== this.s.length) this.fail('text after the dict');
    if (!(v instanceof Map)) this.fail('a header that is not a dict');
    return v;
  }

  /** Items up to `close`; `comma` says whether any comma was written (`(2)` is 2, `(2,)` a tuple). */
  private sequence(close: string, depth: number): { items: Literal[]; comma: boolean } {
    const items: Literal[] = [];
    let comma = false;
    for (;;) {
      if (this.eat(close)) return { items, comma };
      items.push(this.value(depth + 1));
      if (this.eat(close)) return { items, comma };
      if (!this.eat(',')) this.fail(`expected "," or "${close}"`);
      comma = true;
    }
  }

  private value(depth: number): Literal {
    if (depth > 32) this.fail('nesting too deep');
    this.ws();
    const c = this.s[this.i];
    if (c === '{') {
      this.i++;
      const m = new Map<string, Literal>();
      for (;;) {
        if (this.eat('}')) return m;
        const k = this.value(depth + 1);
        if (typeof k !== 'string') this.fail('a dict key that is not a string');
        if (m.has(k)) this.fail(`a repeated key "${k}"`);
        if (!this.eat(':')) this.fail('expected ":"');
        m.set(k, this.value(depth + 1));
        if (this.eat('}')) return m;
        if (!this.eat(',')) this.fail('expected "," or "}"');
      }
    }
    if (c === '(') {
      this.i++;
      const { items, comma } = this.sequence(')', depth);
      return items.length === 1 && !comma ? items[0]! : items;
    }
    if (c === '[') {
      this.i++;
      return this.sequence(']', depth).items;
    }
    if (c === "'" || c === '"') {
      const end = this.s.indexOf(c, this.i + 1);
      if (end < 0) this.fail('an unterminated string');
      const str = this.s.slice(this.i + 1, end);
      if (str.includes('\\')) this.fail('an escape in a string');
      this.i = end + 1;
      return str;
    }
    const m = /^(True|False|None|-?\d+L?)(?![A-Za-z0-9_])/.exec(this.s.slice(this.i, this.i + 32));
    if (!m) this.fail('an unexpected character');
    const tok = m[1]!;
    if (tok === 'True' || tok === 'False' || tok === 'None') {
      this.i += tok.length;
      return tok === 'True' ? true : tok === 'False' ? false : null;
    }
    if (tok.endsWith('L') && !this.longSuffix) this.fail('a Python 2 long suffix in a version 3 header');
    const digits = tok.replace(/^-/, '').replace(/L$/, '');
    if (digits.length > 1 && digits.startsWith('0')) this.fail('an integer with a leading zero');
    this.i += tok.length;
    return Number(tok.replace(/L$/, ''));
  }
}
