// zstd frame headers (RFC 8878 section 3.1.1), read and written without decompressing. spec/CHUNKING.md, "zstd frames".
//
// A stored zstd chunk must declare its content size, so a reader can refuse a frame whose declared size differs
// from the record's raw length (a decompression bomb, or plain corruption) before it calls the native
// decompressor. @mongodb-js/zstd's compress() leaves the size out of every non-empty frame, so writers add it
// with withZstdContentSize().
//
// Header layout (all integers little-endian):
//   Magic_Number            4 bytes, 0xFD2FB528
//   Frame_Header_Descriptor 1 byte: bits 7-6 FCS flag, bit 5 Single_Segment, bit 4 unused, bit 3 reserved (must be 0),
//                                   bit 2 Content_Checksum, bits 1-0 Dictionary_ID flag
//   Window_Descriptor       1 byte, present only when Single_Segment is 0
//   Dictionary_ID           0/1/2/4 bytes for Dictionary_ID flag 0/1/2/3
//   Frame_Content_Size      FCS flag 0: 1 byte if Single_Segment else absent; 1: 2 bytes (value + 256); 2: 4 bytes; 3: 8 bytes

import { CkvcError } from '../../errors.js';

const ZSTD_MAGIC = 0xfd2fb528;
const DICT_ID_SIZES = [0, 1, 2, 4] as const;
const TWO_POW_32 = 0x1_0000_0000;

function corrupt(message: string, data: Record<string, unknown> = {}): CkvcError {
  return new CkvcError('CKVC_CORRUPT_OBJECT', message, { reason: 'zstd-header', ...data });
}

interface FrameHeader {
  descriptor: number;
  /** Offset of the Frame_Content_Size field (where it is, or where it would be inserted). */
  fcsOffset: number;
  /** Its length in bytes: 0, 1, 2, 4 or 8. */
  fcsSize: number;
}

function parseHeader(frame: Uint8Array): FrameHeader {
  if (frame.length < 5) throw corrupt('zstd frame is too short for a header', { length: frame.length });
  const magic = readU32(frame, 0);
  if (magic !== ZSTD_MAGIC)
    throw corrupt('not a zstd frame (bad magic number)', { magic: magic.toString(16).padStart(8, '0') });
  const descriptor = frame[4]!;
  if ((descriptor & 0x08) !== 0) throw corrupt('zstd frame header has the reserved bit set', { descriptor });
  const fcsFlag = descriptor >>> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : 1 << fcsFlag; // 0 or 1, 2, 4, 8
  const fcsOffset = 5 + (singleSegment ? 0 : 1) + DICT_ID_SIZES[descriptor & 0x03]!;
  if (frame.length < fcsOffset + fcsSize) {
    throw corrupt('zstd frame is too short for its header', {
      length: frame.length,
      headerLength: fcsOffset + fcsSize,
    });
  }
  return { descriptor, fcsOffset, fcsSize };
}

/**
 * The content size a zstd frame declares in its header, or undefined when the header omits it.
 * Throws CkvcError CKVC_CORRUPT_OBJECT (data.reason 'zstd-header') when the magic number is wrong, the reserved
 * descriptor bit is set, or the buffer ends inside the header. An 8-byte size above 2^53 - 1 comes back as the
 * nearest double (always greater than Number.MAX_SAFE_INTEGER, so it never equals a real length).
 */
export function zstdFrameContentSize(frame: Uint8Array): number | undefined {
  const { fcsOffset: p, fcsSize } = parseHeader(frame);
  switch (fcsSize) {
    case 0:
      return undefined;
    case 1:
      return frame[p]!;
    case 2:
      return (frame[p]! | (frame[p + 1]! << 8)) + 256;
    case 4:
      return readU32(frame, p);
    default:
      return readU32(frame, p + 4) * TWO_POW_32 + readU32(frame, p);
  }
}

