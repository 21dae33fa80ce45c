// Reading committed file content back (spec/FORMAT.md §9.2): a recipe's bytes in order, every chunk hash-checked
// as it is read, with a bounded read-ahead, and the whole content checked against the recipe's BLAKE3. Checkout,
// cat and inspect all read files through here.
import { scratch } from '../core/buffer-pool.js';
import { CkvcError } from '../core/errors.js';
import { ContentHasher, type ObjectId } from '../core/store-format/object-id.js';
import {
  renderJsonArray,
  renderProblem,
  type JsonArrayDtype,
  type JsonArrayLayout,
} from '../core/input-formats/json-array-render.js';
import type { FilePart, FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { tensorChunkLength } from '../core/store-format/objects/tensor-object.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation } from './pack-reader.js';
import type { ChunkReuse } from './written-chunks.js';

const READ_AHEAD = 8;
const LOCATE_BATCH = 4096;

export interface ChunkRef {
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
  store: ObjectStore,
  part: FilePart & { kind: 'tensor' },
  layout: JsonArrayLayout,
  where: string,
): Promise<Buffer> {
  const t = await store.readTensor(part.id);
  const problem = renderProblem(t, layout);
  if (problem) throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: tensor ${part.name} ${problem}`, { id: part.id });
  const data = Buffer.allocUnsafe(t.size);
  let pos = 0;
  await streamChunks(
    store,
    t.chunks.map((id, i) => ({ id, size: tensorChunkLength(t, i) })),
    async (bytes) => {
      data.set(bytes, pos);
      pos += bytes.length;
    },
    where,
  );
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
export async function streamRecipe(
  store: ObjectStore,
  recipe: FileRecipe,
  sink: (bytes: Uint8Array) => Promise<void>,
  where: string,
  /** Chunks already written by this checkout, and where this file's chunks go (the sink writes in order). */
  reuse?: ChunkReuse,
): Promise<string> {
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
      await streamChunks(store, run, hashed, where, reuse && { chunks: reuse, offset: total });
      run = [];
      await hashed(await renderedPart(store, part, part.json, where));
    } else run.push(...(await partChunks(store, part)));
  }
  await streamChunks(store, run, hashed, where, reuse && { chunks: reuse, offset: total });
  const digest = hasher.digestHex();
  if (total !== recipe.size || digest !== recipe.b3) {
    throw new CkvcError(
      'CKVC_FILE_HASH_MISMATCH',
      `${where}: rebuilt content does not match the recorded hash; the store is damaged, run 'ckvc verify --read-data'`,
      { path: where },
    );
  }
  return digest;
}

/**
 * Streams chunks in order to `sink` with a bounded read-ahead, each one hash-checked as it is read and its
 * length checked against the list; returns how many bytes went by. Same buffer contract as streamRecipe.
 */
export async function streamChunks(
  store: ObjectStore,
  chunks: ChunkRef[],
  sink: (bytes: Uint8Array) => Promise<void>,
  where: string,
  /** Chunks to read back rather than decode, and the file offset the sink's first byte lands at. */
  reuse?: { chunks: ChunkReuse; offset: number },
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
      const again = reuse?.chunks.read(c.id, c.size);
      const read = again ? Promise.resolve(again) : store.readLocated(locs[next]!, c.id, 'chunk', scratch);
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
      throw new CkvcError(
        'CKVC_CORRUPT_OBJECT',
        `${where}: chunk ${i} is ${bytes.length} bytes, the recipe says ${chunks[i]!.size}`,
        { id: chunks[i]!.id },
      );
    }
    await sink(bytes);
    reuse?.chunks.wrote(chunks[i]!.id, reuse.offset + total, bytes.length);
    total += bytes.length;
    scratch.release(bytes);
  }
  return total;
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
  await streamChunks(
    store,
    chunks,
    async (bytes) => {
      out.set(bytes, pos);
      pos += bytes.length;
    },
    where,
  );
  return out;
}
