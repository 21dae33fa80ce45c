// The delta-base cache file (spec/FORMAT.md §18): its layout against the spec's vectors, and the writer and reader
// on real files: what a reader hands out is always the bytes of the chunk asked for, or nothing.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_CACHE_FOOTER_BYTES,
  encodeBaseCacheTail,
  parseBaseCacheFooter,
  parseBaseCacheTable,
} from '../../src/core/store-format/base-cache-format.js';
import { groupBytes } from '../../src/core/store-format/codec/byte-group.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { BaseCacheReader, BaseCacheWriter, baseCacheFile } from '../../src/store/base-cache.js';
import { StoreLayout } from '../../src/store/store-layout.js';
import { trainedFloat32 } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { hex, loadVector, unhex } from './vectors.js';

interface Vectors {
  file: string;
  entries: { id: string; offset: number; length: number; bytes: string }[];
  refused: { name: string; file: string }[];
}
const vectors = loadVector<Vectors>('base-cache.json');

/** The entries of a whole cache file, or undefined when a reader must ignore it. */
function parse(file: Uint8Array) {
  const at = parseBaseCacheFooter(file.subarray(file.length - BASE_CACHE_FOOTER_BYTES), file.length);
  return (
    at && parseBaseCacheTable(file.subarray(at.tableOffset, file.length - BASE_CACHE_FOOTER_BYTES), at.tableOffset)
  );
}

afterAll(() => cleanupTemp());

describe('the cache file layout (spec vectors)', () => {
  it('reads the entries of the vector file, and writes that file from them', () => {
    const file = unhex(vectors.file);
    const entries = parse(file);
    expect([...entries!.values()]).toEqual(vectors.entries.map(({ id, offset, length }) => ({ id, offset, length })));
    for (const e of vectors.entries) {
      const bytes = file.subarray(e.offset, e.offset + e.length);
      expect(hex(bytes)).toBe(e.bytes);
      expect(objectId('chunk', bytes)).toBe(e.id);
    }
    const dataEnd = Math.max(...vectors.entries.map((e) => e.offset + e.length));
    const tail = encodeBaseCacheTail(vectors.entries, dataEnd);
    expect(hex(Buffer.concat([file.subarray(0, dataEnd), tail]))).toBe(vectors.file);
  });

  it('ignores a file over its caps: more than 262,144 entries, more than 1 GiB of data, an entry over 64 MiB', () => {
    // Footers and tables alone, with the file size they claim (such files are too large for the vectors).
    const footer = (count: number, tableOffset: number) => {
      const f = encodeBaseCacheTail([], tableOffset);
      f.writeUInt32LE(count, 0);
      return f;
    };
    const size = (count: number, tableOffset: number) => tableOffset + count * 44 + BASE_CACHE_FOOTER_BYTES;
    expect(parseBaseCacheFooter(footer(262_144, 0), size(262_144, 0))).toEqual({ count: 262_144, tableOffset: 0 });
    expect(parseBaseCacheFooter(footer(262_145, 0), size(262_145, 0))).toBeUndefined();
    expect(parseBaseCacheFooter(footer(0, 1024 ** 3), size(0, 1024 ** 3))).toEqual({
      count: 0,
      tableOffset: 1024 ** 3,
    });
    expect(parseBaseCacheFooter(footer(0, 1024 ** 3 + 1), size(0, 1024 ** 3 + 1))).toBeUndefined();
    const entry = (length: number) =>
      encodeBaseCacheTail([{ id: 'ab'.repeat(32), offset: 0, length }], 0).subarray(0, 44);
    expect(parseBaseCacheTable(entry(64 * 1024 * 1024), 64 * 1024 * 1024)?.size).toBe(1);
    expect(parseBaseCacheTable(entry(64 * 1024 * 1024 + 1), 64 * 1024 * 1024 + 1)).toBeUndefined();
  });

  it.each(vectors.refused.map((r) => [r.name, r.file]))('ignores a file with %s', (_name, file) => {
    const bytes = unhex(file);
    expect(bytes.length < BASE_CACHE_FOOTER_BYTES ? undefined : parse(bytes)).toBeUndefined();
  });
});

