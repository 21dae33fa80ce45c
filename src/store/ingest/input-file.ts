// An input file opened for commit. Its identity (size, mtime, inode) is taken at open and checked again at the
// end: a file that a training job is still writing is refused rather than stored torn.
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { CkvcError } from '../../core/errors.js';
import { ioError } from '../durable-fs.js';

export class InputFile {
  private constructor(readonly path: string, readonly fh: fs.FileHandle, private readonly before: BigIntStats) {}

  static async open(p: string): Promise<InputFile> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(p, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new CkvcError('CKVC_INPUT_NOT_FOUND', `${p} does not exist`, { path: p });
      throw ioError(e, 'open', p);
    }
    return new InputFile(p, fh, await fh.stat({ bigint: true }));
  }

  get size(): number {
    return Number(this.before.size);
  }

  /** Fills buf[0, length) from `position`; a short read means the file shrank under us. */
  async readExactly(buf: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(buf, done, length - done, position + done));
      } catch (e) {
        throw ioError(e, 'read', this.path);
      }
      if (n === 0) throw this.changed('it became shorter while being read');
      done += n;
    }
  }

  /** `length` bytes from `position` in a new buffer (headers, directories: small reads that planning needs). */
  async readAt(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    await this.readExactly(buf, length, position);
    return buf;
  }

  /** Throws CKVC_INPUT_CHANGED if the file is not the one we started reading. */
  async checkUnchanged(): Promise<void> {
    const now = await this.fh.stat({ bigint: true });
    const onDisk = await fs.stat(this.path, { bigint: true }).catch(() => undefined);
    const same = (s: BigIntStats | undefined) =>
      s !== undefined && s.size === this.before.size && s.mtimeNs === this.before.mtimeNs && s.ino === this.before.ino && s.dev === this.before.dev;
    if (!same(now)) throw this.changed('it was modified while being read');
    if (!same(onDisk)) throw this.changed('it was replaced or removed while being read');
  }

  private changed(what: string): CkvcError {
    return new CkvcError('CKVC_INPUT_CHANGED', `${this.path}: ${what}; wait until the training job has finished writing it, then commit again`, { path: this.path });
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}
