// Commits one file as a recipe (spec/FORMAT.md §5.3). Files whose format ckvc reads (safetensors, PyTorch zip
// checkpoints, NumPy .npy/.npz, NumPy arrays in pickles, numeric arrays of JSON documents) are cut at their
// tensors so an unchanged tensor costs nothing; anything else is content-defined chunked. Either way the whole
// file is hashed as it streams past, and its identity is re-checked at the end so a torn file is never recorded.
import * as path from 'node:path';
import { CkvcError } from '../../core/errors.js';
import { NPY_MAGIC, NpyRefusal } from '../../core/input-formats/npy.js';
import { safetensorsElementWidth } from '../../core/input-formats/safetensors-dtypes.js';
import { parseSafetensorsHeader, readSafetensorsHeaderLength } from '../../core/input-formats/safetensors.js';
import { ZipRefusal } from '../../core/input-formats/zip-directory.js';
import { ContentHasher, type ObjectId } from '../../core/store-format/object-id.js';
import {
  encodeFileRecipe,
  type FilePart,
  type FileRecipe,
  recipeTensorCount,
} from '../../core/store-format/objects/file-recipe.js';
import { encodeTensor } from '../../core/store-format/objects/tensor-object.js';
import { chunkBuffer, type ObjectWriter } from '../object-writer.js';
import type { FilesCache } from '../files-cache.js';
import { recipeStoreVersion, type StoreConfig } from '../store-layout.js';
import { contentDefinedChunks, fixedChunks, ReadBlocks } from './chunk-reader.js';
import type { DeltaBases } from './delta-bases.js';
import {
  planCoverageProblem,
  PlanBuilder,
  type FilePlan,
  type RenderedRegion,
  type TensorRegion,
} from './file-plan.js';
import { planJson } from './json-plan.js';
import { PICKLE_EXTENSIONS, planPickle } from './pickle-plan.js';
import { InputFile, type OpenOptions } from './input-file.js';
import { planNpy, planNpz } from './numpy-plan.js';
import { planTorchZip } from './torch-plan.js';
import { readZipLayout } from './zip-reader.js';

export interface IngestedFile {
  id: ObjectId;
  size: number;
  format: string;
  tensors: number;
  /** Things worth telling the user that did not stop the commit. */
  warnings: string[];
  /** Taken from the files cache without reading the file (FORMAT.md §19). */
  unread?: boolean;
}

/** Extensions torch.save output goes by (Hugging Face's pytorch_model.bin and Lightning's .ckpt included). */
const TORCH_EXTENSIONS = new Set(['.pt', '.pth', '.bin', '.ckpt']);
/** `.pt`/`.pth` files that are not zips may be plain pickles (pickle.dump of NumPy state under a torch name). */
const PLAIN_PICKLE_TORCH_EXTENSIONS = new Set(['.pt', '.pth']);
/** The PROTO opcode that starts every pickle of protocol 2 or later. */
const PICKLE_PROTO = 0x80;
const ZIP_MAGIC = Buffer.from('PK\x03\x04', 'latin1');
const EMPTY_ZIP_MAGIC = Buffer.from('PK\x05\x06', 'latin1');

class FileIngest {
  readonly parts: FilePart[] = [];
  readonly hasher = new ContentHasher();
  private readonly blocks = new ReadBlocks();

  constructor(
    readonly file: InputFile,
    readonly writer: ObjectWriter,
    readonly config: StoreConfig,
    readonly signal?: AbortSignal,
    readonly delta?: DeltaSource,
  ) {}

  private checkInterrupted(): void {
    if (this.signal?.aborted)
      throw new CkvcError('CKVC_INTERRUPTED', `interrupted while reading ${this.file.path}; nothing was committed`, {
        path: this.file.path,
      });
  }

  /** Bytes kept verbatim (headers, opaque files): content-defined chunks. */
  async verbatim(start: number, end: number): Promise<void> {
    for await (const chunk of contentDefinedChunks(this.file, start, end, this.config.cdc, this.blocks)) {
      this.checkInterrupted();
      this.hasher.update(chunk);
      const id = await this.writer.put('chunk', chunk, { transient: true });
      this.parts.push({ kind: 'chunk', id, size: chunk.length });
    }
  }

