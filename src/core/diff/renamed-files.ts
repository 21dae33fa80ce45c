// Which file of B is which file of A under another name, for `ckvc diff`: a training loop that saves
// step_1000.safetensors and then step_2000.safetensors in place of it made two commits whose diff listed every
// tensor as removed and added again, with no figures for how the weights moved. A removed and an added file are
// taken as one renamed file when they have the same format and share tensor names, and neither shares a tensor name
// with another removed or added file of that format: only a pairing nothing else competes for, so a folder that
// keeps several steps is not paired by guesswork (the same caution as delta coding's parent twin, FORMAT.md §4.3).

export interface DiffedFile {
  path: string;
  format: string;
  tensorNames: readonly string[];
}

/** Renamed files as B's path -> A's path. */
export function pairRenamedFiles(removed: readonly DiffedFile[], added: readonly DiffedFile[]): Map<string, string> {
  const removedByName = byTensorName(removed);
  const addedByName = byTensorName(added);
  const out = new Map<string, string>();
  for (const b of added) {
    const a = onlySharer(b, removedByName);
    if (a && onlySharer(a, addedByName) === b) out.set(b.path, a.path);
  }
  return out;
}

function byTensorName(files: readonly DiffedFile[]): Map<string, DiffedFile[]> {
  const out = new Map<string, DiffedFile[]>();
  for (const f of files)
    for (const n of new Set(f.tensorNames)) {
      const key = `${f.format}\0${n}`;
      const list = out.get(key);
      if (list) list.push(f);
      else out.set(key, [f]);
    }
  return out;
}

/** The one file of `index` sharing a tensor name (and the format) with `f`, or undefined for none or several. */
function onlySharer(f: DiffedFile, index: Map<string, DiffedFile[]>): DiffedFile | undefined {
  let only: DiffedFile | undefined;
  for (const n of f.tensorNames)
    for (const o of index.get(`${f.format}\0${n}`) ?? []) {
      if (only && o !== only) return undefined;
      only = o;
    }
  return only;
}
