// `ckvc ls` and `ckvc cat`: what a commit holds, down to each tensor's dtype and shape, and the raw bytes of a
// file or of one tensor, streamed and verified chunk by chunk.
import { fetchLeftOut } from './fetch-on-demand.js';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import {
  recipeTensorCount,
  type TensorNames,
  tensorPartNames,
  type TensorPart,
} from '../core/store-format/objects/file-recipe.js';
import { selectPaths } from '../store/checkout-plan.js';
import { listTreeFiles } from '../store/object-walk.js';
import { hashingOutput } from '../store/file-output.js';
import { streamRecipe } from '../store/recipe-stream.js';
import type { ObjectStore } from '../store/object-store.js';
import { fileReleased, tensorReleased } from '../store/object-walk.js';
import { resolveRevision } from '../store/revision-resolver.js';

export interface ListedTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  /** "F": the bytes are in column-major order (a NumPy fortran_order array). */
  order?: 'F';
  /** Released by `ckvc prune`: the metadata is here, the data may be gone. */
  pruned?: boolean;
  /** Stored inside the file's compressed bytes (a deflated .npz member): listed, not readable on its own. */
  deflated?: boolean;
  /** Another name of the tensor listed before it (tied weights: the same bytes, stored once). */
  tiedTo?: string;
}

export interface ListedFile {
  path: string;
  size: number;
  format: string;
  tensorCount: number;
  /** Other names of those tensors (tied weights, FORMAT.md §5.3), when there are some. */
  tiedNames?: number;
  tensors?: ListedTensor[];
}

export async function ls(
  store: ObjectStore,
  rev: string,
  opts: { path?: string; tensors?: boolean } = {},
): Promise<{ commit: ObjectId; files: ListedFile[] }> {
  const { id } = await resolveRevision(store, rev);
  const c = await store.readCommit(id);
  const rec = await store.pruned.get(id);
  const files = selectPaths(await listTreeFiles(store, c.tree), opts.path ? [opts.path] : [], rev);
  const out: ListedFile[] = [];
  for (const f of files) {
    const r = await store.readFileRecipe(f.id);
    const parts = r.parts.filter((p) => p.kind === 'tensor');
    const tied = parts.reduce((n, p) => n + (p.tied?.length ?? 0), 0);
    const entry: ListedFile = {
      path: f.path,
      size: r.size,
      format: r.format,
      tensorCount: recipeTensorCount(r),
      ...(tied ? { tiedNames: tied } : {}),
    };
    if (opts.tensors) {
      entry.tensors = [];
      for (const p of parts) {
        const t = await store.readTensor(p.id);
        const listed: ListedTensor = {
          name: p.name,
          dtype: t.dtype,
          shape: t.shape,
          bytes: t.size,
          ...(t.order ? { order: t.order } : {}),
          ...(tensorReleased(rec, f.path, p) ? { pruned: true } : {}),
        };
        entry.tensors.push(listed);
        for (const name of p.tied ?? []) entry.tensors.push({ ...listed, name, tiedTo: p.name });
      }
      for (const t of r.packed ?? [])
        entry.tensors.push({
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
          bytes: t.size,
          ...(t.order ? { order: t.order } : {}),
          deflated: true,
        });
    }
    out.push(entry);
  }
  return { commit: id, files: out };
}

/** `REV:PATH` into its parts (the last ':' splits, so branch names without ':' work as they always do). */
export function parseObjectPath(spec: string): { rev: string; path: string } {
  const i = spec.lastIndexOf(':');
  if (i <= 0 || i === spec.length - 1)
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `${JSON.stringify(spec)} is not REV:PATH (for example main:model.safetensors)`,
      { spec },
    );
  return { rev: spec.slice(0, i), path: spec.slice(i + 1).replace(/^\.?\/+/, '') };
}

