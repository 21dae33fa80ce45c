// Codecs 5 (planes) and 6 (xor-planes) of spec/FORMAT.md §4.3: a tensor chunk is byte-grouped by element width
// and each byte plane is stored on its own, zstd-compressed or raw, and (codec 6) optionally XORed with the same
// plane of a base chunk: the chunk at the same offset of the same tensor in the parent commit. Fp32 mantissa
// planes are noise that zstd cannot shrink (compressing them was a third of commit time); after an optimizer
// step the sign/exponent planes barely change, so their XOR against the parent is mostly zeros.
//
// Stored body: width u8 | plane_count u8 | [base id, 32 bytes, codec 6 only] | per plane: mode u8, length u32le |
// the planes' stored bytes back to back | tail (raw_length mod width bytes, verbatim).
import { scratch } from '../../buffer-pool.js';
import { CkvcError } from '../../errors.js';
import { ID_BYTES } from '../object-id.js';
import { groupBytes, ungroupBytes } from './byte-group.js';
import { sampledEntropies } from './plane-entropy.js';
import { simdXor } from './simd-kernels.js';
import { zstd } from './zstd-binding.js';
import { zstdFrameContentSize, zstdFrameLength, zstdFramePiecesWithContentSize } from './zstd-frame.js';

/** Plane modes: bit 0 set = one zstd frame (else raw bytes); bit 1 set = XORed with the base's plane. */
export const PLANE_ZSTD = 1;
export const PLANE_XOR = 2;
export const PLANE_WIDTHS: readonly number[] = [1, 2, 4, 8];
const PLANE_ENTRY_BYTES = 5;
/** Order-0 entropy (bits per byte) from which a plane is stored raw without trying zstd: it could save < 1.5%. */
const RAW_ENTROPY_BITS = 7.88;
/** A compressed plane must save at least this share, else it is stored raw (raw costs nothing to read back). */
const MIN_SAVING = 0.02;
/** A plane is XORed only when that saves this much entropy: a base costs a read at checkout and stays stored. */
const XOR_GAIN_BITS = 0.25;
/**
 * And only when the bytes it saves (its compressed size against the plain plane's estimate) are at least this
 * share of the bytes a reader then reads for that plane of the base: the base's stored plane and, when that is
 * XORed too, the chain under it. Every later read of the chunk pays for a link; one that saves little is not
 * worth it. On real AdamW checkpoints (npm run bench:real) an fp32 mid plane's XOR saved ~3% of the chunk while
 * each link of its chain was ~22% of the chunk to read and inflate: restoring the last of 8 "full" checkpoints
 * went from 51 to 91 MB/s, its ratio from 1.68 to 1.65. Sparse embeddings' unchanged rows, which save ~70% of a
 * plane a link, still make chains of the full length. 0.25 cost sparse 2.97 -> 2.69, 0.1 kept full's chains.
 */
const XOR_MIN_GAIN_PER_COST = 0.15;

export interface PlaneEncoding {
  /** The stored bytes, as pieces written back to back. */
  pieces: Uint8Array[];
  storedLength: number;
  /** True when at least one plane is XORed with the base: the record then depends on it (codec 6). */
  usesBase: boolean;
  /** True when no plane was compressed and none XORed: storing the chunk raw is as good. */
  allRaw: boolean;
  /** Hands the scratch space the pieces point into back to its pool, once they have been written. */
  release: () => void;
  /** Per plane, the stored bytes a reader reads for it: its own and, XORed, the base's plane cost under it. */
  planeCosts: number[];
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function xorInto(out: Uint8Array, a: Uint8Array, b: Uint8Array): Uint8Array {
  const n = a.length;
  const done = simdXor(out, a, b);
  if (done > 0) {
    for (let i = done; i < n; i++) out[i] = a[i]! ^ b[i]!;
    return out;
  }
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0 && out.byteOffset % 4 === 0) {
    const words = n >>> 2;
    const o32 = new Uint32Array(out.buffer, out.byteOffset, words);
    const a32 = new Uint32Array(a.buffer, a.byteOffset, words);
    const b32 = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) o32[i] = a32[i]! ^ b32[i]!;
    for (let i = words * 4; i < n; i++) out[i] = a[i]! ^ b[i]!;
  } else {
    for (let i = 0; i < n; i++) out[i] = a[i]! ^ b[i]!;
  }
  return out;
}

/**
 * Encodes `raw` (tensor data of `width`-byte elements) plane by plane. With `base` (same length; `grouped` when
 * its bytes are already byte-grouped by `width`), each plane whose XOR against the base's plane looks more
 * compressible is stored XORed, and the base's ID is written. `level` is the zstd level of the compressed planes.
 */
