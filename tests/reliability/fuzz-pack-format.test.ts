// Fuzz targets 3 and 4: the pack layout decoders (src/core/store-format/pack-format.ts) and the record codec
// (src/core/store-format/codec/record-codec.ts decodeBody, src/core/store-format/codec/zstd-frame.ts zstdFrameContentSize).
// Contract: a value or a CkvcError with the documented code (CKVC_CORRUPT_PACK / CKVC_UNSUPPORTED_VERSION for
// pack structure, CKVC_CORRUPT_OBJECT for bodies and zstd headers). The pure decoders are also checked
// against an independent oracle written from spec/FORMAT.md §4 and RFC 8878: they accept exactly what the
// spec accepts.
import { compress } from '@mongodb-js/zstd';
import { beforeAll, describe, expect, it } from 'vitest';
import { groupBytes } from '../../src/core/store-format/codec/byte-group.js';
import { decodeBody, encodeBody, joinPieces } from '../../src/core/store-format/codec/record-codec.js';
import { zstdFrameContentSize, zstdFramePiecesWithContentSize } from '../../src/core/store-format/codec/zstd-frame.js';
import { ContentHasher, objectId, OBJECT_TYPES, type ObjectType } from '../../src/core/store-format/object-id.js';
import {
  checkPackHeader,
  decodeFooter,
  decodeRecordHeader,
  decodeToc,
  encodeFooterPrefix,
  encodePackHeader,
  encodeRecordHeader,
  encodeTocEntry,
  MAX_OBJECT_BYTES,
  PACK_END_MAGIC,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
  type PackEntry,
} from '../../src/core/store-format/pack-format.js';
import {
  attempt,
  attemptAsync,
  FuzzStats,
  fuzzTimeout,
  mutate,
  Rng,
  sameBytes,
  scaled,
  type FieldHint,
  type MutationContext,
} from './fuzz-helpers.js';

const PACK_CODES = ['CKVC_CORRUPT_PACK', 'CKVC_UNSUPPORTED_VERSION'];
const OBJECT_CODES = ['CKVC_CORRUPT_OBJECT'];

// ---------------------------------------------------------------------------------------------------------
// Seed data: object bodies of every codec, and whole packs built with the real encoders.

function float32Weights(rng: Rng, count: number): Buffer {
  const b = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) b.writeFloatLE((rng.u32() / 2 ** 32 - 0.5) * 0.2, i * 4);
  return b;
}

interface RawItem {
  name: string;
  type: ObjectType;
  raw: Uint8Array;
  width: number;
}

function rawItems(): RawItem[] {
  const rng = new Rng(0xb0d1e5);
  const f32 = float32Weights(rng, 4096);
  const bf16 = Buffer.alloc(4096);
  for (let i = 0; i < 2048; i++) bf16.writeUInt16LE(f32.readUInt32LE(i * 4) >>> 16, i * 2);
  const f64 = Buffer.alloc(8192);
  for (let i = 0; i < 1024; i++) f64.writeDoubleLE((rng.u32() / 2 ** 32 - 0.5) * 0.1, i * 8);
  const text = Buffer.from(
    Array.from({ length: 400 }, (_, i) => `line ${i}: loss=${(1 / (i + 1)).toFixed(6)}`).join('\n'),
  );
  return [
    { name: 'zeros', type: 'chunk', raw: new Uint8Array(4096), width: 1 },
    { name: 'f32 weights', type: 'chunk', raw: f32, width: 4 },
    { name: 'bf16 weights', type: 'chunk', raw: bf16, width: 2 },
    { name: 'f64 weights', type: 'chunk', raw: f64, width: 8 },
    { name: 'text', type: 'chunk', raw: text, width: 1 },
    { name: 'random', type: 'chunk', raw: rng.bytes(2000), width: 1 },
    { name: 'tiny', type: 'chunk', raw: rng.bytes(10), width: 1 },
    { name: 'empty', type: 'chunk', raw: new Uint8Array(0), width: 1 },
    { name: 'odd-length f32', type: 'chunk', raw: float32Weights(rng, 301).subarray(0, 1203), width: 4 },
    { name: 'cbor-ish', type: 'tree', raw: Buffer.from(`a167656e7472696573${'a4'.repeat(40)}`, 'hex'), width: 1 },
  ];
}

