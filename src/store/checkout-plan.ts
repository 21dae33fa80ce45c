// Deciding what a checkout writes (spec/FORMAT.md §9.2): which committed files are wanted, which already sit in
// the target folder byte for byte (compared by hash, never by size and time alone), and every conflict with
// an existing file found before the first byte is written. Nothing here writes.
import * as fs from 'node:fs/promises';
import { CkvcError } from '../core/errors.js';
import { ContentHasher, objectId } from '../core/store-format/object-id.js';
import type { FileRecipe } from '../core/store-format/objects/file-recipe.js';
import { tensorChunkLength, type TensorObject } from '../core/store-format/objects/tensor-object.js';
import { planTargets, type Target } from './checkout-target.js';
import { ioError } from './durable-fs.js';
import type { ObjectStore } from './object-store.js';
import type { TreeFile } from './object-walk.js';
import type { VerifiedFiles } from './verified-files.js';

/**
 * Keeps the files at or below any of `wanted` ('/'-separated); each wanted path must match something. `rev` is the
 * revision as the user gave it, for the hint.
 */
export function selectPaths(files: TreeFile[], wanted: string[], rev: string): TreeFile[] {
  if (wanted.length === 0) return files;
  const norm = wanted.map((w) => w.replace(/^\.?\/+/, '').replace(/\/+$/, ''));
  for (const w of norm) {
    if (!files.some((f) => f.path === w || f.path.startsWith(`${w}/`) || w === '')) {
      throw new CkvcError('CKVC_PATH_NOT_FOUND', `path "${w}" is not in ${rev}; 'ckvc show ${rev}' lists its files`, {
        path: w,
        revision: rev,
      });
    }
  }
  return files.filter((f) => norm.some((w) => w === '' || f.path === w || f.path.startsWith(`${w}/`)));
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
  /** `replaced`: a different file was there, which --force lets this one replace. */
  write: { file: TreeFile; target: Target; recipe: FileRecipe; replaced?: true }[];
  unchanged: TreeFile[];
}

/**
 * Decides what to write; throws CKVC_WOULD_OVERWRITE listing every conflict unless `force`. Writes nothing.
 * An existing file is compared by its hash; `verified` (a long-lived process's memory) may vouch for it instead.
 */
export async function planCheckout(
  store: ObjectStore,
  files: TreeFile[],
  toDir: string,
  force: boolean,
  verified?: VerifiedFiles,
): Promise<CheckoutPlan> {
  const items: { file: TreeFile; recipe: FileRecipe }[] = [];
  for (const file of files) items.push({ file, recipe: await store.readFileRecipe(file.id) });
  const holds = async (target: string, b3: string) =>
    verified ? verified.holds(target, b3, hashFile) : (await hashFile(target)) === b3;
  const plan = await planTargets(
    items,
    toDir,
    force,
    (it) => it.file.path,
    async (it, target, size) => size === it.recipe.size && (await holds(target, it.recipe.b3)),
  );
  return {
    write: plan.write.map(({ item, target, replaced }) => ({
      file: item.file,
      target,
      recipe: item.recipe,
      ...(replaced ? { replaced } : {}),
    })),
    unchanged: plan.unchanged.map((it) => it.file),
  };
}

// Tensor subsets (`checkout --tensor`): a new safetensors file made of a header built by
// core/input-formats/safetensors-writer.ts and the bytes of chosen tensor objects (written by checkout-write.ts).

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
  write: { spec: TensorFileSpec; target: Target; replaced?: true }[];
  unchanged: TensorFileSpec[];
}

/** As planCheckout, for files that checkout builds rather than rebuilds. Writes nothing. */
export async function planTensorFiles(specs: TensorFileSpec[], toDir: string, force: boolean): Promise<TensorFilePlan> {
  const plan = await planTargets(
    specs,
    toDir,
    force,
    (s) => s.path,
    async (s, target, size) => size === s.size && (await holdsTensorFile(target, s)),
  );
  return {
    write: plan.write.map(({ item, target, replaced }) => ({ spec: item, target, ...(replaced ? { replaced } : {}) })),
    unchanged: plan.unchanged,
  };
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
    const maxChunk = spec.tensors.reduce(
      (m, { tensor: t }) => Math.max(m, t.chunks.length ? t.chunkSize : 0),
      spec.head.length,
    );
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
