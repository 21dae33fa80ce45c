// Plans NumPy files: an .npy's array data becomes one tensor part after its verbatim header; an .npz's stored
// members are cut the same way, and its deflated members (np.savez_compressed) are checked by inflating them
// under a cap, then kept verbatim, each from its own first byte so an unchanged array still dedups
// (spec/ARCHIVES.md §3).
import * as path from 'node:path';
import { NPY_PREFIX_BYTES, NpyRefusal, parseNpyHeader, type NpyHeader } from '../../core/input-formats/npy.js';
import { safetensorsElementWidth } from '../../core/input-formats/safetensors-dtypes.js';
import { ZIP_METHOD_DEFLATED, ZIP_METHOD_STORED, ZipRefusal } from '../../core/input-formats/zip-directory.js';
import { PlanBuilder, type FilePlan } from './file-plan.js';
import type { InputFile } from './input-file.js';
import { checkDeflatedEntry, type ZipLayout } from './zip-reader.js';

/** Enough of an array file at [start, end) to hold any header numpy would read. */
function readPrefix(file: InputFile, start: number, end: number): Promise<Buffer> {
  return file.readAt(start, Math.min(NPY_PREFIX_BYTES, end - start));
}

/** Adds one array file occupying [start, end) of the input: header verbatim, data as a tensor when it can be. */
function addArray(plan: PlanBuilder, h: NpyHeader, name: string, start: number, end: number): void {
  const dataStart = start + h.dataOffset;
  if (dataStart > end) throw new NpyRefusal(`${name}: the header runs past the end of the array`);
  if (!h.known) return; // object, structured, string or big-endian arrays: opaque bytes
  const dataEnd = dataStart + h.dataBytes!;
  if (dataEnd > end)
    throw new NpyRefusal(
      `${name}: shape ${JSON.stringify(h.shape)} of ${h.descr} needs ${h.dataBytes} bytes of data, the file holds ${end - dataStart}`,
    );
  plan.tensor({
    start: dataStart,
    end: dataEnd,
    name,
    dtype: h.known.dtype,
    shape: h.shape,
    groupWidth: safetensorsElementWidth(h.known.dtype),
    ...(h.fortranOrder && h.shape.length > 1 ? { order: 'F' as const } : {}),
  });
}

export async function planNpy(file: InputFile): Promise<FilePlan> {
  const plan = new PlanBuilder('npy', file.size);
  const h = parseNpyHeader(await readPrefix(file, 0, file.size));
  addArray(plan, h, path.basename(file.path).replace(/\.npy$/i, ''), 0, file.size);
  return plan.done();
}

/** An .npz member's header; a refusal names the member. */
function memberHeader(member: string, prefix: Uint8Array): NpyHeader {
  try {
    return parseNpyHeader(prefix);
  } catch (err) {
    if (err instanceof NpyRefusal) throw new NpyRefusal(`member ${JSON.stringify(member)} ${err.message}`);
    throw err;
  }
}

/**
 * All deflated members of one .npz together may declare no more than this: each member's 1032:1 bound still
 * lets a 1 GB file of zero bombs ask for a terabyte of inflating.
 */
export const NPZ_MAX_INFLATED_BYTES = 64 * 1024 ** 3;

export async function planNpz(file: InputFile, zip: ZipLayout): Promise<FilePlan> {
  const deflated = zip.entries
    .filter((e) => e.name.endsWith('.npy') && e.method === ZIP_METHOD_DEFLATED)
    .reduce((a, e) => a + e.size, 0);
  if (deflated > NPZ_MAX_INFLATED_BYTES)
    throw new ZipRefusal(
      `its deflated members declare ${deflated} bytes in all (the cap is ${NPZ_MAX_INFLATED_BYTES})`,
    );
  const plan = new PlanBuilder('npz', file.size);
  for (const e of zip.entries) {
    plan.verbatimTo(e.dataOffset);
    if (!e.name.endsWith('.npy')) continue;
    const name = e.name.slice(0, -4);
    if (e.method === ZIP_METHOD_STORED) {
      addArray(
        plan,
        memberHeader(e.name, await readPrefix(file, e.dataOffset, e.dataEnd)),
        name,
        e.dataOffset,
        e.dataEnd,
      );
    } else if (e.method === ZIP_METHOD_DEFLATED) {
      const h = memberHeader(e.name, await checkDeflatedEntry(file, e, NPY_PREFIX_BYTES));
      if (h.known && h.dataOffset + h.dataBytes! <= e.size) {
        plan.packed.push({
          name,
          dtype: h.known.dtype,
          shape: h.shape,
          size: h.dataBytes!,
          ...(h.fortranOrder && h.shape.length > 1 ? { order: 'F' as const } : {}),
        });
      }
    }
    // Whatever remains of the member (deflated bytes, opaque array data, trailing bytes) starts its own verbatim
    // region at the next boundary, so content-defined chunks of one member never straddle into the next.
    plan.verbatimTo(e.dataEnd);
  }
  return plan.done();
}
