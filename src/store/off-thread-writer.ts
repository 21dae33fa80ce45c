// Writing a checked-out file from a worker thread that also hashes it. On a large checkout, hashing every byte
// (each chunk against its ID, and the whole content) and writing it were 40% of the main thread (README
// Performance), while the second core sat idle; now they run there, beside the reads and decoding. The file is
// still renamed into place only after its whole content has matched the recipe's BLAKE3 (spec/FORMAT.md §9.2),
// which vouches for its chunks: they are not hashed one by one then (a chunk that does not match its ID cannot
// leave the content matching), except in a `checkout --tensor` file, which has no recorded BLAKE3. A file the
// worker cannot vouch for is written again with every check made on the main thread (file-output.ts,
// OffThreadFailed), which reports the damage exactly as before.
//
// The bytes go through one ring of shared memory per process: each put is copied into it (a memcpy; the
// caller's buffer is free again at once) and described to the worker in batches of about 1 MiB, one message and
// one positional write per batch whatever the chunk sizes (a message per chunk cost 30 ms of a 99 MB checkout's
// main thread, measured). The worker acknowledges each batch, which frees its part of the ring. One worker per
// process, started by the first large file and kept, holding the process open only while the main thread waits
// on it (so an output left unfinished by a bug cannot hang the process), and costing no start per file. The same
// worker hashes whole files for `verify --read-data` (each pack against its name) while the main thread decodes
// and hashes the records.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { objectId, objectIdPrefix, type ObjectId } from '../core/store-format/object-id.js';
import { OffThreadFailed, type FileOutput, type PutOptions } from './file-output.js';

/**
 * Files smaller than this are hashed and written on the main thread. Measured (README Performance): a 100 MB
 * delta-coded checkpoint, whose decoding already keeps both cores busy, was no faster and took 0.05–0.15 s more
 * CPU through the worker; 400 MB of the same, 5% faster; a 512 MB file without deltas, 12%; 4 GiB, 23%.
 */
const OFF_THREAD_MIN_BYTES = 128 * 1024 * 1024;

/** Whether a checked-out file of `size` bytes is hashed and written by the worker (checkout-write.ts). */
export function writtenOffThread(size: number): boolean {
  return size >= OFF_THREAD_MIN_BYTES;
}
/** The shared ring: bytes put and not yet written. */
const RING_BYTES = 16 * 1024 * 1024;
/** A batch is sent once it holds this much (and whenever put waits, and at a file's end). */
const BATCH_BYTES = 1024 * 1024;
/** A put larger than this goes in pieces (a rendered JSON part, a safetensors header): the ring stays a ring. */
const MAX_PIECE = 4 * 1024 * 1024;

