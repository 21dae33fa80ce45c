// Test-only writers for the archive formats ckvc reads (spec/ARCHIVES.md): a zip writer that lays entries out as
// torch.save does (PyTorchStreamWriter on miniz: stored, 64-byte-aligned data through an 'FB' padding extra
// field, general-purpose flag bit 3 with data descriptors, Zip64 end records), with knobs to build lying or
// hostile archives; a protocol-2 pickle writer producing torch-style data.pkl; and an .npy writer (format
// versions 1, 2 and 3). Nothing here imports src/ or dist/: these are independent implementations, so a test
// that passes is two readings of the format agreeing.
import * as zlib from 'node:zlib';

// ---------------------------------------------------------------------------------------------------------
// Zip

export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;
/** Flag bits: 0 encrypted, 3 sizes and CRC in a data descriptor, 11 UTF-8 names (torch sets 3 and 11). */
export const FLAG_ENCRYPTED = 0x0001;
export const FLAG_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;

export function crc32(b: Uint8Array): number {
  return zlib.crc32(b) >>> 0;
}

export interface EntryInput {
  /** A string is written as UTF-8; bytes are written as they are (for names that are not UTF-8). */
  name: string | Uint8Array;
  /** The entry's content (uncompressed). */
  data: Uint8Array;
  method?: 'stored' | 'deflated';
  /** The bytes written as the entry's data; default `data`, or deflateRaw(data) for deflated entries. */
  compressed?: Uint8Array;
  /** Pad the local header with an 'FB' extra field so the data starts at a multiple of this (torch: 64). */
  align?: number;
  /** Flag bit 3: zero CRC and sizes in the local header, a data descriptor after the data (torch does). */
  descriptor?: boolean;
  /** OR'ed into the general-purpose flags (FLAG_ENCRYPTED to claim encryption). */
  flags?: number;
  /** Lies: what the headers say instead of the truth. */
  crc?: number;
  size?: number;
  compressedSize?: number;
  /** A compression method number other than stored (0) or deflated (8), e.g. 12 (bzip2). */
  methodNumber?: number;
  /** Another name in the local header than in the central directory. */
  localName?: string | Uint8Array;
  /** Where the central directory says the local header is (a number, or computed from the real layout). */
  headerOffset?: number | ((layout: BuiltEntry[]) => number);
  /** Zip64 extended information in the central record (all three fields 0xffffffff there). */
  zip64?: boolean;
  /** Written into the local header's extra field before any alignment padding. */
  localExtra?: Uint8Array;
}

export interface BuiltEntry {
  name: string;
  method: number;
  /** Offset of the local header. */
  headerOffset: number;
  dataOffset: number;
  /** dataOffset + the bytes of data written (not what any header claims). */
  dataEnd: number;
  crc32: number;
  size: number;
  compressedSize: number;
}

export interface EndRecordLies {
  disk?: number;
  cdDisk?: number;
  entriesHere?: number;
  entries?: number;
  directoryBytes?: number;
  directoryOffset?: number;
  /** The comment length field (the comment written is `ZipOptions.comment`). */
  commentLength?: number;
}

/** The Zip64 end record carries the same fields as the classic one (64-bit wide), then the locator's. */
export interface Zip64Lies extends Omit<EndRecordLies, 'commentLength'> {
  /** The locator's fields. */
  locatorDisk?: number;
  locatorOffset?: number;
  totalDisks?: number;
}

export interface ZipOptions {
  /**
   * 'none': classic end record only. 'records' (torch's default): a Zip64 end record and locator before the
   * classic one, whose fields still hold the real values. 'force': additionally 0xffff/0xffffffff in every
   * classic field, Zip64 extra fields in every central record and 8-byte sizes in data descriptors, so a
   * reader must take every number from the Zip64 structures.
   */
  zip64?: 'none' | 'records' | 'force';
  comment?: Uint8Array;
  /** Bytes written after the end record. */
  trailing?: Uint8Array;
  /** Bytes inside the central directory after its last record (counted in its size). */
  directoryJunk?: Uint8Array;
  /** Bytes between the central directory and the end records (not counted in its size). */
  gapAfterDirectory?: Uint8Array;
  eocd?: EndRecordLies;
  zip64Lies?: Zip64Lies;
  /** Bytes before the first local header (not referenced by anything). */
  leading?: Uint8Array;
}

