// Exact-length reads from a byte stream (a bundle file or an HTTP body) in bounded memory: small parts are
// read into buffers, the pack part is copied through to a file piece by piece.
import type { Readable } from 'node:stream';
import { bad } from '../core/store-format/bundle-format.js';

export class ByteStream {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(
    source: Readable | AsyncIterable<Buffer>,
    private readonly where: string,
  ) {
    this.it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes (n is small: a preamble, a header already checked against its cap). */
  async read(n: number, what: string): Promise<Buffer> {
    while (this.pending.length < n) {
      if (!(await this.fill()))
        throw bad(this.where, `is truncated: ${what} needs ${n} bytes, ${this.pending.length} remain`);
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    this.position += n;
    return out;
  }

  /** Up to n bytes: fewer only where the stream ends first (what a preamble's own checks then look at). */
  async readAtMost(n: number): Promise<Buffer> {
    while (this.pending.length < n && (await this.fill()));
    const out = this.pending.subarray(0, Math.min(n, this.pending.length));
    this.pending = this.pending.subarray(out.length);
    this.position += out.length;
    return out;
  }

  /** Hands exactly n bytes to `sink` in pieces. */
  async copy(n: number, what: string, sink: (piece: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill()))
        throw bad(this.where, `is truncated: ${what} is missing ${left} of ${n} bytes`);
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(piece.length);
      left -= piece.length;
      this.position += piece.length;
      await sink(piece);
    }
  }

  /** True if nothing follows. */
  async atEnd(): Promise<boolean> {
    if (this.pending.length) return false;
    return !(await this.fill()) || this.pending.length === 0;
  }
}
