// Writing checked-out files into place: each through a temp file in the same folder, renamed only once every
// chunk and the whole content have been verified (spec/FORMAT.md §9.2), so a reader or a crash never sees a
// partial file under the real name.
import { CkvcError } from '../core/errors.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { tensorChunkLength } from '../core/store-format/objects/tensor-object.js';
import type { TensorFileSpec } from './checkout-plan.js';
import { writeViaTemp, type Target } from './checkout-target.js';
import type { ObjectStore } from './object-store.js';
import { hashingOutput, OffThreadFailed, type FileOutput } from './file-output.js';
import { offThreadOutput, writtenOffThread } from './off-thread-writer.js';
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
  await writeFile(target, written, recipe.size, async (out) => {
    await streamRecipe(store, recipe, out, label, written);
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
  await writeFile(target, written, spec.size, async (out) => {
    try {
      await out.put(spec.head);
      const reuse = written && { chunks: written, offset: spec.head.length };
      await streamChunks(store, chunks, out, label, reuse);
    } catch (e) {
      return out.fail(e);
    }
    const { size } = await out.finish();
    if (size !== spec.size) {
      throw new CkvcError('CKVC_INTERNAL', `${label}: wrote ${size} bytes where ${spec.size} were planned`, {
        path: label,
      });
    }
  });
}

/**
 * writeViaTemp, through an output on the worker thread for a large file (writtenOffThread; written
 * again on this thread if that output cannot vouch for it), with `written` told which file the chunks go to
 * and given that file once it is in place.
 */
async function writeFile(
  target: Target,
  written: WrittenChunks | undefined,
  size: number,
  fill: (out: FileOutput) => Promise<void>,
): Promise<void> {
  await writeViaTemp(
    target,
    async (write, fh) => {
      written?.writing(fh);
      try {
        const off = writtenOffThread(size) ? offThreadOutput(fh.fd) : undefined;
        if (off) {
          try {
            return await fill(off);
          } catch (e) {
            if (!(e instanceof OffThreadFailed)) throw e;
          }
          // The worker wrote by position and left the descriptor's offset at 0, where `write` starts again.
          await fh.truncate(0);
          written?.writing(undefined);
          written?.writing(fh);
        }
        await fill(hashingOutput(write));
      } finally {
        written?.writing(undefined);
      }
    },
    written && ((reader) => written.keep(reader)),
  );
}
