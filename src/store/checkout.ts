// Rebuilds committed files byte for byte (spec/FORMAT.md §9.2). Every chunk is hash-checked as it is read,
// the whole file is hashed against the recipe's BLAKE3 before it is renamed into place, and all conflicts
// with existing files are found before the first byte is written.
import * as fs from 'node:fs/promises';
import { scratch } from '../core/buffer-pool.js';
import { CkvcError } from '../core/errors.js';
import { ContentHasher, objectId, type ObjectId } from '../core/object-id.js';
import {
  renderJsonArray, renderProblem, type JsonArrayDtype, type JsonArrayLayout,
} from '../core/formats/json-array-render.js';
import type { FilePart, FileRecipe } from '../core/objects/file-recipe.js';
import { tensorChunkLength, type TensorObject } from '../core/objects/tensor-object.js';
import { planTargets, writeViaTemp, type Target } from './checkout-target.js';
import { ioError } from './durable-fs.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation } from './pack-reader.js';
import type { TreeFile } from './object-walk.js';
import type { VerifiedFiles } from './verified-files.js';

const READ_AHEAD = 8;
const LOCATE_BATCH = 4096;

// The tree listing lives with the object walk; checkout's callers take it from here.
export { listTreeFiles, type TreeFile } from './object-walk.js';
/** Keeps the files at or below any of `wanted` ('/'-separated); each wanted path must match something. */
export function selectPaths(files: TreeFile[], wanted: string[]): TreeFile[] {
  if (wanted.length === 0) return files;
  const norm = wanted.map((w) => w.replace(/^\.?\/+/, '').replace(/\/+$/, ''));
  for (const w of norm) {
    if (!files.some((f) => f.path === w || f.path.startsWith(`${w}/`) || w === '')) {
      throw new CkvcError('CKVC_PATH_NOT_FOUND', `path "${w}" is not in this commit; 'ckvc show REV' lists its files`, { path: w });
    }
  }
  return files.filter((f) => norm.some((w) => w === '' || f.path === w || f.path.startsWith(`${w}/`)));
}

interface ChunkRef {
  id: ObjectId;
  size: number;
}

/** The chunks of a plain chunk part or of a tensor part stored as its bytes. */
async function partChunks(store: ObjectStore, part: FilePart): Promise<ChunkRef[]> {
  if (part.kind === 'chunk') return [{ id: part.id, size: part.size }];
  const t = await store.readTensor(part.id);
  if (t.size !== part.size) {
    const what = `tensor ${part.name} is ${t.size} bytes but its file lists ${part.size}`;
    throw new CkvcError('CKVC_CORRUPT_OBJECT', what, { id: part.id });
  }
  return t.chunks.map((id, i) => ({ id, size: tensorChunkLength(t, i) }));
}