export interface BuiltZip {
  bytes: Buffer;
  entries: BuiltEntry[];
  directoryOffset: number;
  directoryBytes: number;
  /** Where the classic end of central directory record starts. */
  eocdOffset: number;
  /** Where the Zip64 end record starts (undefined with zip64 'none'). */
  zip64EocdOffset?: number;
}

class ByteWriter {
  private readonly parts: Buffer[] = [];
  length = 0;

  bytes(b: Uint8Array): this {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    this.parts.push(buf);
    this.length += buf.length;
    return this;
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v & 0xffff);
    return this.bytes(b);
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.bytes(b);
  }

  u64(v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.bytes(b);
  }

  done(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

const asBytes = (n: string | Uint8Array): Buffer => (typeof n === 'string' ? Buffer.from(n, 'utf8') : Buffer.from(n));
const U32_MAX = 0xffffffff;

/** torch's getPadding(): the 'FB' extra field that moves the data start to the next multiple of `align`. */
function alignmentExtra(headerOffset: number, nameLength: number, extraBefore: number, align: number): Buffer {
  const start = headerOffset + 30 + nameLength + extraBefore + 4;
  const pad = (align - (start % align)) % align;
  const b = Buffer.alloc(4 + pad, 0x5a); // 'Z' padding, as torch writes
  b.write('FB', 0, 'latin1');
  b.writeUInt16LE(pad, 2);
  return b;
}

/** Builds a zip. Entries are written in the order given; every lie asked for is written exactly as asked. */
export function buildZip(inputs: EntryInput[], opts: ZipOptions = {}): BuiltZip {
  const zip64 = opts.zip64 ?? 'none';
  const force = zip64 === 'force';
  const w = new ByteWriter();
  if (opts.leading) w.bytes(opts.leading);
  const built: BuiltEntry[] = [];
  const meta: {
    input: EntryInput;
    name: Buffer;
    flags: number;
    method: number;
    crc: number;
    size: number;
    csize: number;
  }[] = [];

  for (const e of inputs) {
    const name = asBytes(e.name);
    const localName = e.localName !== undefined ? asBytes(e.localName) : name;
    const method = e.methodNumber ?? (e.method === 'deflated' ? METHOD_DEFLATED : METHOD_STORED);
    const payload = e.compressed ?? (e.method === 'deflated' ? zlib.deflateRawSync(e.data) : e.data);
    const crc = e.crc ?? crc32(e.data);
    const size = e.size ?? e.data.length;
    const csize = e.compressedSize ?? payload.length;
    const flags = (e.descriptor ? FLAG_DESCRIPTOR | FLAG_UTF8 : 0) | (e.flags ?? 0);
    const headerOffset = w.length;
    const entryZip64 = force || e.zip64 === true;
    // Local header extra: a Zip64 field when forced (sizes only; the offset is never in a local header).
    let extra = Buffer.alloc(0);
    if (entryZip64) {
      extra = Buffer.alloc(20);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(e.descriptor ? 0 : size), 4);
      extra.writeBigUInt64LE(BigInt(e.descriptor ? 0 : csize), 12);
    }
    if (e.localExtra) extra = Buffer.concat([extra, Buffer.from(e.localExtra)]);
    if (e.align) extra = Buffer.concat([extra, alignmentExtra(headerOffset, localName.length, extra.length, e.align)]);
    w.u32(0x04034b50)
      .u16(entryZip64 ? 45 : 0)
      .u16(flags)
      .u16(method)
      .u16(0)
      .u16(0);
    if (e.descriptor) w.u32(0).u32(0).u32(0);
    else
      w.u32(crc)
        .u32(entryZip64 ? U32_MAX : csize)
        .u32(entryZip64 ? U32_MAX : size);
    w.u16(localName.length).u16(extra.length).bytes(localName).bytes(extra);
    const dataOffset = w.length;
    w.bytes(payload);
    if (e.descriptor) {
      w.u32(0x08074b50).u32(crc);
      if (entryZip64) w.u64(csize).u64(size);
      else w.u32(csize).u32(size);
    }
    built.push({
      name: name.toString('utf8'),
      method,
      headerOffset,
      dataOffset,
      dataEnd: dataOffset + payload.length,
      crc32: crc,
      size,
      compressedSize: csize,
    });
    meta.push({ input: e, name, flags, method, crc, size, csize });
  }

  const directoryOffset = w.length;
  for (let i = 0; i < meta.length; i++) {
    const m = meta[i]!;
    const ho =
      typeof m.input.headerOffset === 'function'
        ? m.input.headerOffset(built)
        : (m.input.headerOffset ?? built[i]!.headerOffset);
    const entryZip64 = force || m.input.zip64 === true;
    let extra = Buffer.alloc(0);
    if (entryZip64) {
      extra = Buffer.alloc(28);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(m.size), 4);
      extra.writeBigUInt64LE(BigInt(m.csize), 12);
      extra.writeBigUInt64LE(BigInt(ho), 20);
    }
    w.u32(0x02014b50)
      .u16(entryZip64 ? 45 : 0)
      .u16(entryZip64 ? 45 : 0)
      .u16(m.flags)
      .u16(m.method)
      .u16(0)
      .u16(0)
      .u32(m.crc)
      .u32(entryZip64 ? U32_MAX : m.csize)
      .u32(entryZip64 ? U32_MAX : m.size)
      .u16(m.name.length)
      .u16(extra.length)
      .u16(0)
      .u16(0)
      .u16(0)
      .u32(0)
      .u32(entryZip64 ? U32_MAX : ho)
      .bytes(m.name)
      .bytes(extra);
  }
  if (opts.directoryJunk) w.bytes(opts.directoryJunk);
  const directoryBytes = w.length - directoryOffset;
  if (opts.gapAfterDirectory) w.bytes(opts.gapAfterDirectory);

  const count = meta.length;
  let zip64EocdOffset: number | undefined;
  if (zip64 !== 'none') {
    const z = opts.zip64Lies ?? {};
    zip64EocdOffset = w.length;
    w.u32(0x06064b50)
      .u64(44)
      .u16(0x031e)
      .u16(45)
      .u32(z.disk ?? 0)
      .u32(z.cdDisk ?? 0)
      .u64(z.entriesHere ?? count)
      .u64(z.entries ?? count)
      .u64(z.directoryBytes ?? directoryBytes)
      .u64(z.directoryOffset ?? directoryOffset);
    w.u32(0x07064b50)
      .u32(z.locatorDisk ?? 0)
      .u64(z.locatorOffset ?? zip64EocdOffset)
      .u32(z.totalDisks ?? 1);
  }
  const l = opts.eocd ?? {};
  const comment = opts.comment ?? new Uint8Array(0);
  const eocdOffset = w.length;
  w.u32(0x06054b50)
    .u16(l.disk ?? 0)
    .u16(l.cdDisk ?? 0)
    .u16(l.entriesHere ?? (force ? 0xffff : count))
    .u16(l.entries ?? (force ? 0xffff : count))
    .u32(l.directoryBytes ?? (force ? U32_MAX : directoryBytes))
    .u32(l.directoryOffset ?? (force ? U32_MAX : directoryOffset))
    .u16(l.commentLength ?? comment.length)
    .bytes(comment);
  if (opts.trailing) w.bytes(opts.trailing);
  return {
    bytes: w.done(),
    entries: built,
    directoryOffset,
    directoryBytes,
    eocdOffset,
    ...(zip64EocdOffset !== undefined ? { zip64EocdOffset } : {}),
  };
}

