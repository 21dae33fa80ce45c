// spec/BUNDLE.md §1-2: the preamble and header codecs, against spec/vectors/bundle-header.json.
import { describe, expect, it } from 'vitest';
import {
  BUNDLE_TRAILER_BYTES,
  decodeBundleHeader,
  decodeBundlePreamble,
  encodeBundleHeader,
  encodeBundlePreamble,
  MAX_BUNDLE_HEADER_BYTES,
} from '../../src/core/store-format/bundle-format.js';
import { CkvcError } from '../../src/core/errors.js';
import { loadVector } from './vectors.js';

const vectors = loadVector<{
  valid: { name: string; hex: string; fields: Record<string, unknown> }[];
  invalid: { name: string; hex: string; code: string }[];
}>('bundle-header.json');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CkvcError ? e.code : `not a CkvcError: ${String(e)}`;
  }
  return undefined;
}

describe('bundle header vectors', () => {
  for (const v of vectors.valid) {
    it(`decodes and re-encodes: ${v.name}`, () => {
      const h = decodeBundleHeader(Buffer.from(v.hex, 'hex'), 'vector');
      expect(h).toEqual(v.fields);
      expect(encodeBundleHeader(h).toString('hex')).toBe(v.hex);
    });
  }
  for (const v of vectors.invalid) {
    it(`refuses: ${v.name}`, () => {
      expect(codeOf(() => decodeBundleHeader(Buffer.from(v.hex, 'hex'), 'vector'))).toBe(v.code);
    });
  }
});

describe('bundle preamble', () => {
  it('round-trips the header length', () => {
    expect(decodeBundlePreamble(encodeBundlePreamble(1234), 16 + 1234 + BUNDLE_TRAILER_BYTES, 'x')).toBe(1234);
  });
  it('refuses bad magic, a newer version, a zero, oversized or out-of-file header length', () => {
    const p = encodeBundlePreamble(100);
    const bad = Buffer.from(p);
    bad[0] = 0x41;
    expect(codeOf(() => decodeBundlePreamble(bad, 1000, 'x'))).toBe('CKVC_BAD_BUNDLE');
    const v2 = Buffer.from(p);
    v2.writeUInt32LE(2, 8);
    expect(codeOf(() => decodeBundlePreamble(v2, 1000, 'x'))).toBe('CKVC_UNSUPPORTED_VERSION');
    expect(codeOf(() => decodeBundlePreamble(encodeBundlePreamble(0), 1000, 'x'))).toBe('CKVC_BAD_BUNDLE');
    expect(codeOf(() => decodeBundlePreamble(encodeBundlePreamble(MAX_BUNDLE_HEADER_BYTES + 1), undefined, 'x'))).toBe(
      'CKVC_BAD_BUNDLE',
    );
    expect(codeOf(() => decodeBundlePreamble(encodeBundlePreamble(100), 100, 'x'))).toBe('CKVC_BAD_BUNDLE');
    expect(codeOf(() => decodeBundlePreamble(p.subarray(0, 10), undefined, 'x'))).toBe('CKVC_BAD_BUNDLE');
  });
  it('tells an empty file, a few bytes of something else and a cut-off bundle apart', () => {
    const messageOf = (b: Buffer) => {
      try {
        decodeBundlePreamble(b, b.length, 'x');
      } catch (e) {
        expect((e as CkvcError).code).toBe('CKVC_BAD_BUNDLE');
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(messageOf(Buffer.alloc(0))).toMatch(/is empty/);
    expect(messageOf(Buffer.from('PK\x03\x04', 'latin1'))).toMatch(/not a ckvc bundle \(bad magic/);
    expect(messageOf(Buffer.from('CKVCBNDX'))).toMatch(/not a ckvc bundle \(bad magic/);
    expect(messageOf(Buffer.from('CKVC'))).toMatch(/truncated: it ends 4 bytes into the 16-byte preamble/);
    expect(messageOf(encodeBundlePreamble(100).subarray(0, 10))).toMatch(/truncated: it ends 10 bytes into/);
  });
});
