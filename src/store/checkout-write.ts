// Writing checked-out files into place: each through a temp file in the same folder, renamed only once every
// chunk and the whole content have been verified (spec/FORMAT.md §9.2), so a reader or a crash never sees a
// partial file under the real name.
import { CkvcError } from '../core/errors.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { tensorChunkLength } from '../core/store-format/objects/tensor-object.js';
import type { TensorFileSpec } from './checkout-plan.js';
import { writeViaTemp, type Target } from './checkout-target.js';
import type { ObjectStore } from './object-store.js';
import { streamChunks, streamRecipe, type ChunkRef } from './recipe-stream.js';
import type { WrittenChunks } from './written-chunks.js';

/**
 * Writes one file through a temp file in the same directory, renamed into place only once verified. With
 * `written`, chunks an earlier file of this checkout holds are read back from it, and this file is kept for
 * later ones.
 */
export async function writeRecipe(
  store: ObjectStore,
  recipe: FileRecipe,
  target: Target,
  label: string,
  written?: WrittenChunks,
): Promise<void> {
  await writeFile(target, written, async (write) => {
    await streamRecipe(store, recipe, async (bytes) => write(bytes), label, written);
  });
}

/** Writes a TensorFileSpec through a temp file like writeRecipe; every chunk is hash-checked as it is read. */
export async function writeTensorFile(
  store: ObjectStore,
  spec: TensorFileSpec,
  target: Target,
  label: string,
  written?: WrittenChunks,
): Promise<void> {
  const chunks: ChunkRef[] = [];
  for (const { tensor: t } of spec.tensors)
    t.chunks.forEach((id, i) => {
      chunks.push({ id, size: tensorChunkLength(t, i) });
    });
  await writeFile(target, written, async (write) => {
    write(spec.head);
    const reuse = written && { chunks: written, offset: spec.head.length };
    const total = await streamChunks(store, chunks, async (bytes) => write(bytes), label, reuse);
    if (spec.head.length + total !== spec.size) {
      throw new CkvcError(
        'CKVC_INTERNAL',
        `${label}: wrote ${spec.head.length + total} bytes where ${spec.size} were planned`,
        { path: label },
      );
    }
  });
}

/** writeViaTemp, with `written` told which file the chunks go to, and given that file once it is in place. */
async function writeFile(
  target: Target,
  written: WrittenChunks | undefined,
  fill: (write: (bytes: Uint8Array) => void) => Promise<void>,
): Promise<void> {
  await writeViaTemp(
    target,
    async (write, fh) => {
      written?.writing(fh);
      try {
        await fill(write);
      } finally {
        written?.writing(undefined);
      }
    },
    written && ((reader) => written.keep(reader)),
  );
}
