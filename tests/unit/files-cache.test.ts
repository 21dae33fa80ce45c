// The files cache file (spec/FORMAT.md §19): its layout against the spec's vectors, and when an entry is made and
// offered: only for a file whose state did not change while it was read and had settled before the reading began,
// and only while all five parts of that state are as they were.
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_PLAN_RULES } from '../../src/store/ingest/file-plan.js';
import { FilesCache, formatFilesCache, onLocalFileSystem, parseFilesCache } from '../../src/store/files-cache.js';
import { type StoreConfig, StoreLayout } from '../../src/store/store-layout.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { loadVector } from './vectors.js';

interface Vectors {
  planner: number;
  file: string;
  entries: {
    path: string;
    dev: string;
    ino: string;
    size: string;
    mtimeNs: string;
    ctimeNs: string;
    recipe: string;
    used: number;
  }[];
  refused: { name: string; text: string }[];
}
const vectors = loadVector<Vectors>('files-cache.json');

const savedCacheRoot = process.env.CKVC_CACHE;
beforeAll(() => {
  process.env.CKVC_CACHE = tempDir('ckvc-files-cache-root-');
});
afterAll(() => {
  if (savedCacheRoot === undefined) delete process.env.CKVC_CACHE;
  else process.env.CKVC_CACHE = savedCacheRoot;
  cleanupTemp();
});

const MS = 1_000_000n;
const T0 = 1_796_492_232_123_456_789n; // a change time in ns, not on a whole second

function stats(over: Partial<Record<'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs', bigint>> = {}): BigIntStats {
  return { dev: 65024n, ino: 2400540n, size: 77685911n, mtimeNs: T0, ctimeNs: T0, ...over } as BigIntStats;
}
const recipe = 'c'.repeat(64);

