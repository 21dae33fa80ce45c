// A Writable that keeps what is written to it (a copy of each piece: a writer may reuse its buffers).
import { Writable } from 'node:stream';

export function memorySink(): { sink: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(c, _e, cb) {
      parts.push(Buffer.from(c));
      cb();
    },
  });
  return { sink, bytes: () => Buffer.concat(parts) };
}
