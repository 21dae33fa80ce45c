// Reads where each entry of a zip input file lies (central directory, then every local header), and checks
// deflated entries by inflating them under a cap. Nothing is extracted and no entry name touches the disk.
import * as zlib from 'node:zlib';
import {
  checkPlacement,
  localDataOffset,
  readZipDirectory,
  readZipTail,
  ZIP_METHOD_DEFLATED,
  ZIP_TAIL_BYTES,
  ZipRefusal,
  LOCAL_HEADER_BYTES,
  type PlacedZipEntry,
} from '../../core/input-formats/zip-directory.js';
import type { InputFile } from './input-file.js';

export interface ZipLayout {
  /** In file order. */
  entries: PlacedZipEntry[];
  directoryOffset: number;
}

export async function readZipLayout(file: InputFile): Promise<ZipLayout> {
  const tailLength = Math.min(file.size, ZIP_TAIL_BYTES);
  const tail = readZipTail(await file.readAt(file.size - tailLength, tailLength), file.size);
  const directory = await file.readAt(tail.directoryOffset, tail.directoryBytes);
  const placed: PlacedZipEntry[] = [];
  for (const e of readZipDirectory(directory, tail, file.size)) {
    const { dataOffset, nameLength } = localDataOffset(await file.readAt(e.headerOffset, LOCAL_HEADER_BYTES), e);
    const name = Buffer.from(e.name, 'utf8');
    if (dataOffset + e.compressedSize > file.size)
      throw new ZipRefusal(`entry ${JSON.stringify(e.name)} runs past the end of the file`);
    if (
      nameLength !== name.length ||
      !name.equals(await file.readAt(e.headerOffset + LOCAL_HEADER_BYTES, nameLength))
    ) {
      throw new ZipRefusal(`entry ${JSON.stringify(e.name)} has another name in its local header`);
    }
    placed.push({ ...e, dataOffset, dataEnd: dataOffset + e.compressedSize });
  }
  return { entries: checkPlacement(placed, tail.directoryOffset), directoryOffset: tail.directoryOffset };
}

/**
 * Inflates a deflated entry as a stream, without keeping its output: it must produce exactly the declared
 * size (inflation stops the moment it produces more) with the declared CRC-32, and consume exactly its
 * compressed bytes. Returns the first `prefixBytes` of the output (an .npy header), or all of it when shorter.
 */
export async function checkDeflatedEntry(file: InputFile, e: PlacedZipEntry, prefixBytes = 0): Promise<Buffer> {
  if (e.method !== ZIP_METHOD_DEFLATED)
    throw new ZipRefusal(`entry ${JSON.stringify(e.name)} uses compression method ${e.method}`);
  const inflater = zlib.createInflateRaw();
  let produced = 0;
  let crc = 0;
  const prefix: Buffer[] = [];
  let prefixHave = 0;
  let failure: ZipRefusal | undefined;
  inflater.on('data', (out: Buffer) => {
    produced += out.length;
    if (produced > e.size) {
      failure ??= new ZipRefusal(
        `deflated entry ${JSON.stringify(e.name)} inflates to more than the ${e.size} bytes it declares`,
      );
      inflater.destroy();
      return;
    }
    crc = zlib.crc32(out, crc);
    if (prefixHave < prefixBytes) {
      prefix.push(out.subarray(0, prefixBytes - prefixHave));
      prefixHave += Math.min(out.length, prefixBytes - prefixHave);
    }
  });
  // Settles however the stream ends (finished, destroyed, failed), so nothing is left unhandled or waiting.
  const settled = new Promise<void>((resolve) => {
    inflater.once('close', resolve);
    inflater.once('end', resolve);
    inflater.once('error', (err) => {
      failure ??= new ZipRefusal(`deflated entry ${JSON.stringify(e.name)} does not inflate (${err.message})`);
      resolve();
    });
  });
  const block = 4 * 1024 * 1024;
  for (let pos = e.dataOffset; pos < e.dataEnd && !failure; pos += block) {
    const buf = await file.readAt(pos, Math.min(block, e.dataEnd - pos));
    if (failure) break;
    if (!inflater.write(buf)) await Promise.race([new Promise((resolve) => inflater.once('drain', resolve)), settled]);
  }
  if (!failure) inflater.end();
  await settled;
  if (failure) throw failure;
  if (produced !== e.size)
    throw new ZipRefusal(
      `deflated entry ${JSON.stringify(e.name)} inflates to ${produced} bytes, not the ${e.size} it declares`,
    );
  if (crc !== e.crc32) throw new ZipRefusal(`deflated entry ${JSON.stringify(e.name)} fails its CRC-32 check`);
  if (inflater.bytesWritten !== e.compressedSize)
    throw new ZipRefusal(
      `deflated entry ${JSON.stringify(e.name)} ends before its ${e.compressedSize} compressed bytes do`,
    );
  return Buffer.concat(prefix);
}