  /** One tensor's bytes: fixed-size chunks aligned to its first byte, then a tensor object listing them. */
  async tensor(t: TensorRegion): Promise<void> {
    const chunks: ObjectId[] = [];
    const size = t.end - t.start;
    const chunkSize = this.config.tensorChunkSize;
    const bases = await this.delta?.bases.chunksFor(this.delta.path, {
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      size,
      chunkSize,
      ...(t.order ? { order: t.order } : {}),
    });
    for await (const chunk of fixedChunks(this.file, t.start, t.end, chunkSize, chunkBuffer)) {
      this.checkInterrupted();
      this.hasher.update(chunk);
      const opts = { width: t.groupWidth, base: bases?.[chunks.length], owned: true };
      chunks.push(await this.writer.put('chunk', chunk, opts));
    }
    const body = encodeTensor({
      dtype: t.dtype,
      shape: t.shape,
      size,
      chunkSize: this.config.tensorChunkSize,
      chunks,
      ...(t.order ? { order: t.order } : {}),
    });
    const id = await this.writer.put('tensor', body);
    this.parts.push({ kind: 'tensor', id, size, name: t.name, ...(t.tied ? { tied: t.tied } : {}) });
  }

  /** A tensor stored as its element bytes while the file holds its text: the text is what the file hash sees. */
  async rendered(t: RenderedRegion): Promise<void> {
    const chunks: ObjectId[] = [];
    const size = t.data.length;
    const chunkSize = this.config.tensorChunkSize;
    const key = { name: t.name, dtype: t.dtype, shape: t.shape, size, chunkSize };
    const bases = await this.delta?.bases.chunksFor(this.delta.path, key);
    for (let off = 0; off < size; off += chunkSize) {
      this.checkInterrupted();
      const chunk = t.data.subarray(off, Math.min(off + chunkSize, size));
      chunks.push(await this.writer.put('chunk', chunk, { width: t.groupWidth, base: bases?.[chunks.length] }));
    }
    this.hasher.update(t.text);
    const body = encodeTensor({ dtype: t.dtype, shape: t.shape, size, chunkSize, chunks });
    const id = await this.writer.put('tensor', body);
    this.parts.push({ kind: 'tensor', id, size: t.text.length, name: t.name, json: t.json });
  }

  async execute(plan: FilePlan): Promise<void> {
    const problem = planCoverageProblem(plan, this.file.size);
    if (problem)
      throw new CkvcError(
        'CKVC_INTERNAL',
        `ingest plan for ${this.file.path} (${plan.format}) is inconsistent: ${problem}`,
        { path: this.file.path },
      );
    for (const r of plan.regions) {
      if (r.kind === 'verbatim') await this.verbatim(r.start, r.end);
      else if (r.kind === 'rendered') await this.rendered(r);
      else await this.tensor(r);
    }
  }
}

async function planSafetensors(file: InputFile): Promise<FilePlan> {
  const first8 = await file.readAt(0, Math.min(8, file.size));
  const headerLength = readSafetensorsHeaderLength(first8, file.size, file.path);
  const header = await file.readAt(8, headerLength);
  const layout = parseSafetensorsHeader(header, file.size, file.path);
  const plan = new PlanBuilder('safetensors', file.size);
  // The length prefix and header stay one verbatim region, even before a zero-size first tensor.
  plan.verbatimTo(layout.dataStart);
  for (const t of layout.tensors)
    plan.tensor({
      start: t.begin,
      end: t.end,
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      groupWidth: safetensorsElementWidth(t.dtype),
    });
  return plan.done();
}

/** A refused file written this recently may be a save in progress rather than a damaged one. */
const RECENTLY_WRITTEN_MS = 60_000;

