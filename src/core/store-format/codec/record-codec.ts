// Turns an object body into what a pack record stores and back (spec/FORMAT.md §4.3): tensor data is
// byte-grouped by element width before zstd (exponent bytes then compress well); anything that does not
// shrink by at least 2% is stored raw, which costs nothing to read back.
import { scratch, type BufferPool } from '../../buffer-pool.js';
import { CkvcError } from '../../errors.js';
import type { ObjectId } from '../object-id.js';
import { CODECS, codecGroupWidth, type CodecId } from '../pack-format.js';
import { groupBytes, ungroupBytes } from './byte-group.js';
import { zstd } from './zstd-binding.js';
import { decodePlanes, encodePlanes, parsePlaneHeader, PLANE_WIDTHS } from './plane-codec.js';
import { zstdFrameContentSize, zstdFrameLength, zstdFramePiecesWithContentSize } from './zstd-frame.js';

/**
 * zstd levels, measured on this machine with `zstd -b` (256 KiB blocks). Byte planes of tensors hold no repeats
 * worth finding, only skewed byte counts: level 1 stores them smaller than level 3 and writes and inflates them
 * 1.3-2.6x faster (fp32 exponent plane of Adam-stepped weights 3.00x vs 2.81x; its XOR with the step before
 * 4.74x vs 4.55x; a mid plane's XOR 1.15x at 576 vs 217 MB/s). Other bytes may be text (configs, pickles,
 * verbatim JSON), where level 3 stores 10% less (3.96x vs 3.58x on JavaScript source) at 0.7x the speed; opaque
 * binary is the same at both.
 */
export const ZSTD_LEVELS = { planes: 1, bytes: 3 } as const;
const MIN_SAVING = 0.02;
/**
 * Smaller objects are stored raw without trying zstd: a frame's header and block headers take 9-20 bytes of what
 * it could save, and each try is a call into the binding (a task on the thread pool, a wake-up of one of its
 * threads). A 98.8 MB commit of 505 tensors made 709 calls on objects under 256 bytes (tensor objects: mostly
 * chunk IDs, which do not compress), of which 608 saved under a tenth and the others a few dozen bytes each.
 */
const MIN_COMPRESSED_BYTES = 256;
/**
 * Tensor chunks under this size (a layer's bias or norm weights) are one zstd frame of their grouped bytes and
 * never delta-coded: plane by plane, each costs a call of the binding per plane and, as a delta, a chain of
 * reads and inflates per XORed plane, while holding almost no bytes. On a 6.5M-parameter GPT's checkpoint
 * (model + AdamW state, 505 tensors) the 333 tensors under 4 KiB held 0.3% of the bytes; coding them so made a
 * commit on a 7-deep chain 2.5 -> 2.2 s (medians of 4) and stored 0.04% more. At 16 KiB, LoRA adapters (rank 8 x
 * 256 floats, the only part of such a checkpoint that changes) lost their deltas: 7.51x -> 7.41x.
 */
export const MIN_PLANE_CODED_BYTES = 4 * 1024;

