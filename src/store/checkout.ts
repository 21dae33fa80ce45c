// Rebuilds committed files byte for byte (spec/FORMAT.md §9.2). Every chunk is hash-checked as it is read,
// the whole file is hashed against the recipe's BLAKE3 before it is renamed into place, and all conflicts
// with existing files are found before the first byte is written.
import { randomBytes } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { scratch } from '../core/buffer-pool.js';
import { CkvcError } from '../core/errors.js';
import { ContentHasher, type ObjectId } from '../core/object-id.js';
import type { FileRecipe } from '../core/objects/file-recipe.js';
import { tensorChunkLength } from '../core/objects/tensor-object.js';
import { ioError } from './durable-fs.js';
import { faultPoint } from './fault-injection.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectLocation } from './pack-reader.js';

const READ_AHEAD = 8;
const LOCATE_BATCH = 4096;

export interface TreeFile {
  /** Path inside the commit, '/'-separated. */
  path: string;
  id: ObjectId;
  size: number;
}

/** Every file under a tree, depth first in name order. */
export async function listTreeFiles(store: ObjectStore, treeId: ObjectId, prefix = ''): Promise<TreeFile[]> {
  const out: TreeFile[] = [];
  for (const e of (await store.readTree(treeId)).entries) {
    const p = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.type === 'tree') out.push(...(await listTreeFiles(store, e.id, p)));
    else out.push({ path: p, id: e.id, size: e.size });
  }
  return out;
}

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

async function chunkList(store: ObjectStore, recipe: FileRecipe): Promise<ChunkRef[]> {
  const out: ChunkRef[] = [];
  for (const part of recipe.parts) {
    if (part.kind === 'chunk') {
      out.push({ id: part.id, size: part.size });
      continue;
    }
    const t = await store.readTensor(part.id);
    if (t.size !== part.size) {
      throw new CkvcError('CKVC_CORRUPT_OBJECT', `tensor ${part.name} is ${t.size} bytes but its file lists ${part.size}`, { id: part.id });
    }
    t.chunks.forEach((id, i) => out.push({ id, size: tensorChunkLength(t, i) }));
  }
  return out;
}

/**
 * Streams a recipe's bytes in order to `sink`, hash-checking every chunk; returns the whole-content BLAKE3.
 * The bytes given to `sink` are reused once its promise resolves: a sink must write or copy them, not keep them.
 */
export async function streamRecipe(store: ObjectStore, recipe: FileRecipe, sink: (bytes: Uint8Array) => Promise<void>, where: string): Promise<string> {
  const chunks = await chunkList(store, recipe);
  const hasher = new ContentHasher();
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
    hasher.update(bytes);
    total += bytes.length;
    await sink(bytes);
    scratch.release(bytes);
  }
  const digest = hasher.digestHex();
  if (total !== recipe.size || digest !== recipe.b3) {
    throw new CkvcError('CKVC_FILE_HASH_MISMATCH', `${where}: rebuilt content does not match the recorded hash; the store is damaged, run 'ckvc verify --read-data'`, { path: where });
  }
  return digest;
}

/** Writes one file through a temp file in the same directory, renamed into place only once verified. */
export async function writeRecipe(store: ObjectStore, recipe: FileRecipe, target: string, label: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.ckvc-${randomBytes(4).toString('hex')}.tmp`);
  const fh = await (async () => {
    faultPoint('checkout.write');
    return fs.open(tmp, 'wx', 0o644);
  })().catch((e) => { throw ioError(e, 'create', tmp); });
  try {
    await streamRecipe(store, recipe, async (bytes) => {
      // Synchronous like the pack reads: a thread-pool round trip per 256 KiB write costs more than the copy.
      for (let done = 0; done < bytes.length; ) done += fsSync.writeSync(fh.fd, bytes, done, bytes.length - done);
    }, label);
    await fh.close();
    faultPoint('checkout.rename');
    await fs.rename(tmp, target);
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e instanceof CkvcError ? e : ioError(e, 'write', target);
  }
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
  write: { file: TreeFile; target: string; recipe: FileRecipe }[];
  unchanged: TreeFile[];
}

/** Decides what to write; throws CKVC_WOULD_OVERWRITE listing every conflict unless `force`. Writes nothing. */
export async function planCheckout(store: ObjectStore, files: TreeFile[], toDir: string, force: boolean): Promise<CheckoutPlan> {
  const plan: CheckoutPlan = { write: [], unchanged: [] };
  const conflicts: string[] = [];
  for (const file of files) {
    const target = path.join(toDir, ...file.path.split('/'));
    const recipe = await store.readFileRecipe(file.id);
    const st = await fs.stat(target).catch(() => undefined);
    if (st?.isFile() && st.size === recipe.size && (await hashFile(target)) === recipe.b3) {
      plan.unchanged.push(file);
      continue;
    }
    if (st && (!st.isFile() || !force)) conflicts.push(target);
    else {
      // A file standing where a directory of ours must go is a conflict too.
      const rel = file.path.split('/');
      for (let i = 1; i < rel.length; i++) {
        const parent = path.join(toDir, ...rel.slice(0, i));
        const pst = await fs.stat(parent).catch(() => undefined);
        if (pst && !pst.isDirectory()) conflicts.push(parent);
      }
    }
    plan.write.push({ file, target, recipe });
  }
  if (conflicts.length) {
    const list = [...new Set(conflicts)];
    throw new CkvcError('CKVC_WOULD_OVERWRITE', `checkout would overwrite ${list.length} existing path(s) that differ, e.g. ${list[0]}; pass --force to replace files, or choose another --to`, { paths: list });
  }
  return plan;
}
