// Byte-level safetensors header parser and validator. Pure code (no fs, no node: imports): callers read
// the first 8 bytes, then the header bytes, and hand them in with the file size.
//
// The rules follow the reference implementation (the Rust `safetensors` crate, `SafeTensors::read_metadata`
// + `Metadata::validate`, parsed with serde_json), made stricter where the reference is silently lenient
// (duplicate keys) and reported with a stable `rule` string per failure. spec/SAFETENSORS.md lists them.

import { CkvcError } from '../errors.js';
import { SAFETENSORS_DTYPE_BITS } from './safetensors-dtypes.js';
import { checkEntries, type TensorEntry } from './safetensors-entries.js';
import { failSafetensors as fail } from './safetensors-failure.js';
import {
  JsonObject,
  JsonSyntaxError,
  describeJsonValue as describe,
  parseStrictJson,
  type JsonValue,
} from './strict-json.js';

/** The reference refuses headers longer than this (bytes, not counting the 8-byte length prefix). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute file offset of the first byte: 8 + headerLength + data_offsets[0]. */
  begin: number;
  /** Absolute file offset one past the last byte: 8 + headerLength + data_offsets[1]. */
  end: number;
}

export interface SafetensorsLayout {
  headerLength: number;
  /** = 8 + headerLength */
  dataStart: number;
  metadata: Record<string, string> | undefined;
  /** Sorted by (begin, end, name); only zero-size tensors can share a begin. */
  tensors: SafetensorsTensorInfo[];
}