interface StoredItem extends RawItem {
  codec: number;
  stored: Uint8Array;
  id: string;
  /** The decoded base a codec 6 body is XORed with. */
  base?: Uint8Array;
}

/** Codecs 2-4 as version 1 writers made them (still read): one zstd frame of the grouped bytes, size declared. */
async function legacyGrouped(raw: Uint8Array, width: number): Promise<Uint8Array> {
  const frame = await compress(Buffer.from(groupBytes(raw, width)), 1);
  return Uint8Array.from(Buffer.concat(zstdFramePiecesWithContentSize(frame, raw.length)));
}

async function storedItems(): Promise<StoredItem[]> {
  const out: StoredItem[] = [];
  const raws = rawItems();
  for (const it of raws) {
    const enc = await encodeBody(it.raw, it.width);
    out.push({
      ...it,
      codec: enc.codec,
      stored: Uint8Array.from(joinPieces(enc.pieces)),
      id: objectId(it.type, it.raw),
    });
  }
  for (const [name, codec, width] of [
    ['f32 weights', 3, 4],
    ['bf16 weights', 2, 2],
    ['f64 weights', 4, 8],
  ] as const) {
    const it = raws.find((r) => r.name === name)!;
    out.push({
      ...it,
      name: `${name} (legacy codec ${codec})`,
      codec,
      stored: await legacyGrouped(it.raw, width),
      id: objectId(it.type, it.raw),
    });
  }
  // A delta: the f32 chunk after a small update, XORed against the f32 chunk (codec 6).
  const base = raws.find((r) => r.name === 'f32 weights')!;
  const next = Buffer.from(base.raw);
  for (let i = 0; i < next.length; i += 4) next.writeUInt32LE((next.readUInt32LE(i) ^ (i % 7)) >>> 0, i);
  const enc = await encodeBody(next, 4, true, { id: objectId('chunk', base.raw), bytes: base.raw });
  out.push({
    name: 'f32 delta',
    type: 'chunk',
    raw: next,
    width: 4,
    codec: enc.codec,
    stored: Uint8Array.from(joinPieces(enc.pieces)),
    id: objectId('chunk', next),
    base: base.raw,
  });
  return out;
}

interface BuiltPack {
  bytes: Uint8Array;
  entries: PackEntry[];
  raws: Map<string, Uint8Array>;
  tocOffset: number;
}

function buildPack(items: StoredItem[]): BuiltPack {
  const parts: Uint8Array[] = [encodePackHeader()];
  const entries: PackEntry[] = [];
  const raws = new Map<string, Uint8Array>();
  let offset = PACK_HEADER_BYTES;
  for (const it of items) {
    if (raws.has(it.id)) continue;
    const e: PackEntry = {
      id: it.id,
      type: it.type,
      codec: it.codec as PackEntry['codec'],
      rawLength: it.raw.length,
      storedLength: it.stored.length,
      offset,
    };
    parts.push(encodeRecordHeader(e), it.stored);
    entries.push(e);
    raws.set(it.id, it.raw);
    offset += RECORD_HEADER_BYTES + it.stored.length;
  }
  const tocOffset = offset;
  for (const e of entries) parts.push(encodeTocEntry(e));
  parts.push(encodeFooterPrefix(tocOffset, entries.length));
  const h = new ContentHasher();
  for (const p of parts) h.update(p);
  parts.push(Buffer.from(h.digestHex(), 'hex'), PACK_END_MAGIC);
  return { bytes: Uint8Array.from(Buffer.concat(parts)), entries, raws, tocOffset };
}

