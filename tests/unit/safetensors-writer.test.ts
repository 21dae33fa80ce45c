import { describe, expect, it } from 'vitest';
import { CkvcError } from '../../src/core/errors.js';
import { parseSafetensorsHeader, readSafetensorsHeaderLength } from '../../src/core/input-formats/safetensors.js';
import {
  buildSafetensorsHead,
  safetensorsByteSize,
  safetensorsUnwritable,
  safetensorsWriteOrder,
  type SafetensorsEntry,
} from '../../src/core/input-formats/safetensors-writer.js';

const text = new TextDecoder();

function entry(name: string, dtype: string, shape: number[]): SafetensorsEntry {
  return { name, dtype, shape, size: safetensorsByteSize(dtype, shape)! };
}

/** Parses a head the way a reader does: prefix, then the header, against the planned file size. */
function parse(head: Uint8Array, fileSize: number) {
  const n = readSafetensorsHeaderLength(head.subarray(0, 8), fileSize);
  expect(8 + n).toBe(head.length);
  return parseSafetensorsHeader(head.subarray(8), fileSize);
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof CkvcError) return e.code;
    throw e;
  }
  return undefined;
}

describe('buildSafetensorsHead', () => {
  it('round-trips through the parser: names, dtypes, shapes, contiguous offsets, metadata', () => {
    const tensors = [
      entry('model.embed', 'F32', [300, 512]),
      entry('model.bias', 'BF16', [7]),
      entry('step', 'I64', []),
      entry('mask', 'BOOL', [3]),
      entry('empty', 'F16', [0, 4]),
      entry('packed', 'F4', [2, 3]),
    ];
    const meta = { format: 'pt', 'ckvc.source': 'model.safetensors' };
    const { head, order, fileSize } = buildSafetensorsHead(tensors, meta);
    expect(fileSize).toBe(head.length + tensors.reduce((a, t) => a + t.size, 0));
    const layout = parse(head, fileSize);
    expect(layout.metadata).toEqual(meta);
    expect(layout.dataStart).toBe(head.length);
    // Offsets follow the returned order back to back (the parser lists by offset; zero-size ties by name).
    let at = head.length;
    const byName = new Map(layout.tensors.map((t) => [t.name, t]));
    for (const t of order) {
      const got = byName.get(t.name)!;
      expect([got.dtype, got.shape, got.begin, got.end]).toEqual([t.dtype, t.shape, at, at + t.size]);
      at += t.size;
    }
    expect(byName.size).toBe(tensors.length);
  });

  it('matches the reference writer byte for byte (safetensors test_serialization_forced_alignement)', () => {
    const { head } = buildSafetensorsHead([entry('attn0', 'F32', [1, 1, 2, 3])]);
    const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(head.length).toBe(8 + 72);
    expect(new DataView(head.buffer, head.byteOffset).getBigUint64(0, true)).toBe(72n);
    expect(text.decode(head.subarray(8))).toBe(json + ' '.repeat(72 - json.length));
  });

  it('writes __metadata__ first with keys in byte order, then compact entries; pads with spaces to a multiple of 8', () => {
    const { head } = buildSafetensorsHead([entry('w', 'U8', [2])], { zeta: 'z', alpha: 'a', 'ckvc.commit': 'c' });
    expect(text.decode(head.subarray(8)).trimEnd()).toBe(
      '{"__metadata__":{"alpha":"a","ckvc.commit":"c","zeta":"z"},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}',
    );
    for (let len = 1; len <= 17; len++) {
      const h = buildSafetensorsHead([entry('x'.repeat(len), 'F32', [1])]).head;
      expect((h.length - 8) % 8).toBe(0);
      const body = text.decode(h.subarray(8));
      const json = body.trimEnd();
      expect(body.length - json.length).toBeLessThan(8);
      expect(body.slice(json.length)).toMatch(/^ *$/);
      expect(json.endsWith('}')).toBe(true);
    }
  });

  it('escapes names as JSON and counts UTF-8 bytes for the length and padding', () => {
    const names = ['quo"te', 'back\\slash', 'tab\tnl\n', 'ünï', '\u{1F600}'];
    const { head, fileSize } = buildSafetensorsHead(names.map((n) => entry(n, 'F32', [1])));
    expect(
      parse(head, fileSize)
        .tensors.map((t) => t.name)
        .sort(),
    ).toEqual([...names].sort());
  });

  it('puts every tensor at an offset that is a multiple of its element size', () => {
    const tensors = [
      entry('a', 'U8', [3]),
      entry('b', 'F64', [2]),
      entry('c', 'BF16', [3]),
      entry('d', 'F32', [1]),
      entry('e', 'I64', [1]),
      entry('f', 'I8', [1]),
    ];
    const { head, fileSize } = buildSafetensorsHead(tensors);
    const width: Record<string, number> = { U8: 1, I8: 1, BF16: 2, F32: 4, F64: 8, I64: 8 };
    for (const t of parse(head, fileSize).tensors) expect(t.begin % width[t.dtype]!, t.name).toBe(0);
  });

  it('refuses an empty selection, duplicate names and unwritable tensors', () => {
    expect(codeOf(() => buildSafetensorsHead([]))).toBe('CKVC_BAD_ARGUMENT');
    expect(codeOf(() => buildSafetensorsHead([entry('a', 'F32', [1]), entry('a', 'F16', [1])]))).toBe(
      'CKVC_BAD_ARGUMENT',
    );
    expect(
      codeOf(() => buildSafetensorsHead([{ name: 'c', dtype: 'torch:ComplexDouble', shape: [2], size: 32 }])),
    ).toBe('CKVC_BAD_ARGUMENT');
    expect(codeOf(() => buildSafetensorsHead([entry('m', 'F32', [1])], { k: '\uD800' }))).toBe('CKVC_BAD_ARGUMENT');
  });
});

