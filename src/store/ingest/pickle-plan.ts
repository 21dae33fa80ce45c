// Plans a pickle file (`.pkl`, `.pickle`, and `.pt`/`.pth` files that are plain pickles rather than torch zips):
// each NumPy array whose raw bytes lie in the pickle becomes a tensor part, everything else stays verbatim
// (spec/ARCHIVES.md §4). A pickle the symbolic reader does not follow, or without such arrays, is `opaque`:
// a pickle is never refused, its bytes are kept exactly either way.
import * as path from 'node:path';
import { readNumpyPickle, type NumpyPickleArray } from '../../core/input-formats/numpy-pickle.js';
import { PickleNotUnderstood } from '../../core/input-formats/pickle-values.js';
import { safetensorsElementWidth } from '../../core/input-formats/safetensors-dtypes.js';
import { PlanBuilder, type FilePlan } from './file-plan.js';
import type { InputFile } from './input-file.js';

/** Larger pickles are stored as opaque bytes: the reader holds the whole pickle in memory. */
export const PICKLE_MAX_BYTES = 1024 ** 3;
/** Smaller arrays stay inside the verbatim pickle bytes: a tensor's records would cost more than they save. */
export const PICKLE_ARRAY_MIN_BYTES = 1024;
export const PICKLE_EXTENSIONS = new Set(['.pkl', '.pickle']);

export async function planPickle(file: InputFile): Promise<FilePlan> {
  const opaque = new PlanBuilder('opaque', file.size);
  if (file.size === 0 || file.size > PICKLE_MAX_BYTES) return opaque.done();
  let arrays: NumpyPickleArray[];
  try {
    arrays = readNumpyPickle(await file.readAt(0, file.size), path.basename(file.path).replace(/\.[^.]*$/, ''));
  } catch (e) {
    if (e instanceof PickleNotUnderstood) return opaque.done();
    throw e;
  }
  arrays = arrays.filter((a) => a.end - a.start >= PICKLE_ARRAY_MIN_BYTES);
  if (arrays.length === 0) return opaque.done();
  const plan = new PlanBuilder('pickle', file.size);
  for (const a of arrays) {
    plan.tensor({
      start: a.start,
      end: a.end,
      name: a.name,
      dtype: a.dtype,
      shape: a.shape,
      groupWidth: safetensorsElementWidth(a.dtype),
      ...(a.order ? { order: a.order } : {}),
    });
  }
  return plan.done();
}