export async function encodePlanes(
  raw: Uint8Array,
  width: number,
  level: number,
  base?: { id: Uint8Array; bytes: Uint8Array; grouped?: boolean; planeCosts?: readonly number[] },
): Promise<PlaneEncoding> {
  if (!PLANE_WIDTHS.includes(width))
    throw new CkvcError('CKVC_INTERNAL', `plane codec width ${width} is not 1, 2, 4 or 8`, { width });
  if (base && base.bytes.length !== raw.length)
    throw new CkvcError('CKVC_INTERNAL', 'delta base differs in length from the chunk', {});
  // Pooled: fresh memory per chunk costs page faults that showed up as a tenth of a commit's time. One-byte
  // elements are their own single plane: nothing to group, and nothing of the caller's to hand back.
  const grouped = width === 1 ? raw : groupBytes(raw, width, scratch.acquire(raw.length));
  // A base read for this write arrives grouped already (the chain is decoded in grouped form).
  const baseGrouped =
    base && (base.grouped || width === 1 ? base.bytes : groupBytes(base.bytes, width, scratch.acquire(raw.length)));
  try {
    const planes = await encodeGroupedPlanes(grouped, raw.length, width, level, base, baseGrouped);
    const release = () => {
      if (grouped !== raw) scratch.release(grouped);
    };
    return { ...planes, release };
  } finally {
    if (baseGrouped && baseGrouped !== base?.bytes) scratch.release(baseGrouped);
  }
}

async function encodeGroupedPlanes(
  grouped: Uint8Array,
  rawLength: number,
  width: number,
  level: number,
  base: { id: Uint8Array; planeCosts?: readonly number[] } | undefined,
  baseGrouped: Uint8Array | undefined,
): Promise<Omit<PlaneEncoding, 'release'>> {
  const n = Math.floor(rawLength / width);
  const modes: number[] = [];
  const jobs: Promise<Uint8Array[]>[] = [];
  const compressed = (input: Uint8Array) =>
    zstd()
      .then((z) => z.compress(asBuffer(input), level))
      .then((frame) => zstdFramePiecesWithContentSize(frame, n));
  const plainEntropy: number[] = [];
  for (let j = 0; j < width; j++) {
    const plane = grouped.subarray(j * n, (j + 1) * n);
    const basePlane = baseGrouped?.subarray(j * n, (j + 1) * n);
    const [hPlain, hXor] = sampledEntropies(plane, basePlane);
    plainEntropy.push(hPlain);
    const xor = hXor < hPlain - XOR_GAIN_BITS;
    const h = Math.min(hPlain, hXor);
    if (h >= RAW_ENTROPY_BITS || n < 64) {
      modes.push(0);
      jobs.push(Promise.resolve([plane]));
      continue;
    }
    const mode = (xor ? PLANE_XOR : 0) | PLANE_ZSTD;
    modes.push(mode);
    if (!xor) {
      jobs.push(compressed(plane));
      continue;
    }
    // Scratch, handed back once compressed: a fresh buffer per XORed plane was a sixth of a commit's allocations.
    const input = xorInto(scratch.acquire(n), plane, basePlane!);
    jobs.push(compressed(input).finally(() => scratch.release(input)));
  }
  const stored = await Promise.all(jobs);
  // An XORed plane that saves too little for what its base's chain costs every later read is stored plain.
  const redo: Promise<void>[] = [];
  for (let j = 0; j < width; j++) {
    const cost = base?.planeCosts?.[j];
    if (!(modes[j]! & PLANE_XOR) || cost === undefined) continue;
    const hPlain = plainEntropy[j]!;
    const plainEstimate = hPlain >= RAW_ENTROPY_BITS ? n : Math.min(n, (n * hPlain) / 8);
    const saved = plainEstimate - stored[j]!.reduce((a, p) => a + p.length, 0);
    if (saved >= XOR_MIN_GAIN_PER_COST * cost) continue;
    const plane = grouped.subarray(j * n, (j + 1) * n);
    if (hPlain >= RAW_ENTROPY_BITS) {
      modes[j] = 0;
      stored[j] = [plane];
      continue;
    }
    modes[j] = PLANE_ZSTD;
    redo.push(
      compressed(plane).then((pieces) => {
        stored[j] = pieces;
      }),
    );
  }
  await Promise.all(redo);
  for (let j = 0; j < width; j++) {
    const len = stored[j]!.reduce((a, p) => a + p.length, 0);
    if (modes[j]! & PLANE_ZSTD && len > n * (1 - MIN_SAVING)) {
      // zstd did not pay: the plain plane raw (a raw XORed plane would only add a dependency).
      modes[j] = 0;
      stored[j] = [grouped.subarray(j * n, (j + 1) * n)];
    }
  }
  const usesBase = modes.some((m) => m & PLANE_XOR);
  const head = Buffer.alloc(2 + (usesBase ? ID_BYTES : 0) + PLANE_ENTRY_BYTES * width);
  head.writeUInt8(width, 0);
  head.writeUInt8(width, 1);
  let at = 2;
  if (usesBase) {
    head.set(base!.id, at);
    at += ID_BYTES;
  }
  for (let j = 0; j < width; j++) {
    head.writeUInt8(modes[j]!, at);
    head.writeUInt32LE(
      stored[j]!.reduce((a, p) => a + p.length, 0),
      at + 1,
    );
    at += PLANE_ENTRY_BYTES;
  }
  const tail = grouped.subarray(n * width);
  const pieces: Uint8Array[] = [head, ...stored.flat(), ...(tail.length ? [tail] : [])];
  const planeCosts = stored.map(
    (p, j) => p.reduce((a, q) => a + q.length, 0) + (modes[j]! & PLANE_XOR ? (base?.planeCosts?.[j] ?? 0) : 0),
  );
  return {
    pieces,
    storedLength: pieces.reduce((a, p) => a + p.length, 0),
    usesBase,
    allRaw: modes.every((m) => m === 0),
    planeCosts,
  };
}

