// Codecs 5 and 6 against the spec's vectors (spec/FORMAT.md §4.3), and the writer's choices per plane.
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeBody, joinPieces } from '../../src/core/store-format/codec/record-codec.js';
import { isCkvcError } from '../../src/core/errors.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { trainedFloat32 } from '../helpers/data.js';
import { hex, loadVector, unhex } from './vectors.js';

interface Vectors {
  decode: { name: string; codec: number; raw: string; base?: string; stored: string }[];
  refused: { name: string; codec: number; rawLength: number; base?: string; stored: string }[];
}

const vectors = loadVector<Vectors>('plane-codec.json');

async function refusal(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

const weights = (n: number, seed: number): Buffer => trainedFloat32(seed, n);

describe('codecs 5 and 6 (spec vectors)', () => {
  it('decodes every vector to its raw bytes', async () => {
    expect(vectors.decode.length).toBeGreaterThanOrEqual(5);
    for (const v of vectors.decode) {
      const raw = unhex(v.raw);
      const out = await decodeBody(
        v.codec,
        unhex(v.stored),
        raw.length,
        v.name,
        undefined,
        v.base ? unhex(v.base) : undefined,
      );
      expect(hex(out), v.name).toBe(v.raw);
    }
  });

  it('refuses every malformed body with CKVC_CORRUPT_OBJECT', async () => {
    expect(vectors.refused.length).toBeGreaterThanOrEqual(10);
    for (const v of vectors.refused) {
      const err = await refusal(
        decodeBody(v.codec, unhex(v.stored), v.rawLength, v.name, undefined, v.base ? unhex(v.base) : undefined),
      );
      expect(isCkvcError(err, 'CKVC_CORRUPT_OBJECT'), `${v.name}: ${String(err)}`).toBe(true);
    }
  });

  it('refuses a delta without its base, or with a base of another length', async () => {
    const v = vectors.decode.find((x) => x.codec === 6)!;
    const raw = unhex(v.raw);
    expect(isCkvcError(await refusal(decodeBody(6, unhex(v.stored), raw.length, 't')), 'CKVC_CORRUPT_OBJECT')).toBe(
      true,
    );
    expect(
      isCkvcError(
        await refusal(decodeBody(6, unhex(v.stored), raw.length, 't', undefined, unhex(v.base!).subarray(1))),
        'CKVC_CORRUPT_OBJECT',
      ),
    ).toBe(true);
  });
});

describe('the writer, plane by plane', () => {
  it('stores noise planes raw and the exponent plane compressed (codec 5)', async () => {
    const raw = weights(65536, 7);
    const enc = await encodeBody(raw, 4);
    expect(enc.codec).toBe(CODECS.planes);
    const stored = Buffer.from(joinPieces(enc.pieces));
    const modes = [0, 1, 2, 3].map((j) => stored[2 + j * 5]);
    expect(modes.slice(0, 2)).toEqual([0, 0]); // low mantissa bytes: noise, not compressed
    expect(modes[3]).toBe(1); // sign and exponent: zstd
    expect(Buffer.from(await decodeBody(enc.codec, stored, raw.length, 't')).equals(raw)).toBe(true);
  });

  it('XORs against a base where that is smaller, and names the base (codec 6)', async () => {
    const base = weights(65536, 8);
    const next = Buffer.from(base);
    for (let i = 0; i < next.length; i += 4) next[i]! ^= i % 13; // a small update: the lowest byte of each element
    const id = objectId('chunk', base);
    const enc = await encodeBody(next, 4, true, { id, bytes: base });
    expect(enc.codec).toBe(CODECS.xorPlanes);
    const stored = Buffer.from(joinPieces(enc.pieces));
    expect(stored.subarray(2, 34).toString('hex')).toBe(id);
    expect(enc.storedLength).toBeLessThan((await encodeBody(next, 4)).storedLength / 3);
    expect(Buffer.from(await decodeBody(enc.codec, stored, next.length, 't', undefined, base)).equals(next)).toBe(true);
  });

  it('XORs a plane only when what it saves pays for what the base costs readers (FORMAT.md §4.3)', async () => {
    const base = weights(65536, 12);
    const next = Buffer.from(base);
    for (let i = 0; i < next.length; i += 4) next[i]! ^= i % 13; // planes 1-3 unchanged: their XOR is zeros
    const n = next.length / 4;
    const id = objectId('chunk', base);
    const modesOf = (stored: Uint8Array, withBase: boolean) =>
      [0, 1, 2, 3].map((j) => stored[2 + (withBase ? 32 : 0) + j * 5]!);
    // A base stored plainly (a raw plane costs its size): the unchanged planes' XOR saves far more than that.
    const cheap = await encodeBody(next, 4, true, { id, bytes: base, planeCosts: [n, n, n, n] });
    expect(cheap.codec).toBe(CODECS.xorPlanes);
    const cheapStored = Buffer.from(joinPieces(cheap.pieces));
    const cheapModes = modesOf(cheapStored, true);
    expect(cheapModes.slice(1).map((m) => m & 2)).toEqual([2, 2, 2]);
    // Each plane's cost: its own stored bytes plus, XORed, the base's cost for it.
    const lengths = [0, 1, 2, 3].map((j) => cheapStored.readUInt32LE(2 + 32 + j * 5 + 1));
    expect(cheap.planeCosts).toEqual(lengths.map((l, j) => l + (cheapModes[j]! & 2 ? n : 0)));
    // Under a chain a hundred planes deep, the exponent plane's XOR saves less than 0.15 of what it would cost.
    const dear = await encodeBody(next, 4, true, { id, bytes: base, planeCosts: [n, n, n, 100 * n] });
    expect(dear.codec).toBe(CODECS.xorPlanes);
    const dearModes = modesOf(Buffer.from(joinPieces(dear.pieces)), true);
    expect(dearModes[3]).toBe(1); // zstd, not XORed
    expect(dearModes.slice(1, 3).map((m) => m & 2)).toEqual([2, 2]);
    // No plane worth it: no base at all (codec 5), and the bytes still decode without one.
    const none = await encodeBody(next, 4, true, { id, bytes: base, planeCosts: [1e9, 1e9, 1e9, 1e9] });
    expect(none.codec).toBe(CODECS.planes);
    const noneStored = Buffer.from(joinPieces(none.pieces));
    expect(none.planeCosts).toEqual([0, 1, 2, 3].map((j) => noneStored.readUInt32LE(2 + j * 5 + 1)));
    expect(Buffer.from(await decodeBody(none.codec, joinPieces(none.pieces), n * 4, 't')).equals(next)).toBe(true);
  });

  it('does not depend on a base that does not help (codec 5 or raw)', async () => {
    const enc = await encodeBody(weights(4096, 9), 4, true, {
      id: objectId('chunk', weights(4096, 10)),
      bytes: weights(4096, 10),
    });
    expect([CODECS.planes, CODECS.raw]).toContain(enc.codec);
  });
});
