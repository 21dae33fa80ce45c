// Object IDs: BLAKE3-256 over a type-binding prefix and the object's uncompressed body (spec/FORMAT.md §2).
// The prefix makes a chunk and a commit with equal bytes different objects, so a pack record can never be
// served as the wrong type. IDs travel as 64-char lowercase hex in JS and as 32-byte strings in CBOR.
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { CkvcError } from '../errors.js';

export const OBJECT_TYPES = ['chunk', 'tensor', 'file', 'tree', 'commit', 'tag'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

/** On-disk type byte in pack records (spec/FORMAT.md §4). */
export const OBJECT_TYPE_CODE: Readonly<Record<ObjectType, number>> = {
  chunk: 1,
  tensor: 2,
  file: 3,
  tree: 4,
  commit: 5,
  tag: 6,
};

export function objectTypeFromCode(code: number): ObjectType | undefined {
  return OBJECT_TYPES[code - 1];
}

export type ObjectId = string;
export const ID_BYTES = 32;
const HEX_ID = /^[0-9a-f]{64}$/;

const PREFIXES = new Map<ObjectType, Buffer>(OBJECT_TYPES.map((t) => [t, Buffer.from(`ckvc1:${t}\0`, 'latin1')]));

/** What an object's ID hashes before its bytes (a worker thread hashing chunks needs it: store/off-thread-writer.ts). */
export function objectIdPrefix(type: ObjectType): Buffer {
  return PREFIXES.get(type)!;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * One hasher, reset for each ID (objectId never yields between its calls): a new hasher per object and a digest
 * Buffer turned into hex cost ~4 µs an object, a quarter of that with one hasher hashing straight to hex; a
 * commit or checkout computes thousands.
 */
let idHasher: Blake3Hasher | undefined;

export function objectId(type: ObjectType, body: Uint8Array): ObjectId {
  const h = (idHasher ??= new Blake3Hasher());
  h.reset();
  h.update(PREFIXES.get(type)!);
  h.update(asBuffer(body));
  return h.digest('hex');
}

/** Plain BLAKE3 of a whole file, as `b3sum` prints it: recorded in file recipes and re-checked on checkout. */
export class ContentHasher {
  private readonly h = new Blake3Hasher();
  update(bytes: Uint8Array): void {
    this.h.update(asBuffer(bytes));
  }
  digestHex(): string {
    return this.h.digest('hex');
  }
}

export function isObjectId(s: unknown): boolean {
  return typeof s === 'string' && HEX_ID.test(s);
}

export function idToBytes(id: ObjectId): Uint8Array {
  if (!isObjectId(id)) throw new CkvcError('CKVC_INTERNAL', `not an object ID: ${String(id)}`);
  return Buffer.from(id, 'hex');
}

export function idFromBytes(b: Uint8Array, where: string): ObjectId {
  if (!(b instanceof Uint8Array) || b.length !== ID_BYTES) {
    throw new CkvcError('CKVC_CORRUPT_OBJECT', `${where}: expected a 32-byte object ID`, { where });
  }
  return asBuffer(b).toString('hex');
}
