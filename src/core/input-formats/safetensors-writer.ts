// Builds the start of a safetensors file (8-byte length prefix + JSON header) for a chosen set of tensors, for
// `ckvc checkout --tensor`. Pure code: the caller streams the tensors' bytes after it, in the order returned.
//
// The layout is the reference writer's (`prepare` in the Rust `safetensors` crate, used by save_file in every
// binding): tensors sorted by dtype, widest alignment first, then by name; `__metadata__` first; compact JSON;
// the header padded with spaces to a multiple of 8. Together these put every tensor at an offset that is a
// multiple of its element size, which zero-copy loaders rely on, and make the bytes depend only on the
// tensor set (not on the order a source file happened to use). spec/SAFETENSORS.md, "Writing a subset".
import { CkvcError } from '../errors.js';
import { SAFETENSORS_DTYPE_BITS } from './safetensors-dtypes.js';
import { parseSafetensorsHeader, SAFETENSORS_MAX_HEADER_BYTES } from './safetensors.js';

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Bytes of the tensor's data. */
  size: number;
  /** Memory order of the bytes as the tensor object records it: absent for row-major, "F" for column-major. */
  order?: string;
}

export interface SafetensorsHead<T extends SafetensorsEntry> {
  /** The 8-byte little-endian header length followed by the padded header. */
  head: Uint8Array;
  /** The tensors in the order their bytes must follow the head. */
  order: T[];
  /** head.length + the tensors' sizes. */
  fileSize: number;
}

// The reference `Dtype` enum in declaration order: its derived Ord is what the reference sorts by (it is
// declared "in increasing alignment order"). Kept here rather than read from the parser's table so a
// reordering there cannot silently change the bytes ckvc writes.
const DTYPE_RANK: ReadonlyMap<string, number> = new Map(
  [
    'BOOL',
    'F4',
    'F6_E2M3',
    'F6_E3M2',
    'U8',
    'I8',
    'F8_E5M2',
    'F8_E4M3',
    'F8_E8M0',
    'I16',
    'U16',
    'F16',
    'BF16',
    'I32',
    'U32',
    'F32',
    'C64',
    'F64',
    'I64',
    'U64',
  ].map((d, i) => [d, i]),
);

const utf8 = new TextEncoder();

/** Bytes a tensor of this dtype and shape holds in a safetensors file; undefined if it cannot be one. */
export function safetensorsByteSize(dtype: string, shape: readonly number[]): number | undefined {
  if (!Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype)) return undefined;
  const bits = SAFETENSORS_DTYPE_BITS[dtype] as number;
  let numel = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return undefined;
    numel *= d;
    if (numel > Number.MAX_SAFE_INTEGER) return undefined;
  }
  // Sub-byte dtypes (F4, F6_*) must fill whole bytes, as the parser demands (rule size-mismatch).
  const tailBits = (numel % 8) * bits;
  if (tailBits % 8 !== 0) return undefined;
  const bytes = Math.floor(numel / 8) * bits + tailBits / 8;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

// Lone UTF-16 surrogates have no UTF-8 form: JSON.stringify would escape them and every reader refuses them.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why this tensor cannot be written into a safetensors file (a sentence fragment starting with "its"), or
 * undefined when it can. Tensor objects from other formats may carry dtypes safetensors has no name for.
 */
export function safetensorsUnwritable(t: SafetensorsEntry): string | undefined {
  if (!Object.hasOwn(SAFETENSORS_DTYPE_BITS, t.dtype))
    return `its dtype ${JSON.stringify(t.dtype)} is not a safetensors dtype`;
  const want = safetensorsByteSize(t.dtype, t.shape);
  if (want === undefined)
    return `its shape [${t.shape.join(', ')}] of ${t.dtype} is not a whole number of bytes up to 2^53-1`;
  if (want !== t.size)
    return `its ${t.size} bytes are not the ${want} that ${t.dtype} shape [${t.shape.join(', ')}] needs`;
  // Column-major bytes under the same shape would load as a different array: safetensors is row-major only.
  if (t.order !== undefined)
    return `its ${t.dtype} bytes are in ${t.order === 'F' ? 'column-major (Fortran)' : JSON.stringify(t.order)} order and safetensors holds row-major data only`;
  if (t.name === '__metadata__') return 'its name "__metadata__" is reserved for the metadata in a safetensors header';
  if (LONE_SURROGATE.test(t.name)) return 'its name is not valid Unicode (a lone surrogate)';
  return undefined;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** The reference writer's order: dtype rank descending, then name by UTF-8 bytes (Rust's String order). */
