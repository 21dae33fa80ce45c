import { describe, it, expect } from 'vitest';
import { CkvcError } from '../../src/core/errors.js';
import { SAFETENSORS_DTYPE_BITS, safetensorsElementWidth } from '../../src/core/input-formats/safetensors-dtypes.js';
import {
  SAFETENSORS_MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  type SafetensorsLayout,
} from '../../src/core/input-formats/safetensors.js';
import { loadVector } from './vectors.js';

// ---------------------------------------------------------------------------------------------------------
// helpers

const enc = new TextEncoder();

interface TensorSpec {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** Builds a valid safetensors file: tensors laid out in the given order, header padded with spaces to 8. */
function buildSafetensors(
  tensors: Record<string, TensorSpec>,
  opts: { metadata?: Record<string, string>; pad?: boolean } = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let text = JSON.stringify(header);
  if (opts.pad !== false) text += ' '.repeat((8 - (enc.encode(text).length % 8)) % 8);
  return assemble(
    enc.encode(text),
    Object.values(tensors).map((t) => t.data),
  );
}

function assemble(headerBytes: Uint8Array, data: Uint8Array[] = [], declaredLength?: bigint): Uint8Array {
  const dataLen = data.reduce((a, d) => a + d.length, 0);
  const out = new Uint8Array(8 + headerBytes.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const d of data) {
    out.set(d, p);
    p += d.length;
  }
  return out;
}

/** Parses a whole file the way a caller would: prefix first, then the header bytes. */
function parseFile(file: Uint8Array, source?: string, fileSize = file.length): SafetensorsLayout {
  const n = readSafetensorsHeaderLength(file.subarray(0, 8), fileSize, source);
  return parseSafetensorsHeader(file.subarray(8, 8 + n), fileSize, source);
}

/** Header text + data length -> layout (or error). */
function parseText(header: string, dataLength = 0, source?: string): SafetensorsLayout {
  const bytes = enc.encode(header);
  return parseSafetensorsHeader(bytes, 8 + bytes.length + dataLength, source);
}

function catchError(fn: () => unknown): CkvcError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CkvcError);
    return e as CkvcError;
  }
  throw new Error('expected a CkvcError, nothing was thrown');
}

function expectRule(fn: () => unknown, rule: string): CkvcError {
  const err = catchError(fn);
  expect(err.code).toBe('CKVC_BAD_SAFETENSORS');
  expect(err.data.rule).toBe(rule);
  expect(err.message).not.toMatch(/[\r\n]/);
  return err;
}

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

const ALL_RULES = [
  'file-too-small',
  'header-too-large',
  'header-out-of-bounds',
  'header-not-utf8',
  'header-not-json',
  'header-not-object',
  'header-start',
  'duplicate-name',
  'bad-metadata',
  'bad-entry',
  'unknown-dtype',
  'bad-shape',
  'bad-offsets',
  'numel-overflow',
  'size-mismatch',
  'gap-or-overlap',
  'trailing-bytes',
  'data-truncated',
];

// ---------------------------------------------------------------------------------------------------------

