// The buffer pool takes back only blocks it made, through any view of them (a raw record's body handed to a
// checkout is a view past the record header), and hands a block out again only once it is back.
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/core/buffer-pool.js';
import { CkvcError } from '../../src/core/errors.js';

describe('BufferPool', () => {
  it('hands a released block out again, also when a view of it past its start was released', () => {
    const pool = new BufferPool();
    const a = pool.acquire(300_000);
    expect(a.length).toBe(300_000);
    pool.release(a.subarray(44));
    const b = pool.acquire(262_144 + 44);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.acquire(300_000).buffer).not.toBe(a.buffer); // out again: not handed out twice
  });

  it('ignores buffers it did not make, whatever their size', () => {
    const pool = new BufferPool();
    const foreign = Buffer.allocUnsafeSlow(1 << 19); // a bucket's exact size, at offset 0
    pool.release(foreign);
    pool.release(Buffer.from('small'));
    expect(pool.acquire(1 << 19).buffer).not.toBe(foreign.buffer);
  });

  it('keeps at most its limit per bucket', () => {
    const pool = new BufferPool(2);
    const blocks = [pool.acquire(5000), pool.acquire(5000), pool.acquire(5000)];
    for (const b of blocks) pool.release(b);
    const again = [pool.acquire(5000), pool.acquire(5000), pool.acquire(5000)].map((b) => b.buffer);
    expect(again.filter((x) => blocks.some((b) => b.buffer === x))).toHaveLength(2);
  });

  // Test runs switch this on (tests/child-environment.ts; the CLI under CKVC_TEST_FAULTS), so that a read after
  // a release cannot pass by luck: the ui download that handed pooled bytes to a response queue showed up so.
  it('in test runs, overwrites a released block and refuses a block released twice', () => {
    expect(BufferPool.poisonReleased).toBe(true);
    const pool = new BufferPool();
    const a = pool.acquire(10_000).fill(1);
    const view = a.subarray(100, 200);
    pool.release(a);
    expect(view.every((x) => x === 0xa5)).toBe(true);
    let refused: unknown;
    try {
      pool.release(view);
    } catch (e) {
      refused = e;
    }
    expect(refused instanceof CkvcError && refused.code).toBe('CKVC_INTERNAL');
    expect(pool.acquire(10_000).buffer).toBe(a.buffer); // the block is still in the pool once, usable
    expect(pool.acquire(10_000).buffer).not.toBe(a.buffer);
  });

  it('does not keep blocks over 16 MiB: they are left to the garbage collector', () => {
    const pool = new BufferPool();
    const big = pool.acquire(16 * 1024 * 1024 + 1);
    expect(big.length).toBe(16 * 1024 * 1024 + 1);
    big[0] = 7;
    pool.release(big); // ignored: neither kept nor overwritten
    expect(big[0]).toBe(7);
    expect(pool.acquire(16 * 1024 * 1024 + 1).buffer).not.toBe(big.buffer);
    const largest = pool.acquire(16 * 1024 * 1024);
    pool.release(largest);
    expect(pool.acquire(16 * 1024 * 1024).buffer).toBe(largest.buffer);
  });
});
