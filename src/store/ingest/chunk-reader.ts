// Streams a byte range of an input file as chunks, in bounded memory: fixed-size chunks aligned to the range
// start (tensor data) or content-defined chunks (everything else). The next read is issued before the current
// chunk is handed out, so disk reads overlap hashing and compression.
import { nextCdcChunkLength, type CdcParams } from '../../core/chunking/content-defined.js';
import type { InputFile } from './input-file.js';

export async function* fixedChunks(file: InputFile, start: number, end: number, chunkSize: number): AsyncGenerator<Buffer> {
  const readChunk = async (pos: number): Promise<Buffer> => {
    const len = Math.min(chunkSize, end - pos);
    const buf = Buffer.allocUnsafe(len);
    await file.readExactly(buf, len, pos);
    return buf;
  };
  let next = start < end ? readChunk(start) : undefined;
  for (let pos = start; pos < end; pos += chunkSize) {
    const cur = await next!;
    next = pos + chunkSize < end ? readChunk(pos + chunkSize) : undefined;
    yield cur;
  }
}

const WINDOW_BYTES = 8 * 1024 * 1024;

export async function* contentDefinedChunks(file: InputFile, start: number, end: number, params: CdcParams): AsyncGenerator<Buffer> {
  const windowSize = Math.max(WINDOW_BYTES, params.max * 2);
  const buf = Buffer.allocUnsafe(Math.min(windowSize, Math.max(end - start, 1)));
  let filled = 0;
  let pos = 0;
  let filePos = start;
  for (;;) {
    if (filled - pos < params.max && filePos < end) {
      buf.copy(buf, 0, pos, filled);
      filled -= pos;
      pos = 0;
      const n = Math.min(buf.length - filled, end - filePos);
      await file.readExactly(buf.subarray(filled), n, filePos);
      filled += n;
      filePos += n;
    }
    if (pos >= filled) return;
    const len = nextCdcChunkLength(buf, pos, filled, params);
    yield Buffer.from(buf.subarray(pos, pos + len));
    pos += len;
  }
}