describe('safetensorsWriteOrder', () => {
  it('sorts as the reference: dtype from U64 down to BOOL, then name by UTF-8 bytes', () => {
    const names = (ts: SafetensorsEntry[]) => safetensorsWriteOrder(ts).map((t) => t.name);
    expect(
      names([
        entry('b', 'F32', [1]),
        entry('a', 'F32', [1]),
        entry('z', 'F64', [1]),
        entry('m', 'BF16', [1]),
        entry('y', 'BOOL', [1]),
        entry('c', 'U64', [1]),
        entry('d', 'I64', [1]),
      ]),
    ).toEqual(['c', 'd', 'z', 'a', 'b', 'm', 'y']);
    const all = [
      'BOOL',
      'F4',
      'F6_E2M3',
      'F6_E3M2',
      'U8',
      'I8',
      'F8_E5M2',
      'F8_E4M3',
      'F8_E8M0',
      'I16',
      'U16',
      'F16',
      'BF16',
      'I32',
      'U32',
      'F32',
      'C64',
      'F64',
      'I64',
      'U64',
    ];
    expect(safetensorsWriteOrder(all.map((d) => entry(d, d, [8]))).map((t) => t.dtype)).toEqual([...all].reverse());
    // U+FF61 sorts before U+1F600 in UTF-8 (EF.. < F0..) but after it in UTF-16 (FF61 > D83D).
    expect(names([entry('\u{1F600}', 'F32', [1]), entry('\uFF61', 'F32', [1])])).toEqual(['\uFF61', '\u{1F600}']);
  });
});

describe('safetensorsUnwritable', () => {
  it('accepts safetensors dtypes whose bytes are numel x width, and says why otherwise', () => {
    expect(safetensorsUnwritable(entry('w', 'F32', [2, 3]))).toBeUndefined();
    expect(safetensorsUnwritable({ name: 'w', dtype: 'F32', shape: [], size: 4 })).toBeUndefined();
    expect(safetensorsUnwritable({ name: 'w', dtype: 'F4', shape: [2], size: 1 })).toBeUndefined();
    expect(safetensorsUnwritable({ name: 'w', dtype: 'npy:>f4', shape: [2], size: 8 })).toMatch(
      /dtype "npy:>f4" is not a safetensors dtype/,
    );
    expect(safetensorsUnwritable({ name: 'w', dtype: 'torch:ComplexDouble', shape: [2], size: 32 })).toMatch(
      /torch:ComplexDouble/,
    );
    expect(safetensorsUnwritable({ name: 'w', dtype: 'f32', shape: [2], size: 8 })).toMatch(/not a safetensors dtype/); // case-sensitive
    expect(safetensorsUnwritable({ name: 'w', dtype: 'F32', shape: [2], size: 12 })).toMatch(/12 bytes are not the 8/);
    expect(safetensorsUnwritable({ name: 'w', dtype: 'F4', shape: [3], size: 2 })).toMatch(
      /not a whole number of bytes/,
    );
    expect(safetensorsUnwritable({ name: 'w', dtype: 'F32', shape: [2, 3], size: 24, order: 'F' })).toMatch(
      /column-major/,
    );
    expect(safetensorsUnwritable(entry('__metadata__', 'F32', [1]))).toMatch(/reserved/);
    expect(safetensorsUnwritable(entry('bad\uDC00', 'F32', [1]))).toMatch(/not valid Unicode/);
    expect(safetensorsUnwritable(entry('ok\u{1F600}', 'F32', [1]))).toBeUndefined();
  });

  it('safetensorsByteSize follows the parser: sub-byte dtypes in whole bytes, overflow refused', () => {
    expect(safetensorsByteSize('F6_E2M3', [4])).toBe(3);
    expect(safetensorsByteSize('F6_E2M3', [3])).toBeUndefined();
    expect(safetensorsByteSize('C64', [2])).toBe(16);
    expect(safetensorsByteSize('F64', [2 ** 26, 2 ** 26, 2 ** 2])).toBeUndefined();
    expect(safetensorsByteSize('nope', [1])).toBeUndefined();
  });
});
