// A file recipe rebuilds one file byte for byte from parts in order: raw chunks (headers, CDC pieces of opaque
// files) and tensor objects (spec/FORMAT.md §5.3), the latter either as their bytes or rendered as JSON text
// (spec/JSON.md). The whole-file BLAKE3 is checked after every rebuild.
import { decodeCanonical, encodeCanonical, type CborValue } from '../canonical-cbor.js';
import { isJsonLayoutText, type JsonArrayLayout } from '../../input-formats/json-array-render.js';
import { idToBytes, type ObjectId } from '../object-id.js';
import { compact, corrupt, FieldReader, uintValue } from './fields.js';

export type FilePart =
  | { kind: 'chunk'; id: ObjectId; size: number }
  /**
   * `size` is the part's bytes in the file: the tensor's size, or the length of its JSON text when `json`.
   * `tied`: the file's other names for this same whole tensor (tied weights: torch.save keeps one storage).
   */
  | { kind: 'tensor'; id: ObjectId; size: number; name: string; tied?: string[]; json?: JsonArrayLayout };

export type TensorPart = Extract<FilePart, { kind: 'tensor' }>;

/** More names for one tensor than any model ties; recipes are untrusted, and every walk reads their names. */
export const MAX_TIED_NAMES = 1024;

/** What names a tensor part: its own name and its tied names. */
export interface TensorNames {
  name: string;
  tied?: readonly string[];
}

/**
 * Every name a tensor part goes by: its own first, then its tied names. A selection that reads (`ls`, `cat
 * --tensor`, `checkout --tensor`, `diff --tensor`) takes the part by any of them; records (prune, fetch filters)
 * by its own name alone (object-walk.ts tensorReleased, FORMAT.md §13).
 */
export function tensorPartNames(p: TensorNames): readonly string[] {
  return p.tied ? [p.name, ...p.tied] : [p.name];
}

/** How a rendered part's numbers are written; the only style so far is Python's json.dump (spec/JSON.md §3). */
export const JSON_NUMBER_STYLE = 'python';
/** More nesting levels than any tensor a reader cuts (json-arrays.ts JSON_ARRAY_MAX_DIMS). */
const JSON_LAYOUT_MAX_LEVELS = 64;

export const FILE_FORMATS = ['opaque', 'safetensors'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number] | (string & {});

/**
 * A tensor whose bytes lie inside compressed parts of the file (a deflated .npz member): described for `ls`,
 * but it has no tensor object and cannot be read on its own (spec/FORMAT.md §5.3).
 */
export interface PackedTensor {
  name: string;
  dtype: string;
  shape: number[];
  size: number;
  order?: 'F';
}

export interface FileRecipe {
  size: number;
  b3: string;
  format: FileFormat;
  parts: FilePart[];
  packed?: PackedTensor[];
}

/** The tensors a file holds, as `commit` counts them and `ls` lists them: its tensor parts and its deflated members. */
export function recipeTensorCount(r: FileRecipe): number {
  let n = r.packed?.length ?? 0;
  for (const part of r.parts) if (part.kind === 'tensor') n++;
  return n;
}

export function encodeFileRecipe(r: FileRecipe): Uint8Array {
  return encodeCanonical(
    compact({
      size: r.size,
      b3: Buffer.from(r.b3, 'hex'),
      format: r.format,
      parts: r.parts.map((p) =>
        p.kind === 'chunk'
          ? { chunk: idToBytes(p.id), size: p.size }
          : compact({
              tensor: idToBytes(p.id),
              size: p.size,
              name: p.name,
              tied: p.tied?.length ? p.tied : undefined,
              json: p.json ? encodeLayout(p.json) : undefined,
            }),
      ),
      packed: r.packed?.length
        ? r.packed.map((t) => compact({ name: t.name, dtype: t.dtype, shape: t.shape, size: t.size, order: t.order }))
        : undefined,
    }),
  );
}