describe('constants', () => {
  it('has the reference header limit', () => {
    expect(SAFETENSORS_MAX_HEADER_BYTES).toBe(100_000_000);
  });

  it('knows exactly the reference dtypes with their bit widths', () => {
    expect({ ...SAFETENSORS_DTYPE_BITS }).toEqual({
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
    expect(Object.isFrozen(SAFETENSORS_DTYPE_BITS)).toBe(true);
  });

  it('gives element widths for byte grouping', () => {
    for (const d of ['F16', 'BF16', 'I16', 'U16']) expect(safetensorsElementWidth(d)).toBe(2);
    for (const d of ['F32', 'I32', 'U32', 'C64']) expect(safetensorsElementWidth(d)).toBe(4);
    for (const d of ['F64', 'I64', 'U64']) expect(safetensorsElementWidth(d)).toBe(8);
    for (const d of [
      'BOOL',
      'U8',
      'I8',
      'F8_E5M2',
      'F8_E4M3',
      'F8_E8M0',
      'F4',
      'F6_E2M3',
      'F6_E3M2',
      'NOPE',
      'toString',
      '__proto__',
    ]) {
      expect(safetensorsElementWidth(d)).toBe(1);
    }
  });
});

describe('readSafetensorsHeaderLength', () => {
  const prefix = (n: bigint): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };

  it('reads a little-endian u64', () => {
    expect(readSafetensorsHeaderLength(prefix(60n), 100)).toBe(60);
    expect(readSafetensorsHeaderLength(Uint8Array.of(0x3c, 0, 0, 0, 0, 0, 0, 0), 68)).toBe(60);
    expect(readSafetensorsHeaderLength(Uint8Array.of(0x01, 0x02, 0x03, 0, 0, 0, 0, 0), 0x030201 + 8)).toBe(0x030201);
  });

  it('reads from a subarray with a byte offset', () => {
    const buf = new Uint8Array(20);
    new DataView(buf.buffer).setBigUint64(3, 5n, true);
    expect(readSafetensorsHeaderLength(buf.subarray(3, 11), 13)).toBe(5);
  });

  it('accepts the exact limit and a header that ends the file', () => {
    expect(readSafetensorsHeaderLength(prefix(100_000_000n), 100_000_008)).toBe(100_000_000);
    expect(readSafetensorsHeaderLength(prefix(0n), 8)).toBe(0);
  });

  it('rejects files shorter than 8 bytes', () => {
    expectRule(() => readSafetensorsHeaderLength(prefix(0n), 7), 'file-too-small');
    expectRule(() => readSafetensorsHeaderLength(new Uint8Array(0), 0), 'file-too-small');
    expectRule(() => readSafetensorsHeaderLength(new Uint8Array(5), 100), 'file-too-small');
  });

  it('rejects lengths above the limit, including ones that need the high word', () => {
    const e = expectRule(() => readSafetensorsHeaderLength(prefix(100_000_001n), 1e9), 'header-too-large');
    expect(e.data.headerLength).toBe('100000001');
    expectRule(() => readSafetensorsHeaderLength(prefix(1n << 32n), 1e12), 'header-too-large');
    const big = expectRule(() => readSafetensorsHeaderLength(prefix(0xffff_ffff_ffff_ffffn), 1e12), 'header-too-large');
    expect(big.message).toContain('18446744073709551615');
  });

  it('rejects a header running past the end of the file', () => {
    const e = expectRule(() => readSafetensorsHeaderLength(prefix(10n), 17), 'header-out-of-bounds');
    expect(e.data).toMatchObject({ headerLength: 10, fileSize: 17 });
    expect(readSafetensorsHeaderLength(prefix(10n), 18)).toBe(10);
  });

  it('prefixes the message with the source and records it', () => {
    const e = expectRule(
      () => readSafetensorsHeaderLength(prefix(10n), 17, 'ckpt/model.safetensors'),
      'header-out-of-bounds',
    );
    expect(e.message.startsWith('ckpt/model.safetensors: ')).toBe(true);
    expect(e.data.source).toBe('ckpt/model.safetensors');
  });

  it('treats a bad fileSize argument as an internal error', () => {
    expect(catchError(() => readSafetensorsHeaderLength(prefix(0n), -1)).code).toBe('CKVC_INTERNAL');
    expect(catchError(() => readSafetensorsHeaderLength(prefix(0n), 1.5)).code).toBe('CKVC_INTERNAL');
    expect(catchError(() => parseSafetensorsHeader(enc.encode('{}'), Number.NaN)).code).toBe('CKVC_INTERNAL');
  });
});

describe('parseSafetensorsHeader: valid files', () => {
  it('parses a built file and its offsets point at the right bytes', () => {
    const t = {
      'model.embed.weight': { dtype: 'F32', shape: [2, 3], data: bytes(24, 1) },
      'model.norm.bias': { dtype: 'BF16', shape: [3], data: bytes(6, 2) },
      step: { dtype: 'I64', shape: [], data: bytes(8, 3) },
      mask: { dtype: 'BOOL', shape: [4], data: Uint8Array.of(1, 0, 1, 1) },
      packed: { dtype: 'F4', shape: [2, 3, 2], data: bytes(6, 4) },
      mx6: { dtype: 'F6_E3M2', shape: [8], data: bytes(6, 5) },
      cplx: { dtype: 'C64', shape: [1, 2], data: bytes(16, 6) },
    };
    const file = buildSafetensors(t, { metadata: { format: 'pt', note: 'hello' } });
    const layout = parseFile(file);
    expect(layout.headerLength % 8).toBe(0);
    expect(layout.dataStart).toBe(8 + layout.headerLength);
    expect(layout.metadata).toEqual({ format: 'pt', note: 'hello' });
    expect(layout.tensors.map((x) => x.name)).toEqual(Object.keys(t));
    for (const info of layout.tensors) {
      const spec = t[info.name as keyof typeof t];
      expect(info.dtype).toBe(spec.dtype);
      expect(info.shape).toEqual(spec.shape);
      expect(file.subarray(info.begin, info.end)).toEqual(spec.data);
    }
    expect(layout.tensors.at(-1)?.end).toBe(file.length);
  });

  it('parses every dtype', () => {
    const t: Record<string, TensorSpec> = {};
    for (const [dtype, bits] of Object.entries(SAFETENSORS_DTYPE_BITS)) {
      t[`x.${dtype}`] = { dtype, shape: [8], data: bytes(bits, bits) };
    }
    const layout = parseFile(buildSafetensors(t));
    expect(layout.tensors).toHaveLength(20);
    for (const info of layout.tensors) expect(info.end - info.begin).toBe(SAFETENSORS_DTYPE_BITS[info.dtype]);
  });

  it('handles scalars and zero-size tensors', () => {
    const file = buildSafetensors({
      empty0: { dtype: 'F32', shape: [0], data: new Uint8Array(0) },
      scalar: { dtype: 'F64', shape: [], data: bytes(8) },
      empty1: { dtype: 'I8', shape: [3, 0, 2], data: new Uint8Array(0) },
      one: { dtype: 'U16', shape: [1, 1, 1], data: bytes(2) },
      emptyEnd: { dtype: 'F16', shape: [0, 4], data: new Uint8Array(0) },
    });
    const layout = parseFile(file);
    const ds = layout.dataStart;
    expect(layout.tensors.map((x) => [x.name, x.begin - ds, x.end - ds])).toEqual([
      ['empty0', 0, 0],
      ['scalar', 0, 8],
      ['empty1', 8, 8],
      ['one', 8, 10],
      ['emptyEnd', 10, 10],
    ]);
    expect(layout.metadata).toBeUndefined();
  });

  it('orders zero-size tensors sharing an offset by name, before the non-empty tensor there', () => {
    const layout = parseText(
      JSON.stringify({
        b: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
        zz: { dtype: 'U8', shape: [0], data_offsets: [0, 0] },
        za: { dtype: 'U8', shape: [0], data_offsets: [0, 0] },
        zm: { dtype: 'U8', shape: [0], data_offsets: [0, 0] },
      }),
      2,
    );
    expect(layout.tensors.map((x) => x.name)).toEqual(['za', 'zm', 'zz', 'b']);
  });

  it('accepts an empty header object and a metadata-only header', () => {
    expect(parseText('{}')).toEqual({ headerLength: 2, dataStart: 10, metadata: undefined, tensors: [] });
    expect(parseText('{"__metadata__":{"a":"1"}}').metadata).toEqual({ a: '1' });
  });

  it('accepts __metadata__: null as absent', () => {
    expect(parseText('{"__metadata__":null}').metadata).toBeUndefined();
  });

  it('allows JSON whitespace padding after the object, and inside it', () => {
    expect(parseText('{}        ').headerLength).toBe(10);
    expect(parseText('{}\n\r\t ').tensors).toEqual([]);
    expect(parseText('{ "a" :\n{"dtype":"U8" , "shape":[ 1 ],"data_offsets":[0,1]}\t}', 1).tensors[0]?.name).toBe('a');
  });

  it('ignores unknown keys inside a tensor entry', () => {
    const l = parseText('{"a":{"x":1,"dtype":"U8","shape":[1],"data_offsets":[0,1],"y":{"z":[{}],"z":2}}}', 1);
    expect(l.tensors).toEqual([{ name: 'a', dtype: 'U8', shape: [1], begin: l.dataStart, end: l.dataStart + 1 }]);
  });

  it('keeps awkward names and metadata keys as own data', () => {
    // written by hand: an object literal's __proto__ key would set the prototype instead
    const text =
      '{"__metadata__":{"__proto__":"p","constructor":"c"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"hasOwnProperty":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
    const l = parseText(text, 2);
    expect(Object.getPrototypeOf(l.metadata)).toBe(Object.prototype);
    expect(Object.keys(l.metadata ?? {})).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(l.metadata, '__proto__')?.value).toBe('p');
    expect(l.tensors.map((t) => t.name)).toEqual(['__proto__', 'hasOwnProperty']);
  });

  it('decodes escapes and Unicode in names', () => {
    const l = parseText(
      '{"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"ünï":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
      2,
    );
    expect(l.tensors.map((t) => t.name)).toEqual(['café 😀 "q" \\ / \b\f\n\r\t', 'ünï']);
  });

  it('accepts dimensions and offsets up to 2^53-1 written as plain integers', () => {
    const l = parseText('{"a":{"dtype":"U8","shape":[9007199254740991,0],"data_offsets":[0,0]}}');
    expect(l.tensors[0]?.shape).toEqual([9007199254740991, 0]);
  });

  it('reads integers of every length the same way (15-digit fast path and the general path)', () => {
    const dims = ['0', '7', '999999999999999', '1000000000000000', '9007199254740991'];
    for (const d of dims) {
      const l = parseText(`{"a":{"dtype":"U8","shape":[0,${d}],"data_offsets":[0,0]}}`);
      expect(l.tensors[0]?.shape).toEqual([0, Number(d)]);
    }
    for (const d of ['0.0', '0e0', '7.0', '7e0', '999999999999999.0', '1000000000000000e0', '-7']) {
      expectRule(() => parseText(`{"a":{"dtype":"U8","shape":[0,${d}],"data_offsets":[0,0]}}`), 'bad-shape');
    }
    for (const d of ['00', '07', '0x1', '7.', '7e', '1-2']) {
      expectRule(() => parseText(`{"a":{"dtype":"U8","shape":[0,${d}],"data_offsets":[0,0]}}`), 'header-not-json');
    }
  });

  it('uses only the bytes passed in: a subarray of a larger buffer works', () => {
    const file = buildSafetensors({ w: { dtype: 'F16', shape: [2], data: bytes(4) } });
    const big = new Uint8Array(file.length + 100);
    big.set(file, 50);
    expect(parseFile(big.subarray(50, 50 + file.length))).toEqual(parseFile(file));
  });

  it('parses tens of thousands of shuffled tensors quickly', () => {
    const n = 50_000;
    const names = Array.from({ length: n }, (_, i) => `model.layers.${Math.floor(i / 10)}.mlp.w${i % 10}.weight`);
    const header: Record<string, unknown> = {};
    const order = names.map((_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    let off = 0;
    const offsets = new Map<string, number>();
    for (const name of names) {
      offsets.set(name, off);
      off += 4 * 16;
    }
    for (const i of order) {
      const name = names[i] as string;
      const b = offsets.get(name) as number;
      header[name] = { dtype: 'F32', shape: [4, 4], data_offsets: [b, b + 64] };
    }
    const text = enc.encode(JSON.stringify(header));
    const t0 = performance.now();
    const l = parseSafetensorsHeader(text, 8 + text.length + off);
    const ms = performance.now() - t0;
    expect(l.tensors).toHaveLength(n);
    expect(l.tensors.map((t) => t.name)).toEqual(names);
    // A quadratic lookup would take minutes at 50,000 names; 8 s leaves room for a machine busy with other tests.
    expect(ms).toBeLessThan(8000);
  });
});

describe('parseSafetensorsHeader: every rejection rule', () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown): string =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });

  it('file-too-small', () => {
    expectRule(() => parseSafetensorsHeader(new Uint8Array(0), 7), 'file-too-small');
  });

  it('header-too-large', () => {
    const fake = { length: SAFETENSORS_MAX_HEADER_BYTES + 1 } as unknown as Uint8Array;
    expectRule(() => parseSafetensorsHeader(fake, 2e8), 'header-too-large');
  });

  it('header-out-of-bounds', () => {
    const e = expectRule(() => parseSafetensorsHeader(enc.encode('{}'), 9), 'header-out-of-bounds');
    expect(e.data).toMatchObject({ headerLength: 2, fileSize: 9 });
  });

  it('header-not-utf8', () => {
    expectRule(
      () => parseSafetensorsHeader(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d), 15),
      'header-not-utf8',
    );
    // overlong "/", a UTF-16 surrogate encoded in UTF-8, and a truncated sequence
    expectRule(() => parseSafetensorsHeader(Uint8Array.of(0x7b, 0xc0, 0xaf, 0x7d), 12), 'header-not-utf8');
    expectRule(() => parseSafetensorsHeader(Uint8Array.of(0x7b, 0xed, 0xa0, 0x80, 0x7d), 13), 'header-not-utf8');
    expectRule(() => parseSafetensorsHeader(Uint8Array.of(0x7b, 0x7d, 0xe2, 0x82), 12), 'header-not-utf8');
  });

  it('header-not-json', () => {
    const cases = [
      '',
      '{',
      '{"a":1,}',
      '{"a" 1}',
      "{'a':1}",
      '{"a":tru}',
      '{"a":01}',
      '{"a":1.}',
      '{"a":.5}',
      '{"a":1e}',
      '{"a":+1}',
      '{"a":NaN}',
      '{"a":1e400}',
      '{"a":-1e999}',
      '{"a":"\\x"}',
      '{"a":"\\u12"}',
      '{"a":"\\ud800"}',
      '{"a":"\\udc00"}',
      '{"a":"\\ud800\\u0041"}',
      '{"a":"tab\there"}',
      '{"a":"nl\nhere"}',
      '{"a":"unterminated}',
      '{}{}',
      '{} x',
      '{}\u0000',
      '{}\u00a0',
      '{"a":[1,]}',
      '{"a":[1 2]}',
      '{"a" : } ',
    ];
    for (const c of cases) {
      const e = expectRule(() => parseText(c), 'header-not-json');
      expect(typeof e.data.position).toBe('number');
    }
    // a byte-order mark is kept (not silently stripped) and is not JSON whitespace
    expectRule(() => parseSafetensorsHeader(Uint8Array.of(0xef, 0xbb, 0xbf, 0x7b, 0x7d), 13), 'header-not-json');
  });

  it('header-not-json: nesting past serde_json recursion limit (127 levels ok, 128 refused)', () => {
    const nest = (k: number): string =>
      `{"__metadata__":null,"a":${entry('U8', [1], [0, 1]).slice(0, -1)},"x":${'['.repeat(k)}${']'.repeat(k)}}}`;
    expect(parseText(nest(125), 1).tensors).toHaveLength(1);
    expectRule(() => parseText(nest(126), 1), 'header-not-json');
    expectRule(() => parseText('['.repeat(100_000)), 'header-not-json');
    expectRule(() => parseText(`{"a":${'{"b":'.repeat(100_000)}`), 'header-not-json');
  });

  it('header-not-object', () => {
    for (const c of ['[]', '"x"', '1', 'null', 'true', ' []']) expectRule(() => parseText(c), 'header-not-object');
  });

  it('header-start', () => {
    for (const c of [' {}', '\n{}', '\t{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}']) {
      expectRule(() => parseText(c), 'header-start');
    }
  });

  it('duplicate-name', () => {
    const a = entry('U8', [1], [0, 1]);
    const e = expectRule(
      () => parseText(`{"w":${a},"x":${entry('U8', [0], [1, 1])},"w":${a}}`, 1, 'm.st'),
      'duplicate-name',
    );
    expect(e.data).toMatchObject({ name: 'w', source: 'm.st' });
    expect(e.message).toContain('"w"');
    expectRule(() => parseText(`{"w":${a},"\\u0077":${a}}`, 1), 'duplicate-name');
    expectRule(() => parseText('{"__metadata__":{},"__metadata__":null}'), 'duplicate-name');
  });

  it('bad-metadata', () => {
    for (const md of [
      '"pt"',
      '[]',
      '1',
      'true',
      '{"a":1}',
      '{"a":null}',
      '{"a":["x"]}',
      '{"a":{"b":"c"}}',
      '{"k":"1","k":"1"}',
    ]) {
      expectRule(() => parseText(`{"__metadata__":${md}}`), 'bad-metadata');
    }
  });

  it('bad-entry', () => {
    const cases = [
      '{"a":["U8",[1],[0,1]]}',
      '{"a":"U8"}',
      '{"a":null}',
      '{"a":1}',
      '{"a":{}}',
      '{"a":{"shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":"U8","data_offsets":[0,1]}}',
      '{"a":{"dtype":"U8","shape":[1]}}',
      '{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":null,"shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":["U8"],"shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":{"U8":null},"shape":[1],"data_offsets":[0,1]}}',
    ];
    for (const c of cases) {
      const e = expectRule(() => parseText(c, 1), 'bad-entry');
      expect(e.data.name).toBe('a');
      expect(e.message).toContain('"a"');
    }
  });

  it('unknown-dtype', () => {
    for (const d of ['f32', 'F8_E4M3FNUZ', 'Q4_0', '', 'constructor', '__proto__', 'toString', ' F32']) {
      const e = expectRule(() => parseText(`{"t":${entry(d, [1], [0, 1])}}`, 1), 'unknown-dtype');
      expect(e.data).toMatchObject({ name: 't', dtype: d });
    }
  });

  it('bad-shape', () => {
    const raw = [
      '1',
      '"[1]"',
      'null',
      '{}',
      '[-1]',
      '[-0]',
      '[2.0]',
      '[2e0]',
      '[2E0]',
      '[1.5]',
      '["2"]',
      '[null]',
      '[[2]]',
      '[true]',
      '[9007199254740992]',
      '[18446744073709551616]',
      '[1,-3]',
    ];
    for (const s of raw) {
      expectRule(() => parseText(`{"t":{"dtype":"U8","shape":${s},"data_offsets":[0,1]}}`, 1), 'bad-shape');
    }
  });

  it('bad-offsets', () => {
    const raw = [
      '[]',
      '[0]',
      '[0,1,2]',
      '{"0":0,"1":1}',
      '"0,1"',
      'null',
      '[-1,0]',
      '[0,-1]',
      '[0,1.0]',
      '[0,1e0]',
      '[-0,1]',
      '["0",1]',
      '[0,9007199254740992]',
      '[1,0]',
      '[5,4]',
    ];
    for (const s of raw) {
      expectRule(() => parseText(`{"t":{"dtype":"U8","shape":[1],"data_offsets":${s}}}`, 1), 'bad-offsets');
    }
    const e = expectRule(() => parseText(`{"t":${entry('U8', [0], [3, 2])}}`, 3), 'bad-offsets');
    expect(e.message).toContain('[3, 2]');
  });

  it('numel-overflow', () => {
    expectRule(() => parseText(`{"t":${entry('U8', [4294967296, 4294967296], [0, 0])}}`), 'numel-overflow');
    // the reference folds left to right with checked_mul and refuses this even though a 0 follows
    expectRule(() => parseText(`{"t":${entry('U8', [2 ** 40, 2 ** 40, 0], [0, 0])}}`), 'numel-overflow');
    // element count fits, byte count does not
    expectRule(() => parseText(`{"t":${entry('F64', [2 ** 50], [0, 0])}}`), 'numel-overflow');
    // but a 0 first keeps the product at 0
    expect(parseText(`{"t":${entry('U8', [0, 2 ** 40, 2 ** 40], [0, 0])}}`).tensors).toHaveLength(1);
  });

  it('size-mismatch', () => {
    const e = expectRule(
      () => parseText(`{"w":${entry('F32', [2, 2], [0, 12])}}`, 12, 'a.safetensors'),
      'size-mismatch',
    );
    expect(e.message).toBe(
      'a.safetensors: tensor "w": data_offsets [0, 12] hold 12 bytes but F32 shape [2, 2] needs 16',
    );
    expect(e.data).toMatchObject({
      rule: 'size-mismatch',
      source: 'a.safetensors',
      name: 'w',
      expectedBytes: 16,
      dataOffsets: [0, 12],
    });
    expectRule(() => parseText(`{"w":${entry('F32', [0], [0, 4])}}`, 4), 'size-mismatch');
    expectRule(() => parseText(`{"w":${entry('F64', [], [0, 4])}}`, 4), 'size-mismatch');
    expectRule(() => parseText(`{"w":${entry('C64', [2], [0, 8])}}`, 8), 'size-mismatch');
    // sub-byte dtypes whose bit count is not a whole number of bytes
    const odd = expectRule(() => parseText(`{"w":${entry('F4', [3], [0, 2])}}`, 2), 'size-mismatch');
    expect(odd.message).toBe('tensor "w": 3 elements of F4 (4 bits each) is not a whole number of bytes');
    expectRule(() => parseText(`{"w":${entry('F4', [1], [0, 1])}}`, 1), 'size-mismatch');
    expectRule(() => parseText(`{"w":${entry('F6_E2M3', [2], [0, 2])}}`, 2), 'size-mismatch');
    expectRule(() => parseText(`{"w":${entry('F6_E3M2', [4], [0, 4])}}`, 4), 'size-mismatch');
    expect(parseText(`{"w":${entry('F6_E3M2', [4], [0, 3])}}`, 3).tensors).toHaveLength(1);
    expect(parseText(`{"w":${entry('F4', [3, 2], [0, 3])}}`, 3).tensors).toHaveLength(1);
  });

  it('gap-or-overlap', () => {
    const e1 = expectRule(() => parseText(`{"w":${entry('U8', [1], [1, 2])}}`, 2), 'gap-or-overlap');
    expect(e1.message).toContain('"w"');
    expect(e1.data).toMatchObject({ name: 'w', expectedBegin: 0, dataOffsets: [1, 2] });
    const e2 = expectRule(
      () => parseText(`{"a":${entry('U8', [2], [0, 2])},"b":${entry('U8', [2], [3, 5])}}`, 5),
      'gap-or-overlap',
    );
    expect(e2.message).toContain('gap of 1 bytes');
    const e3 = expectRule(
      () => parseText(`{"a":${entry('U8', [4], [0, 4])},"b":${entry('U8', [4], [2, 6])}}`, 6),
      'gap-or-overlap',
    );
    expect(e3.message).toContain('overlap of 2 bytes');
    expect(e3.message).toContain('"a" ends at 4');
    expectRule(
      () => parseText(`{"a":${entry('U8', [4], [0, 4])},"b":${entry('U8', [4], [0, 4])}}`, 4),
      'gap-or-overlap',
    );
    expectRule(
      () => parseText(`{"a":${entry('U8', [4], [0, 4])},"z":${entry('U8', [0], [8, 8])}}`, 8),
      'gap-or-overlap',
    );
  });

  it('trailing-bytes', () => {
    const e = expectRule(() => parseText(`{"a":${entry('U8', [1], [0, 1])}}`, 3), 'trailing-bytes');
    expect(e.data).toMatchObject({ dataLength: 3, coveredLength: 1 });
    expectRule(() => parseText('{}', 1), 'trailing-bytes');
  });

  it('data-truncated', () => {
    const e = expectRule(() => parseText(`{"a":${entry('U8', [4], [0, 4])}}`, 3), 'data-truncated');
    expect(e.data).toMatchObject({ dataLength: 3, coveredLength: 4, name: 'a' });
  });

  it('reports the first problem in a stable order: structure, then layout, then coverage', () => {
    // an entry error wins over a layout error in an earlier tensor
    expectRule(() => parseText(`{"a":${entry('U8', [1], [5, 6])},"b":${entry('X', [1], [0, 1])}}`, 6), 'unknown-dtype');
    // a gap wins over a later size mismatch and over a truncated file
    expectRule(
      () => parseText(`{"a":${entry('U8', [1], [1, 2])},"b":${entry('F32', [1], [2, 3])}}`, 0),
      'gap-or-overlap',
    );
  });

  it('omits source from data when none is given, and prefixes messages when one is', () => {
    const e = expectRule(() => parseText('[]'), 'header-not-object');
    expect('source' in e.data).toBe(false);
    expect(e.message).toBe('header JSON is an array of 0, not an object');
    const e2 = expectRule(() => parseText('[]', 0, 'x/y.safetensors'), 'header-not-object');
    expect(e2.message).toBe('x/y.safetensors: header JSON is an array of 0, not an object');
    expect(e2.exitCode).toBe(15);
  });

  it('keeps messages on one line even for names with newlines', () => {
    const e = expectRule(() => parseText(`{"a\\nb":${entry('U8', [1], [0, 2])}}`, 2), 'size-mismatch');
    expect(e.message).toContain('"a\\nb"');
  });
});

