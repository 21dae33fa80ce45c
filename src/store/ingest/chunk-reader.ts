// Streams a byte range of an input file as chunks, in bounded memory: fixed-size chunks aligned to the range
// start (tensor data) or content-defined chunks (everything else). Reads are large (8 MiB); for tensor data the
// next one is issued before the current block is handed out, so disk reads overlap hashing and compression.
import { nextCdcChunkLength, type CdcParams } from '../../core/chunking/content-defined.js';
import type { InputFile } from './input-file.js';

const BLOCK_BYTES = 8 * 1024 * 1024;
/** Chunks read by one readv at most (the kernel takes up to 1024 buffers a call; small chunks make small blocks). */
const BLOCK_CHUNKS = 512;

/**
 * The two blocks a file's content-defined chunks are read into, in turn; one pair per file being committed, reused
 * region after region. A fresh block per read (or per tensor) cost page faults that made committing unchanged data
 * about 4x slower here (README, Performance).
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
 * Fixed-size chunks, each read into a buffer of its own from `acquire` (one readv per block of up to 8 MiB) and
 * handed over: the caller owns it (ObjectWriter.put's `owned` gives it back to the pool once written). Reading
 * into one large block instead meant copying every new chunk out of it before the block could be reused: 53 ms
 * of a 98.8 MB commit's main thread (README, Performance). The next block is read while the current one is
 * handed out.
 */
export async function* fixedChunks(
  file: InputFile,
  start: number,
  end: number,
  chunkSize: number,
  acquire: (size: number) => Buffer,
): AsyncGenerator<Buffer> {
  const block = Math.max(1, Math.min(BLOCK_CHUNKS, Math.floor(BLOCK_BYTES / chunkSize))) * chunkSize;
  const readBlock = async (pos: number): Promise<Buffer[]> => {
    const bufs: Buffer[] = [];
    for (let at = pos; at < Math.min(pos + block, end); at += chunkSize)
      bufs.push(acquire(Math.min(chunkSize, end - at)));
    await file.readExactlyInto(bufs, pos);
    return bufs;
  };
  let next = start < end ? readBlock(start) : undefined;
  for (let pos = start; pos < end; pos += block) {
    const cur = await next!;
    next = pos + block < end ? readBlock(pos + block) : undefined;
    // A failure while this block is handed out must not leave the read ahead unobserved.
    next?.catch(() => {});
    yield* cur;
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
