// Chunks a checkout has already written, read back from the file it wrote them into instead of decoded again.
// A checkpoint saved twice (model.safetensors beside a torch.save of model and optimizer) holds every weight
// chunk in both files; decoding such a chunk means inflating and XORing up to MAX_WRITTEN_DELTA_DEPTH records
// per plane, where reading it back from the page cache is a copy. A file being written is read through the
// handle that writes it; once in place, through a read-only handle opened on it before the writer closed (the
// same inode whatever happens to its name later). Every chunk read back is hashed against its ID like any chunk
// read from the store: one that does not match (the file was changed meanwhile) is decoded from the store
// instead, so what is written stays verified. A chunk is remembered in the first file that holds it, while that
// file is among the last MAX_FILES kept.
import * as fsSync from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { scratch } from '../core/buffer-pool.js';
import { objectId, type ObjectId } from '../core/store-format/object-id.js';

/**
 * Files kept open, oldest closed first: a checkout of many small files must not run out of descriptors, and
 * twins are written next to each other.
 */
const MAX_FILES = 16;
/** Chunks remembered (about 150 bytes each): 64 GiB of 256 KiB chunks; later ones are not, and are decoded. */
const MAX_CHUNKS = 262_144;

export interface ChunkReuse {
  /** The chunk's bytes, read back from a file written earlier and verified, in a `scratch` buffer; else undefined. */
  read(id: ObjectId, size: number): Uint8Array | undefined;
  /** The chunk has just been written at `offset` of the file being written. */
  wrote(id: ObjectId, offset: number, size: number): void;
}

/** A file chunks were written to: the handle it is read through (the writer's, then a reader's once in place). */
interface WrittenFile {
  fh: FileHandle | undefined;
}

export class WrittenChunks implements ChunkReuse {
  private readonly files: WrittenFile[] = [];
  private readonly at = new Map<ObjectId, { file: WrittenFile; offset: number; size: number }>();
  private current: WrittenFile | undefined;
  private last: WrittenFile | undefined;

  /**
   * The file the next chunks are written to, through `fh`; undefined once its content is written (its writer is
   * about to close: until keep() hands over a reader, or for good when none comes, its chunks are not read back).
   */
  writing(fh: FileHandle | undefined): void {
    if (fh) this.current = { fh };
    else {
      if (this.current) this.current.fh = undefined;
      this.last = this.current;
      this.current = undefined;
    }
  }

  /**
   * The file last written is in place and stays open through `reader` (closed by close()) to be read back; with
   * more than MAX_FILES, the oldest is closed.
   */
  async keep(reader: FileHandle): Promise<void> {
    const file = this.last ?? { fh: undefined };
    this.last = undefined;
    file.fh = reader;
    this.files.push(file);
    if (this.files.length <= MAX_FILES) return;
    const old = this.files.shift()!;
    for (const [id, c] of this.at) if (c.file === old) this.at.delete(id);
    await old.fh?.close().catch(() => {}); // read-only: nothing of the checkout depends on this close
  }

  wrote(id: ObjectId, offset: number, size: number): void {
    if (!this.current || this.at.size >= MAX_CHUNKS) return;
    // An entry in a file no longer readable (written again after a failed check, or never kept) is replaced.
    if (this.at.get(id)?.file.fh) return;
    this.at.set(id, { file: this.current, offset, size });
  }

  read(id: ObjectId, size: number): Uint8Array | undefined {
    const c = this.at.get(id);
    if (!c || c.size !== size) return undefined;
    if (!c.file.fh) {
      this.at.delete(id); // its file is gone from reach: a later write of the chunk may be remembered instead
      return undefined;
    }
    const buf = scratch.acquire(size);
    try {
      let done = 0;
      while (done < size) {
        const n = fsSync.readSync(c.file.fh.fd, buf, done, size - done, c.offset + done);
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
    await Promise.all(this.files.splice(0).map((f) => f.fh?.close().catch(() => {})));
  }
}