/** The file at `p` among a commit's files (`rev`, resolved to `id`, is how the user named it), or CKVC_PATH_NOT_FOUND. */
export function fileOfCommit<F extends { path: string }>(files: F[], p: string, rev: string, id: ObjectId): F {
  const file = files.find((f) => f.path === p);
  if (!file)
    throw new CkvcError(
      'CKVC_PATH_NOT_FOUND',
      `${p} is not a file of ${rev} (${id.slice(0, 12)}); 'ckvc ls ${rev}' lists them`,
      { path: p, commit: id },
    );
  return file;
}

/** Streams a file of a commit, or one tensor's raw bytes, to `sink`; every chunk is verified before it is written. */
export async function cat(
  store: ObjectStore,
  spec: string,
  sink: (bytes: Uint8Array) => Promise<void>,
  opts: { tensor?: string } = {},
): Promise<{ commit: ObjectId; path: string; bytes: number }> {
  const { rev, path: p } = parseObjectPath(spec);
  const { id } = await resolveRevision(store, rev);
  const c = await store.readCommit(id);
  const file = fileOfCommit(await listTreeFiles(store, c.tree), p, rev, id);
  const recipe = await store.readFileRecipe(file.id);
  const rec = await store.pruned.get(id);
  const released = (part: TensorNames) => tensorReleased(rec, p, part);
  if (opts.tensor === undefined) {
    if (fileReleased(rec, p))
      throw new CkvcError(
        'CKVC_PRUNED',
        `${p} of ${id.slice(0, 12)} was released whole by 'ckvc prune'; its size and format remain ('ckvc ls ${rev}')`,
        { commit: id, path: p },
      );
    const hit = recipe.parts.find((part) => part.kind === 'tensor' && released(part));
    if (hit)
      throw new CkvcError(
        'CKVC_PRUNED',
        `${p} of ${id.slice(0, 12)} holds tensor data released by 'ckvc prune' (e.g. '${(hit as { name: string }).name}'); 'ckvc ls ${rev} --tensors' shows which`,
        { commit: id, path: p },
      );
    await fetchLeftOut(store, id, (at) => at === p, 'cat');
    await streamRecipe(store, recipe, hashingOutput(sink), `${rev}:${p}`);
    return { commit: id, path: p, bytes: recipe.size };
  }
  const part = recipe.parts.find(
    (x): x is TensorPart => x.kind === 'tensor' && tensorPartNames(x).includes(opts.tensor!),
  );
  if (!part && recipe.packed?.some((t) => t.name === opts.tensor)) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `tensor ${opts.tensor} of ${p} is stored deflated inside the archive (np.savez_compressed), whose compressed bytes ckvc keeps as they are; take the whole file ('ckvc cat ${rev}:${p} > file.npz') and load it with numpy`,
      { path: p, tensor: opts.tensor },
    );
  }
  if (!part)
    throw new CkvcError(
      'CKVC_PATH_NOT_FOUND',
      `${p} of ${rev} has no tensor named ${JSON.stringify(opts.tensor)}; 'ckvc ls ${rev} ${p} --tensors' lists them`,
      { path: p, tensor: opts.tensor },
    );
  if (released(part))
    throw new CkvcError(
      'CKVC_PRUNED',
      `tensor ${opts.tensor} of ${p} in ${id.slice(0, 12)} was released by 'ckvc prune'`,
      { commit: id, path: p, tensor: opts.tensor },
    );
  await fetchLeftOut(store, id, (at, names) => at === p && names[0] === part.name, 'cat --tensor');
  const t = await store.readTensor(part.id);
  let bytes = 0;
  for (const chunk of t.chunks) {
    const data = await store.readRaw(chunk, 'chunk');
    bytes += data.length;
    await sink(data);
  }
  if (bytes !== t.size)
    throw new CkvcError(
      'CKVC_CORRUPT_OBJECT',
      `tensor ${opts.tensor}: its chunks hold ${bytes} bytes, the tensor says ${t.size}`,
      { id: part.id },
    );
  return { commit: id, path: p, bytes };
}