/** Whether a tensor chunk of `rawLength` bytes is stored plane by plane, and so may be a delta against a base. */
export function planeCoded(rawLength: number): boolean {
  return rawLength >= MIN_PLANE_CODED_BYTES;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function codecForWidth(width: number): CodecId {
  return width === 2
    ? CODECS.group2zstd
    : width === 4
      ? CODECS.group4zstd
      : width === 8
        ? CODECS.group8zstd
        : CODECS.zstd;
}

export interface EncodedBody {
  codec: CodecId;
  /** The stored bytes, in pieces to be written back to back (avoids copying compressed output). */
  pieces: Uint8Array[];
  storedLength: number;
  /** Call once the pieces are written: they may point into pooled scratch space. */
  release?: () => void;
  /** Plane-coded (codecs 5 and 6): per plane, the stored bytes a reader reads for it (PlaneEncoding). */
  planeCosts?: number[];
}

/** A chunk to encode against: the same tensor's chunk at the same offset in the parent commit (§4.3). */
export interface DeltaBase {
  id: ObjectId;
  bytes: Uint8Array;
  /** The width `bytes` are byte-grouped by, when they are (a base decoded for this write); else plain bytes. */
  groupedWidth?: number;
  /** Per plane of that width, the stored bytes a reader reads for it through the base's chain (PlaneEncoding). */
  planeCosts?: readonly number[];
}

/**
 * `width` is the element width in bytes for tensor data (1 for anything else); `tryCompress` false
 * stores raw. Tensor chunks from MIN_PLANE_CODED_BYTES up are stored plane by plane (codec 5), against `base`
 * where that helps (codec 6); smaller ones as one frame of their grouped bytes, and `base` is ignored.
 */
export async function encodeBody(
  raw: Uint8Array,
  width: number,
  tryCompress = true,
  base?: DeltaBase,
): Promise<EncodedBody> {
  const asRaw = { codec: CODECS.raw, pieces: [raw], storedLength: raw.length };
  if (!tryCompress || raw.length < MIN_COMPRESSED_BYTES) return asRaw;
  if ((width > 1 || base) && PLANE_WIDTHS.includes(width) && planeCoded(raw.length)) {
    const fits =
      base && base.bytes.length === raw.length && (base.groupedWidth === undefined || base.groupedWidth === width);
    const usable = fits
      ? {
          id: Buffer.from(base.id, 'hex'),
          bytes: base.bytes,
          grouped: base.groupedWidth !== undefined,
          ...(base.planeCosts ? { planeCosts: base.planeCosts } : {}),
        }
      : undefined;
    const planes = await encodePlanes(raw, width, ZSTD_LEVELS.planes, usable);
    if (!planes.usesBase && (planes.allRaw || planes.storedLength > raw.length * (1 - MIN_SAVING))) {
      planes.release();
      return asRaw;
    }
    return {
      codec: planes.usesBase ? CODECS.xorPlanes : CODECS.planes,
      pieces: planes.pieces,
      storedLength: planes.storedLength,
      release: planes.release,
      planeCosts: planes.planeCosts,
    };
  }
  const codec = codecForWidth(width);
  const grouped =
    codecGroupWidth(codec) > 1 ? groupBytes(raw, codecGroupWidth(codec), scratch.acquire(raw.length)) : undefined;
  let frame: Buffer;
  try {
    // Grouped bytes are planes end to end: the planes' level suits them.
    frame = await (await zstd()).compress(asBuffer(grouped ?? raw), grouped ? ZSTD_LEVELS.planes : ZSTD_LEVELS.bytes);
  } finally {
    if (grouped) scratch.release(grouped);
  }
  // The binding's frames omit the content size; readers need it to refuse bombs before inflating.
  const pieces = zstdFramePiecesWithContentSize(frame, raw.length);
  const storedLength = pieces.reduce((a, p) => a + p.length, 0);
  if (storedLength > raw.length * (1 - MIN_SAVING)) return asRaw;
  return { codec, pieces, storedLength };
}

/** The stored bytes as one array (for callers that do not stream). */
export function joinPieces(pieces: Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  return Buffer.concat(pieces);
}

/** With `pool`, the result of a grouped codec is a pool buffer the caller may release once done with it. */
export async function decodeBody(
  codec: number,
  stored: Uint8Array,
  rawLength: number,
  where: string,
  pool?: BufferPool,
  base?: Uint8Array,
): Promise<Uint8Array> {
  if (codec === CODECS.planes || codec === CODECS.xorPlanes) {
    return decodePlanes(
      stored,
      rawLength,
      parsePlaneHeader(stored, rawLength, codec === CODECS.xorPlanes, where),
      where,
      base,
    );
  }
  if (codec === CODECS.raw) {
    if (stored.length !== rawLength)
      throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: stored ${stored.length} bytes, expected ${rawLength}`, {
        where,
      });
    return stored;
  }
  // Refuse before inflating: the frame must declare exactly the size the record promised.
  const declared = zstdFrameContentSize(stored);
  if (declared !== rawLength) {
    throw new CkvcError(
      'CKVC_CORRUPT_OBJECT',
      `${where}: compressed frame declares ${declared ?? 'no'} size, the record says ${rawLength}`,
      { where },
    );
  }
  if (zstdFrameLength(stored) !== stored.length) {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: stored body is not exactly one zstd frame`, { where });
  }
  let out: Buffer;
  try {
    out = await (await zstd()).decompress(asBuffer(stored));
  } catch (e) {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: does not decompress (${(e as Error).message})`, { where });
  }
  if (out.length !== rawLength)
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: decompressed to ${out.length} bytes, expected ${rawLength}`, {
      where,
    });
  const width = codecGroupWidth(codec);
  return width > 1 ? ungroupBytes(out, width, pool?.acquire(rawLength)) : out;
}
