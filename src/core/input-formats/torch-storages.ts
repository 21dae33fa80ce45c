// What each storage of a PyTorch zip checkpoint is called and holds (spec/ARCHIVES.md §2): its dtype from the
// storage class the pickle names, and its name and shape from the one tensor that covers it whole, if there is
// one. Storages become tensor parts of the file recipe, so an unchanged storage costs nothing in the next commit.
import { MAX_TIED_NAMES } from '../store-format/objects/file-recipe.js';
import type { TorchPickleSummary, TorchTensorView } from './pickle-tensors.js';

export interface TorchDtype {
  /** A safetensors dtype name where one exists, else "torch:<Class>" (never written into a safetensors file). */
  dtype: string;
  /** Bytes per element. */
  bytes: number;
  /** Byte-grouping width for the chunk codec (complex numbers group by their real parts' width). */
  groupWidth: number;
}

const STORAGE_DTYPES: Readonly<Record<string, TorchDtype>> = Object.freeze({
  DoubleStorage: { dtype: 'F64', bytes: 8, groupWidth: 8 },
  FloatStorage: { dtype: 'F32', bytes: 4, groupWidth: 4 },
  HalfStorage: { dtype: 'F16', bytes: 2, groupWidth: 2 },
  BFloat16Storage: { dtype: 'BF16', bytes: 2, groupWidth: 2 },
  LongStorage: { dtype: 'I64', bytes: 8, groupWidth: 8 },
  IntStorage: { dtype: 'I32', bytes: 4, groupWidth: 4 },
  ShortStorage: { dtype: 'I16', bytes: 2, groupWidth: 2 },
  CharStorage: { dtype: 'I8', bytes: 1, groupWidth: 1 },
  ByteStorage: { dtype: 'U8', bytes: 1, groupWidth: 1 },
  BoolStorage: { dtype: 'BOOL', bytes: 1, groupWidth: 1 },
  UInt16Storage: { dtype: 'U16', bytes: 2, groupWidth: 2 },
  UInt32Storage: { dtype: 'U32', bytes: 4, groupWidth: 4 },
  UInt64Storage: { dtype: 'U64', bytes: 8, groupWidth: 8 },
  Float8_e4m3fnStorage: { dtype: 'F8_E4M3', bytes: 1, groupWidth: 1 },
  Float8_e5m2Storage: { dtype: 'F8_E5M2', bytes: 1, groupWidth: 1 },
  Float8_e8m0fnuStorage: { dtype: 'F8_E8M0', bytes: 1, groupWidth: 1 },
  ComplexHalfStorage: { dtype: 'torch:ComplexHalf', bytes: 4, groupWidth: 2 },
  ComplexFloatStorage: { dtype: 'C64', bytes: 8, groupWidth: 4 },
  ComplexDoubleStorage: { dtype: 'torch:ComplexDouble', bytes: 16, groupWidth: 8 },
  QInt8Storage: { dtype: 'torch:QInt8', bytes: 1, groupWidth: 1 },
  QUInt8Storage: { dtype: 'torch:QUInt8', bytes: 1, groupWidth: 1 },
  QInt32Storage: { dtype: 'torch:QInt32', bytes: 4, groupWidth: 4 },
  UntypedStorage: { dtype: 'U8', bytes: 1, groupWidth: 1 },
});

// torch dtype names as `_rebuild_tensor_v3` names them (torch.float8_e4m3fn), for storages saved untyped.
const TENSOR_DTYPES: Readonly<Record<string, string>> = Object.freeze({
  float64: 'DoubleStorage',
  double: 'DoubleStorage',
  float32: 'FloatStorage',
  float: 'FloatStorage',
  float16: 'HalfStorage',
  half: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  long: 'LongStorage',
  int32: 'IntStorage',
  int: 'IntStorage',
  int16: 'ShortStorage',
  short: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
  uint16: 'UInt16Storage',
  uint32: 'UInt32Storage',
  uint64: 'UInt64Storage',
  float8_e4m3fn: 'Float8_e4m3fnStorage',
  float8_e5m2: 'Float8_e5m2Storage',
  float8_e8m0fnu: 'Float8_e8m0fnuStorage',
  complex32: 'ComplexHalfStorage',
  chalf: 'ComplexHalfStorage',
  complex64: 'ComplexFloatStorage',
  cfloat: 'ComplexFloatStorage',
  complex128: 'ComplexDoubleStorage',
  cdouble: 'ComplexDoubleStorage',
});

/** The dtype of a torch tensor dtype name (`float8_e4m3fn`); `torch:<name>` for those without a storage class here. */
export function torchTensorDtype(name: string): TorchDtype {
  return Object.hasOwn(TENSOR_DTYPES, name)
    ? torchStorageDtype(TENSOR_DTYPES[name])
    : { ...UNKNOWN, dtype: `torch:${name}` };
}

