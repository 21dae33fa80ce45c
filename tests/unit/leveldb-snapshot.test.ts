// The read-only LevelDB reader (src/core/leveldb-format.ts, src/store/index-snapshot.ts) against LevelDB itself:
// a database written by classic-level through puts, deletes, batches, clears, flushes and compactions must read
// back exactly as LevelDB reads it, whether the database is closed or still open in another handle, and taking
// the snapshot must not change a byte of the folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import {
  crc32c,
  LevelFormatError,
  logRecords,
  replayManifest,
  snappyDecompress,
} from '../../src/core/leveldb-format.js';
import {
  Block,
  blockContents,
  BLOCK_TRAILER_BYTES,
  BLOOM_FILTER_KEY,
  BloomFilters,
  decodeBlockHandle,
  decodeTableFooter,
  TABLE_FOOTER_BYTES,
} from '../../src/core/leveldb-table.js';
import { LevelSnapshot } from '../../src/store/index-snapshot.js';

const dirs: string[] = [];
afterAll(() =>
  dirs.forEach((d) => {
    fs.rmSync(d, { recursive: true, force: true });
  }),
);

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-ldb-'));
  dirs.push(d);
  return d;
}

/** Deterministic pseudo-random numbers, so a failure is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type DB = Level<Buffer, Buffer>;
const open = async (dir: string, compression: boolean): Promise<DB> => {
  const db = new Level<Buffer, Buffer>(dir, {
    keyEncoding: 'buffer',
    valueEncoding: 'buffer',
    writeBufferSize: 16 * 1024,
    blockSize: 512,
    maxFileSize: 32 * 1024,
    compression,
  } as never);
  await db.open();
  return db;
};

function fileState(dir: string): string {
  return fs
    .readdirSync(dir)
    .sort()
    .map((n) => {
      const st = fs.statSync(path.join(dir, n));
      return `${n} ${st.size} ${st.mtimeMs}`;
    })
    .join('\n');
}

async function expectSame(dir: string, model: Map<string, Buffer>, r: () => number, closed: boolean): Promise<void> {
  const before = closed ? fileState(dir) : '';
  const out = await LevelSnapshot.load(dir);
  if (out.kind !== 'ok') throw new Error(`snapshot: ${JSON.stringify(out)}`);
  const snap = out.snapshot;
  try {
    const keys = [...model.keys()].sort();
    for (const k of keys)
      expect((await snap.get(Buffer.from(k, 'hex')))?.toString('hex'), k).toBe(model.get(k)!.toString('hex'));
    for (let i = 0; i < 50; i++) {
      const k = Buffer.from([Math.floor(r() * 256), Math.floor(r() * 256), 0xee]);
      expect(await snap.get(k)).toBe(model.get(k.toString('hex')));
    }
    const all: string[] = [];
    for await (const [k, v] of snap.range(Buffer.alloc(0), Buffer.from([0xff, 0xff, 0xff, 0xff])))
      all.push(`${k.toString('hex')}=${v.toString('hex')}`);
    expect(all).toEqual(keys.map((k) => `${k}=${model.get(k)!.toString('hex')}`));
    const lo = Buffer.from([0x40]);
    const hi = Buffer.from([0x80, 0x10]);
    const part: string[] = [];
    for await (const [k] of snap.range(lo, hi)) part.push(k.toString('hex'));
    expect(part).toEqual(
      keys.filter(
        (k) => Buffer.compare(Buffer.from(k, 'hex'), lo) >= 0 && Buffer.compare(Buffer.from(k, 'hex'), hi) < 0,
      ),
    );
  } finally {
    await snap.close();
  }
  // (An open handle compacts in the background, so only a closed database must be byte-for-byte as it was.)
  if (closed) expect(fileState(dir)).toBe(before);
}

describe('reading LevelDB files without LevelDB', () => {
  for (const compression of [true, false]) {
    it(`agrees with classic-level through flushes, compactions and reopenings (compression ${compression})`, async () => {
      const dir = tmp();
      const r = rng(compression ? 7 : 11);
      const model = new Map<string, Buffer>();
      let db = await open(dir, compression);
      let tables = 0;
      for (let round = 0; round < 12; round++) {
        const ops = 300 + Math.floor(r() * 900);
        let batch = db.batch();
        for (let i = 0; i < ops; i++) {
          const key = Buffer.from([Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 4)]);
          const k = key.toString('hex');
          if (r() < 0.2 && model.size) {
            batch.del(key);
            model.delete(k);
          } else {
            // Repetitive values compress; random ones do not: both kinds of block occur.
            const value =
              r() < 0.5
                ? Buffer.alloc(Math.floor(r() * 120), round)
                : Buffer.from(Array.from({ length: Math.floor(r() * 120) }, () => Math.floor(r() * 256)));
            batch.put(key, value);
            model.set(k, value);
          }
          if (i % 40 === 39) {
            await batch.write();
            batch = db.batch();
          }
        }
        await batch.write();
        if (round === 8) {
          await db.clear({ gte: Buffer.from([0x20]), lt: Buffer.from([0x60]) });
          for (const k of [...model.keys()]) if (k >= '20' && k < '60') model.delete(k);
        }
        // While another handle has it open (entries still in the write-ahead log), and after it is closed.
        await expectSame(dir, model, r, false);
        if (round % 3 === 2) {
          await db.close();
          await expectSame(dir, model, r, true);
          db = await open(dir, compression);
        }
        tables = Math.max(tables, fs.readdirSync(dir).filter((n) => n.endsWith('.ldb')).length);
      }
      await db.close();
      await expectSame(dir, model, r, true);
      expect(tables).toBeGreaterThan(3); // the data did reach tables, not only the log
    });
  }

  it('finds long keys that share long prefixes (a lookup assembles each key it skips in a growing buffer)', async () => {
    const dir = tmp();
    const r = rng(5);
    const db = await open(dir, false);
    const model = new Map<string, Buffer>();
    // Keys of 70 to 300 bytes: a few long common prefixes, then a random tail.
    const prefixes = [0, 1, 2].map((p) => Buffer.alloc(60 + 80 * p, 0x61 + p));
    for (let i = 0; i < 600; i++) {
      const tail = Buffer.from(Array.from({ length: 10 + Math.floor(r() * 40) }, () => Math.floor(r() * 256)));
      const key = Buffer.concat([prefixes[i % 3]!, tail]);
      const value = Buffer.from(`v${i}`);
      await db.put(key, value);
      model.set(key.toString('hex'), value);
    }
    // And keys that grow in key order (a shared 40-byte prefix, then 3 more bytes per key): skipping them, the
    // buffer grows while it holds the shared prefix of the key being assembled.
    for (let i = 0; i < 256; i++) {
      const key = Buffer.concat([Buffer.alloc(40, 0x7a), Buffer.from([i]), Buffer.alloc(3 * i, i)]);
      await db.put(key, Buffer.from(`g${i}`));
      model.set(key.toString('hex'), Buffer.from(`g${i}`));
    }
    await db.close();
    await expectSame(dir, model, r, true);
    const out = await LevelSnapshot.load(dir);
    if (out.kind !== 'ok') throw new Error(`snapshot: ${JSON.stringify(out)}`);
    try {
      // From the middle of the longest prefix: every key of that prefix and after, in order.
      const from = Buffer.concat([prefixes[2]!.subarray(0, 200), Buffer.from([0x62])]);
      const got: string[] = [];
      for await (const [k] of out.snapshot.range(from, Buffer.alloc(400, 0xff))) got.push(k.toString('hex'));
      const keys = [...model.keys()].sort().filter((k) => Buffer.compare(Buffer.from(k, 'hex'), from) >= 0);
      expect(got).toEqual(keys);
      expect(got.length).toBe(200 + 256); // the rest of the longest prefix, and the growing keys after it
    } finally {
      await out.snapshot.close();
    }
  });

  it('a block seeks like a plain scan, with keys that grow past any buffer (prefix-compressed, one restart)', () => {
    // Internal keys (user key + 8-byte sequence) sharing a 30-byte prefix and growing by 7 bytes per entry up to
    // about 7 KiB, encoded as LevelDB does with a single restart point: every entry after the first shares bytes
    // with the one before, so a seek that skips them assembles each in a buffer that must grow while holding the
    // shared part.
    const keys = Array.from({ length: 1000 }, (_, i) =>
      Buffer.concat([
        Buffer.alloc(30, 0x41),
        Buffer.from([i >> 8, i & 0xff]),
        Buffer.alloc(7 * i, i & 0xff),
        Buffer.alloc(8),
      ]),
    );
    const varint = (n: number) => {
      const out: number[] = [];
      for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
      out.push(n);
      return Buffer.from(out);
    };
    const parts: Buffer[] = [];
    let prev = Buffer.alloc(0);
    keys.forEach((k, i) => {
      let shared = 0;
      while (shared < Math.min(prev.length, k.length) && prev[shared] === k[shared]) shared++;
      const value = Buffer.from(`v${i}`);
      parts.push(varint(shared), varint(k.length - shared), varint(value.length), k.subarray(shared), value);
      prev = k;
    });
    parts.push(Buffer.alloc(4), Buffer.from([1, 0, 0, 0])); // restarts: [0], count 1
    const block = new Block(Buffer.concat(parts));
    const user = (k: Buffer) => k.subarray(0, k.length - 8);
    for (const i of [0, 1, 17, 300, 500, 998, 999]) {
      const hit = block.seek(user(keys[i]!));
      expect([i, hit?.[0].equals(keys[i]!), hit?.[1].toString()]).toEqual([i, true, `v${i}`]);
      // Between two keys: the next one.
      const between = Buffer.concat([user(keys[i]!), Buffer.from([0])]);
      expect(block.seek(between)?.[1].toString()).toBe(i === 999 ? undefined : `v${i + 1}`);
    }
    expect([...block.entries(user(keys[995]!))].map(([, v]) => v.toString())).toEqual([
      'v995',
      'v996',
      'v997',
      'v998',
      'v999',
    ]);
  });

  it('reads a level made of several tables (more than LevelDB puts in one file) in key order', async () => {
    const dir = tmp();
    const r = rng(3);
    const model = new Map<string, Buffer>();
    const db = await open(dir, true);
    for (let b = 0; b < 60; b++) {
      const batch = db.batch();
      for (let i = 0; i < 1000; i++) {
        const key = Buffer.from([Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256)]);
        const value = Buffer.from(Array.from({ length: 100 }, () => Math.floor(r() * 256)));
        batch.put(key, value);
        model.set(key.toString('hex'), value);
      }
      await batch.write();
    }
    await db.close();
    const manifest = fs.readFileSync(path.join(dir, fs.readFileSync(path.join(dir, 'CURRENT'), 'latin1').trim()));
    const levels = replayManifest(logRecords(manifest, true))
      .files.map((f) => f.level)
      .filter((l) => l > 0);
    expect(levels.length - new Set(levels).size).toBeGreaterThan(0);
    await expectSame(dir, model, r, true);

    // The Bloom filters LevelDB wrote are read right: every key of a table passes its block's filter, and most
    // keys that are not there do not (LevelDB's 10 bits per key: about 1% false positives).
    const file = fs.readFileSync(path.join(dir, fs.readdirSync(dir).find((n) => n.endsWith('.ldb'))!));
    const handles = decodeTableFooter(file.subarray(file.length - TABLE_FOOTER_BYTES));
    const block = (h: { offset: number; size: number }) =>
      blockContents(file.subarray(h.offset, h.offset + h.size + BLOCK_TRAILER_BYTES));
    const meta = [...new Block(block(handles.metaindex)).entries()].find(
      ([k]) => k.toString('latin1') === BLOOM_FILTER_KEY,
    );
    const filters = new BloomFilters(block(decodeBlockHandle(meta![1])));
    let present = 0;
    let probes = 0;
    let falsePositives = 0;
    for (const [, h] of new Block(block(handles.index)).entries()) {
      const handle = decodeBlockHandle(h);
      for (const [ikey] of new Block(block(handle)).entries()) {
        present++;
        expect(filters.mayContain(handle.offset, ikey.subarray(0, ikey.length - 8))).toBe(true);
      }
      for (let i = 0; i < 20; i++) {
        const absent = Buffer.from([Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256), 0xee]);
        if (filters.mayContain(handle.offset, absent)) falsePositives++;
        probes++;
      }
    }
    expect(present).toBeGreaterThanOrEqual(500);
    expect(falsePositives).toBeLessThan(probes / 20);
  });

  it('a missing database is missing; a damaged one is damaged; a damaged block throws LevelFormatError', async () => {
    expect((await LevelSnapshot.load(path.join(tmp(), 'nothing'))).kind).toBe('missing');
    const dir = tmp();
    const db = await open(dir, true);
    for (let i = 0; i < 3000; i++) await db.put(Buffer.from(`key${i}`), Buffer.alloc(20, i));
    await db.close();
    const table = fs.readdirSync(dir).find((n) => n.endsWith('.ldb'))!;
    const bytes = fs.readFileSync(path.join(dir, table));
    bytes[10] = bytes[10]! ^ 0xff; // inside the first data block
    fs.writeFileSync(path.join(dir, table), bytes);
    const out = await LevelSnapshot.load(dir);
    if (out.kind !== 'ok') throw new Error(out.kind);
    let err: unknown;
    try {
      for await (const _ of out.snapshot.range(Buffer.alloc(0), Buffer.from([0xff]))) {
        /* reads every block */
      }
    } catch (e) {
      err = e;
    }
    await out.snapshot.close();
    expect(err).toBeInstanceOf(LevelFormatError);
    fs.writeFileSync(path.join(dir, 'CURRENT'), 'garbage');
    expect((await LevelSnapshot.load(dir)).kind).toBe('damaged');
  });

  it('crc32c and snappy match their reference vectors', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    // "abcabcabcabc": literal "abc" then a copy of 9 bytes at offset 3 (tag 0b01: 4 + 5 bytes, offset 3).
    expect(snappyDecompress(Buffer.from([12, 0x08, 0x61, 0x62, 0x63, 0x15, 0x03])).toString()).toBe('abcabcabcabc');
    expect(() => snappyDecompress(Buffer.from([12, 0x08, 0x61, 0x62, 0x63, 0x15, 0x09]))).toThrow(LevelFormatError);
  });
});
