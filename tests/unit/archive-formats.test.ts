// The pure readers behind PyTorch zip checkpoints and NumPy files (spec/ARCHIVES.md): the zip directory reader
// (every refusal of §2 has a case here, its message naming the cause), the symbolic pickle reader and the storage
// naming rules (§2.1), the .npy header parser (§3). Checked on the real files in tests/fixtures (torch 1.13,
// numpy 1.24) and on archives built by tests/helpers/torch-zip.ts. The refusals that need the file itself (local
// header names, data past the end, inflation) run zip-reader.ts on temp files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkPlacement,
  DEFLATE_MAX_RATIO,
  localDataOffset,
  readZipDirectory,
  readZipTail,
  ZIP_MAX_DIRECTORY_BYTES,
  ZIP_MAX_ENTRIES,
  ZIP_TAIL_BYTES,
  ZipRefusal,
  zipNameProblem,
  type PlacedZipEntry,
  type ZipEntry,
} from '../../src/core/input-formats/zip-directory.js';
import {
  PickleNotUnderstood,
  readTorchPickle,
  type TorchPickleSummary,
  type TorchTensorView,
} from '../../src/core/input-formats/pickle-tensors.js';
import { nameStorages, torchStorageDtype } from '../../src/core/input-formats/torch-storages.js';
import { NPY_MAX_HEADER_BYTES, NpyRefusal, parseNpyHeader } from '../../src/core/input-formats/npy.js';
import { InputFile } from '../../src/store/ingest/input-file.js';
import { checkDeflatedEntry, readZipLayout } from '../../src/store/ingest/zip-reader.js';
import { NPZ_MAX_INFLATED_BYTES, planNpz } from '../../src/store/ingest/numpy-plan.js';
import {
  buildZip,
  crc32,
  npyBytes,
  npzZip,
  pickleBytes,
  torchStateDict,
  zeroBombStream,
  zeroCrc,
  type BuiltZip,
  type EntryInput,
  type PickleValue,
} from '../helpers/torch-zip.js';
import { FIXTURES } from '../helpers/fixtures.js';

const fixture = (name: string): Buffer => fs.readFileSync(path.join(FIXTURES, name));
const MANIFEST = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'MANIFEST.json'), 'utf8')) as Record<string, any>;

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-archive-unit-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

/** The whole pure pipeline zip-reader.ts runs, on bytes in memory. */
function readZip(bytes: Uint8Array): { entries: PlacedZipEntry[]; directoryOffset: number } {
  const tailLength = Math.min(bytes.length, ZIP_TAIL_BYTES);
  const tail = readZipTail(bytes.subarray(bytes.length - tailLength), bytes.length);
  const dir = bytes.subarray(tail.directoryOffset, tail.directoryOffset + tail.directoryBytes);
  const placed = readZipDirectory(dir, tail, bytes.length).map((e) => {
    const { dataOffset } = localDataOffset(bytes.subarray(e.headerOffset, e.headerOffset + 30), e);
    return { ...e, dataOffset, dataEnd: dataOffset + e.compressedSize };
  });
  return { entries: checkPlacement(placed, tail.directoryOffset), directoryOffset: tail.directoryOffset };
}

