// Plans a `.json` file: every numeric array that Python's json.dump rendering reproduces byte for byte becomes a
// rendered tensor part (its numbers stored as F64/I64 element bytes), the rest of the text stays verbatim
// (spec/JSON.md). A file that is not JSON, holds no such array or is too large to read whole is `opaque`.
import * as path from 'node:path';
import { findJsonArrays } from '../../core/input-formats/json-arrays.js';
import { PlanBuilder, type FilePlan } from './file-plan.js';
import type { InputFile } from './input-file.js';

/** Larger files are stored as opaque bytes: the reader holds the whole text (and its numbers) in memory. */
export const JSON_MAX_BYTES = 256 * 1024 * 1024;

export async function planJson(file: InputFile): Promise<FilePlan> {
  const opaque = new PlanBuilder('opaque', file.size);
  if (file.size === 0 || file.size > JSON_MAX_BYTES) return opaque.done();
  const bytes = await file.readAt(0, file.size);
  const arrays = findJsonArrays(bytes, path.basename(file.path).replace(/\.json$/i, ''));
  if (!arrays?.length) return opaque.done();
  const plan = new PlanBuilder('json', file.size);
  for (const a of arrays) {
    plan.rendered({
      start: a.start,
      end: a.end,
      name: a.name,
      dtype: a.dtype,
      shape: a.shape,
      groupWidth: 8,
      data: a.data,
      text: bytes.subarray(a.start, a.end),
      json: a.layout,
    });
  }
  return plan.done();
}