/**
 * A deflate stream of `mib` MiB of zeros built without allocating them: one byte-aligned (sync-flushed) segment
 * inflating to 1 MiB, repeated, then an empty final block. Ratio about 1000:1, within what deflate can do.
 */
export function zeroBombStream(mib: number): Buffer {
  const segment = zlib.deflateRawSync(Buffer.alloc(1024 * 1024), {
    level: 9,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const final = zlib.deflateRawSync(Buffer.alloc(0));
  return Buffer.concat([...Array.from({ length: mib }, () => segment), final]);
}

/** CRC-32 of `mib` MiB of zeros, computed 1 MiB at a time. */
export function zeroCrc(mib: number): number {
  const z = Buffer.alloc(1024 * 1024);
  let c = 0;
  for (let i = 0; i < mib; i++) c = zlib.crc32(z, c);
  return c >>> 0;
}

// ---------------------------------------------------------------------------------------------------------
// Pickle (protocol 2, the opcodes torch.save's pickler writes)

/** A tensor as torch pickles it: `_rebuild_tensor_v2(persistent_id(('storage', torch.<Class>, key, 'cpu', numel)), offset, size, stride, False, OrderedDict())`. */
export interface TensorRef {
  tensor: {
    storageKey: string;
    storageClass: string;
    /** Elements of the storage (the persistent ID's last field). */
    storageNumel: number;
    offset?: number;
    shape: number[];
    /** Default: contiguous row-major strides. */
    stride?: number[];
    /** Rebuild function (default torch._utils._rebuild_tensor_v2). */
    rebuild?: string;
    /** Wrap in torch._utils._rebuild_parameter(tensor, requires_grad, OrderedDict()). */
    parameter?: boolean;
  };
}

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | PickleValue[]
  | { tuple: PickleValue[] }
  | { dict: [PickleValue, PickleValue][] }
  /** collections.OrderedDict() with these items (what a state_dict is), optionally with a BUILD state. */
  | { ordered: [PickleValue, PickleValue][]; state?: PickleValue }
  /** An arbitrary global called with args: GLOBAL, args tuple, REDUCE. */
  | { call: string; args: PickleValue[] }
  | TensorRef
  /** A bare global (GLOBAL module\nname\n), e.g. a function passed as an argument. */
  | { global: string }
  /** A persistent ID: the value, then BINPERSID. */
  | { pid: PickleValue }
  /** Raw opcodes spliced in as they are (for pickles this writer would never produce). */
  | { raw: Uint8Array };

export function contiguousStride(shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

class PickleWriter {
  private readonly w = new ByteWriter();
  private memo = 0;
  private readonly globals = new Map<string, number>();

  op(...bytes: number[]): void {
    this.w.bytes(Uint8Array.from(bytes));
  }

  private put(): void {
    const i = this.memo++;
    if (i < 256)
      this.op(0x71, i); // BINPUT
    else {
      this.op(0x72); // LONG_BINPUT
      this.w.u32(i);
    }
  }

  private get(i: number): void {
    if (i < 256)
      this.op(0x68, i); // BINGET
    else {
      this.op(0x6a); // LONG_BINGET
      this.w.u32(i);
    }
  }

  global(dotted: string): void {
    const seen = this.globals.get(dotted);
    if (seen !== undefined) return this.get(seen);
    const cut = dotted.lastIndexOf('.');
    this.op(0x63); // GLOBAL
    this.w.bytes(Buffer.from(`${dotted.slice(0, cut)}\n${dotted.slice(cut + 1)}\n`, 'latin1'));
    this.globals.set(dotted, this.memo);
    this.put();
  }

  int(v: number): void {
    if (Number.isInteger(v) && v >= 0 && v < 256)
      this.op(0x4b, v); // BININT1
    else if (Number.isInteger(v) && v >= 0 && v < 65536) {
      this.op(0x4d); // BININT2
      this.w.u16(v);
    } else if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
      this.op(0x4a); // BININT
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      this.w.bytes(b);
    } else if (Number.isSafeInteger(v)) {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(v));
      this.op(0x8a, 8); // LONG1
      this.w.bytes(b);
    } else {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      this.op(0x47); // BINFLOAT
      this.w.bytes(b);
    }
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.op(0x58); // BINUNICODE
    this.w.u32(b.length).bytes(b);
    this.put();
  }

  tuple(items: PickleValue[]): void {
    if (items.length === 0) return this.op(0x29); // EMPTY_TUPLE
    if (items.length <= 3) {
      for (const x of items) this.value(x);
      this.op([0x85, 0x86, 0x87][items.length - 1]!); // TUPLE1..3
    } else {
      this.op(0x28); // MARK
      for (const x of items) this.value(x);
      this.op(0x74); // TUPLE
    }
    this.put();
  }

  private setItems(items: [PickleValue, PickleValue][]): void {
    for (let i = 0; i < items.length; i += 1000) {
      const batch = items.slice(i, i + 1000);
      if (batch.length === 1) {
        this.value(batch[0]![0]);
        this.value(batch[0]![1]);
        this.op(0x73); // SETITEM
      } else {
        this.op(0x28); // MARK
        for (const [k, v] of batch) {
          this.value(k);
          this.value(v);
        }
        this.op(0x75); // SETITEMS
      }
    }
  }

  private tensor(t: TensorRef['tensor']): void {
    if (t.parameter) this.global('torch._utils._rebuild_parameter');
    this.global(t.rebuild ?? 'torch._utils._rebuild_tensor_v2');
    this.op(0x28); // MARK (args)
    this.op(0x28); // MARK (persistent id tuple)
    this.str('storage');
    this.global(`torch.${t.storageClass}`);
    this.str(t.storageKey);
    this.str('cpu');
    this.int(t.storageNumel);
    this.op(0x74); // TUPLE
    this.put();
    this.op(0x51); // BINPERSID
    this.int(t.offset ?? 0);
    this.tuple(t.shape);
    this.tuple(t.stride ?? contiguousStride(t.shape));
    this.op(0x89); // NEWFALSE (requires_grad)
    this.global('collections.OrderedDict');
    this.op(0x29, 0x52); // EMPTY_TUPLE, REDUCE: backward hooks
    this.put();
    this.op(0x74); // TUPLE (MARK at args)
    this.put();
    this.op(0x52); // REDUCE
    this.put();
    if (t.parameter) {
      // _rebuild_parameter(tensor, requires_grad, backward_hooks)
      this.op(0x88); // NEWTRUE
      this.global('collections.OrderedDict');
      this.op(0x29, 0x52);
      this.put();
      this.op(0x87); // TUPLE3
      this.put();
      this.op(0x52); // REDUCE
      this.put();
    }
  }

  value(v: PickleValue): void {
    if (v === null) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'number') return this.int(v);
    if (typeof v === 'string') return this.str(v);
    if (Array.isArray(v)) {
      this.op(0x5d); // EMPTY_LIST
      this.put();
      if (v.length === 1) {
        this.value(v[0]!);
        this.op(0x61); // APPEND
      } else if (v.length > 1) {
        for (let i = 0; i < v.length; i += 1000) {
          this.op(0x28);
          for (const x of v.slice(i, i + 1000)) this.value(x);
          this.op(0x65); // APPENDS
        }
      }
      return;
    }
    if ('raw' in v) return void this.w.bytes(v.raw);
    if ('global' in v) return this.global(v.global);
    if ('pid' in v) {
      this.value(v.pid);
      this.op(0x51); // BINPERSID
      return;
    }
    if ('tuple' in v) return this.tuple(v.tuple);
    if ('tensor' in v) return this.tensor(v.tensor);
    if ('dict' in v) {
      this.op(0x7d); // EMPTY_DICT
      this.put();
      this.setItems(v.dict);
      return;
    }
    if ('ordered' in v) {
      this.global('collections.OrderedDict');
      this.op(0x29, 0x52); // EMPTY_TUPLE, REDUCE
      this.put();
      this.setItems(v.ordered);
      if (v.state !== undefined) {
        this.value(v.state);
        this.op(0x62); // BUILD
      }
      return;
    }
    if ('call' in v) {
      this.global(v.call);
      this.tuple(v.args);
      this.op(0x52);
      this.put();
      return;
    }
    throw new Error(`cannot pickle ${JSON.stringify(v)}`);
  }

  done(): Buffer {
    return this.w.done();
  }
}