/** Asserts `fn` throws exactly `cls` with a message matching `msg`. */
function refuses(fn: () => unknown, cls: new (...a: any[]) => Error, msg: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${cls.name} matching ${msg}`).toBeInstanceOf(cls);
  expect((thrown as Error).message).toMatch(msg);
}

const zipRefuses = (bytes: Uint8Array, msg: RegExp) => refuses(() => readZip(bytes), ZipRefusal, msg);

/** n incompressible bytes (xorshift), fast enough for megabytes. */
function randomBytesFor(n: number, seed = 0x9e3779b9): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

function f32(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) b.writeFloatLE(Math.sin(i * 0.37 + seed), i * 4);
  return b;
}

const small = (extra: Partial<EntryInput> = {}, name = 'a.bin'): EntryInput => ({
  name,
  data: Buffer.from('hello world, hello zip'),
  ...extra,
});

/** Central directory record `i` of a built zip (offset of its signature). */
function centralRecordOffset(z: BuiltZip, i: number): number {
  let at = z.directoryOffset;
  for (let k = 0; k < i; k++)
    at += 46 + z.bytes.readUInt16LE(at + 28) + z.bytes.readUInt16LE(at + 30) + z.bytes.readUInt16LE(at + 32);
  return at;
}

// ---------------------------------------------------------------------------------------------------------

describe('zip: the fixtures', () => {
  it('reads torch_state_dict.pt entry for entry as MANIFEST.json lists them (Zip64 end records, flag bit 3)', () => {
    const bytes = fixture('torch_state_dict.pt');
    const { entries } = readZip(bytes);
    expect(entries.map((e) => [e.name, e.method, e.size, e.headerOffset])).toEqual(
      MANIFEST['torch_state_dict.pt'].zip_entries,
    );
    for (const e of entries) {
      expect(e.flags & 0x0008, e.name).toBe(0x0008);
      expect(e.compressedSize).toBe(e.size);
      // torch aligns every entry's data to 64 bytes through an 'FB' extra field
      expect(e.dataOffset % 64, e.name).toBe(0);
      expect(bytes.readUInt16LE(e.headerOffset + 30 + Buffer.byteLength(e.name))).toBe(0x4246);
    }
  });

  it('reads both training checkpoints and both .npz files; Python and the builder agree on offsets', () => {
    for (const name of ['torch_training_checkpoint.pt', 'torch_training_checkpoint_step2.pt']) {
      const { entries } = readZip(fixture(name));
      expect(entries.map((e) => e.name.split('/').slice(1).join('/'))).toEqual([
        'data.pkl',
        ...Array.from({ length: 9 }, (_, i) => `data/${i}`),
        'version',
      ]);
    }
    const stored = readZip(fixture('numpy_stored.npz')).entries;
    expect(stored.map((e) => [e.name, e.method, e.size, e.headerOffset])).toEqual([
      ['weights.npy', 0, 2928, 0],
      ['bias.npy', 0, 184, 2989],
      ['idx.npy', 0, 168, 3231],
    ]);
    const deflated = readZip(fixture('numpy_deflated.npz')).entries;
    expect(deflated.map((e) => [e.name, e.method, e.size, e.compressedSize, e.headerOffset])).toEqual([
      ['weights.npy', 8, 2928, 2709, 0],
      ['bias.npy', 8, 184, 71, 2770],
    ]);
  });

  it('torch_legacy_format.pt is no zip', () => {
    zipRefuses(fixture('torch_legacy_format.pt'), /no end of central directory record/);
  });
});

describe('zip: archives from the builder', () => {
  it('a torch.save-like archive: entries in order, 64-byte aligned, data descriptors, Zip64 end records', () => {
    const z = torchStateDict(
      { w: { dtype: 'F32', shape: [3, 5], data: f32(15) }, b: { dtype: 'F32', shape: [5], data: f32(5, 2) } },
      { prefix: 'ckpt' },
    );
    const { entries } = readZip(z.bytes);
    expect(entries.map((e) => e.name)).toEqual(['ckpt/data.pkl', 'ckpt/data/0', 'ckpt/data/1', 'ckpt/version']);
    expect(entries.map((e) => e.dataOffset)).toEqual(z.entries.map((e) => e.dataOffset));
    expect(entries.every((e) => e.dataOffset % 64 === 0)).toBe(true);
    expect(entries[1]!.crc32).toBe(crc32(f32(15)));
  });

  it('forced Zip64 (0xffffffff in every classic field, Zip64 extra fields) reads the same entries', () => {
    const data = { w: { dtype: 'F32' as const, shape: [7], data: f32(7) } };
    const plain = readZip(torchStateDict(data, { zip64: 'none' }).bytes).entries;
    const forced = torchStateDict(data, { zip64: 'force' });
    const read = readZip(forced.bytes).entries;
    expect(read.map((e) => [e.name, e.size, e.compressedSize, e.crc32])).toEqual(
      plain.map((e) => [e.name, e.size, e.compressedSize, e.crc32]),
    );
    expect(read.map((e) => [e.headerOffset, e.dataOffset])).toEqual(
      forced.entries.map((e) => [e.headerOffset, e.dataOffset]),
    );
    expect(forced.bytes.readUInt32LE(forced.eocdOffset + 16)).toBe(0xffffffff);
  });

  it('an archive comment, an empty archive, and a deflated entry at exactly 1032:1 + 1024 are accepted', () => {
    expect(readZip(buildZip([small()], { comment: Buffer.from('a comment') }).bytes).entries).toHaveLength(1);
    expect(readZip(buildZip([]).bytes).entries).toEqual([]);
    const payload = zlib.deflateRawSync(Buffer.alloc(100));
    const atCap = buildZip([
      {
        name: 'x',
        data: Buffer.alloc(0),
        method: 'deflated',
        compressed: payload,
        size: payload.length * DEFLATE_MAX_RATIO + 1024,
      },
    ]);
    expect(readZip(atCap.bytes).entries[0]!.size).toBe(payload.length * 1032 + 1024);
  });

  it('entries come back in file order whatever the directory order', () => {
    const z = buildZip([small({}, 'first'), small({}, 'second'), small({}, 'third')]);
    const { entries, directoryOffset } = readZip(z.bytes);
    expect(checkPlacement([...entries].reverse(), directoryOffset).map((e) => e.name)).toEqual([
      'first',
      'second',
      'third',
    ]);
  });
});

describe('zip refusals (ARCHIVES.md §2), one case each', () => {
  const base = [small({}, 'a.bin'), small({}, 'b.bin')];

  it('no end of central directory record: not a zip, truncated, or bytes after the end record', () => {
    zipRefuses(Buffer.from('definitely not a zip file, just text'), /no end of central directory record/);
    const z = buildZip(base).bytes;
    zipRefuses(z.subarray(0, z.length - 5), /no end of central directory record/);
    zipRefuses(buildZip(base, { trailing: Buffer.from('x') }).bytes, /no end of central directory record/);
    zipRefuses(Buffer.alloc(0), /no end of central directory record/);
  });

  it('an end record whose comment does not reach exactly to the end of the file', () => {
    zipRefuses(
      buildZip(base, { comment: Buffer.from('abc'), eocd: { commentLength: 4 } }).bytes,
      /no end of central directory record/,
    );
    zipRefuses(
      buildZip(base, { comment: Buffer.from('abc'), eocd: { commentLength: 2 } }).bytes,
      /no end of central directory record/,
    );
  });

  it('a multi-disk archive (end record, Zip64 record, locator, or per-entry disk number)', () => {
    zipRefuses(buildZip(base, { eocd: { disk: 1 } }).bytes, /multi-disk/);
    zipRefuses(buildZip(base, { eocd: { cdDisk: 2 } }).bytes, /multi-disk/);
    zipRefuses(buildZip(base, { eocd: { entriesHere: 1 } }).bytes, /multi-disk/);
    zipRefuses(buildZip(base, { zip64: 'records', zip64Lies: { totalDisks: 2 } }).bytes, /multi-disk/);
    zipRefuses(buildZip(base, { zip64: 'records', zip64Lies: { locatorDisk: 1 } }).bytes, /multi-disk/);
    zipRefuses(buildZip(base, { zip64: 'records', zip64Lies: { disk: 1 } }).bytes, /multi-disk/);
    const z = buildZip(base);
    const rec = centralRecordOffset(z, 1);
    const b = Buffer.from(z.bytes);
    b.writeUInt16LE(3, rec + 34); // disk number start
    zipRefuses(b, /multi-disk/);
  });

  it('a Zip64 locator that points at no Zip64 end record', () => {
    zipRefuses(
      buildZip(base, { zip64: 'records', zip64Lies: { locatorOffset: 0 } }).bytes,
      /Zip64 locator points at no Zip64 end record/,
    );
    zipRefuses(
      buildZip(base, { zip64: 'records', zip64Lies: { locatorOffset: 2 ** 40 } }).bytes,
      /Zip64 locator points at no Zip64 end record/,
    );
    const z = buildZip(base, { zip64: 'records' });
    const b = Buffer.from(z.bytes);
    b[z.zip64EocdOffset!] = 0x51; // the record's signature: 'PK\x06\x06' -> 'QK\x06\x06'
    zipRefuses(b, /Zip64 locator points at no Zip64 end record/);
  });

  it('classic fields that overflow without Zip64 records', () => {
    zipRefuses(
      buildZip(base, { eocd: { entries: 0xffff, entriesHere: 0xffff } }).bytes,
      /needs Zip64 fields but there is no Zip64 locator/,
    );
    zipRefuses(buildZip(base, { eocd: { directoryOffset: 0xffffffff } }).bytes, /needs Zip64 fields/);
    zipRefuses(buildZip(base, { eocd: { directoryBytes: 0xffffffff } }).bytes, /needs Zip64 fields/);
  });

  it('a Zip64 number beyond 2^53', () => {
    zipRefuses(
      buildZip(base, { zip64: 'records', zip64Lies: { directoryOffset: 2 ** 60 } }).bytes,
      /larger than 2\^53/,
    );
  });

  it('a central directory that does not end exactly where the end records begin', () => {
    zipRefuses(
      buildZip(base, { gapAfterDirectory: Buffer.from('hidden') }).bytes,
      /does not end where the end record begins/,
    );
    zipRefuses(
      buildZip(base, { zip64: 'records', gapAfterDirectory: Buffer.from('hidden') }).bytes,
      /does not end where the end record begins/,
    );
    const z = buildZip(base);
    zipRefuses(
      buildZip(base, { eocd: { directoryOffset: z.directoryOffset - 1 } }).bytes,
      /does not end where the end record begins/,
    );
    zipRefuses(
      buildZip(base, { eocd: { directoryBytes: z.directoryBytes + 1 } }).bytes,
      /does not end where the end record begins/,
    );
  });

  it('more than 1,000,000 entries, or a directory over 256 MiB', () => {
    zipRefuses(
      buildZip(base, {
        zip64: 'records',
        zip64Lies: { entries: ZIP_MAX_ENTRIES + 1, entriesHere: ZIP_MAX_ENTRIES + 1 },
      }).bytes,
      /1000001 entries/,
    );
    zipRefuses(
      buildZip(base, { zip64: 'records', zip64Lies: { directoryBytes: ZIP_MAX_DIRECTORY_BYTES + 1 } }).bytes,
      /central directory of 268435457 bytes/,
    );
  });

  it('a damaged central directory record, one running past the directory, bytes after the last record', () => {
    const z = buildZip(base);
    const b = Buffer.from(z.bytes);
    b[centralRecordOffset(z, 1)] = 0x51; // 'PK\x01\x02' -> 'QK\x01\x02'
    zipRefuses(b, /central directory record 1 is missing or damaged/);
    const c = Buffer.from(z.bytes);
    c.writeUInt16LE(0x400, centralRecordOffset(z, 1) + 32); // comment length past the directory
    zipRefuses(c, /central directory record 1 runs past the directory/);
    zipRefuses(
      buildZip(base, { directoryJunk: Buffer.from('PK\x01\x02junk') }).bytes,
      /holds bytes after its last record/,
    );
    // The end record counts fewer entries than the directory holds: the rest are junk after the last record.
    zipRefuses(buildZip(base, { eocd: { entries: 1, entriesHere: 1 } }).bytes, /holds bytes after its last record/);
  });

  it('damaged or short Zip64 extra fields', () => {
    const z = buildZip([small({ zip64: true })]);
    const rec = centralRecordOffset(z, 0);
    const short = Buffer.from(z.bytes);
    short.writeUInt16LE(8, rec + 46 + 5 + 2); // the Zip64 field's own length: 8 of the 24 bytes it needs
    zipRefuses(short, /short Zip64 field/);
    const damaged = Buffer.from(z.bytes);
    damaged.writeUInt16LE(200, rec + 46 + 5 + 2);
    zipRefuses(damaged, /damaged extra field/);
  });

  describe('entry names', () => {
    const cases: [string | Uint8Array, RegExp][] = [
      ['', /is empty/],
      [Uint8Array.from([0x61, 0xff, 0xfe, 0x62]), /not UTF-8/],
      ['/etc/passwd', /is absolute/],
      ['C:evil.pkl', /drive letter/],
      ['c:/windows/x', /drive letter/],
      ['archive\\..\\evil', /backslash/],
      ['archive/da\0ta.pkl', /NUL/],
      ['../evil.pkl', /path traversal/],
      ['archive/data/../../../etc/cron.d/x', /path traversal/],
      ['archive/./data.pkl', /path traversal/],
      ['archive/data/..', /path traversal/],
      ['.', /path traversal/],
    ];
    for (const [name, msg] of cases) {
      it(`refuses ${JSON.stringify(typeof name === 'string' ? name : Buffer.from(name).toString('latin1'))}`, () => {
        zipRefuses(buildZip([small({}, 'ok.bin'), small({}, name as string)]).bytes, msg);
      });
    }

    it("refuses a name that repeats another entry's name", () => {
      zipRefuses(
        buildZip([small({}, 'archive/data/0'), small({}, 'archive/data/0')]).bytes,
        /"archive\/data\/0" appears twice/,
      );
    });

    it('accepts ordinary names, including non-ASCII UTF-8, "..." and names ending in /', () => {
      for (const n of ['archive/data/0', 'ünïcode/数据.npy', '...', 'a..b/c', 'folder/', 'a//b'])
        expect(zipNameProblem(n), n).toBeUndefined();
    });
  });

  it('an encrypted entry', () => {
    zipRefuses(buildZip([small(), small({ flags: 0x0001 }, 'secret.npy')]).bytes, /"secret\.npy" is encrypted/);
  });

  it('a stored entry whose compressed and uncompressed sizes differ', () => {
    zipRefuses(
      buildZip([small({ size: 5 })]).bytes,
      /stored entry "a\.bin" declares 22 bytes stored but 5 bytes of content/,
    );
  });

  it('a deflated entry claiming more than 1032:1 + 1024 (a bomb beyond what deflate can produce)', () => {
    const payload = zlib.deflateRawSync(Buffer.alloc(100));
    const z = buildZip([
      {
        name: 'bomb.npy',
        data: Buffer.alloc(0),
        method: 'deflated',
        compressed: payload,
        size: payload.length * DEFLATE_MAX_RATIO + 1025,
      },
    ]);
    zipRefuses(z.bytes, /deflated entry "bomb\.npy" claims \d+ bytes from \d+ \(more than deflate can produce\)/);
    // 64 GiB from a few bytes, through a Zip64 field
    zipRefuses(
      buildZip([
        {
          name: 'bomb.npy',
          data: Buffer.alloc(0),
          method: 'deflated',
          compressed: payload,
          size: 64 * 1024 ** 3,
          zip64: true,
        },
      ]).bytes,
      /more than deflate can produce/,
    );
  });

  it('an entry pointing past the end of the file', () => {
    zipRefuses(
      buildZip([small(), small({ headerOffset: 10_000 }, 'far')]).bytes,
      /"far" points past the end of the file/,
    );
  });

  it('an entry whose local header is missing', () => {
    const z = buildZip([small(), small({ headerOffset: (l) => l[0]!.dataOffset + 2 }, 'b.bin')]);
    zipRefuses(z.bytes, /"b\.bin" has no local header where the directory says/);
    refuses(
      () => localDataOffset(new Uint8Array(10), { name: 'short' } as ZipEntry),
      ZipRefusal,
      /"short" has no local header/,
    );
  });

  it("entries that overlap each other, or an entry hidden inside another one's data", () => {
    // a.bin's sizes claim 40 more bytes: its data now covers b.bin's local header
    zipRefuses(
      buildZip([small({ size: 62, compressedSize: 62 }), small({}, 'b.bin')]).bytes,
      /"b\.bin" overlaps the entry before it/,
    );
    // Two directory records pointing at the same local header (the overlapping-file zip bomb)
    const same = buildZip([small(), small({ headerOffset: 0 }, 'a.bin ')]);
    refuses(
      () =>
        checkPlacement(
          readZipDirectoryOf(same).map((e) => ({ ...e, dataOffset: 35, dataEnd: 57 })),
          same.directoryOffset,
        ),
      ZipRefusal,
      /overlaps the entry before it/,
    );
  });

  it('an entry that runs into the central directory', () => {
    zipRefuses(
      buildZip([small(), small({ size: 60, compressedSize: 60 }, 'b.bin')]).bytes,
      /"b\.bin" runs into the central directory/,
    );
  });
});

function readZipDirectoryOf(z: BuiltZip): ZipEntry[] {
  const tail = readZipTail(z.bytes, z.bytes.length);
  return readZipDirectory(
    z.bytes.subarray(tail.directoryOffset, tail.directoryOffset + tail.directoryBytes),
    tail,
    z.bytes.length,
  );
}

// ---------------------------------------------------------------------------------------------------------
// zip-reader.ts on files: the checks that read local headers and inflate.

async function withFile<T>(bytes: Uint8Array, name: string, fn: (f: InputFile) => Promise<T>): Promise<T> {
  const p = path.join(tmpRoot, name);
  fs.writeFileSync(p, bytes);
  const f = await InputFile.open(p);
  try {
    return await fn(f);
  } finally {
    await f.close();
  }
}

async function rejectsWith(p: Promise<unknown>, msg: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ZipRefusal);
  expect((thrown as Error).message).toMatch(msg);
}

describe('zip-reader: local headers and deflated entries', () => {
  it("reads the fixtures' layout the same way as the pure pipeline", async () => {
    for (const name of ['torch_state_dict.pt', 'numpy_deflated.npz']) {
      const bytes = fixture(name);
      const layout = await withFile(bytes, name, (f) => readZipLayout(f));
      expect(layout.entries).toEqual(readZip(bytes).entries);
    }
  });

  it('refuses a local header that carries another name', async () => {
    const z = buildZip([small(), small({ localName: 'b.bi_' }, 'b.bin')]);
    await rejectsWith(
      withFile(z.bytes, 'mismatch.zip', readZipLayout),
      /"b\.bin" has another name in its local header/,
    );
    const longer = buildZip([small(), small({ localName: '../../b.bin' }, 'b.bin')]);
    await rejectsWith(withFile(longer.bytes, 'mismatch2.zip', readZipLayout), /another name in its local header/);
  });

  it('refuses an entry whose data runs past the end of the file', async () => {
    const z = buildZip([small(), small({}, 'b.bin')]);
    const b = Buffer.from(z.bytes);
    b.writeUInt16LE(0xfff0, z.entries[1]!.headerOffset + 28); // local extra length
    await rejectsWith(withFile(b, 'past.zip', readZipLayout), /"b\.bin" runs past the end of the file/);
  });

  const member = (data: Buffer, patch: Partial<EntryInput> = {}) =>
    npzZip([{ name: 'w.npy', data, deflated: true, patch }]);
  const arr = npyBytes({ descr: '<f4', shape: [1000], data: f32(1000) });

  async function check(z: BuiltZip, prefix = 0): Promise<Buffer> {
    return withFile(z.bytes, 'deflated.npz', async (f) => {
      const layout = await readZipLayout(f);
      return checkDeflatedEntry(f, layout.entries[0]!, prefix);
    });
  }

  it('a true deflated entry passes and hands back the prefix asked for', async () => {
    const prefix = await check(member(arr), 128);
    expect(prefix.equals(arr.subarray(0, 128))).toBe(true);
    expect((await check(member(arr), 1_000_000)).equals(arr)).toBe(true);
  });

  it('refuses a declared size larger than the inflation, and smaller', async () => {
    await rejectsWith(check(member(arr, { size: arr.length + 1 })), /inflates to 4128 bytes, not the 4129 it declares/);
    await rejectsWith(check(member(arr, { size: arr.length - 1 })), /inflates to more than the 4127 bytes it declares/);
  });

  it('refuses a bad CRC-32, a stream that ends early, junk after the stream, and bytes that do not inflate', async () => {
    await rejectsWith(check(member(arr, { crc: crc32(arr) ^ 1 })), /fails its CRC-32 check/);
    const good = zlib.deflateRawSync(arr);
    await rejectsWith(
      check(member(arr, { compressed: good.subarray(0, good.length - 10) })),
      /does not inflate|inflates to \d+ bytes, not/,
    );
    await rejectsWith(
      check(member(arr, { compressed: Buffer.concat([good, Buffer.from('trailing junk')]) })),
      /ends before its \d+ compressed bytes do/,
    );
    await rejectsWith(
      check(member(arr, { compressed: Buffer.from('\xff\xff\xff\xff not deflate at all', 'latin1') })),
      /does not inflate/,
    );
  });

  // Regression: checkDeflatedEntry once kept reading 4 MiB blocks after the inflater had failed, left the
  // rejection unhandled (the CLI died with a stack trace, leaving .ckvc/locks/writers/<pid>-...) and then
  // waited for a 'drain' that a destroyed stream never emits.
  it('a corrupt deflated entry longer than one 4 MiB read is refused cleanly (no unhandled rejection, no hang)', async () => {
    const data = npyBytes({ descr: '|u1', shape: [5 * 1024 * 1024], data: randomBytesFor(5 * 1024 * 1024) });
    const good = zlib.deflateRawSync(data, { level: 1 }); // incompressible: stored deflate blocks, ~5 MiB
    const bad = Buffer.from(good);
    bad.fill(0xff, 1_000_000, 1_100_000); // covers a block header inside the first 4 MiB read
    const z = buildZip([{ name: 'big.npy', data, method: 'deflated', compressed: bad }]);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    let outcome: unknown;
    try {
      outcome = await Promise.race([
        check(z).then(
          () => 'accepted',
          (e: unknown) => e,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still running after 3 s'), 3_000)),
      ]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled.map(String)).toEqual([]);
    expect(outcome).toBeInstanceOf(ZipRefusal);
    expect((outcome as Error).message).toMatch(/"big\.npy" does not inflate/);
  }, 10_000);

  it('an .npz whose deflated members declare more than 64 GiB in all is refused before any is inflated', async () => {
    const member = (i: number): PlacedZipEntry => ({
      name: `a${i}.npy`,
      method: 8,
      flags: 0,
      crc32: 0,
      compressedSize: 16 * 1024 * 1024,
      size: 13 * 1024 ** 3,
      headerOffset: i * 100,
      dataOffset: i * 100 + 30,
      dataEnd: i * 100 + 40,
    });
    const entries = [0, 1, 2, 3, 4].map(member);
    expect(entries.reduce((a, e) => a + e.size, 0)).toBeGreaterThan(NPZ_MAX_INFLATED_BYTES);
    await rejectsWith(
      withFile(Buffer.alloc(1000), 'many.npz', (f) => planNpz(f, { entries, directoryOffset: 900 })),
      /declare \d+ bytes in all \(the cap is 68719476736\)/,
    );
    // Four of them (52 GiB) pass the total; the first is then inflated, and found to be no deflate stream.
    await rejectsWith(
      withFile(Buffer.alloc(1000), 'four.npz', (f) =>
        planNpz(f, { entries: entries.slice(0, 4), directoryOffset: 900 }),
      ),
      /does not inflate|inflates to/,
    );
  });

  it('refuses to inflate an entry whose method is not deflate (the 16 GiB cap belongs to the directory reader: archives.test.ts)', async () => {
    const fake: PlacedZipEntry = {
      name: 'huge.npy',
      method: 0,
      flags: 0,
      crc32: 0,
      compressedSize: 10,
      size: 10,
      headerOffset: 0,
      dataOffset: 30,
      dataEnd: 40,
    };
    await rejectsWith(
      withFile(Buffer.alloc(100), 'cap.bin', (f) => checkDeflatedEntry(f, fake)),
      /uses compression method 0/,
    );
  });

  it('a stream inflating to 256 MiB that declares 1,000 bytes stops at once, without keeping the output', async () => {
    const bomb = zeroBombStream(256);
    const z = buildZip([
      { name: 'bomb.npy', data: Buffer.alloc(0), method: 'deflated', compressed: bomb, size: 1000, crc: zeroCrc(256) },
    ]);
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    await rejectsWith(check(z), /inflates to more than the 1000 bytes it declares/);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('a 64 MiB zero stream declared truthfully inflates as a stream and passes (the output is never kept)', async () => {
    const z = buildZip([
      {
        name: 'zeros.npy',
        data: Buffer.alloc(0),
        method: 'deflated',
        compressed: zeroBombStream(64),
        size: 64 * 1024 * 1024,
        crc: zeroCrc(64),
      },
    ]);
    const peakBefore = process.resourceUsage().maxRSS * 1024;
    const prefix = await check(z, 16);
    expect(prefix.equals(Buffer.alloc(16))).toBe(true);
    expect(process.resourceUsage().maxRSS * 1024 - peakBefore).toBeLessThan(160 * 1024 * 1024);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Pickles

function pklOf(file: string): Buffer {
  const bytes = fixture(file);
  const e = readZip(bytes).entries.find((x) => x.name.endsWith('/data.pkl'))!;
  return bytes.subarray(e.dataOffset, e.dataEnd);
}

const view = (v: TorchTensorView) => [v.name, v.storageKey, v.storageType, v.offset, v.shape, v.stride];

describe('readTorchPickle: the fixtures', () => {
  it('torch_state_dict.pt: every tensor with its storage, offset, shape and stride; the view shares storage 0', () => {
    const s = readTorchPickle(pklOf('torch_state_dict.pt'));
    expect(s.views.map(view)).toEqual([
      ['layer.weight', '0', 'FloatStorage', 0, [64, 32], [32, 1]],
      ['layer.bias', '1', 'FloatStorage', 0, [64], [1]],
      ['half', '2', 'HalfStorage', 0, [16, 16], [16, 1]],
      ['bf16', '3', 'BFloat16Storage', 0, [8, 8], [8, 1]],
      ['steps', '4', 'LongStorage', 0, [10], [1]],
      ['view_of_weight', '0', 'FloatStorage', 0, [8, 32], [32, 1]],
    ]);
    expect([...s.storages]).toEqual([
      ['0', 'FloatStorage'],
      ['1', 'FloatStorage'],
      ['2', 'HalfStorage'],
      ['3', 'BFloat16Storage'],
      ['4', 'LongStorage'],
    ]);
    // MANIFEST agrees on shapes
    for (const v of s.views) expect(v.shape, v.name).toEqual(MANIFEST['torch_state_dict.pt'].tensors[v.name].shape);
  });

  it('torch_state_dict.pt: storages are named by their whole-cover tensor; the view is not a part of its own', () => {
    const bytes = fixture('torch_state_dict.pt');
    const storages = readZip(bytes)
      .entries.filter((e) => /\/data\/\d+$/.test(e.name))
      .map((e) => ({ key: e.name.split('/').pop()!, bytes: e.size }));
    expect(nameStorages(storages, readTorchPickle(pklOf('torch_state_dict.pt')))).toEqual([
      { key: '0', name: 'layer.weight', dtype: 'F32', shape: [64, 32], groupWidth: 4 },
      { key: '1', name: 'layer.bias', dtype: 'F32', shape: [64], groupWidth: 4 },
      { key: '2', name: 'half', dtype: 'F16', shape: [16, 16], groupWidth: 2 },
      { key: '3', name: 'bf16', dtype: 'BF16', shape: [8, 8], groupWidth: 2 },
      { key: '4', name: 'steps', dtype: 'I64', shape: [10], groupWidth: 8 },
    ]);
  });

  it('tied weights: the fixture names each shared storage once, with its other names tied (not a view of another shape)', () => {
    const bytes = fixture('torch_tied_weights.pt');
    const storages = readZip(bytes)
      .entries.filter((e) => /\/data\/\d+$/.test(e.name))
      .map((e) => ({ key: e.name.split('/').pop()!, bytes: e.size }));
    const named = nameStorages(storages, readTorchPickle(pklOf('torch_tied_weights.pt')));
    const tied = Object.fromEntries(named.filter((n) => n.tied).map((n) => [n.name, n.tied]));
    expect(tied).toEqual(MANIFEST['torch_tied_weights.pt'].tied);
    expect(named.some((n) => n.name.startsWith('flat') || n.tied?.some((t) => t.startsWith('flat')))).toBe(false);
  });

  it('a tied name never takes the name another storage is known by, whatever the order', () => {
    const view = (name: string, storageKey: string): TorchTensorView => ({
      name,
      storageKey,
      storageType: 'FloatStorage',
      offset: 0,
      shape: [4],
      stride: [1],
    });
    // {'x': a, 'y': {'z': a}, 'y.z': b}: a's second path is the dotted key of b.
    const summary: TorchPickleSummary = {
      views: [view('x', '0'), view('y.z', '0'), view('y.z', '1')],
      storages: new Map([
        ['0', 'FloatStorage'],
        ['1', 'FloatStorage'],
      ]),
    };
    const named = nameStorages(
      [
        { key: '0', bytes: 16 },
        { key: '1', bytes: 16 },
      ],
      summary,
    );
    expect(named.map((n) => [n.name, n.tied])).toEqual([
      ['x', undefined],
      ['y.z', undefined],
    ]);
  });

  it('the training checkpoints: model (OrderedDict with _metadata state), optimizer state by parameter index, rng bytes', () => {
    for (const file of ['torch_training_checkpoint.pt', 'torch_training_checkpoint_step2.pt']) {
      const s = readTorchPickle(pklOf(file));
      expect(
        s.views.map((v) => [v.name, v.storageKey, v.storageType, v.shape]),
        file,
      ).toEqual([
        ['model.weight', '0', 'FloatStorage', [4, 16]],
        ['model.bias', '1', 'FloatStorage', [4]],
        ['optimizer.state.0.step', '2', 'FloatStorage', []],
        ['optimizer.state.0.exp_avg', '3', 'FloatStorage', [4, 16]],
        ['optimizer.state.0.exp_avg_sq', '4', 'FloatStorage', [4, 16]],
        ['optimizer.state.1.step', '5', 'FloatStorage', []],
        ['optimizer.state.1.exp_avg', '6', 'FloatStorage', [4]],
        ['optimizer.state.1.exp_avg_sq', '7', 'FloatStorage', [4]],
        ['rng', '8', 'ByteStorage', [5056]],
      ]);
    }
  });
});

// Written by the real CPython pickler (tests/helpers/make-protocol-pickles.py) on a torch-like graph:
// {'model': OrderedDict(enc.weight: storage 0 [3,4], enc.first_row: storage 0 [4], count: storage 1 []),
//  'opt': {'state': {0: {'m': storage 0 offset 4 [2,4]}}, 'groups': [{'lr': 0.1, 'params': [0]}]}, 'epoch': 3}
const PROTOCOL_PICKLES: Record<number, string> = {
  1: 'fXEAKFgFAAAAbW9kZWxxAWNjb2xsZWN0aW9ucwpPcmRlcmVkRGljdApxAilScQMoWAoAAABlbmMud2VpZ2h0cQRjdG9yY2guX3V0aWxzCl9yZWJ1aWxkX3RlbnNvcl92MgpxBSgoWAcAAABzdG9yYWdlcQZjdG9yY2gKRmxvYXRTdG9yYWdlCnEHWAEAAAAwcQhYAwAAAGNwdXEJSwx0cQpRSwAoSwNLBHRxCyhLBEsBdHEMSTAwCmgCKVJxDXRxDlJxD1gNAAAAZW5jLmZpcnN0X3Jvd3EQaAUoKGgGaAdoCGgJSwx0cRFRSwAoSwR0cRIoSwF0cRNJMDAKaAIpUnEUdHEVUnEWWAUAAABjb3VudHEXaAUoKGgGY3RvcmNoCkxvbmdTdG9yYWdlCnEYWAEAAAAxcRloCUsBdHEaUUsAKSlJMDAKaAIpUnEbdHEcUnEddVgDAAAAb3B0cR59cR8oWAUAAABzdGF0ZXEgfXEhSwB9cSJYAQAAAG1xI2gFKChoBmgHaAhoCUsMdHEkUUsEKEsCSwR0cSVoDEkwMApoAilScSZ0cSdScShzc1gGAAAAZ3JvdXBzcSldcSp9cSsoWAIAAABscnEsRz+5mZmZmZmaWAYAAABwYXJhbXNxLV1xLksAYXVhdVgFAAAAZXBvY2hxL0sDdS4=',
  2: 'gAJ9cQAoWAUAAABtb2RlbHEBY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnECKVJxAyhYCgAAAGVuYy53ZWlnaHRxBGN0b3JjaC5fdXRpbHMKX3JlYnVpbGRfdGVuc29yX3YyCnEFKChYBwAAAHN0b3JhZ2VxBmN0b3JjaApGbG9hdFN0b3JhZ2UKcQdYAQAAADBxCFgDAAAAY3B1cQlLDHRxClFLAEsDSwSGcQtLBEsBhnEMiWgCKVJxDXRxDlJxD1gNAAAAZW5jLmZpcnN0X3Jvd3EQaAUoKGgGaAdoCGgJSwx0cRFRSwBLBIVxEksBhXETiWgCKVJxFHRxFVJxFlgFAAAAY291bnRxF2gFKChoBmN0b3JjaApMb25nU3RvcmFnZQpxGFgBAAAAMXEZaAlLAXRxGlFLACkpiWgCKVJxG3RxHFJxHXVYAwAAAG9wdHEefXEfKFgFAAAAc3RhdGVxIH1xIUsAfXEiWAEAAABtcSNoBSgoaAZoB2gIaAlLDHRxJFFLBEsCSwSGcSVoDIloAilScSZ0cSdScShzc1gGAAAAZ3JvdXBzcSldcSp9cSsoWAIAAABscnEsRz+5mZmZmZmaWAYAAABwYXJhbXNxLV1xLksAYXVhdVgFAAAAZXBvY2hxL0sDdS4=',
  4: 'gASVlgEAAAAAAAB9lCiMBW1vZGVslIwLY29sbGVjdGlvbnOUjAtPcmRlcmVkRGljdJSTlClSlCiMCmVuYy53ZWlnaHSUjAx0b3JjaC5fdXRpbHOUjBJfcmVidWlsZF90ZW5zb3JfdjKUk5QoKIwHc3RvcmFnZZSMBXRvcmNolIwMRmxvYXRTdG9yYWdllJOUjAEwlIwDY3B1lEsMdJRRSwBLA0sEhpRLBEsBhpSJaAQpUpR0lFKUjA1lbmMuZmlyc3Rfcm93lGgJKChoCmgNaA5oD0sMdJRRSwBLBIWUSwGFlIloBClSlHSUUpSMBWNvdW50lGgJKChoCmgLjAtMb25nU3RvcmFnZZSTlIwBMZRoD0sBdJRRSwApKYloBClSlHSUUpR1jANvcHSUfZQojAVzdGF0ZZR9lEsAfZSMAW2UaAkoKGgKaA1oDmgPSwx0lFFLBEsCSwSGlGgSiWgEKVKUdJRSlHNzjAZncm91cHOUXZR9lCiMAmxylEc/uZmZmZmZmowGcGFyYW1zlF2USwBhdWF1jAVlcG9jaJRLA3Uu',
  5: 'gAWVlgEAAAAAAAB9lCiMBW1vZGVslIwLY29sbGVjdGlvbnOUjAtPcmRlcmVkRGljdJSTlClSlCiMCmVuYy53ZWlnaHSUjAx0b3JjaC5fdXRpbHOUjBJfcmVidWlsZF90ZW5zb3JfdjKUk5QoKIwHc3RvcmFnZZSMBXRvcmNolIwMRmxvYXRTdG9yYWdllJOUjAEwlIwDY3B1lEsMdJRRSwBLA0sEhpRLBEsBhpSJaAQpUpR0lFKUjA1lbmMuZmlyc3Rfcm93lGgJKChoCmgNaA5oD0sMdJRRSwBLBIWUSwGFlIloBClSlHSUUpSMBWNvdW50lGgJKChoCmgLjAtMb25nU3RvcmFnZZSTlIwBMZRoD0sBdJRRSwApKYloBClSlHSUUpR1jANvcHSUfZQojAVzdGF0ZZR9lEsAfZSMAW2UaAkoKGgKaA1oDmgPSwx0lFFLBEsCSwSGlGgSiWgEKVKUdJRSlHNzjAZncm91cHOUXZR9lCiMAmxylEc/uZmZmZmZmowGcGFyYW1zlF2USwBhdWF1jAVlcG9jaJRLA3Uu',
};

/** A tensor value for pickleBytes. */
function T(
  storageKey: string,
  storageClass: string,
  storageNumel: number,
  shape: number[],
  extra: Partial<{ offset: number; stride: number[]; rebuild: string; parameter: boolean }> = {},
): PickleValue {
  return { tensor: { storageKey, storageClass, storageNumel, shape, ...extra } };
}

/** The raw opcodes of one tensor's argument tuple (storage pid, offset, size, stride, requires_grad, hooks). */
function tensorArgs(
  storageKey: string,
  storageClass: string,
  numel: number,
  shape: number[],
  stride: number[],
): PickleValue {
  return {
    tuple: [
      { pid: { tuple: ['storage', { global: `torch.${storageClass}` }, storageKey, 'cpu', numel] } },
      0,
      { tuple: shape },
      { tuple: stride },
      false,
      { ordered: [] },
    ],
  };
}

describe('readTorchPickle: built pickles', () => {
  it('reads protocols 1-5 as the CPython pickler writes them (MEMOIZE, FRAME, STACK_GLOBAL, text INT)', () => {
    for (const [proto, b64] of Object.entries(PROTOCOL_PICKLES)) {
      const s = readTorchPickle(Buffer.from(b64, 'base64'));
      expect(s.views.map(view), `protocol ${proto}`).toEqual([
        ['model.enc.weight', '0', 'FloatStorage', 0, [3, 4], [4, 1]],
        ['model.enc.first_row', '0', 'FloatStorage', 0, [4], [1]],
        ['model.count', '1', 'LongStorage', 0, [], []],
        ['opt.state.0.m', '0', 'FloatStorage', 4, [2, 4], [4, 1]],
      ]);
    }
  });

  it('names nested dicts, integer keys, list and tuple indices, and OrderedDict state by their path', () => {
    const root: PickleValue = {
      dict: [
        [
          'model',
          {
            ordered: [['layer.weight', T('0', 'FloatStorage', 6, [2, 3])]],
            state: { dict: [['_metadata', { ordered: [['', { dict: [['version', 1]] }]] }]] },
          },
        ],
        [
          'optimizer',
          {
            dict: [
              [
                'state',
                {
                  dict: [
                    [0, { dict: [['exp_avg', T('1', 'FloatStorage', 6, [2, 3])]] }],
                    [7, { dict: [['step', T('2', 'LongStorage', 1, [])]] }],
                  ],
                },
              ],
              ['param_groups', [{ dict: [['params', [0, 7]]] }]],
            ],
          },
        ],
        ['list', [T('3', 'HalfStorage', 2, [2]), { tuple: [null, T('4', 'BoolStorage', 3, [3])] }]],
        [{ tuple: ['tuple', 'key'] }, T('5', 'FloatStorage', 1, [1])], // a key that is not a name: skipped
        [1.5, T('6', 'FloatStorage', 1, [1])],
      ],
    };
    const s = readTorchPickle(pickleBytes(root));
    expect(s.views.map((v) => [v.name, v.storageKey])).toEqual([
      ['model.layer.weight', '0'],
      ['optimizer.state.0.exp_avg', '1'],
      ['optimizer.state.7.step', '2'],
      ['list.0', '3'],
      ['list.1.1', '4'],
    ]);
  });

  it('follows _rebuild_parameter, _rebuild_tensor, _rebuild_tensor_v3 and _rebuild_from_type_v2', () => {
    const root: PickleValue = {
      ordered: [
        ['p', T('0', 'FloatStorage', 4, [4], { parameter: true })],
        ['v1', T('1', 'FloatStorage', 4, [4], { rebuild: 'torch._utils._rebuild_tensor' })],
        ['v3', T('2', 'FloatStorage', 4, [4], { rebuild: 'torch._utils._rebuild_tensor_v3' })],
        [
          'typed',
          {
            call: 'torch._tensor._rebuild_from_type_v2',
            args: [
              { global: 'torch._utils._rebuild_tensor_v2' },
              { global: 'torch.nn.parameter.Parameter' },
              tensorArgs('3', 'DoubleStorage', 2, [2], [1]),
              { dict: [] },
            ],
          },
        ],
        [
          'other',
          {
            call: 'mylib.make_tensor',
            args: [{ pid: { tuple: ['storage', { global: 'torch.IntStorage' }, '4', 'cpu', 1] } }, 'x'],
          },
        ],
      ],
    };
    const s = readTorchPickle(pickleBytes(root));
    expect(s.views.map((v) => [v.name, v.storageKey, v.storageType])).toEqual([
      ['p', '0', 'FloatStorage'],
      ['v1', '1', 'FloatStorage'],
      ['v3', '2', 'FloatStorage'],
      ['typed', '3', 'DoubleStorage'],
    ]);
    // a storage passed straight to an unknown callee is still known with its class (stored as data/4, I32)
    expect(s.storages.get('4')).toBe('IntStorage');
    expect([...s.storages.keys()].sort()).toEqual(['0', '1', '2', '3', '4']);
  });

  it('never imports or calls anything: a pickle calling os.system is just names (no tensor, no effect)', () => {
    const evil = pickleBytes({ call: 'os.system', args: ['touch /tmp/ckvc-pwned-by-unit-test'] });
    expect(readTorchPickle(evil)).toEqual({ views: [], storages: new Map() });
    expect(fs.existsSync('/tmp/ckvc-pwned-by-unit-test')).toBe(false);
  });

  it('bad tensor arguments (negative offset, float sizes even when whole, mismatched stride) are not tensors', () => {
    const bad = (args: PickleValue[]): PickleValue => ({ call: 'torch._utils._rebuild_tensor_v2', args });
    const pid = { pid: { tuple: ['storage', { global: 'torch.FloatStorage' }, '0', 'cpu', 4] } };
    const s = readTorchPickle(
      pickleBytes({
        dict: [
          ['neg', bad([pid, -1, { tuple: [4] }, { tuple: [1] }])],
          [
            'float',
            bad([pid, 0, { tuple: [{ raw: Buffer.from([0x47, 0x40, 0x12, 0, 0, 0, 0, 0, 0]) }] }, { tuple: [1] }]),
          ],
          [
            'float4',
            bad([pid, 0, { tuple: [{ raw: Buffer.from([0x47, 0x40, 0x10, 0, 0, 0, 0, 0, 0]) }] }, { tuple: [1] }]),
          ], // 4.0: a float is never a size
          ['rank', bad([pid, 0, { tuple: [2, 2] }, { tuple: [1] }])],
          ['nopid', bad(['storage', 0, { tuple: [4] }, { tuple: [1] }])],
        ],
      }),
    );
    expect(s.views).toEqual([]);
    expect([...s.storages]).toEqual([['0', 'FloatStorage']]);
  });

  describe('refusals: PickleNotUnderstood', () => {
    const notUnderstood = (b: Uint8Array, msg: RegExp) => refuses(() => readTorchPickle(b), PickleNotUnderstood, msg);
    it('an unknown opcode', () =>
      notUnderstood(Buffer.from([0x80, 0x02, 0x7d, 0xff, 0x2e]), /opcode 0xff at byte 3 is not one ckvc reads/));
    it('a pickle that ends inside an opcode, or has no STOP', () => {
      notUnderstood(Buffer.from([0x80, 0x02, 0x58, 0x10, 0, 0, 0, 0x61]), /ends inside an opcode/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x7d]), /ends inside an opcode/);
      notUnderstood(Buffer.alloc(0), /ends inside an opcode/);
    });
    it('an empty stack, a missing mark, a memo read before write', () => {
      notUnderstood(Buffer.from([0x80, 0x02, 0x2e]), /pops an empty stack/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x74, 0x2e]), /mark that is not there/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x68, 0x05, 0x2e]), /memo 5 before writing it/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x28, 0x2e]), /pops an empty stack/);
    });
    it('SETITEM on a list, SETITEMS with an odd count, APPEND on a dict', () => {
      notUnderstood(Buffer.from([0x80, 0x02, 0x5d, 0x4e, 0x4e, 0x73, 0x2e]), /not a mapping/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x7d, 0x28, 0x4e, 0x75, 0x2e]), /odd number/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x7d, 0x4e, 0x61, 0x2e]), /not a list/);
    });
    it('a string that is not UTF-8, a text opcode without newline, STACK_GLOBAL of non-strings, a huge LONG4', () => {
      notUnderstood(Buffer.from([0x80, 0x02, 0x8c, 0x02, 0xff, 0xfe, 0x2e]), /not UTF-8/);
      notUnderstood(Buffer.from('\x80\x02ctorch', 'latin1'), /no newline/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x4b, 1, 0x4b, 2, 0x93, 0x2e]), /STACK_GLOBAL/);
      notUnderstood(Buffer.from([0x80, 0x02, 0x8b, 0xff, 0xff, 0, 0, 0x2e]), /LONG4/);
    });
  });

  describe('hostile structures end quickly, with a result or PickleNotUnderstood', () => {
    const bounded = (b: Uint8Array): TorchPickleSummary | PickleNotUnderstood => {
      const t0 = performance.now();
      try {
        return readTorchPickle(b);
      } catch (e) {
        if (!(e instanceof PickleNotUnderstood)) throw e;
        return e;
      } finally {
        expect(performance.now() - t0).toBeLessThan(2000);
      }
    };

    it('a list that contains itself', () => {
      // [] BINPUT 0, BINGET 0, APPEND -> l = [l]
      const r = bounded(Buffer.from([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e]));
      expect(r).not.toBeInstanceOf(PickleNotUnderstood);
    });

    it('a chain of 60 diamonds (2^60 paths) hits the walk budget', () => {
      // d0 = {}; d(i+1) = {'a': d(i), 'b': d(i)}
      const ops: number[] = [0x80, 0x02, 0x7d, 0x71, 0x00];
      for (let i = 0; i < 60; i++)
        ops.push(0x7d, 0x28, 0x8c, 1, 0x61, 0x68, i, 0x8c, 1, 0x62, 0x68, i, 0x75, 0x71, i + 1);
      ops.push(0x2e);
      const r = bounded(Buffer.from(ops));
      expect(r).toBeInstanceOf(PickleNotUnderstood);
      expect((r as Error).message).toMatch(/too many times/);
    });

    it('100,000 nested lists: no stack overflow (names deeper than the walk goes are not read)', () => {
      const ops = Buffer.concat([
        Buffer.from([0x80, 0x02]),
        Buffer.alloc(100_000, 0x5d),
        Buffer.from('a'.repeat(99_999), 'latin1'),
        Buffer.from([0x2e]),
      ]);
      expect(bounded(ops)).not.toBeInstanceOf(PickleNotUnderstood);
    });

    // Regression: APPENDS once spread its items into push(); past ~120k items that overflows V8's argument
    // limit, and the RangeError (not PickleNotUnderstood) failed the whole commit.
    it('APPENDS of 300,000 items (one MARK) is read, or refused as PickleNotUnderstood — not a RangeError', () => {
      const ops = Buffer.concat([
        Buffer.from([0x80, 0x02, 0x5d, 0x28]),
        Buffer.alloc(300_000, 0x4e),
        Buffer.from([0x65, 0x2e]),
      ]);
      expect(() => bounded(ops)).not.toThrow();
    });

    it('a pickle that only builds empty dicts is refused once it has built 4,000,000 objects (bounded memory)', () => {
      const ops = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(4_000_001, 0x7d), Buffer.from([0x2e])]);
      expect(() => readTorchPickle(ops)).toThrow(/builds more than 4000000 objects/);
    });

    it('a tensor under a name over 1,024 characters is left unnamed (its storage keeps data/<key>)', () => {
      const key = 'k'.repeat(2000);
      const pid = [
        0x28,
        0x58,
        7,
        0,
        0,
        0,
        ...Buffer.from('storage'),
        0x63,
        ...Buffer.from('torch\nFloatStorage\n'),
        0x58,
        1,
        0,
        0,
        0,
        0x30,
        0x58,
        3,
        0,
        0,
        0,
        ...Buffer.from('cpu'),
        0x4b,
        1,
        0x74,
        0x51,
      ];
      const rebuild = [
        0x63,
        ...Buffer.from('torch._utils\n_rebuild_tensor_v2\n'),
        0x28,
        ...pid,
        0x4b,
        0,
        0x4b,
        1,
        0x85,
        0x4b,
        1,
        0x85,
        0x89,
        0x4e,
        0x74,
        0x52,
      ];
      const ops = Buffer.from([
        0x80,
        0x02,
        0x7d,
        0x58,
        ...u32le(key.length),
        ...Buffer.from(key),
        ...rebuild,
        0x73,
        0x2e,
      ]);
      const r = readTorchPickle(ops);
      expect(r.views).toEqual([]);
      expect(r.storages.get('0')).toBe('FloatStorage');
    });
  });
});

function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

describe('nameStorages', () => {
  const summary = (views: Partial<TorchTensorView>[], storages: [string, string][]): TorchPickleSummary => ({
    views: views.map((v) => ({
      name: 'x',
      storageKey: '0',
      storageType: 'FloatStorage',
      offset: 0,
      shape: [],
      stride: [],
      ...v,
    })),
    storages: new Map(storages),
  });

  it('a tensor covering its storage whole, in row-major order, names it and gives its shape', () => {
    const s = summary([{ name: 'w', shape: [4, 8], stride: [8, 1] }], [['0', 'FloatStorage']]);
    expect(nameStorages([{ key: '0', bytes: 128 }], s)).toEqual([
      { key: '0', name: 'w', dtype: 'F32', shape: [4, 8], groupWidth: 4 },
    ]);
  });

  it('size-1 dimensions may carry any stride; a scalar covers a one-element storage', () => {
    const s = summary(
      [
        { name: 'w', shape: [1, 8, 1], stride: [999, 1, 7] },
        { name: 's', storageKey: '1', shape: [], stride: [] },
      ],
      [
        ['0', 'FloatStorage'],
        ['1', 'LongStorage'],
      ],
    );
    expect(
      nameStorages(
        [
          { key: '0', bytes: 32 },
          { key: '1', bytes: 8 },
        ],
        s,
      ).map((n) => [n.name, n.shape, n.dtype]),
    ).toEqual([
      ['w', [1, 8, 1], 'F32'],
      ['s', [], 'I64'],
    ]);
  });

  it('views, slices and non-contiguous tensors leave the storage as data/<key> with shape [bytes / width]', () => {
    const cases: Partial<TorchTensorView>[] = [
      { name: 'offset', offset: 4, shape: [4], stride: [1] }, // a view into the middle
      { name: 'slice', shape: [2, 8], stride: [8, 1] }, // half of it
      { name: 'transposed', shape: [8, 4], stride: [1, 8] }, // all of it, not row-major
      { name: 'broadcast', shape: [32], stride: [0] },
    ];
    for (const c of cases) {
      expect(
        nameStorages([{ key: '7', bytes: 128 }], summary([{ storageKey: '7', ...c }], [['7', 'FloatStorage']])),
        c.name,
      ).toEqual([{ key: '7', name: 'data/7', dtype: 'F32', shape: [32], groupWidth: 4 }]);
    }
  });

  it('the first whole-cover tensor in pickle order wins; a view before it does not matter', () => {
    const s = summary(
      [
        { name: 'view', shape: [2], stride: [1] },
        { name: 'first', shape: [4], stride: [1] },
        { name: 'second', shape: [2, 2], stride: [2, 1] },
      ],
      [['0', 'FloatStorage']],
    );
    expect(nameStorages([{ key: '0', bytes: 16 }], s)[0]).toMatchObject({ name: 'first', shape: [4] });
  });

  it("names are unique within the file: a repeated name, or one equal to another storage's data/<key>, falls back", () => {
    const s = summary(
      [
        { name: 'w', storageKey: '0', shape: [4], stride: [1] },
        { name: 'w', storageKey: '1', shape: [4], stride: [1] },
        { name: 'data/0', storageKey: '2', shape: [4], stride: [1] },
      ],
      [
        ['0', 'FloatStorage'],
        ['1', 'FloatStorage'],
        ['2', 'FloatStorage'],
      ],
    );
    expect(
      nameStorages(
        [
          { key: '0', bytes: 16 },
          { key: '1', bytes: 16 },
          { key: '2', bytes: 16 },
        ],
        s,
      ).map((n) => n.name),
    ).toEqual(['w', 'data/1', 'data/2']);
  });

  it('the root tensor (empty name, torch.save(tensor)) leaves data/<key>', () => {
    expect(
      nameStorages(
        [{ key: '0', bytes: 16 }],
        summary([{ name: '', shape: [4], stride: [1] }], [['0', 'FloatStorage']]),
      )[0]!.name,
    ).toBe('data/0');
  });

  it('storage classes map to the dtypes of ARCHIVES.md §2.1; other classes are torch:<Class>, one byte wide', () => {
    const table: [string, string, number][] = [
      ['DoubleStorage', 'F64', 8],
      ['FloatStorage', 'F32', 4],
      ['HalfStorage', 'F16', 2],
      ['BFloat16Storage', 'BF16', 2],
      ['LongStorage', 'I64', 8],
      ['IntStorage', 'I32', 4],
      ['ShortStorage', 'I16', 2],
      ['CharStorage', 'I8', 1],
      ['ByteStorage', 'U8', 1],
      ['BoolStorage', 'BOOL', 1],
      ['UInt16Storage', 'U16', 2],
      ['UInt32Storage', 'U32', 4],
      ['UInt64Storage', 'U64', 8],
      ['Float8_e4m3fnStorage', 'F8_E4M3', 1],
      ['Float8_e5m2Storage', 'F8_E5M2', 1],
      ['ComplexFloatStorage', 'C64', 8],
      ['UntypedStorage', 'U8', 1],
      ['ComplexDoubleStorage', 'torch:ComplexDouble', 16],
      ['QInt8Storage', 'torch:QInt8', 1],
      ['QInt32Storage', 'torch:QInt32', 4],
      ['SomeFutureStorage', 'torch:SomeFutureStorage', 1],
      ['toString', 'torch:toString', 1],
      ['__proto__', 'torch:__proto__', 1],
    ];
    for (const [cls, dtype, bytes] of table)
      expect([cls, torchStorageDtype(cls).dtype, torchStorageDtype(cls).bytes]).toEqual([cls, dtype, bytes]);
    expect(torchStorageDtype('ComplexFloatStorage').groupWidth).toBe(4);
    // an unknown class still names and shapes the storage, one element per byte
    const s = summary([{ name: 'q', shape: [5], stride: [1] }], [['0', 'SomeFutureStorage']]);
    expect(nameStorages([{ key: '0', bytes: 5 }], s)[0]).toEqual({
      key: '0',
      name: 'q',
      dtype: 'torch:SomeFutureStorage',
      shape: [5],
      groupWidth: 1,
    });
  });

  it('a storage whose bytes are not a whole number of elements is torch:unknown [bytes]', () => {
    const s = summary([{ name: 'w', shape: [2], stride: [1] }], [['0', 'DoubleStorage']]);
    expect(nameStorages([{ key: '0', bytes: 12 }], s)[0]).toEqual({
      key: '0',
      name: 'data/0',
      dtype: 'torch:unknown',
      shape: [12],
      groupWidth: 1,
    });
  });

  it('no pickle: every storage is data/<key>, torch:unknown, [bytes]; a storage the pickle never mentions likewise', () => {
    expect(
      nameStorages(
        [
          { key: '0', bytes: 16 },
          { key: 'x', bytes: 3 },
        ],
        undefined,
      ),
    ).toEqual([
      { key: '0', name: 'data/0', dtype: 'torch:unknown', shape: [16], groupWidth: 1 },
      { key: 'x', name: 'data/x', dtype: 'torch:unknown', shape: [3], groupWidth: 1 },
    ]);
    expect(nameStorages([{ key: '9', bytes: 4 }], summary([], [['0', 'FloatStorage']]))[0]!.dtype).toBe(
      'torch:unknown',
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// .npy headers

describe('parseNpyHeader', () => {
  const npyRefuses = (b: Uint8Array, msg: RegExp) => refuses(() => parseNpyHeader(b), NpyRefusal, msg);
  const withDict = (dictText: string, version: 1 | 2 | 3 = 1) =>
    npyBytes({ descr: '', shape: [], data: Buffer.alloc(0), dictText, version });

  it('the fixtures: v1, v2, Fortran order, object dtype', () => {
    expect(parseNpyHeader(fixture('numpy_v1_float32.npy'))).toEqual({
      version: 1,
      dataOffset: 128,
      descr: '<f4',
      fortranOrder: false,
      shape: [100, 7],
      known: { dtype: 'F32', bytes: 4 },
      dataBytes: 2800,
    });
    expect(parseNpyHeader(fixture('numpy_v2_header.npy'))).toMatchObject({
      version: 2,
      dataOffset: 128,
      descr: '<f8',
      shape: [3],
      dataBytes: 24,
    });
    expect(parseNpyHeader(fixture('numpy_fortran_order.npy'))).toMatchObject({
      fortranOrder: true,
      shape: [100, 7],
      dataBytes: 2800,
    });
    const obj = parseNpyHeader(fixture('numpy_object_dtype.npy'));
    expect(obj).toMatchObject({ descr: '|O', shape: [2] });
    expect(obj.known).toBeUndefined();
    expect(obj.dataBytes).toBeUndefined();
  });

  it('built files of versions 1, 2 and 3 (UTF-8 names in a structured dtype), as numpy writes them', () => {
    for (const version of [1, 2, 3] as const) {
      const b = npyBytes({ descr: '<i2', shape: [3, 2, 1], data: Buffer.alloc(12), version });
      const h = parseNpyHeader(b);
      expect(h).toMatchObject({
        version,
        descr: '<i2',
        shape: [3, 2, 1],
        dataBytes: 12,
        known: { dtype: 'I16', bytes: 2 },
      });
      expect(h.dataOffset).toBe(b.length - 12);
      expect(h.dataOffset % 64).toBe(0);
    }
    const v3 = parseNpyHeader(
      withDict("{'descr': [('poids_é', '<f4'), ('数', '<i8')], 'fortran_order': False, 'shape': (2,), }", 3),
    );
    expect(v3).toMatchObject({ version: 3, descr: '(structured)', shape: [2] });
    expect(v3.known).toBeUndefined();
  });

  it('every descr of ARCHIVES.md §3 is a tensor dtype; others (big-endian, strings, datetimes, complex128) are opaque', () => {
    const known: [string, string, number][] = [
      ['|b1', 'BOOL', 1],
      ['|i1', 'I8', 1],
      ['|u1', 'U8', 1],
      ['<i2', 'I16', 2],
      ['<u2', 'U16', 2],
      ['<i4', 'I32', 4],
      ['<u4', 'U32', 4],
      ['<i8', 'I64', 8],
      ['<u8', 'U64', 8],
      ['<f2', 'F16', 2],
      ['<f4', 'F32', 4],
      ['<f8', 'F64', 8],
      ['<c8', 'C64', 8],
    ];
    for (const [descr, dtype, bytes] of known) {
      expect(parseNpyHeader(npyBytes({ descr, shape: [5], data: Buffer.alloc(0) })).known, descr).toEqual({
        dtype,
        bytes,
      });
    }
    for (const descr of ['>f4', '>i8', '<U10', '|S3', '<M8[ns]', '<c16', '|O', '|V16', 'constructor', 'toString']) {
      const h = parseNpyHeader(npyBytes({ descr, shape: [5], data: Buffer.alloc(0) }));
      expect(h.known, descr).toBeUndefined();
    }
  });

  it('a scalar, a zero-size array, Python 2 longs (3L) and an unpadded header', () => {
    expect(parseNpyHeader(npyBytes({ descr: '<f8', shape: [], data: Buffer.alloc(8) })).dataBytes).toBe(8);
    expect(parseNpyHeader(npyBytes({ descr: '<f8', shape: [0, 5], data: Buffer.alloc(0) })).dataBytes).toBe(0);
    expect(parseNpyHeader(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4L), }")).shape).toEqual([
      3, 4,
    ]);
    const raw = "{'descr':'<u1','fortran_order':False,'shape':(1,)}\n";
    expect(
      parseNpyHeader(npyBytes({ descr: '<u1', shape: [1], data: Buffer.alloc(1), rawHeader: raw })).dataOffset,
    ).toBe(10 + raw.length);
  });

  it(`refuses a header longer than ${NPY_MAX_HEADER_BYTES} bytes, accepts one of exactly ${NPY_MAX_HEADER_BYTES}`, () => {
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    const exact = npyBytes({
      descr: '',
      shape: [],
      data: Buffer.alloc(4),
      version: 2,
      rawHeader: `${dict + ' '.repeat(NPY_MAX_HEADER_BYTES - dict.length - 1)}\n`,
    });
    expect(parseNpyHeader(exact).dataOffset).toBe(12 + NPY_MAX_HEADER_BYTES);
    const over = npyBytes({
      descr: '',
      shape: [],
      data: Buffer.alloc(4),
      version: 2,
      rawHeader: `${dict + ' '.repeat(NPY_MAX_HEADER_BYTES - dict.length)}\n`,
    });
    npyRefuses(over, /declares a 10001-byte header \(numpy's cap is 10000\)/);
    // the length field alone decides: a v2 length of 4 GiB is refused before anything is read
    npyRefuses(
      npyBytes({ descr: '<f4', shape: [1], data: Buffer.alloc(4), version: 2, headerLengthField: 0xffffffff }),
      /declares a 4294967295-byte header/,
    );
  });

  it('refuses bad magic, unknown versions, and a file that ends in the preamble or inside the header', () => {
    npyRefuses(Buffer.from('\x93NUMPZ\x01\x00', 'latin1'), /magic/);
    npyRefuses(Buffer.from('PK\x03\x04'), /magic/);
    npyRefuses(npyBytes({ descr: '<f4', shape: [1], data: Buffer.alloc(4), version: 4 as 1 }), /format version 4\.0/);
    const minor = npyBytes({ descr: '<f4', shape: [1], data: Buffer.alloc(4) });
    minor[7] = 1;
    npyRefuses(minor, /format version 1\.1/);
    const full = fixture('numpy_v1_float32.npy');
    npyRefuses(full.subarray(0, 9), /shorter than an \.npy preamble/);
    npyRefuses(fixture('numpy_v2_header.npy').subarray(0, 11), /shorter than an \.npy preamble/);
    npyRefuses(full.subarray(0, 100), /ends inside its header/);
  });

  it('refuses headers numpy would not parse', () => {
    const bad = [
      "{'descr': '<f4', 'fortran_order': Flase, 'shape': (3,), }", // not a literal
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ", // unterminated
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} extra", // text after the dict
      "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,), }", // an escape
      "{'descr: '<f4', 'fortran_order': False, 'shape': (3,), }", // broken quoting
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", // repeated key
      "{1: '<f4', 'fortran_order': False, 'shape': (3,), }", // a key that is not a string
      "['descr', '<f4']", // not a dict
      `{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(40)}${')'.repeat(40)}, }`, // nesting
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3.5,), }",
    ];
    for (const d of bad) npyRefuses(withDict(d), /would not parse/);
  });

  it('refuses headers whose keys are not exactly descr, fortran_order and shape, or whose values have the wrong type', () => {
    npyRefuses(withDict("{'descr': '<f4', 'fortran_order': False, }"), /keys are not exactly/);
    npyRefuses(
      withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1, }"),
      /keys are not exactly/,
    );
    npyRefuses(withDict("{'descr': '<f4', 'fortran_order': False, 'shapes': (3,), }"), /keys are not exactly/);
    npyRefuses(withDict("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }"), /non-boolean fortran_order/);
    npyRefuses(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': 3, }"), /shape that is not a tuple/);
    npyRefuses(
      withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"),
      /shape that is not a tuple of non-negative integers/,
    );
    npyRefuses(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"), /shape/);
    npyRefuses(
      withDict("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
      /too large to address/,
    );
  });

  // Regression (found by the numpy differential in tests/reliability/fuzz-archives.test.ts): the literal parser
  // accepted headers that numpy's ast.literal_eval refuses, so ckvc recorded a tensor numpy cannot load:
  // JavaScript's /\s/ whitespace (NBSP 0xA0, VT 0x0B, and in v3 U+FEFF, U+2028, U+3000 ...), a parenthesised
  // integer `(2)` read as the tuple (2,), leading zeros `01`, and Python 2 longs `3L` in a version 3 header
  // (numpy filters `L` only for versions 1 and 2).
  it("accepts only the literal syntax numpy's literal_eval accepts", () => {
    const header = (shape: string, ws = ' ', version: 1 | 2 | 3 = 1) =>
      withDict(`{'descr': '<f4',${ws}'fortran_order': False, 'shape': ${shape}, }`, version);
    for (const ws of ['\t', '\f', '\r', '\n', '  '])
      expect(parseNpyHeader(header('(2, 3)', ws)).shape, JSON.stringify(ws)).toEqual([2, 3]);
    expect(parseNpyHeader(header('(3L, 4L)', ' ', 2)).shape).toEqual([3, 4]);
    const refusedByNumpy: [string, Uint8Array][] = [
      ['NBSP', header('(2, 3)', '\u00a0')],
      ['vertical tab', header('(2, 3)', '\u000b')],
      ['U+FEFF (v3)', header('(2, 3)', '\ufeff', 3)],
      ['U+2028 (v3)', header('(2, 3)', '\u2028', 3)],
      ['(2) is an int', header('(2)')],
      ['leading zero', header('(01, 3)')],
      ['3L in v3', header('(3L, 4)', ' ', 3)],
    ];
    const accepted = refusedByNumpy
      .filter(([, b]) => {
        try {
          parseNpyHeader(b);
          return true;
        } catch (e) {
          if (!(e instanceof NpyRefusal)) throw e;
          return false;
        }
      })
      .map(([what]) => what);
    expect(accepted, 'headers numpy refuses but ckvc reads').toEqual([]);
  });

  it('refuses a header without its final newline, and text that is not valid for the version', () => {
    npyRefuses(
      npyBytes({
        descr: '',
        shape: [],
        data: Buffer.alloc(0),
        rawHeader: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
      }),
      /newline/,
    );
    const v3 = npyBytes({
      descr: '',
      shape: [],
      data: Buffer.alloc(0),
      version: 3,
      rawHeader: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
    });
    v3[12] = 0xff; // invalid UTF-8 inside the v3 header
    npyRefuses(v3, /not valid text/);
  });
});
