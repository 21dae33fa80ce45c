// Reusable scratch buffers for the hot paths (chunk reads, byte grouping). Allocating and freeing a fresh
// 256 KiB buffer per chunk costs page faults and GC work that showed up as a third of checkout time; reusing
// a few dozen buffers removes it. Buffers are bucketed by power-of-two capacity.
import { CkvcError } from './errors.js';

/**
 * Larger buffers are not pooled: the hot paths ask for chunk-sized ones (256 KiB tensor chunks, at most 1 MiB
 * content-defined ones), and a pool that kept every size it was asked for would hold on to a record of tens of
 * MiB (a large object, or a damaged index entry's declared size) for the rest of the process.
 */
const MAX_POOLED_BYTES = 16 * 1024 * 1024;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  /** The backing stores of the blocks this pool made: only those are taken back. */
  private readonly ours = new WeakSet<ArrayBufferLike>();

  /**
   * Test runs only (the CLI sets it under CKVC_TEST_FAULTS): a block handed back is overwritten at once, so code
   * that still reads a buffer after releasing it sees garbage and fails its hash checks instead of working by
   * luck, and a block handed back again while it is still free is refused (one handed out again in between and
   * then handed back by its old owner is not caught: the overwrite then shows in the new owner's hash checks).
   */
  static poisonReleased = false;

  constructor(private readonly maxPerBucket = 64) {}

  private static bucket(size: number): number {
    return size <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(size));
  }

  /** A buffer of exactly `size` bytes (a view of a pooled block); contents are undefined. */
  acquire(size: number): Buffer {
    // Not one of ours, so release() ignores it and it goes when its last view does.
    if (size > MAX_POOLED_BYTES) return Buffer.allocUnsafeSlow(size);
    const cap = BufferPool.bucket(size);
    let block = this.free.get(cap)?.pop();
    if (!block) {
      block = Buffer.allocUnsafeSlow(cap);
      this.ours.add(block.buffer);
    }
    return block.subarray(0, size);
  }

  /**
   * Takes back the block `buf` is a view of (any view of it, at any offset); a buffer this pool did not make is
   * ignored. The caller must not touch the block afterwards, through this view or another.
   */
  release(buf: Uint8Array): void {
    if (!this.ours.has(buf.buffer)) return; // not one of ours
    const block = Buffer.from(buf.buffer, 0, buf.buffer.byteLength);
    const list = this.free.get(block.length) ?? [];
    if (BufferPool.poisonReleased) {
      if (list.some((b) => b.buffer === block.buffer))
        throw new CkvcError('CKVC_INTERNAL', 'a pooled buffer was handed back twice (two owners of one block)', {});
      block.fill(0xa5);
    }
    if (list.length < this.maxPerBucket) list.push(block);
    this.free.set(block.length, list);
  }
}

export const scratch = new BufferPool();
