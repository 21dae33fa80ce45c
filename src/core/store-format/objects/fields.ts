// Typed reads of fields from a decoded CBOR map. Every object decoder goes through these, so a malformed
// object always fails with CKVC_CORRUPT_OBJECT naming the object and the field, never with a TypeError.
import type { CborValue } from '../canonical-cbor.js';
import { CkvcError } from '../../errors.js';
import { idFromBytes, type ObjectId } from '../object-id.js';

export type CborMap = { [key: string]: CborValue };

export class FieldReader {
  constructor(
    private readonly fields: CborMap,
    readonly where: string,
  ) {}

  static of(value: CborValue, where: string): FieldReader {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
      throw corrupt(where, 'is not a CBOR map');
    }
    return new FieldReader(value, where);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.fields, key);
  }

  raw(key: string): CborValue {
    if (!this.has(key)) throw corrupt(this.where, `lacks required field "${key}"`);
    return this.fields[key]!;
  }

  string(key: string): string {
    const v = this.raw(key);
    if (typeof v !== 'string') throw corrupt(this.where, `field "${key}" is not a string`);
    return v;
  }

  uint(key: string): number {
    return uintValue(this.raw(key), `${this.where} field "${key}"`);
  }

  number(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number') throw corrupt(this.where, `field "${key}" is not a number`);
    return v;
  }

  boolean(key: string): boolean {
    const v = this.raw(key);
    if (typeof v !== 'boolean') throw corrupt(this.where, `field "${key}" is not a boolean`);
    return v;
  }

  id(key: string): ObjectId {
    return idValue(this.raw(key), `${this.where} field "${key}"`);
  }

  ids(key: string): ObjectId[] {
    return this.array(key).map((v, i) => idValue(v, `${this.where} ${key}[${i}]`));
  }

  array(key: string): CborValue[] {
    const v = this.raw(key);
    if (!Array.isArray(v)) throw corrupt(this.where, `field "${key}" is not an array`);
    return v;
  }

  map(key: string): FieldReader {
    return FieldReader.of(this.raw(key), `${this.where} field "${key}"`);
  }

  entries(): [string, CborValue][] {
    return Object.entries(this.fields);
  }

  optional<T>(key: string, read: (key: string) => T): T | undefined {
    return this.has(key) ? read.call(this, key) : undefined;
  }
}

export function uintValue(v: CborValue, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw corrupt(where, 'is not an unsigned integer');
  return v;
}

export function idValue(v: CborValue, where: string): ObjectId {
  if (!(v instanceof Uint8Array)) throw corrupt(where, 'is not an object ID');
  return idFromBytes(v, where);
}

export function corrupt(where: string, what: string): CkvcError {
  return new CkvcError('CKVC_CORRUPT_OBJECT', `${where} ${what}`, { where });
}

/** Drops undefined fields so optional values are absent rather than encoded (canonical form has no undefined). */
export function compact(obj: Record<string, CborValue | undefined>): CborMap {
  const out: CborMap = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out;
}
