// Reading delta chains plane by plane (src/store/plane-chain.ts, spec/FORMAT.md §4.3): a base's planes are read
// only where the record above XORs with them, a damaged plane that is needed fails the read with a code and writes
// nothing, and a base stored in another codec or width is decoded whole and still serves the chain.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBody } from '../../src/core/store-format/codec/record-codec.js';
import { parseDeltaHead, parsePlaneHeader, PLANE_XOR } from '../../src/core/store-format/codec/plane-codec.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import {
  type CodecId,
  CODECS,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { consolidatePacks } from '../../src/store/pack-consolidation.js';
import { verifyStore } from '../../src/store/verify-store.js';
import { PackWriter } from '../../src/store/pack-writer.js';
import { errorCodes } from '../helpers/ckvc.js';
import {
  optimizerStepFloat32,
  randomBytes,
  safetensorsBytes,
  type TensorSpec,
  trainedFloat32,
} from '../helpers/data.js';
import { flipByte } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';

const ELEMENTS = 64 * 1024; // one 256 KiB chunk of F32

const checkpoint = (w: Buffer) => safetensorsBytes({ w: { dtype: 'F32', shape: [ELEMENTS], bytes: w } });

interface Located {
  packFile: string;
  entry: PackEntry;
}

/** Every delta record of the store, with the record of its base. */
async function deltasWithBases(storeDir: string): Promise<{ delta: Located; base: Located }[]> {
  const store = await ObjectStore.open(storeDir);
  try {
    const out: { delta: Located; base: Located }[] = [];
    for (const name of fs.readdirSync(path.join(storeDir, 'packs'))) {
      const packId = name.slice(0, 64);
      for (const entry of (await store.packs.readToc(packId)).entries) {
        if (entry.codec !== CODECS.xorPlanes) continue;
        const baseId = (await store.packs.readDeltaBaseId({ packId, entry }))!;
        const [b] = await store.locateAll([baseId], 'delta base');
        const packFile = (id: string) => path.join(storeDir, 'packs', `${id}.pack`);
        out.push({
          delta: { packFile: packFile(packId), entry },
          base: { packFile: packFile(b!.packId), entry: b!.entry },
        });
      }
    }
    return out;
  } finally {
    await store.close();
  }
}

/** The plane table of a record, and the file offset where its stored body starts. */
function planesOf(r: Located): { body: number; planes: { mode: number; offset: number; length: number }[] } {
  const bytes = fs.readFileSync(r.packFile);
  const body = r.entry.offset + RECORD_HEADER_BYTES;
  const stored = bytes.subarray(body, body + r.entry.storedLength);
  const h = parsePlaneHeader(stored, r.entry.rawLength, r.entry.codec === CODECS.xorPlanes, 'test');
  return { body, planes: h.planes };
}