/** Reads just enough of the file to choose its plan; a file claiming a format it breaks is refused. */
async function planFile(file: InputFile, warnings: string[]): Promise<FilePlan> {
  const ext = path.extname(file.path).toLowerCase();
  if (ext === '.safetensors') return planSafetensors(file);
  if (ext === '.json') return planJson(file);
  const magic = await file.readAt(0, Math.min(NPY_MAGIC.length, file.size));
  const isZip = magic.subarray(0, 4).equals(ZIP_MAGIC) || magic.subarray(0, 4).equals(EMPTY_ZIP_MAGIC);
  const opaque = new PlanBuilder('opaque', file.size).done();
  try {
    if (ext === '.npy') return await planNpy(file);
    if (isZip && ext === '.npz') return await planNpz(file, await readZipLayout(file));
    const plainPickle = !isZip && PLAIN_PICKLE_TORCH_EXTENSIONS.has(ext) && magic[0] === PICKLE_PROTO;
    if (PICKLE_EXTENSIONS.has(ext) || plainPickle) return await planPickle(file);
    if (isZip && TORCH_EXTENSIONS.has(ext)) {
      const plan = await planTorchZip(file, await readZipLayout(file));
      if (plan?.namesUnavailable)
        warnings.push(
          `${file.path}: tensor names not read (${plan.namesUnavailable}); its storages are stored as data/<key>`,
        );
      // A torch.save that failed part way (an object that would not pickle) leaves a zip without its data.pkl.
      if (!plan)
        warnings.push(
          `${file.path} is a zip named like a PyTorch checkpoint but has no single <name>/data.pkl, as a torch.save that failed part way leaves one: stored as plain bytes; check that it loads`,
        );
      return plan ?? opaque;
    }
  } catch (e) {
    if (!(e instanceof ZipRefusal || e instanceof NpyRefusal)) throw e;
    const kind =
      ext === '.npy'
        ? 'NumPy .npy file'
        : ext === '.npz'
          ? 'NumPy .npz archive'
          : `zip archive named like a PyTorch checkpoint (${ext})`;
    // A save still in progress looks damaged: then it has changed since it was opened, or only just before.
    await file.checkUnchanged();
    // A time ahead of this clock (skew, a network file system) counts as just written.
    const ageMs = Math.max(0, Date.now() - Number(file.opened.mtimeNs / 1_000_000n));
    const advice =
      ageMs < RECENTLY_WRITTEN_MS
        ? `It was last written ${ageMs < 1000 ? 'just now' : `${Math.round(ageMs / 1000)} s ago`}: if a program is still saving it, commit again once the save has finished; if it is damaged, re-save it`
        : 'If the file is damaged, re-save it';
    throw new CkvcError(
      'CKVC_BAD_TENSOR_FILE',
      `${file.path} is a ${kind} that ckvc will not read: ${e.message}; nothing was committed. ${advice}; to store it as plain bytes anyway, rename it to another extension`,
      { path: file.path, format: kind, reason: e.message, lastWrittenMsAgo: ageMs },
    );
  }
  return opaque;
}

/** The parent commit's tensors, and this file's path in the tree being committed (to find its parent twin). */
export interface DeltaSource {
  bases: DeltaBases;
  path: string;
}

/** The files cache and the check of what it offers (FORMAT.md §19): a file unchanged since it was stored is not read. */
export interface KnownFiles {
  cache: FilesCache;
  /** `commit --reread`: every file is read (and recorded again). */
  reread: boolean;
  /** The recipe, when the store holds everything it needs (recipe-held.ts). */
  held(recipe: ObjectId, treePath: string): Promise<FileRecipe | undefined>;
}

/** A file taken unread: its recipe, when the cache offers one for this state of the file and the store holds it. */
async function unchangedRecipe(file: InputFile, key: string, known: KnownFiles, treePath: string) {
  const candidate = known.reread ? undefined : known.cache.candidate(key, file.opened);
  if (!candidate) return undefined;
  const recipe = await known.held(candidate, treePath);
  if (!recipe || recipe.size !== file.size) return undefined;
  known.cache.used(key);
  return { id: candidate, recipe };
}

export async function ingestFile(
  p: string,
  writer: ObjectWriter,
  config: StoreConfig,
  signal?: AbortSignal,
  open: OpenOptions = {},
  delta?: DeltaSource,
  known?: { files: KnownFiles; path: string },
): Promise<IngestedFile> {
  const file = await InputFile.open(p, open);
  try {
    // Keyed by the path as opened: its extension decides how the file is cut (planFile).
    const key = path.resolve(p);
    const unchanged = known && (await unchangedRecipe(file, key, known.files, known.path));
    if (unchanged) {
      const { recipe } = unchanged;
      const tensors = recipeTensorCount(recipe);
      return { id: unchanged.id, size: file.size, format: recipe.format, tensors, warnings: [], unread: true };
    }
    const startedMs = Date.now();
    const warnings: string[] = [];
    const plan = await planFile(file, warnings);
    const ing = new FileIngest(file, writer, config, signal, delta);
    await ing.execute(plan);
    const after = await file.checkUnchanged();
    const recipe: FileRecipe = {
      size: file.size,
      b3: ing.hasher.digestHex(),
      format: plan.format,
      parts: ing.parts,
      ...(plan.packed ? { packed: plan.packed } : {}),
    };
    const tensors = recipeTensorCount(recipe);
    // A recipe with a JSON render part needs a version 3 store: older readers would only call it corrupt.
    const storeVersion = recipeStoreVersion(recipe);
    const id = await writer.put('file', encodeFileRecipe(recipe), { storeVersion });
    // A file that gave a warning is read again next time, so that the warning is given again.
    if (known && warnings.length === 0) known.files.cache.record(key, file.opened, after, startedMs, id);
    return { id, size: file.size, format: plan.format, tensors, warnings };
  } finally {
    await file.close();
  }
}
