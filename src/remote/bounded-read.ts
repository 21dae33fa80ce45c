// Reading a whole reply from a remote into memory, which is safe only up to a bound: a remote is not trusted to
// stop sending, so the bytes are counted as they come and the read ends at the first byte over `max`.
import type { Readable } from 'node:stream';
import type { CkvcError } from '../core/errors.js';

/** All of `source`, at most `max` bytes; one byte more destroys it and throws `tooLong()`. */
export async function readAtMost(source: Readable, max: number, tooLong: () => CkvcError): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of source) {
    n += (c as Buffer).length;
    if (n > max) {
      source.destroy();
      throw tooLong();
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}