/** Raw bytes whose element type the pickle did not tell (unreadable pickle, unknown storage class). */
const UNKNOWN: TorchDtype = { dtype: 'torch:unknown', bytes: 1, groupWidth: 1 };

export function torchStorageDtype(storageClass: string | undefined): TorchDtype {
  if (storageClass === undefined) return UNKNOWN;
  return Object.hasOwn(STORAGE_DTYPES, storageClass)
    ? STORAGE_DTYPES[storageClass]!
    : { ...UNKNOWN, dtype: `torch:${storageClass}` };
}

export interface TorchStorageEntry {
  key: string;
  bytes: number;
}

export interface NamedStorage {
  key: string;
  /** The covering tensor's name, else `data/<key>`. */
  name: string;
  dtype: string;
  shape: number[];
  groupWidth: number;
  /** Other names the pickle gives this whole storage with the same dtype and shape (tied weights), in its order. */
  tied?: string[];
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

function coversWhole(v: TorchTensorView, bytes: number, width: number): boolean {
  const numel = v.shape.reduce((a, d) => a * d, 1);
  return v.offset === 0 && numel * width === bytes && isContiguous(v.shape, v.stride);
}

/**
 * The other names of a named storage: views that cover it whole, in order, with its shape and dtype, as a model
 * whose head reuses its embedding saves it. A view of another shape keeps no name, as in nameStorages.
 */
function tiedNames(
  views: TorchTensorView[],
  named: TorchTensorView,
  bytes: number,
  width: number,
  taken: Set<string>,
): string[] {
  const tied: string[] = [];
  for (const v of views) {
    if (v === named || v.name === '' || taken.has(v.name) || tied.length >= MAX_TIED_NAMES) continue;
    if (v.dtype !== named.dtype || !sameShape(v.shape, named.shape) || !coversWhole(v, bytes, width)) continue;
    taken.add(v.name);
    tied.push(v.name);
  }
  return tied;
}

/** The view a storage is named after, with what tiedNames needs to compare others to it. */
interface WholeView {
  view: TorchTensorView;
  bytes: number;
  width: number;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Names each storage. A storage takes a tensor's name and shape only when that tensor is the whole storage
 * laid out in order (what a state_dict holds); a storage shared by views, or holding a slice, keeps its key,
 * so a name never promises a layout the bytes do not have. Other views that cover it whole with the same shape
are its tied names. Names are unique within the file.
 */
export function nameStorages(storages: TorchStorageEntry[], pickle: TorchPickleSummary | undefined): NamedStorage[] {
  const viewsByKey = new Map<string, TorchTensorView[]>();
  for (const v of pickle?.views ?? []) {
    const list = viewsByKey.get(v.storageKey) ?? [];
    list.push(v);
    viewsByKey.set(v.storageKey, list);
  }
  const taken = new Set<string>(storages.map((s) => `data/${s.key}`));
  const named = storages.map((s): { storage: NamedStorage; whole?: WholeView } => {
    // torch 2 keeps some dtypes (float8, ...) in untyped byte storages and names the dtype on the tensor instead.
    const storageClass = pickle?.storages.get(s.key);
    const typed = (viewsByKey.get(s.key) ?? []).find((v) => v.dtype !== undefined);
    const dt =
      storageClass === 'UntypedStorage' && typed ? torchTensorDtype(typed.dtype!) : torchStorageDtype(storageClass);
    const whole =
      s.bytes % dt.bytes === 0
        ? (viewsByKey.get(s.key) ?? []).find((v) => v.name !== '' && coversWhole(v, s.bytes, dt.bytes))
        : undefined;
    if (whole && !taken.has(whole.name)) {
      taken.add(whole.name);
      const storage = { key: s.key, name: whole.name, dtype: dt.dtype, shape: whole.shape, groupWidth: dt.groupWidth };
      return { storage, whole: { view: whole, bytes: s.bytes, width: dt.bytes } };
    }
    if (s.bytes % dt.bytes !== 0)
      return { storage: { key: s.key, name: `data/${s.key}`, dtype: UNKNOWN.dtype, shape: [s.bytes], groupWidth: 1 } };
    const shape = [s.bytes / dt.bytes];
    return { storage: { key: s.key, name: `data/${s.key}`, dtype: dt.dtype, shape, groupWidth: dt.groupWidth } };
  });
  // Tied names once every storage has its own: a tied name never takes the name another storage is known by.
  return named.map(({ storage, whole }): NamedStorage => {
    if (!whole) return storage;
    const tied = tiedNames(viewsByKey.get(storage.key)!, whole.view, whole.bytes, whole.width, taken);
    return tied.length ? { ...storage, tied } : storage;
  });
}