describe('robustness', () => {
  it('every truncation and single-byte corruption of a valid file either parses or throws CKVC_BAD_SAFETENSORS', () => {
    const file = buildSafetensors(
      {
        'a.weight': { dtype: 'F16', shape: [2, 2], data: bytes(8) },
        b: { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
        c: { dtype: 'F4', shape: [4], data: bytes(2) },
      },
      { metadata: { k: 'v' } },
    );
    const check = (f: Uint8Array, size = f.length): void => {
      try {
        parseFile(f, undefined, size);
      } catch (e) {
        expect(e).toBeInstanceOf(CkvcError);
        expect((e as CkvcError).code).toBe('CKVC_BAD_SAFETENSORS');
        expect(ALL_RULES).toContain((e as CkvcError).data.rule);
      }
    };
    for (let n = 8; n < file.length; n++) check(file, n);
    const replacements = [
      0x00, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x5c, 0x2d, 0x2e, 0x65, 0xff, 0xc3,
    ];
    for (let i = 8; i < file.length; i++) {
      for (const r of replacements) {
        const g = file.slice();
        g[i] = r;
        check(g);
      }
    }
  });

  it('agrees with JSON.parse on names, dtypes and shapes for valid headers', () => {
    const dtypes = Object.keys(SAFETENSORS_DTYPE_BITS);
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = ['a', 'Z', '.', '_', '0', ' ', '"', '\\', '/', '\n', 'é', '😀', '\u2028', '\u0001'];
    for (let round = 0; round < 50; round++) {
      const t: Record<string, TensorSpec> = {};
      const count = 1 + rnd(12);
      for (let i = 0; i < count; i++) {
        let name = `${i}:`;
        for (let k = rnd(6); k > 0; k--) name += alphabet[rnd(alphabet.length)];
        const dtype = dtypes[rnd(dtypes.length)] as string;
        const shape = Array.from({ length: rnd(4) }, () => rnd(4));
        const bits = SAFETENSORS_DTYPE_BITS[dtype] as number;
        let numel = shape.reduce((a, b) => a * b, 1);
        if ((numel * bits) % 8 !== 0) {
          shape.push(2);
          numel *= 2;
        }
        t[name] = { dtype, shape, data: bytes((numel * bits) / 8, i) };
      }
      const file = buildSafetensors(t, { metadata: { round: String(round) }, pad: round % 2 === 0 });
      const layout = parseFile(file);
      const n = Number(new DataView(file.buffer).getBigUint64(0, true));
      const j = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<
        string,
        { dtype: string; shape: number[] }
      >;
      expect(layout.metadata).toEqual({ round: String(round) });
      expect(new Set(layout.tensors.map((x) => x.name))).toEqual(
        new Set(Object.keys(j).filter((k) => k !== '__metadata__')),
      );
      for (const info of layout.tensors) {
        expect(info.dtype).toBe(j[info.name]?.dtype);
        expect(info.shape).toEqual(j[info.name]?.shape);
        expect(file.subarray(info.begin, info.end)).toEqual(t[info.name]?.data);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

interface Vector {
  name: string;
  description: string;
  header?: string;
  headerHex?: string;
  declaredLength?: string;
  fileSize: number;
  expect: 'ok' | { rule: string };
  metadata?: Record<string, string> | null;
  tensors?: { name: string; dtype: string; shape: number[]; begin: number; end: number }[];
}

const vectors = loadVector<Vector[]>('safetensors.json');

describe('spec/vectors/safetensors.json', () => {
  it('is well formed, has unique names and covers every rule', () => {
    expect(vectors.length).toBeGreaterThan(50);
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
    const rules = new Set(vectors.flatMap((v) => (v.expect === 'ok' ? [] : [v.expect.rule])));
    expect([...rules].sort()).toEqual([...ALL_RULES].sort());
    for (const v of vectors) {
      expect(typeof v.description).toBe('string');
      expect((v.header === undefined) !== (v.headerHex === undefined)).toBe(true);
      if (v.expect === 'ok') expect(Array.isArray(v.tensors)).toBe(true);
    }
  });

  for (const v of vectors) {
    it(`${v.name}: ${v.description}`, () => {
      const headerBytes =
        v.headerHex !== undefined ? Uint8Array.from(Buffer.from(v.headerHex, 'hex')) : enc.encode(v.header ?? '');
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(v.declaredLength ?? headerBytes.length), true);
      const run = (): SafetensorsLayout => {
        const n = readSafetensorsHeaderLength(prefix, v.fileSize, v.name);
        expect(n).toBe(headerBytes.length);
        return parseSafetensorsHeader(headerBytes, v.fileSize, v.name);
      };
      if (v.expect === 'ok') {
        const layout = run();
        expect(layout.headerLength).toBe(headerBytes.length);
        expect(layout.dataStart).toBe(8 + headerBytes.length);
        expect(layout.metadata ?? null).toEqual(v.metadata ?? null);
        expect(layout.tensors).toEqual(v.tensors);
      } else {
        const e = expectRule(run, v.expect.rule);
        expect(e.message.startsWith(`${v.name}: `)).toBe(true);
        expect(e.data.source).toBe(v.name);
      }
    });
  }
});
