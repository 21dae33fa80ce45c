// Streams a byte range of an input file as chunks, in bounded memory: fixed-size chunks aligned to the range
// start (tensor data) or content-defined chunks (everything else). Reads are large (8 MiB); for tensor data the
// next one is issued before the current block is handed out, so disk reads overlap hashing and compression.
import { nextCdcChunkLength, type CdcParams } from '../../core/chunking/content-defined.js';
import type { InputFile } from './input-file.js';

const BLOCK_BYTES = 8 * 1024 * 1024;

/**
 * The two blocks a file's chunks are read into, in turn; one pair per file being committed, reused region after
 * region. A fresh block per read (or per tensor) cost page faults that made committing unchanged data about 4x
 * slower here (README, Performance).
 */
export class ReadBlocks {
  private readonly blocks = [Buffer.allocUnsafeSlow(0), Buffer.allocUnsafeSlow(0)];
  private turn = 0;

  /** The next block in turn, `length` bytes long: the one before it may still be read from. */
  next(length: number): Buffer {
    this.turn ^= 1;
    if (this.blocks[this.turn]!.length < length) this.blocks[this.turn] = Buffer.allocUnsafeSlow(length);
    return this.blocks[this.turn]!.subarray(0, length);
  }
}

/**
 * Fixed-size chunks, views into `blocks`: a chunk is valid only until the next one is asked for (of this range or
 * the next range read with the same blocks), so callers copy what they keep (ObjectWriter.put's `transient`).
 * The next block is read while the current one is handed out.
 */
export async function* fixedChunks(
  file: InputFile,
  start: number,
  end: number,
  chunkSize: number,
  blocks: ReadBlocks,
): AsyncGenerator<Buffer> {
  const block = Math.max(1, Math.floor(BLOCK_BYTES / chunkSize)) * chunkSize;
  const readBlock = async (pos: number): Promise<Buffer> => {
    const len = Math.min(block, end - pos);
    const buf = blocks.next(len);
    await file.readExactly(buf, len, pos);
    return buf;
  };
  let next = start < end ? readBlock(start) : undefined;
  for (let pos = start; pos < end; pos += block) {
    const cur = await next!;
    // The block read before `cur` had all its chunks handed out before this one was asked for: it is free.
    next = pos + block < end ? readBlock(pos + block) : undefined;
    for (let off = 0; off < cur.length; off += chunkSize)
      yield cur.subarray(off, Math.min(off + chunkSize, cur.length));
  }
}

/**
 * Content-defined chunks, views into `blocks` as fixedChunks' are (valid until the next one is asked for). A window
 * is refilled once less than a maximal chunk is left: the unconsumed tail is copied to the other block first.
 */
export async function* contentDefinedChunks(
  file: InputFile,
  start: number,
  end: number,
  params: CdcParams,
  blocks: ReadBlocks,
): AsyncGenerator<Buffer> {
  const windowSize = Math.max(BLOCK_BYTES, params.max * 2);
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  let filePos = start;
  for (;;) {
    if (buf.length - pos < params.max && filePos < end) {
      const carry = buf.length - pos;
      const n = Math.min(windowSize - carry, end - filePos);
      const next = blocks.next(carry + n);
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
