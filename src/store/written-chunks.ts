// Chunks a checkout has already written, read back from the file it wrote them into instead of decoded again.
// A checkpoint saved twice (model.safetensors beside a torch.save of model and optimizer) holds every weight
// chunk in both files; decoding such a chunk means inflating and XORing up to MAX_WRITTEN_DELTA_DEPTH records
// per plane, where reading it back from the page cache is a copy. Each kept file is read through the handle
// that wrote it (the same inode whatever happens to its name), and every chunk read back is hashed against its
// ID like any chunk read from the store: one that does not match (the file was changed meanwhile) is decoded
// from the store instead, so what is written stays verified.
import * as fsSync from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { scratch } from '../core/buffer-pool.js';
import { objectId, type ObjectId } from '../core/store-format/object-id.js';

/**
 * Files kept open, oldest closed first: a checkout of many small files must not run out of descriptors, and
 * twins are written next to each other.
 */
const MAX_FILES = 16;
/** Chunks remembered (about 150 bytes each): 64 GiB of 256 KiB chunks; older ones are decoded again. */
const MAX_CHUNKS = 262_144;

export interface ChunkReuse {
  /** The chunk's bytes, read back from a file written earlier and verified, in a `scratch` buffer; else undefined. */
  read(id: ObjectId, size: number): Uint8Array | undefined;
  /** The chunk has just been written at `offset` of the file being written. */
  wrote(id: ObjectId, offset: number, size: number): void;
}

export class WrittenChunks implements ChunkReuse {
  private readonly files: FileHandle[] = [];
  private readonly at = new Map<ObjectId, { fh: FileHandle; offset: number; size: number }>();
  private current: FileHandle | undefined;

  /** The file the next chunks are written to; kept open (and closed by close()) once it is in place. */
  writing(fh: FileHandle | undefined): void {
    this.current = fh;
  }

  /** A written file that stays open to be read back; with more than MAX_FILES, the oldest is closed. */
  async keep(fh: FileHandle): Promise<void> {
    this.files.push(fh);
    if (this.files.length <= MAX_FILES) return;
    const old = this.files.shift()!;
    for (const [id, c] of this.at) if (c.fh === old) this.at.delete(id);
    await old.close().catch(() => {});
  }

  wrote(id: ObjectId, offset: number, size: number): void {
    if (!this.current || this.at.has(id) || this.at.size >= MAX_CHUNKS) return;
    this.at.set(id, { fh: this.current, offset, size });
  }

  read(id: ObjectId, size: number): Uint8Array | undefined {
    const c = this.at.get(id);
    if (!c || c.size !== size) return undefined;
    const buf = scratch.acquire(size);
    try {
      let done = 0;
      while (done < size) {
        const n = fsSync.readSync(c.fh.fd, buf, done, size - done, c.offset + done);
        if (n === 0) break;
        done += n;
      }
      if (done === size && objectId('chunk', buf) === id) return buf;
    } catch {
      // Unreadable now: decoded from the store instead.
    }
    scratch.release(buf);
    this.at.delete(id);
    return undefined;
  }

  async close(): Promise<void> {
    this.at.clear();
    await Promise.all(this.files.splice(0).map((fh) => fh.close().catch(() => {})));
  }
}