/** Every fixed-size length/offset/count field of a pack as built (positions do not move for in-place mutations). */
function packFields(p: BuiltPack): FieldHint[] {
  const out: FieldHint[] = [{ offset: 8, size: 4, endian: 'le' }];
  for (const e of p.entries)
    out.push({ offset: e.offset + 4, size: 4, endian: 'le' }, { offset: e.offset + 8, size: 4, endian: 'le' });
  p.entries.forEach((_, i) => {
    const at = p.tocOffset + i * TOC_ENTRY_BYTES;
    out.push(
      { offset: at + 36, size: 8, endian: 'le' },
      { offset: at + 44, size: 4, endian: 'le' },
      { offset: at + 48, size: 4, endian: 'le' },
    );
  });
  const f = p.bytes.length - PACK_FOOTER_BYTES;
  out.push({ offset: f, size: 8, endian: 'le' }, { offset: f + 8, size: 4, endian: 'le' });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Oracles written from spec/FORMAT.md §4 (BigInt arithmetic, no shared code with src/)

const MAGIC = Buffer.from('CKVCPACK', 'latin1');
const END = Buffer.from('CKVCPEND', 'latin1');
const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function oracleHeader(b: Uint8Array): 'ok' | 'CKVC_CORRUPT_PACK' | 'CKVC_UNSUPPORTED_VERSION' {
  const x = buf(b);
  if (x.length < 16 || !x.subarray(0, 8).equals(MAGIC)) return 'CKVC_CORRUPT_PACK';
  return x.readUInt32LE(8) === 1 || x.readUInt32LE(8) === 2 ? 'ok' : 'CKVC_UNSUPPORTED_VERSION';
}

function oracleEntry(type: number, codec: number, raw: number, stored: number): boolean {
  return (
    type >= 1 &&
    type <= 6 &&
    codec >= 0 &&
    codec <= 6 &&
    raw <= MAX_OBJECT_BYTES &&
    stored <= MAX_OBJECT_BYTES &&
    (codec !== 0 || raw === stored)
  );
}

function oracleRecordHeader(b: Uint8Array): boolean {
  const x = buf(b);
  return x.length >= 44 && oracleEntry(x[0]!, x[1]!, x.readUInt32LE(4), x.readUInt32LE(8));
}

function oracleFooter(b: Uint8Array, fileSize: number): boolean {
  const x = buf(b);
  if (x.length !== 56 || !x.subarray(48, 56).equals(END)) return false;
  const toc = x.readBigUInt64LE(0);
  const count = BigInt(x.readUInt32LE(8));
  return toc >= 16n && toc + count * 52n + 56n === BigInt(fileSize);
}

function oracleToc(b: Uint8Array, count: number, tocOffset: number): boolean {
  const x = buf(b);
  if (x.length !== count * 52) return false;
  let expected = 16n;
  for (let i = 0; i < count; i++) {
    const at = i * 52;
    if (!oracleEntry(x[at + 32]!, x[at + 33]!, x.readUInt32LE(at + 44), x.readUInt32LE(at + 48))) return false;
    if (x.readBigUInt64LE(at + 36) !== expected) return false;
    expected += 44n + BigInt(x.readUInt32LE(at + 48));
  }
  return expected === BigInt(tocOffset);
}

/** RFC 8878 §3.1.1 frame header: the declared content size (bigint), null when absent, or 'bad'. */
function oracleFcs(b: Uint8Array): bigint | null | 'bad' {
  const x = buf(b);
  if (x.length < 5 || x.readUInt32LE(0) !== 0xfd2fb528) return 'bad';
  const d = x[4]!;
  if (d & 0x08) return 'bad';
  const flag = d >> 6;
  const single = (d & 0x20) !== 0;
  const dictBytes = [0, 1, 2, 4][d & 3]!;
  const fcsBytes = flag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][flag]!;
  const at = 5 + (single ? 0 : 1) + dictBytes;
  if (x.length < at + fcsBytes) return 'bad';
  if (fcsBytes === 0) return null;
  if (fcsBytes === 1) return BigInt(x[at]!);
  if (fcsBytes === 2) return BigInt(x.readUInt16LE(at)) + 256n;
  if (fcsBytes === 4) return BigInt(x.readUInt32LE(at));
  return x.readBigUInt64LE(at);
}

function zstdHeaderFields(b: Uint8Array): FieldHint[] {
  const fcs = oracleFcs(b);
  if (fcs === 'bad') return [];
  const d = b[4]!;
  const single = (d & 0x20) !== 0;
  const at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][d & 3]!;
  const size = d >> 6 === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][d >> 6]!;
  const out: FieldHint[] = [{ offset: 4, size: 1, endian: 'le' }];
  if (size) out.push({ offset: at, size: size as 1 | 2 | 4 | 8, endian: 'le' });
  out.push({ offset: at + size, size: 4, endian: 'le' }); // first block header (3 bytes, + 1 of content)
  if (!single) out.push({ offset: 5, size: 1, endian: 'le' }); // window descriptor
  return out;
}

// ---------------------------------------------------------------------------------------------------------

