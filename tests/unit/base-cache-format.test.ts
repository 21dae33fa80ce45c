// Base cache files (spec/FORMAT.md §18) against spec/vectors/base-cache.json: the layout parses and encodes back
// byte for byte, and every damaged variant is refused whole.
import { describe, expect, it } from 'vitest';
import {
  BASE_CACHE_FOOTER_BYTES,
  BASE_CACHE_MAGIC,
  type BaseCacheEntry,
  encodeBaseCacheEntry,
  encodeBaseCacheFooter,
  parseBaseCacheEnds,
  parseBaseCacheTrailer,
} from '../../src/core/store-format/base-cache-format.js';
import { hex, loadVector, unhex } from './vectors.js';

const v = loadVector('base-cache.json');

/** The entries of a whole cache file, or undefined where a reader refuses it (as BaseCacheReader does). */
function parse(file: Uint8Array): BaseCacheEntry[] | undefined {
  const b = Buffer.from(file);
  const head = b.subarray(0, BASE_CACHE_MAGIC.length);
  const place = parseBaseCacheEnds(head, b.subarray(Math.max(0, b.length - BASE_CACHE_FOOTER_BYTES)), b.length);
  if (!place) return undefined;
  const trailer = b.subarray(place.trailerOffset, b.length - BASE_CACHE_FOOTER_BYTES);
  return parseBaseCacheTrailer(trailer, place.count, place.trailerOffset);
}

describe('base cache file layout', () => {
  const file = v.file as { hex: string; entries: BaseCacheEntry[]; data: string };

  it('parses the vector file to its entries, and encodes them back to the same bytes', () => {
    const bytes = unhex(file.hex);
    const entries = parse(bytes);
    expect(entries).toEqual(file.entries);
    const e = entries![0]!;
    expect(hex(bytes.subarray(e.dataOffset, e.dataOffset + e.length))).toBe(file.data);
    const again = Buffer.concat([
      BASE_CACHE_MAGIC,
      unhex(file.data),
      ...entries!.map(encodeBaseCacheEntry),
      encodeBaseCacheFooter(entries!.length, BASE_CACHE_MAGIC.length + unhex(file.data).length),
    ]);
    expect(hex(again)).toBe(file.hex);
  });

  it.each(v.damaged as { why: string; hex: string }[])('refuses a file whose $why', (d) => {
    expect(parse(unhex(d.hex))).toBeUndefined();
  });
});
