// A tensor object: the bytes of one tensor as fixed-size chunks aligned to its first byte (spec/FORMAT.md §5.2).
// Name lives in the file recipe, so the same tensor under two names, or in a .pt and a .safetensors, is one object.
import { decodeCanonical, encodeCanonical } from '../canonical-cbor.js';
import { idToBytes, type ObjectId } from '../object-id.js';
import { compact, corrupt, FieldReader, uintValue } from './fields.js';

export interface TensorObject {
  dtype: string;
  shape: number[];
  size: number;
  chunkSize: number;
  chunks: ObjectId[];
  /** "F" when the bytes hold the array in column-major (Fortran) order, as NumPy may save it; absent = row-major. */
  order?: 'F';
}

export function encodeTensor(t: TensorObject): Uint8Array {
  return encodeCanonical(
    compact({
      dtype: t.dtype,
      shape: t.shape,
      size: t.size,
      chunk_size: t.chunkSize,
      chunks: t.chunks.map(idToBytes),
      order: t.order,
    }),
  );
}

export function decodeTensor(bytes: Uint8Array, where = 'tensor object'): TensorObject {
  const f = FieldReader.of(decodeCanonical(bytes, where), where);
  const shape = f.array('shape').map((d, i) => uintValue(d, `${where} shape[${i}]`));
  const size = f.uint('size');
  const chunkSize = f.uint('chunk_size');
  const chunks = f.ids('chunks');
  if (chunkSize === 0) throw corrupt(where, 'has chunk_size 0');
  if (chunks.length !== Math.ceil(size / chunkSize)) {
    throw corrupt(where, `lists ${chunks.length} chunks for ${size} bytes at chunk_size ${chunkSize}`);
  }
  const order = f.has('order') ? f.string('order') : undefined;
  if (order !== undefined && order !== 'F') throw corrupt(where, `has order ${JSON.stringify(order)} (known: "F")`);
  return { dtype: f.string('dtype'), shape, size, chunkSize, chunks, ...(order ? { order } : {}) };
}

/** Byte length of chunk i of a tensor: all full except the last. */
export function tensorChunkLength(t: TensorObject, i: number): number {
  return Math.min(t.chunkSize, t.size - i * t.chunkSize);
}