// Plain JavaScript run by the worker (eval): it needs no bundling and loads nothing of ckvc but the BLAKE3 addon
// the main thread already uses. A batch is a file's next bytes, contiguous in the file: written with pwrite at the
// file's own position (the descriptor's offset stays where the main thread left it, so a file written again there
// starts from 0), each segment with an ID hashed against it first.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { Blake3Hasher } = require(workerData.addon);
const prefix = Buffer.from(workerData.prefix, 'latin1');
const ring = Buffer.from(workerData.ring);
const idHasher = new Blake3Hasher();
const files = new Map();
function write(file, at, len) {
  const b = ring.subarray(at, at + len);
  file.content.update(b);
  for (let done = 0; done < len; ) done += fs.writeSync(file.fd, b, done, len - done, file.pos + done);
  file.pos += len;
}
parentPort.on('message', (m) => {
  if (m.t === 'hashfile') {
    // A file's first m.end bytes, read here and hashed (verify --read-data's whole-pack check).
    // m.cancel: set by the main thread when nobody waits for the answer any more (a verify that stopped early).
    let fd;
    try {
      if (Atomics.load(m.cancel, 0)) return parentPort.postMessage({ t: 'hashed', id: m.id, cancelled: true });
      fd = fs.openSync(m.path, 'r');
      const h = new Blake3Hasher();
      const buf = Buffer.allocUnsafe(Math.max(1, Math.min(m.end, 4 << 20)));
      for (let pos = 0; pos < m.end; ) {
        if (Atomics.load(m.cancel, 0)) return parentPort.postMessage({ t: 'hashed', id: m.id, cancelled: true });
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, m.end - pos), pos);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        pos += n;
      }
      parentPort.postMessage({ t: 'hashed', id: m.id, b3: h.digest('hex') });
    } catch (e) {
      parentPort.postMessage({ t: 'hashed', id: m.id, error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    return;
  }
  if (m.t === 'open') {
    files.set(m.f, { fd: m.fd, pos: 0, content: new Blake3Hasher(), bad: undefined, error: undefined });
    return;
  }
  const file = files.get(m.f);
  if (m.t === 'end') {
    files.delete(m.f);
    const b3 = file.bad || file.error ? '' : file.content.digest('hex');
    parentPort.postMessage({ t: 'end', f: m.f, b3, size: file.pos, bad: file.bad, error: file.error });
    return;
  }
  // A batch: [ring offset, length, ID or null] per segment; runs contiguous in the ring are written at once.
  const s = m.s;
  let runAt = -1, runLen = 0;
  try {
    for (let i = 0; i < s.length && file.bad === undefined && file.error === undefined; i += 3) {
      const at = s[i], len = s[i + 1], id = s[i + 2];
      if (id !== null) {
        idHasher.reset();
        idHasher.update(prefix);
        idHasher.update(ring.subarray(at, at + len));
        if (idHasher.digest('hex') !== id) {
          file.bad = id;
          break;
        }
      }
      if (runAt >= 0 && runAt + runLen === at) runLen += len;
      else {
        if (runAt >= 0) write(file, runAt, runLen);
        runAt = at;
        runLen = len;
      }
    }
    if (runAt >= 0 && file.bad === undefined) write(file, runAt, runLen);
  } catch (e) {
    file.error = { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall };
  }
  parentPort.postMessage({ t: 'ack', upTo: m.upTo, f: m.f, failed: file.bad !== undefined || file.error !== undefined });
});
`;

interface EndReply {
  t: 'end';
  f: number;
  b3: string;
  size: number;
  /** The ID of a chunk that did not match. */
  bad?: ObjectId;
  error?: { message: string; code?: string; errno?: number; syscall?: string };
}

/** `failed`: the file's bytes can no longer be vouched for (a write failed, a chunk did not match): stop sending. */
type Reply =
  | { t: 'ack'; upTo: number; f: number; failed: boolean }
  | EndReply
  | { t: 'hashed'; id: number; b3?: string; error?: EndReply['error']; cancelled?: boolean };

class OffThreadFile implements FileOutput {
  readonly checksChunks = true;
  private ended: Promise<EndReply> | undefined;
  endReply: ((r: EndReply) => void) | undefined;

  constructor(
    private readonly writer: OffThreadWriter,
    readonly f: number,
  ) {}

  /** Set once the worker has failed this file: reading and decoding the rest would be for nothing. */
  private failedEarly = false;

  stopSending(): void {
    this.failedEarly = true;
  }

  async put(bytes: Uint8Array, opts?: PutOptions): Promise<void> {
    // The caller's fail() then reports the worker's own failure (a write error as Node gives it, or OffThreadFailed).
    if (this.failedEarly) throw new OffThreadFailed('the worker failed this file');
    await this.writer.put(this.f, bytes, opts);
  }

  private end(): Promise<EndReply> {
    this.ended ??= this.writer.end(this);
    return this.ended;
  }

  async finish(): Promise<{ b3: string; size: number }> {
    const r = await this.end();
    failure(r);
    return { b3: r.b3, size: r.size };
  }

  async fail(e: unknown): Promise<never> {
    failure(await this.end());
    throw e;
  }
}

/** The worker's own failure for a file: a chunk that did not match, or a write that failed (as Node reports it). */
function failure(r: EndReply): void {
  if (r.bad) throw new OffThreadFailed(`chunk ${r.bad.slice(0, 16)} did not match its ID`);
  if (r.error) throw Object.assign(new Error(r.error.message), r.error);
}

class OffThreadWriter {
  private readonly worker: Worker;
  private readonly ring = new SharedArrayBuffer(RING_BYTES);
  private readonly ringBytes = Buffer.from(this.ring);
  private readonly files = new Map<number, OffThreadFile>();
  private nextFile = 0;
  /** Bytes ever placed in the ring (wasted tails included) and ever acknowledged: monotonic counters. */
  private head = 0;
  private tail = 0;
  /** The batch being filled: one file's segments, and the head counter its last segment ends at. */
  private batch: { f: number; segments: (number | string | null)[]; bytes: number; upTo: number } | undefined;
  /** Callbacks for bytes written, by the head counter they wait for, in order. */
  private readonly written: { upTo: number; call: () => void }[] = [];
  private readonly waiting: (() => void)[] = [];
  /** The worker stopped (crashed or failed to start): every file open or opened later fails with this. */
  private broken: OffThreadFailed | undefined;
  /**
   * Waits on the worker in progress: while there are any the worker keeps the process alive (an awaited promise
   * does not), and only then, so that an output nobody finishes cannot hold the process open.
   */
  private holds = 0;
  /** Whole-file hashes asked for and not answered yet. */
  private readonly hashing = new Map<number, { resolve: (b3: string) => void; reject: (e: Error) => void }>();
  private nextHash = 0;

  constructor(private readonly onGone: () => void) {
    const require = createRequire(import.meta.url);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        addon: blakeAddonPath(require),
        prefix: objectIdPrefix('chunk').toString('latin1'),
        ring: this.ring,
      },
    });
    this.worker.on('message', (r: Reply) => {
      if (r.t === 'ack') {
        if (r.failed) this.files.get(r.f)?.stopSending();
        this.acked(r.upTo);
      } else if (r.t === 'hashed') {
        const done = this.hashing.get(r.id);
        this.hashing.delete(r.id);
        if (r.error) done?.reject(Object.assign(new Error(r.error.message), r.error));
        else if (r.cancelled) done?.reject(new OffThreadFailed('the hash was cancelled'));
        else done?.resolve(r.b3!);
      } else {
        const file = this.files.get(r.f);
        this.files.delete(r.f);
        file?.endReply?.(r);
      }
    });
    const gone = (e: Error) => {
      if (this.broken) return;
      this.onGone();
      this.broken = new OffThreadFailed(`the thread that hashes and writes checked-out files stopped: ${e.message}`);
      this.wake();
      for (const [f, file] of this.files) file.endReply?.({ t: 'end', f, b3: '', size: 0 });
      this.files.clear();
      for (const h of this.hashing.values()) h.reject(this.broken);
      this.hashing.clear();
    };
    this.worker.on('error', gone);
    this.worker.on('exit', (code) => gone(new Error(`exit code ${code}`)));
    // After the listeners: adding a 'message' listener refs the worker's port again (Node 20), which kept every
    // checkout that started the worker but wrote no large file from exiting.
    this.worker.unref();
  }

  open(fd: number): OffThreadFile {
    const file = new OffThreadFile(this, this.nextFile++);
    this.files.set(file.f, file);
    this.worker.postMessage({ t: 'open', f: file.f, fd });
    return file;
  }

  async put(f: number, bytes: Uint8Array, opts: PutOptions | undefined): Promise<void> {
    const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let check = opts?.check ?? null;
    if (check !== null && src.length > MAX_PIECE) {
      // Larger than a piece (chunks are at most 1 MiB; an object may be 64): checked here, where it is whole.
      if (objectId('chunk', src) !== check)
        throw new OffThreadFailed(`chunk ${check.slice(0, 16)} did not match its ID`);
      check = null;
    }
    let end = this.head;
    for (let done = 0; done < src.length; done += MAX_PIECE) {
      const piece = src.subarray(done, done + MAX_PIECE);
      let at = this.reserve(piece.length);
      while (at === undefined) {
        this.flush();
        await this.held(new Promise<void>((resolve) => this.waiting.push(resolve)));
        at = this.reserve(piece.length);
      }
      // Nothing yields from the reservation to `upTo`: another file's put cannot reserve in between, so a batch's
      // acknowledgement frees only what the batch holds (`head` at flush time could cover another file's piece).
      piece.copy(this.ringBytes, at);
      if (this.batch && this.batch.f !== f) this.flush();
      this.batch ??= { f, segments: [], bytes: 0, upTo: 0 };
      this.batch.segments.push(at, piece.length, check);
      this.batch.bytes += piece.length;
      this.batch.upTo = end = this.head;
      if (this.batch.bytes >= BATCH_BYTES) this.flush();
    }
    opts?.release?.();
    if (opts?.written) {
      this.written.push({ upTo: end, call: opts.written });
      if (end <= this.tail) this.acked(this.tail); // nothing of it in flight (an empty put): in the file now
    }
  }

  /** Room for `len` contiguous bytes in the ring, taken at once (its offset), or undefined until the worker frees some. */
  private reserve(len: number): number | undefined {
    if (this.broken) throw this.broken;
    const at = this.head % RING_BYTES;
    const skip = at + len > RING_BYTES ? RING_BYTES - at : 0; // the ring's tail end is too short: start over at 0
    if (this.head + skip + len - this.tail > RING_BYTES) return undefined;
    this.head += skip + len;
    return skip ? 0 : at;
  }

  private async held<T>(wait: Promise<T>): Promise<T> {
    if (this.holds++ === 0) this.worker.ref();
    try {
      return await wait;
    } finally {
      if (--this.holds === 0) this.worker.unref();
    }
  }

  private flush(): void {
    if (!this.batch) return;
    this.worker.postMessage({ t: 'w', f: this.batch.f, s: this.batch.segments, upTo: this.batch.upTo });
    this.batch = undefined;
  }

  private acked(upTo: number): void {
    this.tail = Math.max(this.tail, upTo);
    while (this.written.length > 0 && this.written[0]!.upTo <= this.tail) this.written.shift()!.call();
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }

  hashFile(path: string, end: number, signal?: AbortSignal): Promise<string> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextHash++;
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    signal?.addEventListener('abort', () => Atomics.store(cancel, 0, 1), { once: true });
    return this.held(
      new Promise<string>((resolve, reject) => {
        this.hashing.set(id, { resolve, reject });
        this.worker.postMessage({ t: 'hashfile', id, path, end, cancel });
      }),
    );
  }

  async end(file: OffThreadFile): Promise<EndReply> {
    const r = await this.held(
      new Promise<EndReply>((resolve) => {
        if (this.broken) return resolve({ t: 'end', f: file.f, b3: '', size: 0 });
        file.endReply = resolve;
        if (this.batch?.f === file.f) this.flush();
        this.worker.postMessage({ t: 'end', f: file.f });
      }),
    );
    if (this.broken) throw this.broken;
    return r;
  }
}

let writer: OffThreadWriter | undefined;
/** A worker that stopped is not started again in this process: large files are then written on the main thread. */
let unavailable = false;

/**
 * An output that writes to `fd` from the worker thread, from position 0 (positional writes: `fd`'s own offset
 * is left as it is), hashing each chunk put with `check` and the whole content; undefined when no worker runs
 * here. Its finish() or fail() throws OffThreadFailed when the worker could not
 * vouch for the bytes (a chunk that did not match, or the worker stopped); every output must be finished or
 * failed, which ends its file in the worker.
 */
export function offThreadOutput(fd: number): FileOutput | undefined {
  return theWriter()?.open(fd);
}

/**
 * The BLAKE3 (hex) of the first `end` bytes of the file at `path`, read and hashed by the worker thread while this
 * one goes on; undefined when no worker runs here. Rejects with the read error as Node reports it (code, path), or
 * with OffThreadFailed if the worker stopped or `signal` aborted first (the worker then stops reading: a caller
 * that gave up must not keep the process hashing gigabytes before it can exit).
 */
export function offThreadFileHash(path: string, end: number, signal?: AbortSignal): Promise<string> | undefined {
  return theWriter()?.hashFile(path, end, signal);
}

/**
 * Starts the worker ahead of its first file (a checkout that will write one calls this before planning): its
 * start, a few tens of ms of CPU, then runs beside the planning, while the second core is idle, not beside the
 * decoding, which keeps both cores busy on a delta-coded checkpoint.
 */
export function startOffThreadWriter(): void {
  theWriter();
}

function theWriter(): OffThreadWriter | undefined {
  if (unavailable) return undefined;
  try {
    writer ??= new OffThreadWriter(() => {
      writer = undefined;
      unavailable = true;
    });
  } catch {
    unavailable = true; // no worker threads here (a permission model, a thread limit): all on the main thread
  }
  return writer;
}

/** The BLAKE3 addon the main thread loads (esbuild.config.mjs loads the platform's own package first, too). */
function blakeAddonPath(require: NodeRequire): string {
  if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
    try {
      return require.resolve(`@napi-rs/blake-hash-linux-${process.arch}-gnu`);
    } catch {
      // Not installed for this platform: the package's own loader picks the addon.
    }
  }
  return require.resolve('@napi-rs/blake-hash');
}