/** A caller's bug, not a bad file. */
function checkFileSize(fileSize: number): void {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    const message = `safetensors: fileSize must be a non-negative safe integer, got ${String(fileSize)}`;
    throw new CkvcError('CKVC_INTERNAL', message, { fileSize });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Length prefix

/**
 * Reads the little-endian u64 header length from the first 8 bytes of a file of `fileSize` bytes.
 * Rejects files shorter than 8 bytes, lengths above SAFETENSORS_MAX_HEADER_BYTES and headers running past
 * the end of the file.
 */
export function readSafetensorsHeaderLength(first8: Uint8Array, fileSize: number, source?: string): number {
  checkFileSize(fileSize);
  if (fileSize < 8 || first8.length < 8) {
    const size = Math.min(fileSize, first8.length);
    fail('file-too-small', `file is ${size} bytes, shorter than the 8-byte header length prefix`, source, { fileSize });
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  if (hi !== 0 || lo > SAFETENSORS_MAX_HEADER_BYTES) {
    const declared = (BigInt(hi) << 32n) | BigInt(lo);
    fail(
      'header-too-large',
      `header length prefix says ${declared} bytes, more than the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`,
      source,
      { headerLength: declared.toString(), limit: SAFETENSORS_MAX_HEADER_BYTES },
    );
  }
  if (8 + lo > fileSize) {
    fail(
      'header-out-of-bounds',
      `header length prefix says ${lo} bytes but the file has only ${fileSize - 8} bytes after the prefix`,
      source,
      { headerLength: lo, fileSize },
    );
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------------------
// Header parsing and validation: the rules of spec/SAFETENSORS.md in its order. The header rules first
// (bounds, UTF-8, JSON, object), then the per-entry rules entry by entry in header order, the layout rules
// tensor by tensor in offset order, and the coverage rules last; the first broken rule is reported.

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses and validates the N header bytes (without the 8-byte length prefix) of a safetensors file of
 * `fileSize` bytes. Throws CkvcError('CKVC_BAD_SAFETENSORS', …, { rule, source, … }) on the first broken rule.
 */
export function parseSafetensorsHeader(header: Uint8Array, fileSize: number, source?: string): SafetensorsLayout {
  checkFileSize(fileSize);
  const headerLength = header.length;
  checkHeaderBounds(headerLength, fileSize, source);
  const dataStart = 8 + headerLength;
  const root = decodeHeaderObject(header, source);
  const { metadata, entries } = checkEntries(root, source);
  const { tensors, covered, lastName } = checkLayout(entries, dataStart, source);
  checkCoverage(covered, fileSize - dataStart, lastName, source);
  return { headerLength, dataStart, metadata, tensors };
}

// --- header rules: file-too-small, header-too-large, header-out-of-bounds; then header-not-utf8,
// header-not-json, header-not-object, header-start

function checkHeaderBounds(headerLength: number, fileSize: number, source: string | undefined): void {
  if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) {
    const limit = SAFETENSORS_MAX_HEADER_BYTES;
    fail('header-too-large', `header is ${headerLength} bytes, more than the ${limit}-byte limit`, source, {
      headerLength,
      limit,
    });
  }
  if (fileSize < 8) {
    const message = `file is ${fileSize} bytes, shorter than the 8-byte header length prefix`;
    fail('file-too-small', message, source, { fileSize });
  }
  if (8 + headerLength > fileSize) {
    fail(
      'header-out-of-bounds',
      `header is ${headerLength} bytes but the file has only ${fileSize - 8} bytes after the length prefix`,
      source,
      { headerLength, fileSize },
    );
  }
}

function decodeHeaderObject(header: Uint8Array, source: string | undefined): JsonObject {
  const headerLength = header.length;
  let text: string;
  try {
    text = UTF8.decode(header);
  } catch {
    fail('header-not-utf8', `header (${headerLength} bytes at offset 8) is not valid UTF-8`, source, { headerLength });
  }
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    fail('header-not-json', `header is not valid JSON: ${e.message} at character ${e.position}`, source, {
      position: e.position,
      reason: e.message,
    });
  }
  if (!(root instanceof JsonObject)) {
    fail('header-not-object', `header JSON is ${describe(root)}, not an object`, source);
  }
  if (header[0] !== 0x7b) {
    const firstByte = `0x${(header[0] ?? 0).toString(16).padStart(2, '0')}`;
    fail('header-start', `header must begin with '{' but its first byte is ${firstByte}`, source, {
      firstByte: header[0],
    });
  }
  return root;
}

// --- layout rules, tensor by tensor in offset order: gap-or-overlap, numel-overflow, size-mismatch

function checkLayout(
  entries: TensorEntry[],
  dataStart: number,
  source: string | undefined,
): { tensors: SafetensorsTensorInfo[]; covered: number; lastName: string | undefined } {
  // sort as the reference does (by data_offsets), names break ties between zero-size tensors
  entries.sort((x, y) => x.b - y.b || x.e - y.e || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const tensors: SafetensorsTensorInfo[] = new Array<SafetensorsTensorInfo>(entries.length);
  let cursor = 0;
  let prevName: string | undefined;
  for (let i = 0; i < entries.length; i++) {
    const t = entries[i] as TensorEntry;
    if (t.b !== cursor) {
      const after =
        prevName === undefined
          ? 'the data section starts at 0'
          : `the previous tensor ${JSON.stringify(prevName)} ends at ${cursor}`;
      const what = t.b > cursor ? `a gap of ${t.b - cursor} bytes` : `an overlap of ${cursor - t.b} bytes`;
      const offsets = `data_offsets [${t.b}, ${t.e}] start at ${t.b}`;
      const message = `tensor ${JSON.stringify(t.name)}: ${offsets} but ${after} (${what})`;
      fail('gap-or-overlap', message, source, { name: t.name, dataOffsets: [t.b, t.e], expectedBegin: cursor });
    }
    cursor = t.e;
    prevName = t.name;
    checkTensorSize(t, source);
    tensors[i] = { name: t.name, dtype: t.dtype, shape: t.shape, begin: dataStart + t.b, end: dataStart + t.e };
  }
  return { tensors, covered: cursor, lastName: prevName };
}

/** numel-overflow and size-mismatch: END - BEGIN must be the byte size of the dtype and shape. */
function checkTensorSize(t: TensorEntry, source: string | undefined): void {
  const q = (): string => JSON.stringify(t.name);
  const shapeText = (): string => `[${t.shape.join(', ')}]`;
  let numel = 1;
  for (const d of t.shape) {
    numel *= d;
    if (numel > Number.MAX_SAFE_INTEGER) {
      fail('numel-overflow', `tensor ${q()}: shape ${shapeText()} has more than 2^53-1 elements`, source, {
        name: t.name,
        shape: t.shape,
      });
    }
  }
  const bits = SAFETENSORS_DTYPE_BITS[t.dtype] as number;
  let bytes: number;
  if (bits % 8 === 0) {
    bytes = numel * (bits / 8);
    if (!Number.isSafeInteger(bytes)) {
      fail('numel-overflow', `tensor ${q()}: ${t.dtype} shape ${shapeText()} is more than 2^53-1 bytes`, source, {
        name: t.name,
        shape: t.shape,
        dtype: t.dtype,
      });
    }
  } else {
    const tailBits = (numel % 8) * bits;
    if (tailBits % 8 !== 0) {
      fail(
        'size-mismatch',
        `tensor ${q()}: ${numel} elements of ${t.dtype} (${bits} bits each) is not a whole number of bytes`,
        source,
        { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [t.b, t.e] },
      );
    }
    bytes = Math.floor(numel / 8) * bits + tailBits / 8;
  }
  if (t.e - t.b !== bytes) {
    fail(
      'size-mismatch',
      `tensor ${q()}: data_offsets [${t.b}, ${t.e}] hold ${t.e - t.b} bytes but ` +
        `${t.dtype} shape ${shapeText()} needs ${bytes}`,
      source,
      { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [t.b, t.e], expectedBytes: bytes },
    );
  }
}

// --- coverage rules: trailing-bytes, data-truncated

function checkCoverage(
  covered: number,
  dataLength: number,
  lastName: string | undefined,
  source: string | undefined,
): void {
  const last = `the last tensor ${JSON.stringify(lastName)}`;
  if (covered < dataLength) {
    const at = lastName === undefined ? 'there are no tensors' : `${last} ends at ${covered}`;
    const uncovered = `${dataLength - covered} bytes are not covered by any tensor`;
    fail('trailing-bytes', `data section is ${dataLength} bytes but ${at}: ${uncovered}`, source, {
      dataLength,
      coveredLength: covered,
    });
  }
  if (covered > dataLength) {
    const message = `${last} ends at data offset ${covered} but the data section is only ${dataLength} bytes`;
    fail('data-truncated', `${message} (file truncated?)`, source, {
      dataLength,
      coveredLength: covered,
      name: lastName,
    });
  }
}
