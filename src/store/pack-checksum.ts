// Whether a pack's bytes hash to its name (`ckvc verify --read-data`, spec/FORMAT.md §10): a large pack is hashed
// on the worker thread while verify decodes records on this one; a small one here, in turn (a worker's start would
// cost more than it saves).
import * as fs from 'node:fs/promises';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { CkvcError } from '../core/errors.js';
import { OffThreadFailed } from './file-output.js';
import { offThreadFileHash } from './off-thread-writer.js';
import type { StoreLayout } from './store-layout.js';

const OFF_THREAD_HASH_MIN_BYTES = 4 * 1024 * 1024;

export class PackChecksums {
  /** `signal`: a verify that fails midway leaves the worker no hashing to finish. */
  constructor(
    private readonly layout: StoreLayout,
    private readonly signal: AbortSignal,
  ) {}

  /** Whether the pack's first `end` bytes hash to its name, hashed here: the problem when they do not. */
  async here(packId: string, end: number): Promise<CkvcError | undefined> {
    return notItsName(packId, await hashFileHere(this.layout.packFile(packId), end));
  }

  /**
   * here's answer from the worker thread, for a pack of OFF_THREAD_HASH_MIN_BYTES or more (a small one is
   * hashed here, in turn as before: a worker's start would cost more); undefined when it is not hashed there. The
   * promise is never rejected before it is awaited.
   */
  offThread(packId: string, end: number): Promise<CkvcError | undefined> | undefined {
    const { signal } = this;
    if (end < OFF_THREAD_HASH_MIN_BYTES) return undefined;
    const hashed = offThreadFileHash(this.layout.packFile(packId), end, signal);
    if (!hashed) return undefined;
    const later = hashed.then(
      (b3) => notItsName(packId, b3),
      (e) => {
        if (!(e instanceof OffThreadFailed) || signal.aborted) throw e;
        // The worker stopped: hashed here, one pack at a time.
        this.fallback = this.fallback.then(() => this.here(packId, end));
        return this.fallback;
      },
    );
    later.catch(() => {}); // awaited after the records: a failure before then is not unhandled
    return later;
  }

  /** Packs hashed here after the worker stopped, in turn (each holds a 4 MiB buffer). */
  private fallback: Promise<CkvcError | undefined> = Promise.resolve(undefined);
}

/** The problem of a pack whose bytes hash to `b3` rather than to its name, if they do. */
function notItsName(packId: string, b3: string): CkvcError | undefined {
  if (b3 === packId) return undefined;
  return new CkvcError(
    'CKVC_CORRUPT_PACK',
    `pack ${packId.slice(0, 16)}: its bytes do not hash to its name (damaged on disk)`,
    {
      pack: packId,
    },
  );
}

/** The BLAKE3 (hex) of the first `end` bytes of `file`, on this thread. */
async function hashFileHere(file: string, end: number): Promise<string> {
  const fh = await fs.open(file, 'r');
  try {
    const h = new Blake3Hasher();
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (let pos = 0; pos < end; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digestBuffer().toString('hex');
  } finally {
    await fh.close();
  }
}