/** A protocol-2 pickle of `root`, as torch.save's pickler lays it out (PROTO 2 ... STOP). */
export function pickleBytes(root: PickleValue): Buffer {
  const p = new PickleWriter();
  p.op(0x80, 2);
  p.value(root);
  p.op(0x2e);
  return p.done();
}

// ---------------------------------------------------------------------------------------------------------
// torch.save-like checkpoints

export type TorchDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const TORCH_STORAGE: Record<TorchDtype, { cls: string; width: number }> = {
  F64: { cls: 'DoubleStorage', width: 8 },
  F32: { cls: 'FloatStorage', width: 4 },
  F16: { cls: 'HalfStorage', width: 2 },
  BF16: { cls: 'BFloat16Storage', width: 2 },
  I64: { cls: 'LongStorage', width: 8 },
  I32: { cls: 'IntStorage', width: 4 },
  I16: { cls: 'ShortStorage', width: 2 },
  I8: { cls: 'CharStorage', width: 1 },
  U8: { cls: 'ByteStorage', width: 1 },
  BOOL: { cls: 'BoolStorage', width: 1 },
};

export interface TorchStorageData {
  key: string;
  data: Uint8Array;
}

export interface TorchZipOptions {
  /** The archive's folder name (torch uses the file name without extension). Default 'archive'. */
  prefix?: string;
  zip64?: ZipOptions['zip64'];
  /** Also write `byteorder` and `.data/serialization_id` records as torch 2.x does. */
  torch2Records?: boolean;
  /** Deflate data.pkl (torch never does; ckvc then cannot read names). */
  deflatePickle?: boolean;
  /** Per-entry lies or changes, by entry name relative to the prefix ('data.pkl', 'data/0', 'version', ...). */
  patch?: Record<string, Partial<EntryInput>>;
  /** Entries added after the storages, before `version`. */
  extraEntries?: EntryInput[];
  zipOptions?: Omit<ZipOptions, 'zip64'>;
}

