// Read-ahead of pack files for reads that miss the page cache. Records are read with synchronous preads (cheap
// from the page cache, see PackReader.readAt); from a cold cache each one waits on the disk in turn. Once a read
// is seen to wait, every pack is read ahead of the reader from its first read on, in pack offset order, by
// asynchronous reads on the thread pool, so the disk works while the main thread decodes. Consecutive chunks of a
// file, and their delta bases, lie in offset order in their packs, so one window per pack keeps ahead of them.
// Every pack, not only those whose own reads waited: a cold checkout reads a few small spans (delta bases' planes)
// from many packs, and those the kernel's read-ahead of an earlier span happened to serve went on being read at
// random, each miss making the kernel read up to its own window (8 MiB on this machine): a cold checkout of a 98.8
// MiB checkpoint read 366-552 MB from disk in 0.66-0.79 s, now 114-118 MB in 0.57-0.65 s (README, Performance). From
// a warm cache nothing waits, and nothing is read twice.
import type * as fs from 'node:fs/promises';

/** A synchronous read slower than this waited on the disk (a page-cache read of a record takes microseconds). */
const SLOW_READ_NS = 200_000n;
/** How far ahead of the reader a pack is read, and in what pieces. */
const WINDOW = 8 * 1024 * 1024;
const PIECE = 1024 * 1024;
/** Pieces of one pack read at once (the thread pool has 4 threads). */
const MAX_IN_FLIGHT = 2;

interface PackState {
  /** Read ahead up to here (file offset). */
  until: number;
  inFlight: number;
}

export class PackPrefetch {
  private readonly packs = new Map<string, PackState>();
  /** The bytes read ahead only warm the page cache: every piece lands in this one buffer and is dropped. */
  private sink: Buffer | undefined;
  /** Set by the first read seen to wait: from then on every pack is read ahead from its first read on. */
  private cold = false;

  /** Called after each synchronous read of `length` bytes at `offset` that took `ns` nanoseconds. */
  observe(packId: string, fh: fs.FileHandle, offset: number, length: number, ns: bigint): void {
    let st = this.packs.get(packId);
    if (!st) {
      if (ns >= SLOW_READ_NS) this.cold = true;
      if (!this.cold) return;
      st = { until: 0, inFlight: 0 };
      this.packs.set(packId, st);
    }
    const end = offset + length;
    if (st.until < end) st.until = end;
    while (st.until < end + WINDOW && st.inFlight < MAX_IN_FLIGHT) this.readPiece(st, fh);
  }

  private readPiece(st: PackState, fh: fs.FileHandle): void {
    this.sink ??= Buffer.allocUnsafeSlow(PIECE);
    const at = st.until;
    st.until += PIECE;
    st.inFlight++;
    fh.read(this.sink, 0, PIECE, at)
      .catch(() => {}) // only a hint: the real read reports any error
      .finally(() => {
        st.inFlight--;
      });
  }
}
