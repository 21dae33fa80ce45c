// Plans a PyTorch zip checkpoint (torch.save since 1.6): every stored `<prefix>/data/<key>` storage becomes a
// tensor part, named and shaped from data.pkl where one tensor covers it whole; everything else (the pickle,
// zip headers, padding, version records, the central directory) is kept verbatim (spec/ARCHIVES.md §2).
import {
  readTorchPickle,
  PickleNotUnderstood,
  type TorchPickleSummary,
} from '../../core/input-formats/pickle-tensors.js';
import { nameStorages } from '../../core/input-formats/torch-storages.js';
import { ZIP_METHOD_STORED } from '../../core/input-formats/zip-directory.js';
import { PlanBuilder, type FilePlan } from './file-plan.js';
import type { InputFile } from './input-file.js';
import type { ZipLayout } from './zip-reader.js';

/** Larger pickles are kept verbatim without reading names from them. */
export const TORCH_PICKLE_MAX_BYTES = 64 * 1024 * 1024;

export interface TorchPlan extends FilePlan {
  /** Why tensor names could not be read, when they could not (the bytes are stored exactly either way). */
  namesUnavailable?: string;
}

/** Undefined when the zip is not a torch checkpoint (no single `<prefix>/data.pkl`). */
export async function planTorchZip(file: InputFile, zip: ZipLayout): Promise<TorchPlan | undefined> {
  const pkls = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) return undefined;
  const pkl = pkls[0]!;
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  const storages = zip.entries
    .filter(
      (e) =>
        e.method === ZIP_METHOD_STORED &&
        e.name.startsWith(`${prefix}data/`) &&
        !e.name.slice(prefix.length + 5).includes('/') &&
        e.name.length > prefix.length + 5,
    )
    .map((e) => ({ entry: e, key: e.name.slice(prefix.length + 5), bytes: e.size }));

  let summary: TorchPickleSummary | undefined;
  let namesUnavailable: string | undefined;
  if (pkl.method !== ZIP_METHOD_STORED) namesUnavailable = 'data.pkl is compressed';
  else if (pkl.size > TORCH_PICKLE_MAX_BYTES)
    namesUnavailable = `data.pkl is larger than ${TORCH_PICKLE_MAX_BYTES} bytes`;
  else {
    const bytes = await file.readAt(pkl.dataOffset, pkl.size);
    try {
      summary = readTorchPickle(bytes);
    } catch (e) {
      if (!(e instanceof PickleNotUnderstood)) throw e;
      namesUnavailable = `data.pkl: ${e.message}`;
    }
  }

  const named = new Map(nameStorages(storages, summary).map((n) => [n.key, n]));
  const plan = new PlanBuilder('pytorch', file.size);
  for (const s of storages) {
    const n = named.get(s.key)!;
    plan.tensor({
      start: s.entry.dataOffset,
      end: s.entry.dataEnd,
      name: n.name,
      ...(n.tied ? { tied: n.tied } : {}),
      dtype: n.dtype,
      shape: n.shape,
      groupWidth: n.groupWidth,
    });
  }
  return { ...plan.done(), ...(namesUnavailable ? { namesUnavailable } : {}) };
}
