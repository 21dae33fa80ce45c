import { compress } from '@mongodb-js/zstd';
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeBody, joinPieces } from '../../src/core/store-format/codec/record-codec.js';
import { withZstdContentSize } from '../../src/core/store-format/codec/zstd-frame.js';
import { isCkvcError } from '../../src/core/errors.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import {
  CODECS,
  checkPackHeader,
  decodeFooter,
  decodeRecordHeader,
  decodeToc,
  encodeFooterPrefix,
  encodePackHeader,
  encodeRecordHeader,
  encodeTocEntry,
  PACK_END_MAGIC,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../../src/core/store-format/pack-format.js';

async function rejects(p: Promise<unknown>, code: string) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(isCkvcError(err) ? err.code : String(err)).toBe(code);
}

describe('pack layout (spec/FORMAT.md §4)', () => {
  const id = objectId('chunk', new Uint8Array([7]));
  const entry: PackEntry = {
    id,
    type: 'chunk',
    codec: CODECS.raw,
    offset: PACK_HEADER_BYTES,
    rawLength: 1,
    storedLength: 1,
  };

  it('has the documented sizes', () => {
    expect([PACK_HEADER_BYTES, RECORD_HEADER_BYTES, TOC_ENTRY_BYTES, PACK_FOOTER_BYTES]).toEqual([16, 44, 52, 56]);
    expect(encodePackHeader().toString('hex')).toBe(`${Buffer.from('CKVCPACK').toString('hex')}0200000000000000`);
  });
  it('round-trips record headers and TOC entries', () => {
    expect(decodeRecordHeader(encodeRecordHeader(entry), PACK_HEADER_BYTES, 't')).toEqual(entry);
    const toc = encodeTocEntry(entry);
    expect(decodeToc(toc, 1, PACK_HEADER_BYTES + RECORD_HEADER_BYTES + 1, 't')).toEqual([entry]);
  });
  it('refuses a TOC whose records leave a gap', () => {
    expect(() => decodeToc(encodeTocEntry(entry), 1, 999, 't')).toThrow(/records end/);
  });
  it('refuses unknown types, codecs and oversized records', () => {
    const h = encodeRecordHeader(entry);
    h[0] = 9;
    expect(() => decodeRecordHeader(h, 16, 't')).toThrow(/unknown object type/);
    const c = encodeRecordHeader(entry);
    c[1] = 77;
    expect(() => decodeRecordHeader(c, 16, 't')).toThrow(/unknown codec/);
    const big = encodeRecordHeader({ ...entry, codec: CODECS.zstd, rawLength: 0xffffffff, storedLength: 10 });
    expect(() => decodeRecordHeader(big, 16, 't')).toThrow(/64 MiB/);
  });
  it('checks the footer against the file size and the magic', () => {
    const footer = Buffer.concat([encodeFooterPrefix(68, 1), Buffer.alloc(32, 1), PACK_END_MAGIC]);
    expect(decodeFooter(footer, 68 + 52 + 56, 't')).toMatchObject({ tocOffset: 68, count: 1 });
    expect(() => decodeFooter(footer, 68 + 52 + 55, 't')).toThrow(/does not fit/);
    const bad = Buffer.from(footer);
    bad[55]! ^= 1;
    expect(() => decodeFooter(bad, 176, 't')).toThrow(/footer/);
  });
  it('reads versions 1 and 2; refuses others with CKVC_UNSUPPORTED_VERSION', () => {
    for (const version of [0, 1, 2, 3]) {
      const h = encodePackHeader();
      h.writeUInt32LE(version, 8);
      let err: unknown;
      try {
        checkPackHeader(h, 't');
      } catch (e) {
        err = e;
      }
      expect(isCkvcError(err, 'CKVC_UNSUPPORTED_VERSION'), `version ${version}`).toBe(version !== 1 && version !== 2);
    }
  });
});

describe('record codecs (spec/FORMAT.md §4.3)', () => {
  // float32 values with similar exponents: byte grouping should make them compress
  const floats = new Float32Array(65536).map((_, i) => 1 + Math.sin(i) * 0.01);
  const raw = new Uint8Array(floats.buffer);

  for (const width of [1, 2, 4, 8]) {
    it(`round-trips width ${width}`, async () => {
      const { codec, pieces } = await encodeBody(raw, width);
      expect(Buffer.from(await decodeBody(codec, joinPieces(pieces), raw.length, 't')).equals(Buffer.from(raw))).toBe(
        true,
      );
    });
  }
  it('stores float32 plane by plane (width 4) and beats plain zstd', async () => {
    const grouped = await encodeBody(raw, 4);
    const plain = await encodeBody(raw, 1);
    expect(grouped.codec).toBe(CODECS.planes);
    expect(grouped.storedLength).toBeLessThan(plain.storedLength);
  });
  it('stores incompressible data raw', async () => {
    const noise = new Uint8Array(100000).map(() => Math.floor(Math.random() * 256));
    expect((await encodeBody(noise, 1)).codec).toBe(CODECS.raw);
  });
  it('refuses a frame that declares another size than the record (no inflation first)', async () => {
    const bomb = withZstdContentSize(await compress(Buffer.alloc(1 << 20), 1), 1 << 20);
    await rejects(decodeBody(CODECS.zstd, bomb, 100, 't'), 'CKVC_CORRUPT_OBJECT');
  });
  it('refuses a frame without a declared size', async () => {
    await rejects(decodeBody(CODECS.zstd, await compress(Buffer.alloc(1000), 1), 1000, 't'), 'CKVC_CORRUPT_OBJECT');
  });
  it('refuses garbage and raw records of the wrong length', async () => {
    await rejects(decodeBody(CODECS.zstd, new Uint8Array([1, 2, 3, 4, 5, 6]), 6, 't'), 'CKVC_CORRUPT_OBJECT');
    await rejects(decodeBody(CODECS.raw, new Uint8Array(3), 4, 't'), 'CKVC_CORRUPT_OBJECT');
  });
});
