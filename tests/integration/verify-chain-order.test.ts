// Verifying a pack's records in chain order (src/store/verify-in-chain-order.ts), as a received bundle is: each
// delta is decoded once, against its base verified just before, so the work grows with the records, not with the
// square of a chain's length; and what is accepted this way is what a reader without that memory accepts (the
// 64-base bound still counts the bases under a remembered one), a damaged record still fails with its code.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ungroupBytes } from '../../src/core/store-format/codec/byte-group.js';
import { PLANE_XOR } from '../../src/core/store-format/codec/plane-codec.js';
import { encodeBody } from '../../src/core/store-format/codec/record-codec.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import {
  type CodecId,
  CODECS,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../../src/core/store-format/pack-format.js';
import { PackReader, type ObjectLocation } from '../../src/store/pack-reader.js';
import { PackWriter } from '../../src/store/pack-writer.js';
import { StoreLayout } from '../../src/store/store-layout.js';
import { verifyInChainOrder } from '../../src/store/verify-in-chain-order.js';
import { optimizerStepFloat32, randomBytes, trainedFloat32 } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { countInflates } from '../helpers/inflate-counter.js';

afterAll(() => cleanupTemp());

const N = 64 * 1024; // bytes per chunk: plane-coded, four planes of 16 KiB
const WIDTH = 4;

/** A chain of `length` chunks, each an optimizer step after the one before, as records: the first plain, then deltas. */
async function chainRecords(length: number, seed: number) {
  const raws = [trainedFloat32(seed, N / 4)];
  for (let k = 1; k < length; k++) raws.push(optimizerStepFloat32(raws[k - 1]!, 1000 * seed + k));
  const records = [];
  for (let k = 0; k < length; k++) {
    const id = objectId('chunk', raws[k]!);
    const base = k > 0 ? { id: objectId('chunk', raws[k - 1]!), bytes: raws[k - 1]! } : undefined;
    const enc = await encodeBody(raws[k]!, WIDTH, true, base);
    expect(enc.codec).toBe(k > 0 ? CODECS.xorPlanes : CODECS.planes);
    records.push({ id, raw: raws[k]!, codec: enc.codec, body: Buffer.concat(enc.pieces) });
  }
  return records;
}

/** One pack holding `records` in the order given; returns its reader, id, entries and file. */
interface Rec {
  id: string;
  raw: Uint8Array;
  codec: CodecId;
  body: Buffer;
}

async function packOf(records: Rec[], types?: ('chunk' | 'tree')[]) {
  const layout = new StoreLayout(path.join(tempDir('ckvc-chain-order-'), 'store'));
  fs.mkdirSync(layout.packsDir, { recursive: true });
  const writer = await PackWriter.create(layout, { durable: false });
  for (const [i, r] of records.entries())
    await writer.addStored(
      { id: r.id, type: types?.[i] ?? 'chunk', codec: r.codec, rawLength: r.raw.length, storedLength: r.body.length },
      r.body,
    );
  const done = (await writer.finish())!;
  const packs = new PackReader(layout);
  const entries = (await packs.readToc(done.packId)).entries;
  const byId = new Map(entries.map((e) => [e.id, e]));
  const locateBase = async (id: string) => {
    const e = byId.get(id);
    return e && { packId: done.packId, entry: e };
  };
  return { packs, packId: done.packId, entries, file: done.file, locateBase };
}

const at = (p: { packId: string; entries: PackEntry[] }): ObjectLocation[] =>
  p.entries.map((entry) => ({ packId: p.packId, entry }));

/** The binding's inflates while `fn` runs. */
async function countingInflates(fn: () => Promise<void>): Promise<{ inflates: number }> {
  const counter = await countInflates();
  try {
    await fn();
    return { inflates: counter.count };
  } finally {
    counter.restore();
  }
}

