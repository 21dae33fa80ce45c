// Reusable scratch buffers for the hot paths (chunk reads, byte grouping). Allocating and freeing a fresh
// 256 KiB buffer per chunk costs page faults and GC work that showed up as a third of checkout time; reusing
// a few dozen buffers removes it. Buffers are bucketed by power-of-two capacity.
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();

  constructor(private readonly maxPerBucket = 64) {}

  private static bucket(size: number): number {
    return size <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(size));
  }

  /** A buffer of exactly `size` bytes (a view of a pooled block); contents are undefined. */
  acquire(size: number): Buffer {
    const cap = BufferPool.bucket(size);
    const block = this.free.get(cap)?.pop() ?? Buffer.allocUnsafeSlow(cap);
    return block.subarray(0, size);
  }

  /** Returns a buffer from acquire(); the caller must not touch it afterwards. */
  release(buf: Uint8Array): void {
    const block = Buffer.from(buf.buffer, 0, buf.buffer.byteLength);
    const cap = block.length;
    if (cap !== BufferPool.bucket(cap) || buf.byteOffset !== 0) return; // not one of ours
    const list = this.free.get(cap) ?? [];
    if (list.length < this.maxPerBucket) list.push(block);
    this.free.set(cap, list);
  }
}

export const scratch = new BufferPool();