/** The entries torch.save writes: data.pkl, the storages in the order given, version (and torch 2.x records). */
export function torchEntries(
  pickle: Uint8Array,
  storages: TorchStorageData[],
  opts: TorchZipOptions = {},
): EntryInput[] {
  const prefix = opts.prefix ?? 'archive';
  const rec = (rel: string, data: Uint8Array, extra: Partial<EntryInput> = {}): EntryInput => ({
    name: `${prefix}/${rel}`,
    data,
    align: 64,
    descriptor: true,
    ...extra,
    ...(opts.patch?.[rel] ?? {}),
  });
  const out: EntryInput[] = [rec('data.pkl', pickle, opts.deflatePickle ? { method: 'deflated' } : {})];
  if (opts.torch2Records) out.push(rec('byteorder', Buffer.from('little')));
  for (const s of storages) out.push(rec(`data/${s.key}`, s.data));
  out.push(...(opts.extraEntries ?? []));
  out.push(rec('version', Buffer.from('3\n')));
  if (opts.torch2Records)
    out.push(rec('.data/serialization_id', Buffer.from('1234567890123456789012345678901234567890')));
  return out;
}

export function torchZip(pickle: Uint8Array, storages: TorchStorageData[], opts: TorchZipOptions = {}): BuiltZip {
  return buildZip(torchEntries(pickle, storages, opts), { ...(opts.zipOptions ?? {}), zip64: opts.zip64 ?? 'records' });
}

