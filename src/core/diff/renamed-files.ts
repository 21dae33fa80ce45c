// Which file of B is which file of A under another name, for `ckvc diff`: a training loop that saves
// step_1000.safetensors and then step_2000.safetensors in place of it made two commits whose diff listed every
// tensor as removed and added again, with no figures for how the weights moved. Only a pairing nothing competes
// for is made, so that figures are never computed against the wrong checkpoint:
// - a removed and an added file of the same format;
// - at least half of the tensors of each are the same tensor in the other (same name, dtype and shape), so that
//   two files that happen to share a name (np.savez's `arr_0`, an adapter's `lm_head.weight`) are not paired;
// - no other file of A or of B of that format, kept ones included, shares a tensor name with either: a folder that
//   keeps the last steps (step_2000 in both commits, step_1000 gone, step_3000 new) is not paired by guesswork
//   (the same caution as delta coding's parent twin, FORMAT.md §4.3).
// An .npy file's one tensor is named after the file (step_200.npy holds `step_200`): for that format, names are
// compared with their runs of digits as one, so step_200.npy and step_300.npy pair as any renamed file does.

export interface DiffedFile {
  path: string;
  format: string;
  tensorNames: readonly string[];
}

/**
 * The pairs the names allow, as B's path -> A's path (`a` and `b` are all the files of each side): the caller
 * keeps those whose tensors are mostly the same (mostlySame), which takes reading their dtypes and shapes.
 */
export function renameCandidates(
  a: readonly DiffedFile[],
  b: readonly DiffedFile[],
  removed: ReadonlySet<string>,
  added: ReadonlySet<string>,
): Map<string, string> {
  const inA = byTensorName(a);
  const inB = byTensorName(b);
  const out = new Map<string, string>();
  for (const nb of b) {
    if (!added.has(nb.path)) continue;
    const na = onlySharer(nb, inA);
    if (na && removed.has(na.path) && onlySharer(na, inB) === nb) out.set(nb.path, na.path);
  }
  return out;
}

/** The name tensors are matched by: as it is, but for a format that names its tensor after its file. */
export function matchedName(format: string, name: string): string {
  return format === 'npy' ? name.replace(/[0-9]+/g, '#') : name;
}

function byTensorName(files: readonly DiffedFile[]): Map<string, DiffedFile[]> {
  const out = new Map<string, DiffedFile[]>();
  for (const f of files)
    for (const n of new Set(f.tensorNames.map((t) => matchedName(f.format, t)))) {
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
    for (const o of index.get(`${f.format}\0${matchedName(f.format, n)}`) ?? []) {
      if (only && o !== only) return undefined;
      only = o;
    }
  return only;
}

/** A tensor's name with its dtype and shape (and layout) as one string. */
export interface TensorLayout {
  name: string;
  layout: string;
}

/** At least half of each file's tensors have a same-named tensor of the same dtype and shape in the other. */
export function mostlySame(format: string, x: readonly TensorLayout[], y: readonly TensorLayout[]): boolean {
  const layouts = new Map(x.map((t) => [matchedName(format, t.name), t.layout]));
  let same = 0;
  for (const t of y) if (layouts.get(matchedName(format, t.name)) === t.layout) same++;
  return same > 0 && same * 2 >= x.length && same * 2 >= y.length;
}