describe('fuzz: pack layout decoders', () => {
  let items: StoredItem[];
  let packs: BuiltPack[];

  beforeAll(async () => {
    items = await storedItems();
    packs = [
      buildPack(items),
      buildPack([]),
      buildPack(items.slice(1, 2)),
      buildPack([...items].reverse().slice(0, 5)),
    ];
  });

  it('seed packs parse with the real decoders', async () => {
    expect(new Set(items.map((i) => i.codec))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6]));
    for (const p of packs) {
      const b = p.bytes;
      checkPackHeader(b.subarray(0, 16), 'seed');
      const f = decodeFooter(b.subarray(b.length - 56), b.length, 'seed');
      const toc = decodeToc(b.subarray(f.tocOffset, f.tocOffset + f.count * 52), f.count, f.tocOffset, 'seed');
      expect(toc).toEqual(p.entries);
      for (const e of toc) {
        const h = decodeRecordHeader(b.subarray(e.offset, e.offset + 44), e.offset, 'seed');
        expect(h).toEqual(e);
        const base = items.find((it) => it.id === e.id)?.base;
        const raw = await decodeBody(
          h.codec,
          b.subarray(e.offset + 44, e.offset + 44 + h.storedLength),
          h.rawLength,
          'seed',
          undefined,
          base,
        );
        expect(sameBytes(raw, p.raws.get(e.id)!)).toBe(true);
      }
    }
  });

  it(
    'mutated packs: header, footer, TOC, record headers and bodies refuse with their codes',
    async () => {
      const s = {
        header: new FuzzStats('pack-header'),
        footer: new FuzzStats('pack-footer'),
        toc: new FuzzStats('pack-toc'),
        record: new FuzzStats('pack-record-header'),
        body: new FuzzStats('pack-record-body'),
      };
      const n = scaled(3000);
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('pack', i);
        const p = rng.pick(packs);
        const ctx: MutationContext = { corpus: packs.map((x) => x.bytes), fields: () => packFields(p) };
        const { bytes: b, ops } = mutate(rng, p.bytes, ctx);
        const len = b.length;

        const h = attempt(() => checkPackHeader(b.subarray(0, 16), 'fuzz'));
        const want = oracleHeader(b.subarray(0, 16));
        if (s.header.check(i, h, PACK_CODES, ops) || h.kind === 'refused') {
          const got = h.kind === 'accepted' ? 'ok' : h.code;
          if (got !== want)
            s.header.fail(i, `checkPackHeader said ${got}, the spec says ${want}`, ops, b.subarray(0, 16));
        }

        const footerBytes = b.subarray(Math.max(0, len - 56));
        const f = attempt(() => decodeFooter(footerBytes, len, 'fuzz'));
        if (s.footer.check(i, f, PACK_CODES, ops) || f.kind === 'refused') {
          if ((f.kind === 'accepted') !== oracleFooter(footerBytes, len))
            s.footer.fail(
              i,
              `decodeFooter ${f.kind} a footer the spec ${f.kind === 'accepted' ? 'refuses' : 'accepts'}`,
              ops,
              footerBytes,
            );
        }
        if (f.kind === 'accepted') {
          const { tocOffset, count } = f.value;
          const tocBytes = b.subarray(tocOffset, tocOffset + count * 52);
          const t = attempt(() => decodeToc(tocBytes, count, tocOffset, 'fuzz'));
          if (s.toc.check(i, t, PACK_CODES, ops) || t.kind === 'refused') {
            if ((t.kind === 'accepted') !== oracleToc(tocBytes, count, tocOffset))
              s.toc.fail(
                i,
                `decodeToc ${t.kind} a TOC the spec ${t.kind === 'accepted' ? 'refuses' : 'accepts'}`,
                ops,
                tocBytes,
              );
          }
        }

        // Records at the offsets an index built from the intact pack would give.
        for (const e of p.entries) {
          if (e.offset + 44 > len) continue;
          const hb = b.subarray(e.offset, e.offset + 44);
          const r = attempt(() => decodeRecordHeader(hb, e.offset, 'fuzz'));
          if (s.record.check(i, r, PACK_CODES, ops) || r.kind === 'refused') {
            if ((r.kind === 'accepted') !== oracleRecordHeader(hb))
              s.record.fail(
                i,
                `decodeRecordHeader ${r.kind} a header the spec ${r.kind === 'accepted' ? 'refuses' : 'accepts'}`,
                ops,
                hb,
              );
          }
          if (r.kind !== 'accepted') continue;
          const hdr = r.value;
          if (hdr.id !== e.id || hdr.storedLength !== e.storedLength || hdr.codec !== e.codec) continue; // the reader stops here
          const stored = b.subarray(e.offset + 44, Math.min(len, e.offset + 44 + hdr.storedLength));
          if (stored.length !== hdr.storedLength) continue; // the reader reports a truncated pack here
          const base = items.find((it) => it.id === e.id)?.base;
          const d = await attemptAsync(() => decodeBody(hdr.codec, stored, hdr.rawLength, 'fuzz', undefined, base));
          if (s.body.check(i, d, OBJECT_CODES, ops)) {
            if (d.value.length !== hdr.rawLength)
              s.body.fail(i, `decodeBody returned ${d.value.length} bytes for raw_length ${hdr.rawLength}`, ops);
            else
              s.body.note(objectId(hdr.type, d.value) === e.id ? 'body-intact' : 'body-changed(hash check catches it)');
          }
        }
      }
      const failures = Object.values(s).flatMap((x) => x.report());
      expect(failures).toEqual([]);
    },
    fuzzTimeout(),
  );

  it(
    'record headers, alone: decodeRecordHeader accepts exactly what §4.1 allows',
    () => {
      const stats = new FuzzStats('record-header');
      const rng0 = new Rng(44);
      const seeds: Uint8Array[] = [];
      for (const type of OBJECT_TYPES) {
        for (let codec = 0; codec <= 6; codec++) {
          const raw = rng0.pick([0, 1, 100, 65536, MAX_OBJECT_BYTES]);
          seeds.push(
            encodeRecordHeader({
              id: rng0.hex(32),
              type,
              codec: codec as PackEntry['codec'],
              rawLength: raw,
              storedLength: codec === 0 ? raw : rng0.int(raw + 1),
            }),
          );
        }
      }
      const fields = () => [4, 8].map((offset) => ({ offset, size: 4 as const, endian: 'le' as const }));
      const n = scaled(5000);
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('record-header', i);
        const { bytes, ops } = mutate(rng, rng.pick(seeds), { corpus: seeds, fields });
        const o = attempt(() => decodeRecordHeader(bytes, 16, 'fuzz'));
        if (stats.check(i, o, ['CKVC_CORRUPT_PACK'], ops, bytes) || o.kind === 'refused') {
          if ((o.kind === 'accepted') !== oracleRecordHeader(bytes))
            stats.fail(i, `${o.kind} a header the spec ${o.kind === 'accepted' ? 'refuses' : 'accepts'}`, ops, bytes);
          if (o.kind === 'accepted') {
            // Round trip: the header re-encodes to the same 44 bytes, except the 2 reserved bytes.
            const again = Buffer.from(encodeRecordHeader(o.value));
            const orig = Buffer.from(bytes.subarray(0, 44));
            orig[2] = 0;
            orig[3] = 0;
            if (!again.equals(orig)) stats.fail(i, 'accepted header does not re-encode to its own bytes', ops, bytes);
          }
        }
      }
      expect(stats.report()).toEqual([]);
    },
    fuzzTimeout(),
  );

  it(
    'TOCs with arbitrary count and tocOffset arguments: decodeToc accepts exactly what §4 allows',
    () => {
      const stats = new FuzzStats('toc-arguments');
      const n = scaled(3000);
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('toc-arguments', i);
        const p = rng.pick(packs.filter((x) => x.entries.length > 0));
        const toc = p.bytes.subarray(p.tocOffset, p.tocOffset + p.entries.length * 52);
        const fields = () =>
          p.entries.flatMap((_, k) => [
            { offset: k * 52 + 36, size: 8 as const, endian: 'le' as const },
            { offset: k * 52 + 48, size: 4 as const, endian: 'le' as const },
          ]);
        const { bytes, ops } = mutate(rng, toc, { fields });
        const count = rng.bool(0.7)
          ? p.entries.length
          : rng.pick([0, 1, p.entries.length + 1, Math.floor(bytes.length / 52), 0xffffffff, rng.u32()]);
        const tocOffset = rng.bool(0.7)
          ? p.tocOffset
          : rng.pick([0, 16, p.tocOffset + 1, p.tocOffset - 1, 2 ** 53 - 1, rng.u32()]);
        ops.push(`count=${count} tocOffset=${tocOffset}`);
        const o = attempt(() => decodeToc(bytes, count, tocOffset, 'fuzz'));
        if (stats.check(i, o, ['CKVC_CORRUPT_PACK'], ops, bytes) || o.kind === 'refused') {
          if ((o.kind === 'accepted') !== oracleToc(bytes, count, tocOffset))
            stats.fail(i, `${o.kind} a TOC the spec ${o.kind === 'accepted' ? 'refuses' : 'accepts'}`, ops, bytes);
        }
      }
      expect(stats.report()).toEqual([]);
    },
    fuzzTimeout(),
  );
});