export interface StateTensor {
  dtype: TorchDtype;
  shape: number[];
  data: Uint8Array;
}

/**
 * torch.save(state_dict) for a flat {name: tensor}: one storage per tensor, keys '0', '1', ... in order, the root
 * an OrderedDict (or a plain dict). Returns the zip and each tensor's storage key.
 */
export function torchStateDict(
  tensors: Record<string, StateTensor> | [string, StateTensor][],
  opts: TorchZipOptions & { plainDict?: boolean; parameters?: boolean } = {},
): BuiltZip & { keys: Record<string, string>; pickle: Buffer } {
  const list = Array.isArray(tensors) ? tensors : Object.entries(tensors);
  const items: [PickleValue, PickleValue][] = [];
  const storages: TorchStorageData[] = [];
  const keys: Record<string, string> = {};
  list.forEach(([name, t], i) => {
    const { cls, width } = TORCH_STORAGE[t.dtype];
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel * width !== t.data.length)
      throw new Error(`${name}: ${t.data.length} bytes for ${t.dtype}${JSON.stringify(t.shape)}`);
    const key = String(i);
    keys[name] = key;
    storages.push({ key, data: t.data });
    items.push([
      name,
      {
        tensor: {
          storageKey: key,
          storageClass: cls,
          storageNumel: numel,
          shape: t.shape,
          ...(opts.parameters ? { parameter: true } : {}),
        },
      },
    ]);
  });
  const pickle = pickleBytes(
    opts.plainDict ? { dict: items } : { ordered: items, state: { dict: [['_metadata', { ordered: [] }]] } },
  );
  return { ...torchZip(pickle, storages, opts), keys, pickle };
}