/**
 * `frame` with a header that declares `contentSize`. It is returned unchanged when it already declares that size.
 * Otherwise a Frame_Content_Size field is inserted after the Window_Descriptor and Dictionary_ID: 2 bytes for
 * sizes 256..65791, 4 bytes for other sizes below 2^32, and 8 bytes above that. Nothing after the header changes,
 * and libzstd decodes the result to the same bytes. The caller must pass the frame's true decompressed length,
 * because decoders check it. Throws CKVC_CORRUPT_OBJECT ('zstd-header') for a malformed header, and CKVC_INTERNAL
 * when the frame already declares a different size or `contentSize` is not a non-negative safe integer.
 */
export function withZstdContentSize(frame: Uint8Array, contentSize: number): Uint8Array {
  const pieces = zstdFramePiecesWithContentSize(frame, contentSize);
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(pieces[0]!.length + pieces[1]!.length);
  out.set(pieces[0]!);
  out.set(pieces[1]!, pieces[0]!.length);
  return out;
}

/**
 * The same frame as withZstdContentSize, as [patched header, rest of the original frame] so a writer can emit it
 * without copying the compressed bytes (or [frame] when it already declares the size).
 */
export function zstdFramePiecesWithContentSize(frame: Uint8Array, contentSize: number): Uint8Array[] {
  if (!Number.isSafeInteger(contentSize) || contentSize < 0) {
    throw new CkvcError('CKVC_INTERNAL', 'zstd content size must be a non-negative integer', { contentSize });
  }
  const { descriptor, fcsOffset, fcsSize } = parseHeader(frame);
  if (fcsSize !== 0) {
    const declared = zstdFrameContentSize(frame);
    if (declared === contentSize) return [frame];
    throw new CkvcError('CKVC_INTERNAL', 'zstd frame already declares a different content size', {
      declared,
      contentSize,
    });
  }
  // fcsSize 0 means Single_Segment is 0 and the FCS flag is 0. Flag 1 (2 bytes) only holds 256..65791.
  const flag = contentSize >= 256 && contentSize < 65536 + 256 ? 1 : contentSize < TWO_POW_32 ? 2 : 3;
  const size = 1 << flag;
  const head = new Uint8Array(fcsOffset + size);
  head.set(frame.subarray(0, fcsOffset));
  head[4] = descriptor | (flag << 6);
  if (flag === 1) {
    const v = contentSize - 256;
    head[fcsOffset] = v & 0xff;
    head[fcsOffset + 1] = v >>> 8;
  } else {
    writeU32(head, fcsOffset, contentSize % TWO_POW_32);
    if (flag === 3) writeU32(head, fcsOffset + 4, Math.floor(contentSize / TWO_POW_32));
  }
  return [head, frame.subarray(fcsOffset)];
}

/**
 * The byte length of the zstd frame at the start of `frame`, found by walking its block headers (RFC 8878
 * §3.1.1.2) without decompressing. Lets a reader insist that a stored body is exactly one frame: libzstd would
 * otherwise also inflate any frames that follow, whose sizes no header check has bounded.
 */
export function zstdFrameLength(frame: Uint8Array): number {
  const { descriptor, fcsOffset, fcsSize } = parseHeader(frame);
  let p = fcsOffset + fcsSize;
  for (;;) {
    if (p + 3 > frame.length) throw corrupt('zstd frame ends inside a block header', { length: frame.length });
    const h = frame[p]! | (frame[p + 1]! << 8) | (frame[p + 2]! << 16);
    const last = h & 1;
    const type = (h >>> 1) & 3;
    const size = h >>> 3;
    if (type === 3) throw corrupt('zstd frame has a reserved block type');
    p += 3 + (type === 1 ? 1 : size); // an RLE block stores one byte, repeated `size` times
    if (p > frame.length) throw corrupt('zstd frame ends inside a block', { length: frame.length });
    if (last) break;
  }
  if (descriptor & 0x04) p += 4; // Content_Checksum
  if (p > frame.length) throw corrupt('zstd frame ends inside its checksum', { length: frame.length });
  return p;
}

function readU32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v & 0xff;
  b[p + 1] = (v >>> 8) & 0xff;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 24) & 0xff;
}
