// Finds, for a tensor being committed, the same tensor in the parent commit: its chunks are the bases that
// changed chunks are XOR-coded against (spec/FORMAT.md §4.3). "Same" means the same name, dtype, shape, layout
// and chunk size, in the file at the same path or, when that path is new (step_1000.pt, then step_2000.pt),
// the one file of the parent holding a tensor of that name. Only a hint: a missing or unreadable parent
// object means plain encoding, never a failed commit.
import { CkvcError } from '../../core/errors.js';
import type { ObjectId } from '../../core/store-format/object-id.js';
import type { FileRecipe } from '../../core/store-format/objects/file-recipe.js';
import type { TensorObject } from '../../core/store-format/objects/tensor-object.js';
import type { TreeObject } from '../../core/store-format/objects/tree-object.js';
import { listTreeFiles } from '../object-walk.js';

export interface ParentSource {
  readTree(id: ObjectId): Promise<TreeObject>;
  readFileRecipe(id: ObjectId): Promise<FileRecipe>;
  readTensor(id: ObjectId): Promise<TensorObject>;
}

export interface TensorShapeKey {
  name: string;
  dtype: string;
  shape: number[];
  size: number;
  chunkSize: number;
  order?: 'F';
}

export class DeltaBases {
  private byPath: Promise<Map<string, ObjectId>> | undefined;
  private byName: Map<string, ObjectId[]> | undefined;
  /** The tensor objects of each of the parent's files, by path. */
  private byFile: Map<string, ObjectId[]> | undefined;
  /** Tensor objects asked for or prefetched, read once each. */
  private readonly tensors = new Map<ObjectId, Promise<TensorObject>>();

  constructor(
    private readonly src: ParentSource,
    private readonly parentTree: ObjectId,
  ) {}

  private async load(): Promise<Map<string, ObjectId>> {
    const byPath = new Map<string, ObjectId>();
    const byName = new Map<string, ObjectId[]>();
    const byFile = new Map<string, ObjectId[]>();
    for (const f of await listTreeFiles(this.src, this.parentTree)) {
      const ids: ObjectId[] = [];
      for (const p of (await this.src.readFileRecipe(f.id)).parts) {
        if (p.kind !== 'tensor') continue;
        byPath.set(`${f.path}\0${p.name}`, p.id);
        byName.set(p.name, [...(byName.get(p.name) ?? []), p.id]);
        ids.push(p.id);
      }
      byFile.set(f.path, ids);
    }
    this.byName = byName;
    this.byFile = byFile;
    return byPath;
  }

  private tensor(id: ObjectId): Promise<TensorObject> {
    let read = this.tensors.get(id);
    if (!read) {
      read = this.src.readTensor(id);
      read.catch(() => {}); // a prefetch never asked for must not count as unhandled; askers see the error
      this.tensors.set(id, read);
    }
    return read;
  }

  /** The parent's chunk IDs for this tensor (index i is the base of chunk i), or undefined when there is none. */
  async chunksFor(filePath: string, t: TensorShapeKey): Promise<ObjectId[] | undefined> {
    try {
      this.byPath ??= this.load();
      const byPath = await this.byPath;
      // The parent twin's tensors are read all at once when its first is asked for, not one per tensor as this
      // file's are ingested: each read is a round trip through the index and the thread pool (finding the bases
      // of a JSON snapshot's five tensors took 2.9 ms of its commit one by one, 2.3 ms so).
      for (const id of this.byFile!.get(filePath) ?? []) void this.tensor(id);
      const candidates = byPath.has(`${filePath}\0${t.name}`)
        ? [byPath.get(`${filePath}\0${t.name}`)!]
        : (this.byName!.get(t.name) ?? []);
      for (const id of candidates) {
        const p = await this.tensor(id);
        const same =
          p.dtype === t.dtype &&
          p.size === t.size &&
          p.chunkSize === t.chunkSize &&
          p.order === t.order &&
          p.shape.length === t.shape.length &&
          p.shape.every((d, i) => d === t.shape[i]);
        if (same) return p.chunks;
      }
      return undefined;
    } catch (e) {
      if (e instanceof CkvcError) return undefined;
      throw e;
    }
  }
}