// ---------------------------------------------------------------------------------------------------------
// NumPy .npy / .npz

export interface NpyOptions {
  descr: string;
  shape: number[];
  fortran?: boolean;
  /** The array data (or for object arrays, the pickle numpy would write). */
  data: Uint8Array;
  version?: 1 | 2 | 3;
  /** The header text to write instead of the dict numpy would write (padding and newline are still added). */
  dictText?: string;
  /** Write the header exactly as given (no padding, no newline added). */
  rawHeader?: string;
  /** Total preamble + header length is padded to a multiple of this (numpy: 64). */
  align?: number;
  /** A header length field that lies. */
  headerLengthField?: number;
}

/** numpy's repr of a shape tuple: (), (3,), (100, 7). */
export function shapeRepr(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** The bytes np.save would write (numpy.lib.format.write_array), for the version asked. */
export function npyBytes(o: NpyOptions): Buffer {
  const version = o.version ?? 1;
  const lengthBytes = version === 1 ? 2 : 4;
  let header: Buffer;
  if (o.rawHeader !== undefined) header = Buffer.from(o.rawHeader, version === 3 ? 'utf8' : 'latin1');
  else {
    const dict =
      o.dictText ??
      `{'descr': '${o.descr}', 'fortran_order': ${o.fortran ? 'True' : 'False'}, 'shape': ${shapeRepr(o.shape)}, }`;
    const body = Buffer.from(dict, version === 3 ? 'utf8' : 'latin1');
    const align = o.align ?? 64;
    const unpadded = 6 + 2 + lengthBytes + body.length + 1;
    const pad = (align - (unpadded % align)) % align;
    header = Buffer.concat([body, Buffer.alloc(pad, 0x20), Buffer.from('\n')]);
  }
  const pre = Buffer.alloc(8 + lengthBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(pre);
  if (lengthBytes === 2) pre.writeUInt16LE(o.headerLengthField ?? header.length, 8);
  else pre.writeUInt32LE(o.headerLengthField ?? header.length, 8);
  return Buffer.concat([pre, header, o.data]);
}

export interface NpzMember {
  /** The member name ('weights.npy'). */
  name: string;
  data: Uint8Array;
  deflated?: boolean;
  /** Lies and changes for this member's zip entry. */
  patch?: Partial<EntryInput>;
}

/** np.savez / np.savez_compressed: a plain zip of .npy members (real sizes in the local headers). */
export function npzZip(members: NpzMember[], opts: ZipOptions = {}): BuiltZip {
  return buildZip(
    members.map((m) => ({
      name: m.name,
      data: m.data,
      method: m.deflated ? 'deflated' : 'stored',
      ...(m.patch ?? {}),
    })),
    opts,
  );
}