describe('fuzz: record codec', () => {
  let items: StoredItem[];

  beforeAll(async () => {
    items = await storedItems();
  });

  it('seed bodies decode to their raw bytes', async () => {
    for (const it of items) {
      expect(
        sameBytes(await decodeBody(it.codec, it.stored, it.raw.length, it.name, undefined, it.base), it.raw),
        it.name,
      ).toBe(true);
      if (it.codec >= 1 && it.codec <= 4) expect(zstdFrameContentSize(it.stored), it.name).toBe(it.raw.length);
    }
  });

  it(
    'decodeBody over mutated stored bodies: raw_length bytes or CKVC_CORRUPT_OBJECT',
    async () => {
      const stats = new FuzzStats('decodeBody');
      const n = scaled(4000);
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('decodeBody', i);
        const it = rng.pick(items);
        const same = items.filter((x) => x.codec === it.codec).map((x) => x.stored);
        const { bytes, ops } = mutate(rng, it.stored, { corpus: same, fields: zstdHeaderFields });
        let rawLength = it.raw.length;
        let codec = it.codec;
        const r = rng.int(10);
        if (r === 0) {
          rawLength = rng.pick([
            0,
            Math.max(0, rawLength - 1),
            rawLength + 1,
            MAX_OBJECT_BYTES,
            2 ** 32 - 1,
            rng.int(MAX_OBJECT_BYTES + 1),
          ]);
          ops.push(`rawLength=${rawLength}`);
        } else if (r === 1) {
          codec = rng.int(7);
          ops.push(`codec=${codec}`);
        }
        const o = await attemptAsync(() => decodeBody(codec, bytes, rawLength, 'fuzz', undefined, it.base));
        if (stats.check(i, o, OBJECT_CODES, ops, bytes)) {
          if (o.value.length !== rawLength)
            stats.fail(i, `returned ${o.value.length} bytes, raw_length is ${rawLength}`, ops, bytes);
          else stats.note(sameBytes(o.value, it.raw) ? 'accepted-intact' : 'accepted-changed(hash check catches it)');
        }
      }
      expect(stats.report()).toEqual([]);
    },
    fuzzTimeout(),
  );

  it(
    'zstdFrameContentSize: the RFC 8878 declared size, or CKVC_CORRUPT_OBJECT',
    () => {
      const stats = new FuzzStats('zstdFrameContentSize');
      const seeds = items.filter((x) => x.codec >= 1 && x.codec <= 4).map((x) => x.stored.subarray(0, 32));
      // Every header shape: FCS flag x Single_Segment x Dictionary_ID flag, with a few bytes after.
      const rng0 = new Rng(8878);
      for (let d = 0; d < 256; d++) {
        if (d & 0x08) continue;
        seeds.push(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, d, ...rng0.bytes(16)]));
      }
      const n = scaled(5000);
      for (let i = 0; i < n; i++) {
        const rng = Rng.forCase('zstd-fcs', i);
        const { bytes, ops } = mutate(rng, rng.pick(seeds), { corpus: seeds, fields: zstdHeaderFields });
        const o = attempt(() => zstdFrameContentSize(bytes));
        const want = oracleFcs(bytes);
        if (stats.check(i, o, OBJECT_CODES, ops, bytes)) {
          if (want === 'bad')
            stats.fail(i, `returned ${String(o.value)} for a header RFC 8878 calls malformed`, ops, bytes);
          else if (want === null ? o.value !== undefined : o.value !== Number(want))
            stats.fail(i, `returned ${String(o.value)}, the header declares ${String(want)}`, ops, bytes);
          else stats.note(want === null ? 'no-size' : 'size');
        } else if (o.kind === 'refused' && want !== 'bad')
          stats.fail(i, `refused a well-formed header (declares ${String(want)})`, ops, bytes);
      }
      expect(stats.report()).toEqual([]);
    },
    fuzzTimeout(),
  );
});