export function decodeFileRecipe(bytes: Uint8Array, where = 'file object'): FileRecipe {
  const f = FieldReader.of(decodeCanonical(bytes, where), where);
  const b3 = f.raw('b3');
  if (!(b3 instanceof Uint8Array) || b3.length !== 32) throw corrupt(where, 'field "b3" is not a 32-byte hash');
  const size = f.uint('size');
  let total = 0;
  const parts = f.array('parts').map((raw, i): FilePart => {
    const p = FieldReader.of(raw, `${where} parts[${i}]`);
    const partSize = p.uint('size');
    total += partSize;
    if (p.has('chunk')) return { kind: 'chunk', id: p.id('chunk'), size: partSize };
    if (p.has('tensor')) {
      const json = p.has('json') ? decodeLayout(p.map('json')) : undefined;
      const name = p.string('name');
      const tied = p.has('tied') ? decodeTied(p, name) : undefined;
      return {
        kind: 'tensor',
        id: p.id('tensor'),
        size: partSize,
        name,
        ...(tied ? { tied } : {}),
        ...(json ? { json } : {}),
      };
    }
    throw corrupt(`${where} parts[${i}]`, 'is neither a chunk nor a tensor reference');
  });
  if (total !== size) throw corrupt(where, `parts add up to ${total} bytes, not the recorded ${size}`);
  refuseTiedClash(parts, where);
  const packed = f.has('packed')
    ? f.array('packed').map((raw, i): PackedTensor => {
        const t = FieldReader.of(raw, `${where} packed[${i}]`);
        const order = t.has('order') ? t.string('order') : undefined;
        if (order !== undefined && order !== 'F')
          throw corrupt(`${where} packed[${i}]`, `has order ${JSON.stringify(order)} (known: "F")`);
        const shape = t.array('shape').map((d, j) => uintValue(d, `${where} packed[${i}] shape[${j}]`));
        return {
          name: t.string('name'),
          dtype: t.string('dtype'),
          shape,
          size: t.uint('size'),
          ...(order ? { order: 'F' as const } : {}),
        };
      })
    : undefined;
  return {
    size,
    b3: Buffer.from(b3).toString('hex'),
    format: f.string('format'),
    parts,
    ...(packed ? { packed } : {}),
  };
}

/**
 * A tied name is a second name of one part and nothing else in the file: the same text as another part's name or
 * tied name would make a lookup by name pick either (writers never make one; recipes are untrusted).
 */
function refuseTiedClash(parts: FilePart[], where: string): void {
  if (!parts.some((p) => p.kind === 'tensor' && p.tied)) return;
  const owner = new Map<string, number>();
  parts.forEach((p, i) => {
    if (p.kind !== 'tensor') return;
    for (const name of tensorPartNames(p)) {
      const other = owner.get(name);
      if (
        other !== undefined &&
        other !== i &&
        (p.tied?.includes(name) || (parts[other] as TensorPart).tied?.includes(name))
      )
        throw corrupt(
          `${where} parts[${i}]`,
          `has the tied name ${JSON.stringify(name)}, which parts[${other}] also has`,
        );
      owner.set(name, i);
    }
  });
}

/** A part's tied names: 1 to MAX_TIED_NAMES texts, none repeated nor its own name (a writer never makes them). */
function decodeTied(f: FieldReader, name: string): string[] {
  const v = f.array('tied');
  if (v.length === 0 || v.length > MAX_TIED_NAMES)
    throw corrupt(f.where, `field "tied" has ${v.length} names (1 to ${MAX_TIED_NAMES})`);
  const seen = new Set([name]);
  return v.map((s, i) => {
    if (typeof s !== 'string') throw corrupt(f.where, `tied[${i}] is not a text`);
    if (seen.has(s)) throw corrupt(f.where, `tied[${i}] repeats the name ${JSON.stringify(s)}`);
    seen.add(s);
    return s;
  });
}

function encodeLayout(l: JsonArrayLayout): CborValue {
  return { numbers: JSON_NUMBER_STYLE, open: l.open, sep: l.sep, close: l.close };
}

/** A rendered part's layout, refused unless it is short list punctuation and whitespace (recipes are untrusted). */
function decodeLayout(f: FieldReader): JsonArrayLayout {
  const style = f.string('numbers');
  if (style !== JSON_NUMBER_STYLE) {
    const known = `known: "${JSON_NUMBER_STYLE}"`;
    throw corrupt(
      f.where,
      `writes numbers in style ${JSON.stringify(style)}, which this ckvc does not know (${known}); upgrade ckvc`,
    );
  }
  const texts = (key: string): string[] => {
    const v = f.array(key);
    if (v.length === 0 || v.length > JSON_LAYOUT_MAX_LEVELS) {
      throw corrupt(f.where, `field "${key}" has ${v.length} levels (1 to ${JSON_LAYOUT_MAX_LEVELS})`);
    }
    return v.map((s, i) => {
      if (typeof s !== 'string' || !isJsonLayoutText(s)) {
        throw corrupt(f.where, `${key}[${i}] is not JSON list punctuation and whitespace`);
      }
      return s;
    });
  };
  const layout = { open: texts('open'), sep: texts('sep'), close: texts('close') };
  if (layout.sep.length !== layout.open.length || layout.close.length !== layout.open.length) {
    throw corrupt(f.where, 'has open, sep and close lists of different lengths');
  }
  return layout;
}
