// Finds the tensors a PyTorch data.pkl describes, and under which names, WITHOUT unpickling: the opcodes run on
// a symbolic machine where a global is just its dotted name and a call just records what was called with what.
// Nothing is imported, constructed or executed, so a hostile pickle can at worst produce wrong names (the bytes
// are stored exactly either way). spec/ARCHIVES.md §2 says what is read.
import { Machine } from './pickle-machine.js';
import { PickleNotUnderstood, type Value } from './pickle-values.js';

export { PickleNotUnderstood };

export interface TorchTensorView {
  /** Dotted path of dict keys and list indices from the pickle's root, e.g. "model.layer.weight". */
  name: string;
  /** The storage's key: the archive entry is `<prefix>/data/<key>`. */
  storageKey: string;
  /** The storage class, e.g. "FloatStorage" (from `torch.FloatStorage`). */
  storageType: string;
  /** In elements of the storage's dtype. */
  offset: number;
  shape: number[];
  stride: number[];
  /** The element type `_rebuild_tensor_v3` names (e.g. "float8_e4m3fn"): torch 2 saves such dtypes in untyped storages. */
  dtype?: string;
}

export interface TorchPickleSummary {
  views: TorchTensorView[];
  /** Every storage the pickle references, by key, with its class name. */
  storages: Map<string, string>;
}

const MAX_DEPTH = 64;
const MAX_VIEWS = 1_000_000;
/** Longer dotted names are not names anyone types: such tensors keep `data/<key>`. */
const MAX_NAME_CHARS = 1024;

function globalName(v: Value): string | undefined {
  return typeof v === 'object' && v !== null && v.k === 'global' ? v.name : undefined;
}

function items(v: Value): Value[] | undefined {
  return typeof v === 'object' && v !== null && (v.k === 'tuple' || v.k === 'list') ? v.items : undefined;
}

function uintList(v: Value): number[] | undefined {
  const xs = items(v);
  if (!xs?.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) return undefined;
  return xs as number[];
}

const REBUILD_TENSOR = new Set([
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v3',
]);
const REBUILD_WRAPPER = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);

class NameWalk {
  readonly views: TorchTensorView[] = [];
  readonly storages = new Map<string, string>();
  private readonly active = new Set<Value>();
  /** Shared memo entries can make a small pickle a huge tree (a chain of diamonds): the walk has a budget. */
  private budget: number;

  constructor(pickleBytes: number) {
    this.budget = 1_000_000 + 16 * pickleBytes;
  }

  private storage(pid: Value): { key: string; type: string } | undefined {
    if (typeof pid !== 'object' || pid === null || pid.k !== 'pid') return undefined;
    const t = items(pid.value);
    if (t?.[0] !== 'storage') return undefined;
    const cls = globalName(t[1] ?? null);
    const key = t[2];
    if (!cls || typeof key !== 'string') return undefined;
    const type = cls.replace(/^torch\.(storage\.)?/, '');
    this.storages.set(key, type);
    return { key, type };
  }

  private tensor(name: string, args: Value[]): boolean {
    const st = this.storage(args[0] ?? null);
    const offset = args[1];
    const shape = uintList(args[2] ?? null);
    const stride = uintList(args[3] ?? null);
    if (
      !st ||
      typeof offset !== 'number' ||
      !Number.isSafeInteger(offset) ||
      offset < 0 ||
      !shape ||
      !stride ||
      shape.length !== stride.length
    )
      return false;
    if (this.views.length >= MAX_VIEWS) throw new PickleNotUnderstood(`more than ${MAX_VIEWS} tensors`);
    if (name.length > MAX_NAME_CHARS) return true; // its storage keeps data/<key>
    const dtype = globalName(args[6] ?? null)?.match(/^torch\.([A-Za-z0-9_]+)$/)?.[1];
    this.views.push({
      name,
      storageKey: st.key,
      storageType: st.type,
      offset,
      shape,
      stride,
      ...(dtype ? { dtype } : {}),
    });
    return true;
  }

  visit(v: Value, name: string, depth: number): void {
    if (typeof v !== 'object' || v === null || depth > MAX_DEPTH || this.active.has(v)) return;
    if (--this.budget < 0)
      throw new PickleNotUnderstood('the pickle refers to the same objects too many times to walk');
    this.active.add(v); // a memo can make a container hold itself
    try {
      this.visitInner(v, name, depth);
    } finally {
      this.active.delete(v);
    }
  }

  private visitInner(v: Exclude<Value, null | boolean | number | string>, name: string, depth: number): void {
    const join = (key: Value): string | undefined => {
      const part =
        typeof key === 'string' ? key : typeof key === 'number' && Number.isSafeInteger(key) ? String(key) : undefined;
      return part === undefined ? undefined : name === '' ? part : `${name}.${part}`;
    };
    switch (v.k) {
      case 'pid':
        this.storage(v);
        return;
      case 'dict':
        for (const [k, x] of v.entries) {
          const n = join(k);
          if (n !== undefined) this.visit(x, n, depth + 1);
        }
        return;
      case 'list':
      case 'tuple':
        v.items.forEach((x, i) => {
          this.visit(x, join(i)!, depth + 1);
        });
        return;
      case 'call': {
        const fn = globalName(v.fn);
        const args = items(v.args) ?? [];
        if (fn && REBUILD_TENSOR.has(fn) && this.tensor(name, args)) return;
        if (fn && REBUILD_WRAPPER.has(fn)) return this.visit(args[0] ?? null, name, depth + 1);
        if (fn === 'torch._tensor._rebuild_from_type_v2') {
          return this.visit({ k: 'call', fn: args[0] ?? null, args: args[2] ?? null, entries: [] }, name, depth + 1);
        }
        // Anything else (an OrderedDict, a dataclass, a module): its items and its state may hold tensors.
        for (const [k, x] of v.entries) {
          const n = join(k);
          if (n !== undefined) this.visit(x, n, depth + 1);
        }
        if (v.state !== undefined && v.state !== null) {
          // A module's or an OrderedDict's state: its own keys (`_parameters`, `_metadata`) continue the name.
          this.visit(v.state, name, depth + 1);
        }
        for (const x of args) if (typeof x === 'object' && x !== null && x.k === 'pid') this.storage(x);
        return;
      }
      default:
        return;
    }
  }
}

/** Reads a torch data.pkl's opcodes; throws PickleNotUnderstood when the stream is not one this reader follows. */
export function readTorchPickle(pkl: Uint8Array): TorchPickleSummary {
  const root = new Machine(pkl).run();
  const walk = new NameWalk(pkl.length);
  walk.visit(root, '', 0);
  return { views: walk.views, storages: walk.storages };
}