describe('writing and reading the cache', () => {
  const chunk = (seed: number) => trainedFloat32(seed, 4096); // 16 KiB of F32
  const saved = process.env.CKVC_CACHE;
  let cacheRoot: string;
  beforeAll(() => {
    cacheRoot = tempDir('ckvc-base-cache-root-');
    process.env.CKVC_CACHE = cacheRoot;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.CKVC_CACHE;
    else process.env.CKVC_CACHE = saved;
  });

  const storeLayout = () => new StoreLayout(tempDir('ckvc-base-cache-'));
  const fileOf = (layout: StoreLayout) => baseCacheFile(layout)!;
  const inFolder = () => fs.readdirSync(path.join(cacheRoot, 'bases')).sort();
  const temps = () => inFolder().filter((n) => n.endsWith('.tmp'));

  function written(layout: StoreLayout, chunks: Buffer[]): void {
    const w = BaseCacheWriter.create(layout)!;
    for (const c of chunks) w.add(objectId('chunk', c), c);
    w.finish();
  }

  it('hands out a chunk grouped by the width asked for, only with its length, and only when its bytes hash to its ID', () => {
    const layout = storeLayout();
    const [a, b] = [chunk(1), chunk(2)];
    written(layout, [a, b]);
    // in the user's cache folder, named by the store's real path, never in the store
    expect(path.dirname(fileOf(layout))).toBe(path.join(cacheRoot, 'bases'));
    expect(fs.readdirSync(layout.root)).toEqual([]);
    expect(temps()).toEqual([]);
    const r = BaseCacheReader.open(layout)!;
    expect(Buffer.from(r.readGrouped(objectId('chunk', a), a.length, 4)!).equals(groupBytes(a, 4))).toBe(true);
    expect(Buffer.from(r.readGrouped(objectId('chunk', b), b.length, 1)!).equals(b)).toBe(true);
    expect(r.readGrouped(objectId('chunk', a), a.length - 4, 4)).toBeUndefined();
    expect(r.has(objectId('chunk', chunk(3)))).toBe(false);
    // One flipped byte in b's bytes: b is not handed out, a still is.
    const fd = fs.openSync(fileOf(layout), 'r+');
    fs.writeSync(fd, Buffer.from([b[100]! ^ 1]), 0, 1, a.length + 100);
    fs.closeSync(fd);
    const again = BaseCacheReader.open(layout)!;
    expect(again.readGrouped(objectId('chunk', b), b.length, 4)).toBeUndefined();
    expect(again.readGrouped(objectId('chunk', a), a.length, 4)).toBeDefined();
    // A cache written over it since the reader opened (another commit): a miss, never the other file's bytes.
    written(layout, [chunk(8)]);
    expect(again.readGrouped(objectId('chunk', a), a.length, 4)).toBeUndefined();
    // Another store: another file, and none of the first one's chunks.
    const other = storeLayout();
    expect(fileOf(other)).not.toBe(fileOf(layout));
    expect(BaseCacheReader.open(other)).toBeUndefined();
  });

  it('keeps the cache as it was when a writer adds nothing or is aborted, and drops the aborted temp file', () => {
    const layout = storeLayout();
    written(layout, [chunk(4)]);
    const before = fs.readFileSync(fileOf(layout));
    BaseCacheWriter.create(layout)!.finish();
    expect(fs.readFileSync(fileOf(layout)).equals(before)).toBe(true);
    expect(temps()).toEqual([]);
    const w = BaseCacheWriter.create(layout)!;
    w.add(objectId('chunk', chunk(5)), chunk(5));
    expect(temps()).toHaveLength(1);
    expect(temps()[0]).toMatch(new RegExp(`^${path.basename(fileOf(layout))}\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    w.abort();
    expect(temps()).toEqual([]);
    expect(fs.readFileSync(fileOf(layout)).equals(before)).toBe(true);
  });

  it('keeps the caches of the 4 stores written last, and removes temp files older than 10 minutes', () => {
    for (const n of inFolder()) fs.rmSync(path.join(cacheRoot, 'bases', n));
    const stale = path.join(cacheRoot, 'bases', `${'0'.repeat(32)}.12345.0123456789ab.tmp`);
    const young = path.join(cacheRoot, 'bases', `${'1'.repeat(32)}.12345.0123456789ab.tmp`);
    fs.writeFileSync(stale, 'x');
    fs.writeFileSync(young, 'x');
    const old = new Date(Date.now() - 11 * 60_000);
    fs.utimesSync(stale, old, old);
    const layouts = Array.from({ length: 6 }, () => storeLayout());
    layouts.forEach((l, i) => {
      written(l, [chunk(10 + i)]);
      const t = new Date(Date.now() - (6 - i) * 60_000); // written in that order
      fs.utimesSync(fileOf(l), t, t);
    });
    written(layouts[5]!, [chunk(20)]);
    expect(inFolder()).toEqual([...layouts.slice(2).map((l) => path.basename(fileOf(l))), path.basename(young)].sort());
  });

  it('ignores a file that is truncated, a link, or a FIFO (without waiting for a writer to open it)', () => {
    const layout = storeLayout();
    written(layout, [chunk(6), chunk(7)]);
    const file = fileOf(layout);
    const whole = fs.readFileSync(file);
    fs.writeFileSync(file, whole.subarray(0, whole.length - 1));
    expect(BaseCacheReader.open(layout)).toBeUndefined();
    const elsewhere = path.join(layout.root, 'elsewhere');
    fs.writeFileSync(elsewhere, whole);
    fs.rmSync(file);
    fs.symlinkSync(elsewhere, file);
    expect(BaseCacheReader.open(layout)).toBeUndefined();
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
    expect(BaseCacheReader.open(layout)).toBeUndefined();
    fs.rmSync(file);
    expect(BaseCacheReader.open(layout)).toBeUndefined();
  });
});
