// Commits one file as a recipe (spec/FORMAT.md §5.3). safetensors files are split at their tensors so an
// unchanged tensor costs nothing; anything else is content-defined chunked. Either way the whole file is
// hashed as it streams past, and its identity is re-checked at the end so a torn file is never recorded.
import * as path from 'node:path';
import { CkvcError } from '../../core/errors.js';
import { ContentHasher, type ObjectId } from '../../core/object-id.js';
import { encodeFileRecipe, type FilePart, type FileRecipe } from '../../core/objects/file-recipe.js';
import { encodeTensor } from '../../core/objects/tensor-object.js';
import { parseSafetensorsHeader, readSafetensorsHeaderLength, safetensorsElementWidth } from '../../core/formats/safetensors.js';
import type { ObjectWriter } from '../object-writer.js';
import type { StoreConfig } from '../store-layout.js';
import { contentDefinedChunks, fixedChunks } from './chunk-reader.js';
import { InputFile } from './input-file.js';

export interface IngestedFile {
  id: ObjectId;
  size: number;
  format: string;
  tensors: number;
}

class FileIngest {
  readonly parts: FilePart[] = [];
  readonly hasher = new ContentHasher();

  constructor(readonly file: InputFile, readonly writer: ObjectWriter, readonly config: StoreConfig, readonly signal?: AbortSignal) {}

  private checkInterrupted(): void {
    if (this.signal?.aborted) throw new CkvcError('CKVC_INTERRUPTED', `interrupted while reading ${this.file.path}; nothing was committed`, { path: this.file.path });
  }

  /** Bytes kept verbatim (headers, opaque files): content-defined chunks. */
  async verbatim(start: number, end: number): Promise<void> {
    for await (const chunk of contentDefinedChunks(this.file, start, end, this.config.cdc)) {
      this.checkInterrupted();
      this.hasher.update(chunk);
      this.parts.push({ kind: 'chunk', id: await this.writer.put('chunk', chunk), size: chunk.length });
    }
  }

  /** One tensor's bytes: fixed-size chunks aligned to its first byte, then a tensor object listing them. */
  async tensor(name: string, dtype: string, shape: number[], start: number, end: number): Promise<void> {
    const width = safetensorsElementWidth(dtype);
    const chunks: ObjectId[] = [];
    for await (const chunk of fixedChunks(this.file, start, end, this.config.tensorChunkSize)) {
      this.checkInterrupted();
      this.hasher.update(chunk);
      chunks.push(await this.writer.put('chunk', chunk, { width }));
    }
    const body = encodeTensor({ dtype, shape, size: end - start, chunkSize: this.config.tensorChunkSize, chunks });
    this.parts.push({ kind: 'tensor', id: await this.writer.put('tensor', body), size: end - start, name });
  }
}

async function ingestSafetensors(ing: FileIngest): Promise<number> {
  const { file } = ing;
  const first8 = Buffer.alloc(Math.min(8, file.size));
  await file.readExactly(first8, first8.length, 0);
  const headerLength = readSafetensorsHeaderLength(first8, file.size, file.path);
  const header = Buffer.alloc(headerLength);
  await file.readExactly(header, headerLength, 8);
  const layout = parseSafetensorsHeader(header, file.size, file.path);
  await ing.verbatim(0, layout.dataStart);
  for (const t of layout.tensors) await ing.tensor(t.name, t.dtype, t.shape, t.begin, t.end);
  return layout.tensors.length;
}

export async function ingestFile(p: string, writer: ObjectWriter, config: StoreConfig, signal?: AbortSignal): Promise<IngestedFile> {
  const file = await InputFile.open(p);
  try {
    const ing = new FileIngest(file, writer, config, signal);
    let format = 'opaque';
    let tensors = 0;
    if (path.extname(p).toLowerCase() === '.safetensors') {
      format = 'safetensors';
      tensors = await ingestSafetensors(ing);
    } else {
      await ing.verbatim(0, file.size);
    }
    await file.checkUnchanged();
    const recipe: FileRecipe = { size: file.size, b3: ing.hasher.digestHex(), format, parts: ing.parts };
    return { id: await writer.put('file', encodeFileRecipe(recipe)), size: file.size, format, tensors };
  } finally {
    await file.close();
  }
}
