// Commits the user's paths as one tree: a single directory becomes the root itself; files or several paths
// become entries of the root named by their base names. Symlinks are followed (Hugging Face caches are made of
// them); the store being written to is never taken in (`ckvc commit .` beside .ckvc).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../../core/errors.js';
import type { ObjectId } from '../../core/object-id.js';
import { encodeTree, entryNameProblem, type TreeEntry } from '../../core/objects/tree-object.js';
import { ioError } from '../durable-fs.js';
import type { ObjectWriter } from '../object-writer.js';
import { STORE_DIR_NAME, type StoreConfig } from '../store-layout.js';
import { ingestFile } from './file-ingest.js';

export interface IngestSummary {
  files: number;
  tensors: number;
  bytes: number;
  /** Per-file notes that did not stop the commit (e.g. tensor names that could not be read). */
  warnings: string[];
}

export interface IngestProgress {
  (event: { path: string; bytes: number }): void;
}

class TreeIngest {
  readonly summary: IngestSummary = { files: 0, tensors: 0, bytes: 0, warnings: [] };
  private readonly visiting = new Set<string>();

  constructor(
    private readonly writer: ObjectWriter,
    private readonly config: StoreConfig,
    private readonly storeRoot: string,
    private readonly progress?: IngestProgress,
    private readonly signal?: AbortSignal,
  ) {}

  async entry(p: string, name: string): Promise<TreeEntry> {
    const problem = entryNameProblem(name);
    if (problem) throw new CkvcError('CKVC_BAD_ARGUMENT', `cannot commit ${p}: its name ${problem}`, { path: p });
    const st = await statInput(p);
    if (st.isDirectory()) {
      const { id, size } = await this.directory(p);
      return { name, type: 'tree', id, size };
    }
    if (!st.isFile()) throw new CkvcError('CKVC_BAD_ARGUMENT', `cannot commit ${p}: not a regular file or directory`, { path: p });
    const f = await ingestFile(p, this.writer, this.config, this.signal);
    this.summary.files++;
    this.summary.tensors += f.tensors;
    this.summary.bytes += f.size;
    this.summary.warnings.push(...f.warnings);
    this.progress?.({ path: p, bytes: f.size });
    return { name, type: 'file', id: f.id, size: f.size };
  }

  async directory(dir: string): Promise<{ id: ObjectId; size: number }> {
    const real = await fs.realpath(dir);
    if (this.visiting.has(real)) throw new CkvcError('CKVC_BAD_ARGUMENT', `cannot commit ${dir}: a symlink loop leads back to it`, { path: dir });
    this.visiting.add(real);
    let names: string[];
    try {
      names = (await fs.readdir(dir)).sort();
    } catch (e) {
      throw ioError(e, 'list', dir);
    }
    const entries: TreeEntry[] = [];
    for (const n of names) {
      const p = path.join(dir, n);
      if (n === STORE_DIR_NAME && (await fs.realpath(p).catch(() => '')) === this.storeRoot) continue;
      entries.push(await this.entry(p, n));
    }
    this.visiting.delete(real);
    return this.tree(entries);
  }

  async tree(entries: TreeEntry[]): Promise<{ id: ObjectId; size: number }> {
    const size = entries.reduce((a, e) => a + e.size, 0);
    return { id: await this.writer.put('tree', encodeTree({ entries })), size };
  }
}

async function statInput(p: string) {
  try {
    return await fs.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CkvcError('CKVC_INPUT_NOT_FOUND', `${p} does not exist (or is a broken symlink); check the path`, { path: p });
    throw ioError(e, 'read', p);
  }
}

export interface IngestOptions {
  /** The store being written to: never committed into itself. */
  storeRoot: string;
  progress?: IngestProgress;
  signal?: AbortSignal;
}

export async function ingestPaths(paths: string[], writer: ObjectWriter, config: StoreConfig, opts: IngestOptions): Promise<{ tree: ObjectId; summary: IngestSummary }> {
  if (paths.length === 0) throw new CkvcError('CKVC_BAD_ARGUMENT', 'nothing to commit: give at least one file or directory', {});
  for (const p of paths) await statInput(p); // all inputs exist before any work starts
  const storeRoot = await fs.realpath(opts.storeRoot).catch(() => path.resolve(opts.storeRoot));
  const ing = new TreeIngest(writer, config, storeRoot, opts.progress, opts.signal);
  if (paths.length === 1 && (await statInput(paths[0]!)).isDirectory()) {
    const { id } = await ing.directory(paths[0]!);
    return { tree: id, summary: ing.summary };
  }
  const entries: TreeEntry[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    const name = path.basename(path.resolve(p));
    if (seen.has(name)) throw new CkvcError('CKVC_BAD_ARGUMENT', `two inputs are both named "${name}"; commit their common parent directory instead`, { name });
    seen.add(name);
    entries.push(await ing.entry(p, name));
  }
  const { id } = await ing.tree(entries);
  return { tree: id, summary: ing.summary };
}
