// Where the bytes of a file being rebuilt go (recipe-stream.ts): to a sink on this thread, hashed as they pass,
// or to a worker thread that hashes and writes them (off-thread-writer.ts). Either way the whole content's BLAKE3
// is what the caller compares with the recipe before the file counts as verified.
import { ContentHasher, type ObjectId } from '../core/store-format/object-id.js';

export interface PutOptions {
  /**
   * The bytes are a chunk whose hash the reader left to the output (PackReader.readObject's `hashCheck`): the
   * output checks them against this ID before finish() succeeds.
   */
  check?: ObjectId;
  /** Called once the output no longer reads the bytes (they may go back to their pool). */
  release?: () => void;
  /** Called once the bytes are in the file, in the order they were put. */
  written?: () => void;
}

export interface FileOutput {
  /** Whether chunk reads may leave their hash check to this output (put with `check`, or its whole-content hash). */
  readonly checksChunks: boolean;
  /** Appends bytes; resolves when the caller may put more (an output with work in flight holds back). */
  put(bytes: Uint8Array, opts?: PutOptions): Promise<void>;
  /**
   * Waits for everything put to be written; returns the whole content's BLAKE3 (hex) and length, or throws the
   * first failure (OffThreadFailed when the file must be written again with every check on this thread).
   */
  finish(): Promise<{ b3: string; size: number }>;
  /**
   * The caller failed with `e` while bytes may still be in flight: waits for them, then throws the output's own
   * failure for something put earlier (it came first), or `e`.
   */
  fail(e: unknown): Promise<never>;
}

/**
 * The output could not vouch for the file: a chunk it checked did not match its ID, or its worker stopped. Not
 * the user's error: the caller writes the file again with every check made by the reader, which retries what its
 * own retries recover (a delta base located from memory that has moved) and otherwise reports the damage with
 * its own error, so the user sees exactly what a read checked in place would have said.
 */
export class OffThreadFailed extends Error {}

/**
 * An output on this thread that hands each put to `sink` and keeps no hash (parts read whole: a header, a tensor).
 * It never checks chunks (checksChunks false: the reader has checked each one).
 */
export function sinkOutput(sink: (bytes: Uint8Array) => Promise<void> | void): FileOutput {
  let size = 0;
  return {
    checksChunks: false,
    async put(bytes, opts) {
      size += bytes.length;
      await sink(bytes);
      opts?.written?.();
      opts?.release?.();
    },
    async finish() {
      return { b3: '', size };
    },
    async fail(e) {
      throw e;
    },
  };
}

/** An output on this thread: each put is hashed into the content hash, then awaited through `sink`. */
export function hashingOutput(sink: (bytes: Uint8Array) => Promise<void> | void): FileOutput {
  const hasher = new ContentHasher();
  const inner = sinkOutput(sink);
  return {
    ...inner,
    async put(bytes, opts) {
      hasher.update(bytes);
      await inner.put(bytes, opts);
    },
    async finish() {
      return { b3: hasher.digestHex(), size: (await inner.finish()).size };
    },
  };
}