export function safetensorsWriteOrder<T extends SafetensorsEntry>(tensors: readonly T[]): T[] {
  const keyed = tensors.map((t) => ({ t, rank: DTYPE_RANK.get(t.dtype) ?? -1, name: utf8.encode(t.name) }));
  keyed.sort((x, y) => y.rank - x.rank || compareBytes(x.name, y.name));
  return keyed.map((k) => k.t);
}

function bad(message: string, data: Record<string, unknown>): never {
  throw new CkvcError('CKVC_BAD_ARGUMENT', message, data);
}

/**
 * The length prefix and header of a safetensors file holding `tensors` (at least one) and, when given,
 * `metadata` (written with its keys in UTF-8 byte order). The result is checked with the parser before it is
 * returned, so what ckvc writes is always something it would itself accept.
 */
export function buildSafetensorsHead<T extends SafetensorsEntry>(
  tensors: readonly T[],
  metadata?: Readonly<Record<string, string>>,
): SafetensorsHead<T> {
  if (tensors.length === 0) bad('a safetensors file needs at least one tensor here: the selection is empty', {});
  const seen = new Set<string>();
  for (const t of tensors) {
    const why = safetensorsUnwritable(t);
    if (why !== undefined)
      bad(`tensor ${JSON.stringify(t.name)} cannot be written to a safetensors file: ${why}`, {
        tensor: t.name,
        dtype: t.dtype,
      });
    if (seen.has(t.name))
      bad(`tensor name ${JSON.stringify(t.name)} appears twice; a safetensors header needs unique names`, {
        tensor: t.name,
      });
    seen.add(t.name);
  }
  const order = safetensorsWriteOrder(tensors);

  let json = '{';
  if (metadata !== undefined) {
    const keys = Object.keys(metadata)
      .map((k) => ({ k, b: utf8.encode(k) }))
      .sort((x, y) => compareBytes(x.b, y.b))
      .map((x) => x.k);
    for (const k of keys) {
      const v = metadata[k];
      if (typeof v !== 'string' || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
        bad(`metadata key ${JSON.stringify(k)} must map a valid Unicode string to one`, { key: k });
      }
    }
    json += `"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`;
    if (order.length) json += ',';
  }
  let offset = 0;
  json += order
    .map((t) => {
      const entry = `${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + t.size}]}`;
      offset += t.size;
      return entry;
    })
    .join(',');
  json += '}';

  const text = utf8.encode(json);
  const n = Math.ceil(text.length / 8) * 8;
  if (n > SAFETENSORS_MAX_HEADER_BYTES) {
    bad(
      `the safetensors header for ${order.length} tensors would be ${n} bytes, over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit readers enforce; select fewer tensors`,
      { headerLength: n },
    );
  }
  const fileSize = 8 + n + offset;
  if (!Number.isSafeInteger(fileSize)) bad(`the tensors add up to more than 2^53-1 bytes`, { bytes: offset });
  const head = new Uint8Array(8 + n).fill(0x20, 8 + text.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(text, 8);

  // Anything the parser refuses here is a bug in this function, not bad input: report it as such.
  try {
    parseSafetensorsHeader(head.subarray(8), fileSize);
  } catch (e) {
    throw new CkvcError(
      'CKVC_INTERNAL',
      `built a safetensors header that does not parse (${e instanceof Error ? e.message : String(e)}); please report this`,
      {},
      { cause: e },
    );
  }
  return { head, order, fileSize };
}
