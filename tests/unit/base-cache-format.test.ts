// Base cache files (spec/FORMAT.md §18) against spec/vectors/base-cache.json: the layout parses and encodes back
// byte for byte, every damaged variant is refused whole; and a record's chain link (its digests) is computed the
// same from the record in one piece or in the pieces a pack writer holds.
import { describe, expect, it } from 'vitest';
import {
  BASE_CACHE_FOOTER_BYTES,
  BASE_CACHE_MAGIC,
  type BaseCacheEntry,
  type ChainLink,
  encodeBaseCacheEntry,
  encodeBaseCacheFooter,
  parseBaseCacheEnds,
  parseBaseCacheEntries,
} from '../../src/core/store-format/base-cache-format.js';
import { chainLinkOf, linkDigest, planesRead } from '../../src/core/store-format/chain-links.js';
import { encodeBody } from '../../src/core/store-format/codec/record-codec.js';
import { encodeRecordHeader } from '../../src/core/store-format/pack-format.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { trainedFloat32 } from '../helpers/data.js';
import { hex, loadVector, unhex } from './vectors.js';

const v = loadVector('base-cache.json');

/** The entries of a whole cache file, or undefined where a reader refuses it (as BaseCacheReader does). */
function parse(file: Uint8Array): BaseCacheEntry[] | undefined {
  const b = Buffer.from(file);
  const head = b.subarray(0, BASE_CACHE_MAGIC.length);
  const place = parseBaseCacheEnds(head, b.subarray(Math.max(0, b.length - BASE_CACHE_FOOTER_BYTES)), b.length);
  if (!place) return undefined;
  const entries = b.subarray(place.entriesOffset, b.length - BASE_CACHE_FOOTER_BYTES);
  return parseBaseCacheEntries(entries, place.count, place.entriesOffset);
}

const hexLink = (l: ChainLink) => ({
  ...l,
  ...(l.whole ? { whole: hex(l.whole) } : {}),
  ...(l.planes
    ? {
        planes: {
          headLength: l.planes.headLength,
          head: hex(l.planes.head),
          planes: l.planes.planes.map(hex),
          tail: hex(l.planes.tail),
        },
      }
    : {}),
});

describe('base cache file layout', () => {
  const file = v.file as { hex: string; entries: unknown[]; data: string };

  it('parses the vector file to its entries, and encodes them back to the same bytes', () => {
    const bytes = unhex(file.hex);
    const entries = parse(bytes)!;
    expect(entries.map((e) => ({ ...e, links: e.links.map(hexLink) }))).toEqual(file.entries);
    const e = entries[0]!;
    expect(hex(bytes.subarray(e.dataOffset, e.dataOffset + e.length))).toBe(file.data);
    const data = unhex(file.data);
    const again = Buffer.concat([
      BASE_CACHE_MAGIC,
      data,
      ...entries.map(encodeBaseCacheEntry),
      encodeBaseCacheFooter(entries.length, BASE_CACHE_MAGIC.length + data.length),
    ]);
    expect(hex(again)).toBe(file.hex);
  });

  it.each(v.damaged as { why: string; hex: string }[])('refuses a file whose $why', (d) => {
    expect(parse(unhex(d.hex))).toBeUndefined();
  });
});

describe('chain links', () => {
  it('digests a delta record plane by plane, the same from pieces as from one buffer', async () => {
    const base = trainedFloat32(1, 16 * 1024);
    const chunk = Buffer.from(base);
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt8(chunk.readUInt8(i) ^ (i & 0xff), i); // low bytes move
    const id = objectId('chunk', base);
    const body = await encodeBody(chunk, 4, true, { id, bytes: base });
    const header = encodeRecordHeader({
      id: objectId('chunk', chunk),
      type: 'chunk',
      codec: body.codec,
      rawLength: chunk.length,
      storedLength: body.storedLength,
    });
    const pieces = [header, ...body.pieces];
    const at = { chunkId: objectId('chunk', chunk), packId: 'ab'.repeat(32), recordOffset: 12 };
    const link = chainLinkOf(pieces, at, 'test');
    expect(chainLinkOf([Buffer.concat(pieces)], at, 'test')).toEqual(link);
    expect(link.planes!.planes).toHaveLength(4);
    const whole = Buffer.concat(pieces);
    expect(hex(link.planes!.head)).toBe(hex(linkDigest([whole.subarray(0, link.planes!.headLength)])));
    body.release?.();
  });

  it('reads all planes of the top link, then only planes XORed all the way down', () => {
    const t = (modes: number[]) => ({
      width: modes.length,
      planes: modes.map((mode) => ({ mode, offset: 0, length: 0 })),
      tailOffset: 0,
    });
    expect(planesRead([t([1, 3, 3, 1]), t([1, 1, 3, 1]), undefined], 4)).toEqual([
      [true, true, true, true],
      [false, true, true, false],
      [false, false, true, false],
    ]);
  });
});
