// The files cache file (spec/FORMAT.md §19): its layout against the spec's vectors, and when an entry is made and
// offered: only for a file whose state did not change while it was read and had settled before the reading began,
// and only while all five parts of that state are as they were.
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_PLAN_RULES } from '../../src/store/ingest/file-plan.js';
import { FilesCache, formatFilesCache, parseFilesCache } from '../../src/store/files-cache.js';
import { StoreLayout } from '../../src/store/store-layout.js';
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
});

describe('FilesCache', () => {
  function freshCache(now = Number(T0 / MS) + 10_000): { cache: FilesCache; layout: StoreLayout } {
    const dir = tempDir('ckvc-files-cache-store-');
    fs.mkdirSync(path.join(dir, '.ckvc'));
    const layout = new StoreLayout(path.join(dir, '.ckvc'));
    return { cache: FilesCache.open(layout, FILE_PLAN_RULES, () => now), layout };
  }
  const settledStart = Number((T0 + 150n * MS) / MS);

  it('offers a recorded recipe only while device, inode, size and both times are unchanged', () => {
    const { cache } = freshCache();
    cache.record('/d/a.pt', stats(), stats(), settledStart, recipe);
    expect(cache.candidate('/d/a.pt', stats())).toBe(recipe);
    expect(cache.candidate('/d/b.pt', stats())).toBeUndefined();
    for (const field of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const)
      expect(cache.candidate('/d/a.pt', stats({ [field]: stats()[field] + 1n })), field).toBeUndefined();
  });

  it('does not record a file read less than 100 ms after its last change, nor one that changed while read', () => {
    const { cache } = freshCache();
    cache.record('/d/racy.pt', stats(), stats(), Number((T0 + 99n * MS) / MS), recipe);
    expect(cache.candidate('/d/racy.pt', stats())).toBeUndefined();
    cache.record('/d/a.pt', stats(), stats(), settledStart, recipe);
    // Read again, and it changed meanwhile: the old entry goes too.
    cache.record('/d/a.pt', stats(), stats({ mtimeNs: T0 + 1n }), settledStart, recipe);
    expect(cache.candidate('/d/a.pt', stats())).toBeUndefined();
  });

  it('waits 3 s for a file whose times are whole seconds (a file system that keeps no more)', () => {
    const { cache } = freshCache();
    const whole = 1_796_492_232_000_000_000n;
    const st = stats({ mtimeNs: whole, ctimeNs: whole });
    cache.record('/d/fat.pt', st, st, Number((whole + 2_999n * MS) / MS), recipe);
    expect(cache.candidate('/d/fat.pt', st)).toBeUndefined();
    cache.record('/d/fat.pt', st, st, Number((whole + 3_000n * MS) / MS), recipe);
    expect(cache.candidate('/d/fat.pt', st)).toBe(recipe);
  });

  it('saves to the user cache folder (0600, no temp left) for the next open of the same store', () => {
    const { cache, layout } = freshCache();
    cache.record('/d/a.pt', stats(), stats(), settledStart, recipe);
    cache.save();
    const dir = path.join(process.env.CKVC_CACHE!, 'files');
    const names = fs.readdirSync(dir);
    expect(names.every((n) => /^[0-9a-f]{32}$/.test(n))).toBe(true);
    const file = path.join(
      dir,
      names.find((n) => parseFilesCache(fs.readFileSync(path.join(dir, n), 'utf8'), 1)?.has('/d/a.pt'))!,
    );
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(FilesCache.open(layout, FILE_PLAN_RULES).candidate('/d/a.pt', stats())).toBe(recipe);
    // Another planner's cache is no cache.
    expect(FilesCache.open(layout, FILE_PLAN_RULES + 1).candidate('/d/a.pt', stats())).toBeUndefined();
    // One byte changed anywhere: the whole file is ignored.
    const text = fs.readFileSync(file);
    text[text.length - 5] = text[text.length - 5]! ^ 1;
    fs.writeFileSync(file, text);
    expect(FilesCache.open(layout, FILE_PLAN_RULES).candidate('/d/a.pt', stats())).toBeUndefined();
  });
});
