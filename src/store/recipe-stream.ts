// Reading committed file content back (spec/FORMAT.md §9.2): a recipe's bytes in order, every chunk hash-checked
// as it is read (or, for a large file a checkout writes through the worker thread, vouched for by the whole
// content's hash), with a bounded read-ahead, and the whole content checked against the recipe's BLAKE3. Checkout,
// cat and inspect all read files through here.
import { scratch } from '../core/buffer-pool.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  renderJsonArray,
  renderProblem,
  type JsonArrayDtype,
  type JsonArrayLayout,
} from '../core/input-formats/json-array-render.js';
import type { FilePart, FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { tensorChunkLength } from '../core/store-format/objects/tensor-object.js';
import { OffThreadFailed, sinkOutput, type FileOutput } from './file-output.js';
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
    sinkOutput((bytes) => {
      data.set(bytes, pos);
      pos += bytes.length;
    }),
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
 * Streams a recipe's bytes in order to `out`, every chunk hash-checked by the reader, or, for an output that
 * checksChunks, vouched for by the whole content's hash alone (matching the recipe's, which a damaged chunk
 * cannot); returns the whole-content BLAKE3 once it matches. A mismatch there is OffThreadFailed: the caller
 * reads the file again with an output that leaves every check to the reader, which names the damaged object.
 */
export async function streamRecipe(
  store: ObjectStore,
  recipe: FileRecipe,
  out: FileOutput,
  where: string,
  /** Chunks already written by this checkout, and where this file's chunks go (the output writes in order). */
  reuse?: ChunkReuse,
): Promise<string> {
  let total = 0;
  try {
    // Runs of byte parts stream with read-ahead across part boundaries; a rendered part is made whole, in turn.
    let run: ChunkRef[] = [];
    for (const part of recipe.parts) {
      if (part.kind === 'tensor' && part.json) {
        total += await streamChunks(store, run, out, where, reuse && { chunks: reuse, offset: total }, true);
        run = [];
        const text = await renderedPart(store, part, part.json, where);
        await out.put(text);
        total += text.length;
      } else run.push(...(await partChunks(store, part)));
    }
    await streamChunks(store, run, out, where, reuse && { chunks: reuse, offset: total }, true);
  } catch (e) {
    return out.fail(e);
  }
  const { b3, size } = await out.finish();
  if (size !== recipe.size || b3 !== recipe.b3) {
    // The chunks were vouched for by this hash alone: read again, each checked, to name what is damaged.
    if (out.checksChunks) throw new OffThreadFailed(`${where}: the whole content does not match its recorded hash`);
    throw new CkvcError(
      'CKVC_FILE_HASH_MISMATCH',
      `${where}: rebuilt content does not match the recorded hash; the store is damaged, run 'ckvc verify --read-data'`,
      { path: where },
    );
  }
  return b3;
}

/**
 * Streams chunks in order to `out` with a bounded read-ahead, each one hash-checked (by the reader, or by `out`
 * when it checksChunks: the reads then skip that last check) and its length checked against the list; returns
 * how many bytes went by.
 */
export async function streamChunks(
  store: ObjectStore,
  chunks: ChunkRef[],
  out: Pick<FileOutput, 'checksChunks' | 'put'>,
  where: string,
  /** Chunks to read back rather than decode, and the file offset the output's first byte lands at. */
  reuse?: { chunks: ChunkReuse; offset: number },
  /**
   * The caller compares the whole content with a recorded BLAKE3, which vouches for every chunk in it: an output
   * that checksChunks is then given none to check (the caller reads again on a mismatch, streamRecipe).
   */
  contentChecked = false,
): Promise<number> {
  const locs: ObjectLocation[] = [];
  const ensureLocated = async (upTo: number) => {
    while (locs.length < Math.min(upTo, chunks.length)) {
      const batch = chunks.slice(locs.length, locs.length + LOCATE_BATCH).map((c) => c.id);
      locs.push(...(await store.locateAll(batch, `chunk of ${where}`)));
    }
  };
  /** A read in flight; a chunk read back from a file already written was verified there. */
  const queue: { read: Promise<Uint8Array>; readBack: boolean }[] = [];
  let next = 0;
  const schedule = async () => {
    while (queue.length < READ_AHEAD && next < chunks.length) {
      await ensureLocated(next + 1);
      const c = chunks[next]!;
      const again = reuse?.chunks.read(c.id, c.size);
      const read = again
        ? Promise.resolve(again)
        : store.readLocated(locs[next]!, c.id, 'chunk', scratch, out.checksChunks ? 'caller' : 'here');
      read.catch(() => {}); // awaited in order below; a read failing before its turn must not count as unhandled
      queue.push({ read, readBack: again !== undefined });
      next++;
    }
  };
  await schedule();
  let total = 0;
  for (let i = 0; i < chunks.length; i++) {
    const { read, readBack } = queue.shift()!;
    const bytes = await read;
    await schedule();
    const c = chunks[i]!;
    if (bytes.length !== c.size) {
      throw new CkvcError(
        'CKVC_CORRUPT_OBJECT',
        `${where}: chunk ${i} is ${bytes.length} bytes, the recipe says ${c.size}`,
        {
          id: c.id,
        },
      );
    }
    const at = total;
    await out.put(bytes, {
      check: out.checksChunks && !readBack && !contentChecked ? c.id : undefined,
      release: () => scratch.release(bytes),
      written: reuse && (() => reuse.chunks.wrote(c.id, reuse.offset + at, bytes.length)),
    });
    total += bytes.length;
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
    sinkOutput((bytes) => {
      out.set(bytes, pos);
      pos += bytes.length;
    }),
    where,
  );
  return out;
}
