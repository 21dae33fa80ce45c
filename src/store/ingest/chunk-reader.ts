// Streams a byte range of an input file as chunks, in bounded memory: fixed-size chunks aligned to the range
// start (tensor data) or content-defined chunks (everything else). Reads are large (8 MiB) and the next one is
// issued before the current block is handed out, so disk reads overlap hashing and compression. Chunks are views
// into freshly allocated blocks (never reused), so callers may keep them.
import { nextCdcChunkLength, type CdcParams } from '../../core/chunking/content-defined.js';
import type { InputFile } from './input-file.js';

const BLOCK_BYTES = 8 * 1024 * 1024;

export async function* fixedChunks(
  file: InputFile,
  start: number,
  end: number,
  chunkSize: number,
): AsyncGenerator<Buffer> {
  const block = Math.max(1, Math.floor(BLOCK_BYTES / chunkSize)) * chunkSize;
  const readBlock = async (pos: number): Promise<Buffer> => {
    const len = Math.min(block, end - pos);
    const buf = Buffer.allocUnsafeSlow(len);
    await file.readExactly(buf, len, pos);
    return buf;
  };
  let next = start < end ? readBlock(start) : undefined;
  for (let pos = start; pos < end; pos += block) {
    const cur = await next!;
    next = pos + block < end ? readBlock(pos + block) : undefined;
    for (let off = 0; off < cur.length; off += chunkSize)
      yield cur.subarray(off, Math.min(off + chunkSize, cur.length));
  }
}

export async function* contentDefinedChunks(
  file: InputFile,
  start: number,
  end: number,
  params: CdcParams,
): AsyncGenerator<Buffer> {
  const windowSize = Math.max(BLOCK_BYTES, params.max * 2);
  let buf = Buffer.alloc(0);
  let pos = 0;
  let filePos = start;
  for (;;) {
    if (buf.length - pos < params.max && filePos < end) {
      // A new window each time: the chunks handed out so far stay valid; only the unconsumed tail is copied.
      const carry = buf.length - pos;
      const n = Math.min(windowSize - carry, end - filePos);
      const next = Buffer.allocUnsafeSlow(carry + n);
      buf.copy(next, 0, pos);
      await file.readExactly(next.subarray(carry), n, filePos);
      filePos += n;
      buf = next;
      pos = 0;
    }
    if (pos >= buf.length) return;
    const len = nextCdcChunkLength(buf, pos, buf.length, params);
    yield buf.subarray(pos, pos + len);
    pos += len;
  }
}