describe('files cache layout (spec vectors)', () => {
  it('reads the vector file as its entries, and writes those entries back to the same text', () => {
    expect(vectors.planner).toBe(FILE_PLAN_RULES);
    const entries = parseFilesCache(vectors.file, vectors.planner);
    expect(entries).toBeDefined();
    expect(
      [...entries!].map(([p, e]) => ({
        path: p,
        dev: `${e.stamp.dev}`,
        ino: `${e.stamp.ino}`,
        size: `${e.stamp.size}`,
        mtimeNs: `${e.stamp.mtimeNs}`,
        ctimeNs: `${e.stamp.ctimeNs}`,
        recipe: e.recipe,
        used: e.used,
      })),
    ).toEqual(vectors.entries);
    expect(formatFilesCache(entries!, vectors.planner)).toBe(vectors.file);
  });

  for (const r of vectors.refused) {
    it(`ignores a file with ${r.name}`, () => {
      expect(parseFilesCache(r.text, vectors.planner)).toBeUndefined();
    });
  }

  it('keeps the 65,536 entries used last', () => {
    const entries = new Map(
      Array.from({ length: 65_537 }, (_, i) => [
        `/f/${i}`,
        { stamp: { dev: 1n, ino: BigInt(i), size: 1n, mtimeNs: 1n, ctimeNs: 1n }, recipe, used: i + 1 },
      ]),
    );
    const back = parseFilesCache(formatFilesCache(entries, 1), 1)!;
    expect(back.size).toBe(65_536);
    expect(back.has('/f/0')).toBe(false);
    expect(back.has('/f/65536')).toBe(true);
  });

  it('keeps the entries used last that fit in 64 MiB, which a reader accepts', () => {
    // Paths near the 4 KiB a reader allows: about 16,000 rows fill the 64 MiB before the entry bound does.
    const dir = `/${'p'.repeat(4000)}`;
    const entries = new Map(
      Array.from({ length: 17_000 }, (_, i) => [
        `${dir}/${i}`,
        { stamp: { dev: 1n, ino: BigInt(i), size: 1n, mtimeNs: 1n, ctimeNs: 1n }, recipe, used: i + 1 },
      ]),
    );
    const text = formatFilesCache(entries, 1);
    const bytes = Buffer.byteLength(text);
    expect(bytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    const back = parseFilesCache(text, 1)!;
    expect(back.size).toBeGreaterThan(15_000);
    expect(back.size).toBeLessThan(17_000);
    // The newest kept, the oldest dropped; and the bound is met closely: one more row would not fit.
    expect(back.has(`${dir}/16999`)).toBe(true);
    expect(back.has(`${dir}/0`)).toBe(false);
    expect(bytes + Buffer.byteLength(text) / back.size).toBeGreaterThan(64 * 1024 * 1024 - 1024);
  });
});

const CHUNKING = {
  tensorChunkSize: 256 * 1024,
  cdc: { min: 16384, avg: 65536, max: 262144 },
} as unknown as StoreConfig;

// Entries are kept and offered only on local file systems (FORMAT.md §19): these need the temp folder on one.
describe.skipIf(!onLocalFileSystem(os.tmpdir()))('FilesCache', () => {
  function freshCache(now = Number(T0 / MS) + 10_000): { cache: FilesCache; layout: StoreLayout } {
    const dir = tempDir('ckvc-files-cache-store-');
    fs.mkdirSync(path.join(dir, '.ckvc'));
    const layout = new StoreLayout(path.join(dir, '.ckvc'));
    return { cache: FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES, () => now), layout };
  }
  const settledStart = Number((T0 + 150n * MS) / MS);
  /** Input files on this machine's temp folder (a local file system: the cache is used only on those). */
  const inputs = tempDir('ckvc-files-cache-inputs-');
  const input = (name: string) => {
    const p = path.join(inputs, name);
    fs.writeFileSync(p, name);
    return p;
  };
  const [A, B, RACY, FAT] = ['a.pt', 'b.pt', 'racy.pt', 'fat.pt'].map(input) as [string, string, string, string];

  it('offers a recorded recipe only while device, inode, size and both times are unchanged', () => {
    const { cache } = freshCache();
    cache.record(A, stats(), stats(), settledStart, recipe);
    expect(cache.candidate(A, stats())).toBe(recipe);
    expect(cache.candidate(B, stats())).toBeUndefined();
    for (const field of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const)
      expect(cache.candidate(A, stats({ [field]: stats()[field] + 1n })), field).toBeUndefined();
  });

  it('does not record a file read less than 100 ms after its last change, nor one that changed while read', () => {
    const { cache } = freshCache();
    cache.record(RACY, stats(), stats(), Number((T0 + 99n * MS) / MS), recipe);
    expect(cache.candidate(RACY, stats())).toBeUndefined();
    cache.record(A, stats(), stats(), settledStart, recipe);
    // Read again, and it changed meanwhile: the old entry goes too.
    cache.record(A, stats(), stats({ mtimeNs: T0 + 1n }), settledStart, recipe);
    expect(cache.candidate(A, stats())).toBeUndefined();
  });

  it('waits 3 s for a file whose times are whole seconds (a file system that keeps no more)', () => {
    const { cache } = freshCache();
    const whole = 1_796_492_232_000_000_000n;
    const st = stats({ mtimeNs: whole, ctimeNs: whole });
    cache.record(FAT, st, st, Number((whole + 2_999n * MS) / MS), recipe);
    expect(cache.candidate(FAT, st)).toBeUndefined();
    cache.record(FAT, st, st, Number((whole + 3_000n * MS) / MS), recipe);
    expect(cache.candidate(FAT, st)).toBe(recipe);
  });

  it('saves to the user cache folder (0600, no temp left) for the next open of the same store', () => {
    const { cache, layout } = freshCache();
    cache.record(A, stats(), stats(), settledStart, recipe);
    cache.save();
    const dir = path.join(process.env.CKVC_CACHE!, 'files');
    const names = fs.readdirSync(dir);
    expect(names.every((n) => /^[0-9a-f]{32}$/.test(n))).toBe(true);
    const file = path.join(
      dir,
      names.find((n) => parseFilesCache(fs.readFileSync(path.join(dir, n), 'utf8'), FILE_PLAN_RULES)?.has(A))!,
    );
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES).candidate(A, stats())).toBe(recipe);
    // Another planner's cache is no cache.
    expect(FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES + 1).candidate(A, stats())).toBeUndefined();
    // One byte changed anywhere: the whole file is ignored.
    const text = fs.readFileSync(file);
    text[text.length - 5] = text[text.length - 5]! ^ 1;
    fs.writeFileSync(file, text);
    expect(FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES).candidate(A, stats())).toBeUndefined();
  });

  it('keeps nothing a reader would refuse, nor files off local file systems, nor entries unused for 30 days', () => {
    const day = 24 * 3600_000;
    let now = Number(T0 / MS) + 10_000;
    const { cache, layout } = freshCache();
    const at = (ms: number) => () => ms;
    // Dated before 1970: a negative time, which the layout has no spelling for.
    const old = stats({ mtimeNs: -315_619_200_000_000_000n });
    cache.record(A, old, old, settledStart, recipe);
    expect(cache.candidate(A, old)).toBeUndefined();
    // procfs, like NFS, FUSE or FAT, is not a file system whose change times the cache trusts.
    const proc = stats({ dev: 4n });
    cache.record('/proc/self/status', proc, proc, settledStart, recipe);
    expect(cache.candidate('/proc/self/status', proc)).toBeUndefined();
    cache.record(B, stats(), stats(), settledStart, recipe);
    cache.save();
    expect(FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES).candidate(B, stats())).toBe(recipe);
    // Another chunking is another cache.
    const other = { ...CHUNKING, tensorChunkSize: 1024 * 1024 };
    expect(FilesCache.open(layout, other, FILE_PLAN_RULES).candidate(B, stats())).toBeUndefined();
    // Saved 31 days later by a commit that did not use it: dropped.
    now += 31 * day;
    const later = FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES, at(now));
    later.record(RACY, stats(), stats(), now, recipe); // something to save (not kept: too recent)
    later.save();
    expect(FilesCache.open(layout, CHUNKING, FILE_PLAN_RULES).candidate(B, stats())).toBeUndefined();
  });
});