describe('verifying a pack in chain order', () => {
  it('decodes each record once against its base, in whatever order the pack holds them', async () => {
    const records = await chainRecords(12, 41);
    for (const order of [records, [...records].reverse()]) {
      const p = await packOf(order);
      const seen = new Map<string, Uint8Array>();
      const { inflates } = await countingInflates(() =>
        verifyInChainOrder(p.packs, at(p), {
          locateBase: p.locateBase,
          onObject: (r, bytes) => seen.set(r.entry.id, Buffer.from(bytes)),
        }),
      );
      expect(seen.size).toBe(records.length);
      for (const r of records) expect(Buffer.from(seen.get(r.id)!).equals(r.raw)).toBe(true);
      // At most one inflate per plane of each record; decoding each through its chain takes 1 + 2 + ... + 12 links.
      expect(inflates).toBeLessThanOrEqual(records.length * WIDTH);
      const chainWalks = await countingInflates(async () => {
        for (const e of p.entries)
          await p.packs.readObject({ packId: p.packId, entry: e }, e.id, 'chunk', undefined, p.locateBase);
      });
      expect(chainWalks.inflates).toBeGreaterThan(3 * inflates);
      await p.packs.close();
    }
  });

  it('keeps a one-byte-wide base it decoded until its deltas are done (its bytes are the ones it hashed)', async () => {
    // Int8 weights: width 1, so the decoded chunk and the copy kept as the next delta's base are one buffer.
    const raws = [randomBytes(51, N)];
    for (let k = 1; k < 10; k++) {
      const next = Buffer.from(raws[k - 1]!);
      for (let i = k; i < next.length; i += 97) next[i]! ^= 1 + (k % 7);
      raws.push(next);
    }
    const records = [];
    for (let k = 0; k < raws.length; k++) {
      const base = k > 0 ? { id: objectId('chunk', raws[k - 1]!), bytes: raws[k - 1]! } : undefined;
      const enc = await encodeBody(raws[k]!, 1, true, base);
      expect(enc.codec).toBe(k > 0 ? CODECS.xorPlanes : CODECS.raw);
      records.push({
        id: objectId('chunk', raws[k]!),
        raw: raws[k]!,
        codec: enc.codec,
        body: Buffer.concat(enc.pieces),
      });
    }
    const p = await packOf(records);
    const seen = new Map<string, Buffer>();
    await verifyInChainOrder(p.packs, at(p), {
      locateBase: p.locateBase,
      onObject: (r, bytes) => seen.set(r.entry.id, Buffer.from(bytes)),
    });
    expect(records.map((r) => seen.get(r.id)?.equals(r.raw))).toEqual(records.map(() => true));
    await p.packs.close();
  });

  it('counts the bases under a remembered one: a chain of 65 records passes, 66 fail as a store read fails', async () => {
    const records = await chainRecords(66, 42);
    const ok = await packOf(records.slice(0, 65));
    await verifyInChainOrder(ok.packs, at(ok), { locateBase: ok.locateBase });
    await ok.packs.close();

    const bad = await packOf(records);
    const top = bad.entries.find((e) => e.id === records[65]!.id)!;
    const err = await verifyInChainOrder(bad.packs, at(bad), { locateBase: bad.locateBase }).then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    expect(err?.code).toBe('CKVC_CORRUPT_OBJECT');
    expect(err?.message).toMatch(/chain of delta bases is longer than 64/);
    const plain = await bad.packs
      .readObject({ packId: bad.packId, entry: top }, top.id, 'chunk', undefined, bad.locateBase)
      .then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      );
    expect(plain?.message).toMatch(/chain of delta bases is longer than 64/);
    await bad.packs.close();
  });

  it('counts, per plane, only the links a read through the chain opens: records it reads back pass', async () => {
    // Width 2, raw planes of 16 bytes: 70 records each XORing the plane its base stores plainly (every XOR run is
    // one link deep, the chain of named bases 69), and two records that are each other's base on disjoint planes.
    const n = 16;
    const plane = (s: string) => createHash('sha256').update(s).digest().subarray(0, n);
    const xor = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.map((v, i) => v ^ b[i]!));
    const body = (planes: Uint8Array[], base?: string, xorMask = 0) => {
      const table = [0, 1].map((j) => {
        const e = Buffer.alloc(5);
        e.writeUInt8(xorMask & (1 << j) ? PLANE_XOR : 0, 0);
        e.writeUInt32LE(n, 1);
        return e;
      });
      return Buffer.concat([Buffer.from([2, 2]), ...(base ? [Buffer.from(base, 'hex')] : []), ...table, ...planes]);
    };
    const rec = (grouped: Uint8Array[], stored: Uint8Array[], base?: string, mask = 0) => {
      const raw = ungroupBytes(Buffer.concat(grouped), 2);
      return {
        id: objectId('chunk', raw),
        raw,
        codec: base ? CODECS.xorPlanes : CODECS.planes,
        body: body(stored, base, mask),
      };
    };
    let prev = [plane('0a'), plane('0b')];
    const alternating = [rec(prev, prev)];
    for (let k = 1; k < 70; k++) {
      const g = [plane(`${k}a`), plane(`${k}b`)];
      const p = k % 2;
      alternating.push(
        rec(
          g,
          g.map((pl, j) => (j === p ? xor(pl, prev[j]!) : pl)),
          alternating.at(-1)!.id,
          1 << p,
        ),
      );
      prev = g;
    }
    const [a0, a1, b0, b1] = ['A0', 'A1', 'B0', 'B1'].map(plane) as [Buffer, Buffer, Buffer, Buffer];
    const gA = [xor(a0, b0), a1];
    const gB = [b0, xor(b1, a1)];
    const idA = objectId('chunk', ungroupBytes(Buffer.concat(gA), 2));
    const idB = objectId('chunk', ungroupBytes(Buffer.concat(gB), 2));
    const loop = [
      { id: idA, raw: ungroupBytes(Buffer.concat(gA), 2), codec: CODECS.xorPlanes, body: body([a0, a1], idB, 1) },
      { id: idB, raw: ungroupBytes(Buffer.concat(gB), 2), codec: CODECS.xorPlanes, body: body([b0, b1], idA, 2) },
    ];
    for (const records of [alternating, loop]) {
      const p = await packOf(records);
      for (const e of p.entries)
        await p.packs.readObject({ packId: p.packId, entry: e }, e.id, 'chunk', undefined, p.locateBase);
      let verified = 0;
      await verifyInChainOrder(p.packs, at(p), { locateBase: p.locateBase, onObject: () => verified++ });
      expect(verified).toBe(records.length);
      await p.packs.close();
    }
  });

  it('a table of contents whose raw length disagrees with the record is refused before anything decodes', async () => {
    const records = await chainRecords(3, 45);
    const p = await packOf(records);
    const { tocOffset } = (() => {
      const last = p.entries.at(-1)!;
      return { tocOffset: last.offset + RECORD_HEADER_BYTES + last.storedLength };
    })();
    const fd = fs.openSync(p.file, 'r+');
    const lie = Buffer.alloc(4);
    lie.writeUInt32LE(16, 0); // entry 1 says 16 bytes; its header says 64 KiB
    fs.writeSync(fd, lie, 0, 4, tocOffset + TOC_ENTRY_BYTES + 44);
    fs.closeSync(fd);
    const packs = new PackReader(new StoreLayout(path.dirname(path.dirname(p.file))));
    const entries = (await packs.readToc(p.packId)).entries;
    expect(entries[1]!.rawLength).toBe(16);
    const err = await verifyInChainOrder(
      packs,
      entries.map((entry) => ({ packId: p.packId, entry })),
      {},
    ).then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    expect(err?.code).toBe('CKVC_CORRUPT_PACK');
    expect(err?.message).toMatch(/table of contents/);
    await packs.close();
    await p.packs.close();
  });

  it('a delta on a record that is not a chunk is refused, as a read through its chain refuses it', async () => {
    const [a, b] = await chainRecords(2, 44);
    // The base travels as a tree object with the same bytes: it verifies as itself, but is no chunk.
    const tree = { ...a!, id: objectId('tree', a!.raw), codec: CODECS.raw, body: Buffer.from(a!.raw) };
    const delta = await encodeBody(b!.raw, WIDTH, true, { id: tree.id, bytes: a!.raw });
    expect(delta.codec).toBe(CODECS.xorPlanes);
    const p = await packOf([tree, { ...b!, body: Buffer.concat(delta.pieces) }], ['tree', 'chunk']);
    const err = await verifyInChainOrder(p.packs, at(p), { locateBase: p.locateBase }).then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    expect(err?.code).toBe('CKVC_CORRUPT_OBJECT');
    expect(err?.message).toMatch(/delta base is not a chunk/);
    await p.packs.close();
  });

  it('a damaged record fails with its code and its ID, and nothing built on it is taken as verified', async () => {
    const records = await chainRecords(6, 43);
    const p = await packOf(records);
    const damaged = p.entries.find((e) => e.id === records[2]!.id)!;
    const fd = fs.openSync(p.file, 'r+');
    const pos = damaged.offset + RECORD_HEADER_BYTES + damaged.storedLength - 7; // inside its last plane
    fs.writeSync(fd, Buffer.from([0xa5 ^ fs.readFileSync(p.file)[pos]!]), 0, 1, pos);
    fs.closeSync(fd);
    const verified: string[] = [];
    const err = await verifyInChainOrder(p.packs, at(p), {
      locateBase: p.locateBase,
      onObject: (r) => verified.push(r.entry.id),
      failure: (r: ObjectLocation, cause) => Object.assign(new Error(`record ${r.entry.id}`), { cause }),
    }).then(
      () => undefined,
      (e: Error & { cause?: { code?: string } }) => e,
    );
    expect(err?.message).toBe(`record ${damaged.id}`);
    expect(err?.cause?.code).toBe('CKVC_CORRUPT_OBJECT');
    expect(verified).toEqual(records.slice(0, 2).map((r) => r.id));
    await p.packs.close();
  });
});