/** A tensor rendered as JSON text (spec/JSON.md): its element bytes are read, verified, then written out as text. */
async function renderedPart(
  store: ObjectStore, part: FilePart & { kind: 'tensor' }, layout: JsonArrayLayout, where: string,
): Promise<Buffer> {
  const t = await store.readTensor(part.id);
  const problem = renderProblem(t, layout);
  if (problem) throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: tensor ${part.name} ${problem}`, { id: part.id });
  const data = Buffer.allocUnsafe(t.size);
  let pos = 0;
  await streamChunks(store, t.chunks.map((id, i) => ({ id, size: tensorChunkLength(t, i) })), async (bytes) => {
    data.set(bytes, pos);
    pos += bytes.length;
  }, where);
  const text = Buffer.from(renderJsonArray(layout, t.dtype as JsonArrayDtype, t.shape, data), 'latin1');
  if (text.length !== part.size) {
    const what = `${where}: tensor ${part.name} renders to ${text.length} bytes of JSON, its file lists ${part.size}`;
    throw new CkvcError('CKVC_CORRUPT_OBJECT', what, { id: part.id });
  }
  return text;
}

/**
 * Streams a recipe's bytes in order to `sink`, hash-checking every chunk; returns the whole-content BLAKE3.
 * The bytes given to `sink` are reused once its promise resolves: a sink must write or copy them, not keep them.
 */
export async function streamRecipe(store: ObjectStore, recipe: FileRecipe, sink: (bytes: Uint8Array) => Promise<void>, where: string): Promise<string> {
  const hasher = new ContentHasher();
  let total = 0;
  const hashed = async (bytes: Uint8Array) => {
    hasher.update(bytes);
    total += bytes.length;
    await sink(bytes);
  };
  // Runs of byte parts stream with read-ahead across part boundaries; a rendered part is made whole, in turn.
  let run: ChunkRef[] = [];
  for (const part of recipe.parts) {
    if (part.kind === 'tensor' && part.json) {
      await streamChunks(store, run, hashed, where);
      run = [];
      await hashed(await renderedPart(store, part, part.json, where));
    } else run.push(...(await partChunks(store, part)));
  }
  await streamChunks(store, run, hashed, where);
  const digest = hasher.digestHex();
  if (total !== recipe.size || digest !== recipe.b3) {
    throw new CkvcError('CKVC_FILE_HASH_MISMATCH', `${where}: rebuilt content does not match the recorded hash; the store is damaged, run 'ckvc verify --read-data'`, { path: where });
  }
  return digest;
}

/**
 * Streams chunks in order to `sink` with a bounded read-ahead, each one hash-checked as it is read and its
 * length checked against the list; returns how many bytes went by. Same buffer contract as streamRecipe.
 */
async function streamChunks(
  store: ObjectStore, chunks: ChunkRef[], sink: (bytes: Uint8Array) => Promise<void>, where: string,
): Promise<number> {
  const locs: ObjectLocation[] = [];
  const ensureLocated = async (upTo: number) => {
    while (locs.length < Math.min(upTo, chunks.length)) {
      const batch = chunks.slice(locs.length, locs.length + LOCATE_BATCH).map((c) => c.id);
      locs.push(...(await store.locateAll(batch, `chunk of ${where}`)));
    }
  };
  const queue: Promise<Uint8Array>[] = [];
  let next = 0;
  const schedule = async () => {
    while (queue.length < READ_AHEAD && next < chunks.length) {
      await ensureLocated(next + 1);
      const c = chunks[next]!;
      const read = store.readLocated(locs[next]!, c.id, 'chunk', scratch);
      read.catch(() => {}); // awaited in order below; a read failing before its turn must not count as unhandled
      queue.push(read);
      next++;
    }
  };
  await schedule();
  let total = 0;
  for (let i = 0; i < chunks.length; i++) {
    const bytes = await queue.shift()!;
    await schedule();
    if (bytes.length !== chunks[i]!.size) {
      throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: chunk ${i} is ${bytes.length} bytes, the recipe says ${chunks[i]!.size}`, { id: chunks[i]!.id });
    }
    total += bytes.length;
    await sink(bytes);
    scratch.release(bytes);
  }
  return total;
}

/** Writes one file through a temp file in the same directory, renamed into place only once verified. */
export async function writeRecipe(store: ObjectStore, recipe: FileRecipe, target: Target, label: string): Promise<void> {
  await writeViaTemp(target, async (write) => {
    await streamRecipe(store, recipe, async (bytes) => write(bytes), label);
  });
}

/** Hex BLAKE3 of a file on disk, streamed. */
export async function hashFile(p: string): Promise<string> {
  const fh = await fs.open(p, 'r');
  try {
    const h = new ContentHasher();
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digestHex();
  } finally {
    await fh.close();
  }
}

export interface CheckoutPlan {
  write: { file: TreeFile; target: Target; recipe: FileRecipe }[];
  unchanged: TreeFile[];
}

/**
 * Decides what to write; throws CKVC_WOULD_OVERWRITE listing every conflict unless `force`. Writes nothing.
 * An existing file is compared by its hash; `verified` (a long-lived process's memory) may vouch for it instead.
 */