/** Bytes at the start of a codec 6 body that name its width and base (enough to follow the base edge). */
export const DELTA_HEAD_BYTES = 2 + ID_BYTES;

/** The width and base a codec 6 body starts with, checked; readers that follow base edges read only this much. */
export function parseDeltaHead(head: Uint8Array, where: string): { width: number; baseId: string } {
  if (head.length < DELTA_HEAD_BYTES) throw corrupt(where, 'delta record is truncated before its base ID');
  const width = head[0]!;
  if (!PLANE_WIDTHS.includes(width) || head[1] !== width)
    throw corrupt(where, `plane-coded body has width ${width} and ${head[1]} planes`);
  return { width, baseId: Buffer.from(head.subarray(2, DELTA_HEAD_BYTES)).toString('hex') };
}

export interface PlaneHeader {
  width: number;
  /** The base's object ID bytes (codec 6). */
  baseId?: Uint8Array;
  planes: { mode: number; offset: number; length: number }[];
  tailOffset: number;
}

function corrupt(where: string, what: string): CkvcError {
  return new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: ${what}`, { where });
}

/** Bytes at the start of a codec 5/6 body that hold its plane table, for any width (what a chain link reads). */
export const PLANE_TABLE_MAX_BYTES = 2 + ID_BYTES + PLANE_ENTRY_BYTES * 8;

/** Parses and checks a codec 5/6 body's layout against `rawLength` before anything is inflated. */
export function parsePlaneHeader(stored: Uint8Array, rawLength: number, withBase: boolean, where: string): PlaneHeader {
  return parsePlaneTable(stored, stored.length, rawLength, withBase, where);
}

/**
 * Parses and checks a codec 5/6 plane table from the first bytes of a body (`head`, at least its table) whose
 * whole stored length is `storedLength`: a reader that decodes only some planes reads only those.
 */
export function parsePlaneTable(
  head: Uint8Array,
  storedLength: number,
  rawLength: number,
  withBase: boolean,
  where: string,
): PlaneHeader {
  if (head.length < 2) throw corrupt(where, 'plane-coded body is truncated');
  const width = head[0]!;
  if (!PLANE_WIDTHS.includes(width) || head[1] !== width)
    throw corrupt(where, `plane-coded body has width ${width} and ${head[1]} planes`);
  const n = Math.floor(rawLength / width);
  let at = 2;
  let baseId: Uint8Array | undefined;
  if (withBase) {
    if (head.length < at + ID_BYTES) throw corrupt(where, 'delta record is truncated before its base ID');
    baseId = head.subarray(at, at + ID_BYTES);
    at += ID_BYTES;
  }
  const tableEnd = at + PLANE_ENTRY_BYTES * width;
  if (head.length < tableEnd) throw corrupt(where, 'plane table is truncated');
  const view = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const planes: PlaneHeader['planes'] = [];
  let offset = tableEnd;
  let xored = 0;
  for (let j = 0; j < width; j++, at += PLANE_ENTRY_BYTES) {
    const mode = view.readUInt8(at);
    const length = view.readUInt32LE(at + 1);
    if (mode > 3 || (!withBase && mode & PLANE_XOR)) throw corrupt(where, `plane ${j} has unknown mode ${mode}`);
    if (mode & PLANE_XOR) xored++;
    if (!(mode & PLANE_ZSTD) && length !== n)
      throw corrupt(where, `raw plane ${j} holds ${length} bytes, expected ${n}`);
    if (offset + length > storedLength) throw corrupt(where, `plane ${j} runs past the end of the record`);
    planes.push({ mode, offset, length });
    offset += length;
  }
  if (withBase && xored === 0) throw corrupt(where, 'delta record XORs no plane with its base');
  if (storedLength - offset !== rawLength - n * width)
    throw corrupt(where, 'plane-coded body does not end where its planes and tail say');
  return { width, ...(baseId ? { baseId } : {}), planes, tailOffset: offset };
}

/**
 * Decodes plane `j` from its stored bytes `src` (mode `mode`, `n` bytes decoded). A zstd plane comes back in a
 * fresh buffer the caller owns; a raw one is `src` itself. `basePlane` (plane j of the base, grouped) is required
 * when the plane is XORed; it is XORed into the decoded plane, in place unless the plane is raw. It may be a
 * promise, awaited once the plane has inflated, so that a base is decoded while its delta inflates.
 */
export async function decodePlane(
  src: Uint8Array,
  mode: number,
  n: number,
  j: number,
  where: string,
  basePlane?: Uint8Array | Promise<Uint8Array>,
): Promise<Uint8Array> {
  let out: Uint8Array = src;
  if (mode & PLANE_ZSTD) {
    // Refuse before inflating: each frame must declare exactly its plane's size.
    if (zstdFrameContentSize(src) !== n || zstdFrameLength(src) !== src.length)
      throw corrupt(where, `plane ${j} is not one zstd frame of ${n} bytes`);
    try {
      out = await (await zstd()).decompress(asBuffer(src));
    } catch (e) {
      throw corrupt(where, `plane ${j} does not decompress (${(e as Error).message})`);
    }
    if (out.length !== n) throw corrupt(where, `plane ${j} decompressed to ${out.length} bytes, expected ${n}`);
  }
  if (!(mode & PLANE_XOR)) return out;
  const base = await basePlane;
  if (!base || base.length !== n)
    throw corrupt(where, `delta base plane ${j} has ${base?.length ?? 'no'} bytes, expected ${n}`);
  return xorInto(out === src ? Buffer.allocUnsafeSlow(n) : out, out, base);
}

/**
 * Decodes a parsed codec 5/6 body to its grouped form (planes, then tail): what a chain of deltas is decoded in,
 * so that only the last link is un-grouped. `baseGrouped` (the base in grouped form, same width) is required when
 * a plane is XORed.
 */
export async function decodePlanesGrouped(
  stored: Uint8Array,
  rawLength: number,
  h: PlaneHeader,
  where: string,
  baseGrouped?: Uint8Array,
): Promise<Uint8Array> {
  const { width } = h;
  const n = Math.floor(rawLength / width);
  if (h.baseId && (!baseGrouped || baseGrouped.length !== rawLength))
    throw corrupt(where, `delta base has ${baseGrouped?.length ?? 'no'} bytes, expected ${rawLength}`);
  // Pooled (the caller may hand it back to `scratch` once done with it): fresh memory per chunk costs page faults.
  const grouped = scratch.acquire(rawLength);
  await Promise.all(
    h.planes.map(async (p, j) => {
      const src = stored.subarray(p.offset, p.offset + p.length);
      const plane = await decodePlane(src, p.mode, n, j, where, baseGrouped?.subarray(j * n, (j + 1) * n));
      grouped.set(plane, j * n);
    }),
  );
  grouped.set(stored.subarray(h.tailOffset), n * width);
  return grouped;
}

/** Decodes a parsed codec 5/6 body; `base` (the base chunk's plain bytes) is required when a plane is XORed. */
export async function decodePlanes(
  stored: Uint8Array,
  rawLength: number,
  h: PlaneHeader,
  where: string,
  base?: Uint8Array,
): Promise<Uint8Array> {
  const baseGrouped =
    base && base.length === rawLength ? groupBytes(base, h.width, Buffer.allocUnsafeSlow(rawLength)) : base;
  const grouped = await decodePlanesGrouped(stored, rawLength, h, where, baseGrouped);
  return h.width > 1 ? ungroupBytes(grouped, h.width) : grouped;
}
