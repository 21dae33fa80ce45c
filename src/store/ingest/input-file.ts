// An input file opened for commit. Its identity (size, mtime, inode) is taken at open and checked again at the
// end: a file that a training job is still writing is refused rather than stored torn. Its size must be true:
// reading stops there, so a file holding more or fewer bytes than its size says (a /proc or /sys file reports
// 0 or 4096 whatever it holds) is refused rather than stored cut.
import { constants, type BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { CkvcError } from '../../core/errors.js';
import { ioError } from '../durable-fs.js';

// O_NOFOLLOW: a file inside a committed folder that became a symlink since it was listed is not followed.
// O_NONBLOCK: opening a named pipe must not wait for a writer; it is refused once fstat shows what it is.
// Neither exists on Windows (undefined there), where they are left out.
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const NONBLOCK = constants.O_NONBLOCK ?? 0;

export interface OpenOptions {
  /** Follow a symlink at `p` (a PATH the user named); default true. */
  follow?: boolean;
}

export class InputFile {
  private constructor(
    readonly path: string,
    readonly fh: fs.FileHandle,
    private readonly before: BigIntStats,
  ) {}

  static async open(p: string, opts: OpenOptions = {}): Promise<InputFile> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(p, constants.O_RDONLY | NONBLOCK | (opts.follow === false ? NOFOLLOW : 0));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new CkvcError('CKVC_INPUT_NOT_FOUND', `${p} does not exist`, { path: p });
      if (code === 'ELOOP' && opts.follow === false) {
        throw new CkvcError(
          'CKVC_INPUT_CHANGED',
          `${p}: it was replaced by a symlink while being committed; nothing was committed. Commit again once the folder has stopped changing`,
          { path: p },
        );
      }
      throw ioError(e, 'open', p);
    }
    const st = await fh.stat({ bigint: true }).catch(async (e) => {
      await fh.close().catch(() => {});
      throw ioError(e, 'read', p);
    });
    if (!st.isFile()) {
      await fh.close().catch(() => {});
      throw new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cannot commit ${p}: it is not a regular file (a pipe, socket or device); give files and folders only`,
        { path: p },
      );
    }
    return new InputFile(p, fh, st);
  }

  get size(): number {
    return Number(this.before.size);
  }

  /** The file's state when opened (fstat). */
  get opened(): BigIntStats {
    return this.before;
  }

  private async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    try {
      return (await this.fh.read(buf, offset, length, position)).bytesRead;
    } catch (e) {
      throw ioError(e, 'read', this.path);
    }
  }

  /** Fills buf[0, length) from `position`; a short read means the file shrank under us, or its size lies. */
  async readExactly(buf: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const n = await this.read(buf, done, length - done, position + done);
      if (n === 0) {
        const now = await this.fh.stat({ bigint: true }).catch(() => undefined);
        if (now !== undefined && this.same(now)) throw this.sizeLies(`reading ended after ${position + done} bytes`);
        throw this.changed('it became shorter while being read');
      }
      done += n;
    }
  }

  /** Fills `bufs` back to back from `position` (one readv; a short one is finished by readExactly). */
  async readExactlyInto(bufs: Buffer[], position: number): Promise<void> {
    let got: number;
    try {
      got = (await this.fh.readv(bufs, position)).bytesRead;
    } catch (e) {
      throw ioError(e, 'read', this.path);
    }
    let at = position;
    for (const buf of bufs) {
      const have = Math.min(got, buf.length);
      got -= have;
      if (have < buf.length) await this.readExactly(buf.subarray(have), buf.length - have, at + have);
      at += buf.length;
    }
  }

  /** `length` bytes from `position` in a new buffer (headers, directories: small reads that planning needs). */
  async readAt(position: number, length: number): Promise<Buffer> {
    // Not zero-filled first: readExactly fills every byte or throws (a JSON file is read whole this way).
    const buf = Buffer.allocUnsafe(length);
    await this.readExactly(buf, length, position);
    return buf;
  }

  /**
   * Throws CKVC_INPUT_CHANGED if the file is not the one we started reading, and CKVC_BAD_ARGUMENT if it is but
   * holds bytes past its size (read up to its size only, it would be stored cut short). Returns its state now.
   */
  async checkUnchanged(): Promise<BigIntStats> {
    const more = (await this.read(Buffer.alloc(1), 0, 1, this.size)) > 0;
    const now = await this.fh.stat({ bigint: true });
    const onDisk = await fs.stat(this.path, { bigint: true }).catch(() => undefined);
    if (!this.same(now)) throw this.changed('it was modified while being read');
    if (!onDisk || !this.same(onDisk)) throw this.changed('it was replaced or removed while being read');
    if (more) throw this.sizeLies('it holds more bytes than that');
    return now;
  }

  private same(s: BigIntStats): boolean {
    const b = this.before;
    return s.size === b.size && s.mtimeNs === b.mtimeNs && s.ino === b.ino && s.dev === b.dev;
  }

  private changed(what: string): CkvcError {
    return new CkvcError(
      'CKVC_INPUT_CHANGED',
      `${this.path}: ${what}; wait until the training job has finished writing it, then commit again`,
      { path: this.path },
    );
  }

  private sizeLies(what: string): CkvcError {
    return new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `cannot commit ${this.path}: its size says ${this.size} bytes but ${what}, so it is not an ordinary file (like those under /proc or /sys) and would be stored wrong; nothing was committed. Copy it to a regular file first (cat ${this.path} > copy) and commit the copy`,
      { path: this.path, size: this.size },
    );
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}