export async function planCheckout(
  store: ObjectStore, files: TreeFile[], toDir: string, force: boolean, verified?: VerifiedFiles,
): Promise<CheckoutPlan> {
  const items: { file: TreeFile; recipe: FileRecipe }[] = [];
  for (const file of files) items.push({ file, recipe: await store.readFileRecipe(file.id) });
  const holds = async (target: string, b3: string) => (verified
    ? verified.holds(target, b3, hashFile)
    : (await hashFile(target)) === b3);
  const plan = await planTargets(items, toDir, force, (it) => it.file.path,
    async (it, target, size) => size === it.recipe.size && (await holds(target, it.recipe.b3)));
  return {
    write: plan.write.map(({ item, target }) => ({ file: item.file, target, recipe: item.recipe })),
    unchanged: plan.unchanged.map((it) => it.file),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tensor subsets (`checkout --tensor`): a new safetensors file made of a header built by
// core/formats/safetensors-writer.ts and the bytes of chosen tensor objects, streamed chunk by chunk.

export interface SubsetTensor {
  name: string;
  tensor: TensorObject;
}

export interface TensorFileSpec {
  /** Where to write it, '/'-separated, relative to the checkout folder. */
  path: string;
  /** Length prefix and header. */
  head: Uint8Array;
  /** The tensors in the order their bytes follow the head. */
  tensors: SubsetTensor[];
  /** head + all tensor bytes. */
  size: number;
}

export interface TensorFilePlan {
  write: { spec: TensorFileSpec; target: Target }[];
  unchanged: TensorFileSpec[];
}

/** As planCheckout, for files that checkout builds rather than rebuilds. Writes nothing. */
export async function planTensorFiles(specs: TensorFileSpec[], toDir: string, force: boolean): Promise<TensorFilePlan> {
  const plan = await planTargets(specs, toDir, force, (s) => s.path, async (s, target, size) => size === s.size && (await holdsTensorFile(target, s)));
  return { write: plan.write.map(({ item, target }) => ({ spec: item, target })), unchanged: plan.unchanged };
}

/**
 * Is the file at `target` exactly this head followed by these tensors? There is no recorded hash of a file
 * that was never committed, so the file's tensor bytes are cut at the tensors' chunk boundaries and hashed
 * as chunk IDs: the comparison reads only the file, never the store.
 */
async function holdsTensorFile(target: string, spec: TensorFileSpec): Promise<boolean> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(target, 'r');
    const maxChunk = spec.tensors.reduce((m, { tensor: t }) => Math.max(m, t.chunks.length ? t.chunkSize : 0), spec.head.length);
    const buf = Buffer.allocUnsafe(maxChunk);
    let pos = 0;
    const readAt = async (n: number): Promise<Buffer | undefined> => {
      for (let got = 0; got < n; ) {
        const { bytesRead } = await fh!.read(buf, got, n - got, pos + got);
        if (bytesRead === 0) return undefined; // shorter than its size said a moment ago
        got += bytesRead;
      }
      pos += n;
      return buf.subarray(0, n);
    };
    const head = await readAt(spec.head.length);
    if (!head?.equals(spec.head)) return false;
    for (const { tensor: t } of spec.tensors) {
      for (let i = 0; i < t.chunks.length; i++) {
        const bytes = await readAt(tensorChunkLength(t, i));
        if (!bytes || objectId('chunk', bytes) !== t.chunks[i]) return false;
      }
    }
    return true;
  } catch (e) {
    throw ioError(e, 'read', target);
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * The bytes of a recipe's chunk parts before its first tensor part, every chunk verified: for a safetensors
 * file, its length prefix and header (stored verbatim, spec/SAFETENSORS.md).
 */
export async function readRecipeHead(store: ObjectStore, recipe: FileRecipe, where: string): Promise<Uint8Array> {
  const chunks: ChunkRef[] = [];
  for (const p of recipe.parts) {
    if (p.kind !== 'chunk') break;
    chunks.push({ id: p.id, size: p.size });
  }
  const out = Buffer.allocUnsafe(chunks.reduce((a, c) => a + c.size, 0));
  let pos = 0;
  await streamChunks(store, chunks, async (bytes) => {
    out.set(bytes, pos);
    pos += bytes.length;
  }, where);
  return out;
}

/** Writes a TensorFileSpec through a temp file like writeRecipe; every chunk is hash-checked as it is read. */
export async function writeTensorFile(store: ObjectStore, spec: TensorFileSpec, target: Target, label: string): Promise<void> {
  const chunks: ChunkRef[] = [];
  for (const { tensor: t } of spec.tensors) t.chunks.forEach((id, i) => chunks.push({ id, size: tensorChunkLength(t, i) }));
  await writeViaTemp(target, async (write) => {
    write(spec.head);
    const total = await streamChunks(store, chunks, async (bytes) => write(bytes), label);
    if (spec.head.length + total !== spec.size) {
      throw new CkvcError('CKVC_INTERNAL', `${label}: wrote ${spec.head.length + total} bytes where ${spec.size} were planned`, { path: label });
    }
  });
}