describe('reading delta chains plane by plane', () => {
  let s: TestStore;
  const versions: Buffer[] = [];
  let top: string;

  beforeAll(() => {
    s = newStore('ckvc-chain-');
    const file = path.join(tempDir('ckvc-chain-in-'), 'model.safetensors');
    let w = trainedFloat32(7, ELEMENTS);
    for (let k = 0; k < 3; k++) {
      if (k > 0) w = optimizerStepFloat32(w, 50 + k);
      versions.push(checkpoint(w));
      fs.writeFileSync(file, versions[k]!);
      top = commitId(s, [file, '-m', `step ${k}`]);
    }
  });
  afterAll(() => cleanupTemp());

  it('a base plane the record above does not XOR is never read: damage there leaves checkout intact', async () => {
    const c = copyStore(s);
    const { delta, base } = (await deltasWithBases(c.store)).find((d) => d.base.entry.codec === CODECS.xorPlanes)!;
    const plainInDelta = planesOf(delta).planes.findIndex((p) => !(p.mode & PLANE_XOR));
    expect(plainInDelta).toBeGreaterThanOrEqual(0);
    const b = planesOf(base);
    flipByte(base.packFile, b.body + b.planes[plainInDelta]!.offset + 5);
    const out = tempDir('ckvc-chain-out-');
    c.ok(['checkout', top, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(versions[2]!)).toBe(true);
    // The damage is still found where it matters: by verify, and by a checkout of the base's own commit.
    const v = c.run(['verify', '--read-data']);
    expect(v.code).toBe(12);
  });

  it('a damaged base plane that a delta XORs with fails the checkout with a code and writes nothing', async () => {
    const c = copyStore(s);
    const { delta, base } = (await deltasWithBases(c.store))[0]!;
    const xored = planesOf(delta).planes.findIndex((p) => p.mode & PLANE_XOR);
    const b = planesOf(base);
    const plane = b.planes[xored]!;
    flipByte(base.packFile, b.body + plane.offset + Math.floor(plane.length / 2));
    const out = tempDir('ckvc-chain-bad-');
    const r = c.run(['checkout', top, '--to', out]);
    expect(r.code).toBe(12);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_CORRUPT_OBJECT']);
    expect(fs.readdirSync(out)).toEqual([]);
  });
});

describe('a delta whose base is stored in another codec or width', () => {
  afterAll(() => cleanupTemp());

  for (const baseStorage of ['raw', 'planes of width 2'] as const) {
    it(`reads through a base stored as ${baseStorage}`, async () => {
      const s = newStore('ckvc-chain-mixed-');
      const base = trainedFloat32(3, ELEMENTS);
      // Low mantissa halves zeroed: grouped by 2, half of every plane is zeros, so width 2 compresses.
      for (let i = 0; i < base.length; i += 4) base.writeUInt16LE(0, i);
      const data = optimizerStepFloat32(base, 4);
      const baseId = objectId('chunk', base);
      const id = objectId('chunk', data);
      const store = await ObjectStore.open(s.store);
      try {
        const writer = await PackWriter.create(store.layout);
        const b = baseStorage === 'raw' ? await encodeBody(base, 1, false) : await encodeBody(base, 2);
        expect(b.codec).toBe(baseStorage === 'raw' ? CODECS.raw : CODECS.planes);
        const e = await encodeBody(data, 4, true, { id: baseId, bytes: base });
        expect(e.codec).toBe(CODECS.xorPlanes);
        const entry = (oid: string, body: typeof b, raw: Buffer) => ({
          id: oid,
          type: 'chunk' as const,
          codec: body.codec,
          rawLength: raw.length,
          storedLength: body.storedLength,
        });
        await writer.addStored(entry(baseId, b, base), Buffer.concat(b.pieces));
        await writer.addStored(entry(id, e, data), Buffer.concat(e.pieces));
        await writer.finish();
      } finally {
        await store.close();
      }
      s.ok(['index', 'rebuild']);
      const again = await ObjectStore.open(s.store);
      try {
        expect(Buffer.from(await again.readRaw(id, 'chunk')).equals(data)).toBe(true);
        const grouped = await again.readChunkGrouped(id, 4);
        expect(grouped?.depth).toBe(1);
      } finally {
        await again.close();
      }
    });
  }
});

/** Writes chunk records (already encoded) into one pack of a fresh store and indexes it; returns the store. */
async function storeWithRecords(records: { id: string; raw: Uint8Array; codec: CodecId; body: Buffer }[]) {
  const s = newStore('ckvc-chain-rec-');
  const store = await ObjectStore.open(s.store);
  try {
    const writer = await PackWriter.create(store.layout);
    for (const r of records) {
      const entry = { id: r.id, type: 'chunk' as const, codec: r.codec, rawLength: r.raw.length };
      await writer.addStored({ ...entry, storedLength: r.body.length }, r.body);
    }
    await writer.finish();
  } finally {
    await store.close();
  }
  s.ok(['index', 'rebuild']);
  return s;
}

describe('chain depth and chain bounds', () => {
  afterAll(() => cleanupTemp());

  it('the depth a writer bounds its chains by counts a base stored at another width', async () => {
    // A (raw) <- B (XOR planes, width 2) <- C (XOR planes, width 4): B is 1 delta deep, C 2, at any width asked.
    const N = 256 * 1024;
    const tweak = (x: Buffer, seed: number) => {
      const y = Buffer.from(x);
      for (let i = seed; i < N; i += 997) y[i]! ^= 1;
      return y;
    };
    const A = randomBytes(11, N);
    const B = tweak(A, 3);
    const C = tweak(B, 5);
    const [a, b, c] = [A, B, C].map((x) => objectId('chunk', x));
    const encA = await encodeBody(A, 1, false);
    const encB = await encodeBody(B, 2, true, { id: a!, bytes: A });
    const encC = await encodeBody(C, 4, true, { id: b!, bytes: B });
    expect([encB.codec, encC.codec]).toEqual([CODECS.xorPlanes, CODECS.xorPlanes]);
    const s = await storeWithRecords([
      { id: a!, raw: A, codec: encA.codec, body: Buffer.concat(encA.pieces) },
      { id: b!, raw: B, codec: encB.codec, body: Buffer.concat(encB.pieces) },
      { id: c!, raw: C, codec: encC.codec, body: Buffer.concat(encC.pieces) },
    ]);
    const store = await ObjectStore.open(s.store);
    try {
      const depth = async (id: string, width: number) => (await store.readChunkGrouped(id, width))?.depth;
      expect([await depth(b!, 2), await depth(b!, 4), await depth(c!, 4), await depth(c!, 2)]).toEqual([1, 1, 2, 2]);
      expect(Buffer.from(await store.readRaw(c!, 'chunk')).equals(C)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('a record whose delta base is itself is refused before any plane inflates: no memory grows with the loop', async () => {
    // 16 MiB whose every plane is XORed and compresses to almost nothing: a few hundred bytes that, followed 64
    // times round the loop before the chain bound, would inflate a gigabyte.
    const RAW = 16 * 1024 * 1024;
    const raw = randomBytes(12, RAW);
    const id = objectId('chunk', raw);
    const enc = await encodeBody(raw, 8, true, { id: objectId('chunk', Buffer.from('another')), bytes: raw });
    expect(enc.codec).toBe(CODECS.xorPlanes);
    const body = Buffer.concat(enc.pieces);
    Buffer.from(id, 'hex').copy(body, 2);
    expect(parseDeltaHead(body, 'test').baseId).toBe(id);
    expect(body.length).toBeLessThan(64 * 1024);
    const s = await storeWithRecords([{ id, raw, codec: enc.codec, body }]);
    const store = await ObjectStore.open(s.store);
    let peak = 0;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    try {
      const before = process.memoryUsage().rss;
      const timer = setInterval(sample, 2);
      const err = await store.readRaw(id, 'chunk').then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      clearInterval(timer);
      sample();
      expect(err?.code).toBe('CKVC_CORRUPT_OBJECT');
      expect(err?.message).toMatch(/chain of delta bases is longer than 64/);
      expect(peak - before).toBeLessThan(256 * 1024 * 1024);
    } finally {
      await store.close();
    }
  });
});

describe("delta bases located from their pack's table of contents", () => {
  afterAll(() => cleanupTemp());

  /** Three commits of three one-chunk tensors: each commit's deltas have their bases in the commit before's pack. */
  function series(prefix: string): { s: TestStore; versions: Buffer[]; commits: string[] } {
    const s = newStore(prefix);
    const file = path.join(tempDir(`${prefix}in-`), 'model.safetensors');
    let ws = [31, 32, 33].map((seed) => trainedFloat32(seed, ELEMENTS));
    const versions: Buffer[] = [];
    const commits: string[] = [];
    for (let k = 0; k < 3; k++) {
      if (k > 0) ws = ws.map((w, i) => optimizerStepFloat32(w, 60 + 10 * i + k));
      const spec: Record<string, TensorSpec> = {};
      ws.forEach((w, i) => {
        spec[`t${i}`] = { dtype: 'F32', shape: [ELEMENTS], bytes: w };
      });
      versions.push(safetensorsBytes(spec));
      fs.writeFileSync(file, versions[k]!);
      commits.push(commitId(s, [file, '-m', `step ${k}`]));
    }
    return { s, versions, commits };
  }

  /** The three deltas of one commit whose bases all lie in one pack. */
  async function threeDeltas(store: string): Promise<{ delta: Located; base: Located }[]> {
    const byPacks = new Map<string, { delta: Located; base: Located }[]>();
    for (const d of await deltasWithBases(store)) {
      const key = `${d.delta.packFile} ${d.base.packFile}`;
      byPacks.set(key, [...(byPacks.get(key) ?? []), d]);
    }
    const three = [...byPacks.values()].find((ds) => ds.length === 3);
    expect(three).toBeDefined();
    return three!;
  }

  it('a damaged table of contents does not fail a read the index can serve, one read at a time or several at once', async () => {
    const { s, versions, commits } = series('ckvc-chain-toc-');
    const [first, ...others] = await threeDeltas(s.store);
    // Damage the other two bases' TOC entries (their codec, planes <-> xor-planes): the TOC still parses and agrees
    // with the index on the first base, so the others are answered from it, wrongly; the index still knows better.
    const packFile = first!.base.packFile;
    const packId = path.basename(packFile).slice(0, 64);
    const store0 = await ObjectStore.open(s.store);
    const entries = (await store0.packs.readToc(packId)).entries;
    await store0.close();
    const last = entries.at(-1)!;
    const tocStart = last.offset + RECORD_HEADER_BYTES + last.storedLength; // records end where the TOC starts
    const fd = fs.openSync(packFile, 'r+');
    for (const d of others) {
      const index = entries.findIndex((e) => e.id === d.base.entry.id);
      const wrong = d.base.entry.codec === CODECS.xorPlanes ? CODECS.planes : CODECS.xorPlanes;
      fs.writeSync(fd, Buffer.from([wrong]), 0, 1, tocStart + index * TOC_ENTRY_BYTES + 33); // an entry's codec byte
    }
    fs.closeSync(fd);

    const store = await ObjectStore.open(s.store);
    try {
      expect((await store.packs.readToc(packId)).entries.filter((e, i) => e.codec !== entries[i]!.codec)).toHaveLength(
        2,
      );
      // The first base is looked up in the index and its pack's TOC learnt; the other two then come from the TOC,
      // at the same time, both fail, and each is read again through the index (as a commit's base reads run).
      expect((await store.readChunkGrouped(first!.delta.entry.id, 4))?.grouped?.length).toBe(ELEMENTS * 4);
      const got = await Promise.all(others.map((d) => store.readChunkGrouped(d.delta.entry.id, 4)));
      expect(got.map((g) => g?.grouped?.length)).toEqual([ELEMENTS * 4, ELEMENTS * 4]);
    } finally {
      await store.close();
    }
    const out = tempDir('ckvc-chain-toc-out-');
    s.ok(['checkout', commits[2]!, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(versions[2]!)).toBe(true);
  });

  it('packs consolidated after their bases were learnt: reads and verify in the same process find the new packs', async () => {
    const { s } = series('ckvc-chain-toc-gone-');
    const deltas = await threeDeltas(s.store);
    const store = await ObjectStore.open(s.store);
    try {
      await store.readRaw(deltas[0]!.delta.entry.id, 'chunk'); // learns the base pack's TOC
      await consolidatePacks(store, { wait: true, all: true });
      expect(fs.existsSync(deltas[0]!.base.packFile)).toBe(false);
      const report = await verifyStore(store, { readData: true });
      expect(report.problems).toEqual([]);
      for (const d of deltas) expect((await store.readChunkGrouped(d.delta.entry.id, 4))?.depth).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });
});
