// Read-ahead of cold packs (src/store/pack-prefetch.ts): nothing is read ahead while reads come from the page
// cache; once a read has waited, packs are read ahead in offset order, a bounded window and a bounded number of
// reads at a time, on a real file.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PackPrefetch } from '../../src/store/pack-prefetch.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';

const MiB = 1024 * 1024;

/** A real file handle whose reads are recorded (offset and length) as they are issued. */
async function recordingHandle(): Promise<{
  fh: fsp.FileHandle;
  reads: [number, number][];
  close: () => Promise<void>;
}> {
  const file = path.join(tempDir('ckvc-prefetch-'), 'p.pack');
  fs.writeFileSync(file, Buffer.alloc(32 * MiB, 7));
  const real = await fsp.open(file, 'r');
  const reads: [number, number][] = [];
  const fh = new Proxy(real, {
    get(target, prop) {
      if (prop === 'read')
        return (buf: Buffer, off: number, len: number, at: number) => {
          reads.push([at, len]);
          return target.read(buf, off, len, at);
        };
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { fh, reads, close: () => real.close() };
}

const settle = () => new Promise((r) => setTimeout(r, 50));

describe('pack read-ahead', () => {
  afterAll(() => cleanupTemp());

  it('reads nothing ahead while reads are fast, and reads a slow pack ahead in offset order', async () => {
    const { fh, reads, close } = await recordingHandle();
    try {
      const p = new PackPrefetch();
      p.observe('a', fh, 0, 4096, 10_000n); // a page-cache read
      await settle();
      expect(reads).toEqual([]);
      p.observe('a', fh, 4096, 4096, 5_000_000n); // waited on the disk
      // Reading ahead continues as the reader moves on, until the window is ahead of it.
      for (let i = 0; i < 20; i++) {
        await settle();
        p.observe('a', fh, 8192, 4096, 10_000n);
      }
      const offsets = reads.map(([at]) => at);
      expect(offsets.length).toBeGreaterThan(2);
      expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
      expect(offsets[0]).toBe(8192);
      // Never further than the window ahead of the reader.
      expect(Math.max(...reads.map(([at, len]) => at + len))).toBeLessThanOrEqual(8192 + 4096 + 9 * MiB);
    } finally {
      await close();
    }
  });

  it('nothing is read ahead while every read is fast; once one has waited, every pack is read ahead from its first read', async () => {
    const cold = await recordingHandle();
    const other = await recordingHandle();
    try {
      const p = new PackPrefetch();
      p.observe('warm', other.fh, 0, 4096, 1_000n);
      await settle();
      expect(other.reads).toEqual([]);
      p.observe('cold', cold.fh, 0, 4096, 5_000_000n);
      expect(cold.reads.length).toBeGreaterThan(0);
      // A pack first read after that is read ahead though its own read was fast: the store is being read cold.
      p.observe('other', other.fh, 1 * MiB, 4096, 1_000n);
      expect(other.reads.length).toBeGreaterThan(0);
      expect(other.reads[0]![0]).toBe(1 * MiB + 4096);
      await settle();
    } finally {
      await cold.close();
      await other.close();
    }
  });
});
