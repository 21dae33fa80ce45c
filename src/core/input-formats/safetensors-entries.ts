// The per-entry rules of a safetensors header (spec/SAFETENSORS.md), checked entry by entry in header order:
// duplicate-name, bad-metadata, bad-entry, unknown-dtype, bad-shape, bad-offsets.

import { SAFETENSORS_DTYPE_BITS } from './safetensors-dtypes.js';
import { failSafetensors as fail } from './safetensors-failure.js';
import { JsonObject, describeJsonValue as describe, plainSafeInteger, type JsonValue } from './strict-json.js';

/** A tensor entry that passed the per-entry rules; b and e are its data offsets relative to the data start. */
export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  b: number;
  e: number;
}

/** Splits the header object into its metadata and its tensor entries, checking each in header order. */
export function checkEntries(
  root: JsonObject,
  source: string | undefined,
): { metadata: Record<string, string> | undefined; entries: TensorEntry[] } {
  const seen = new Set<string>();
  let metadata: Record<string, string> | undefined;
  const entries: TensorEntry[] = [];
  const { keys, values } = root;
  for (let i = 0; i < keys.length; i++) {
    const name = keys[i] as string;
    const value = values[i] as JsonValue;
    if (seen.has(name)) {
      fail('duplicate-name', `header has the key ${JSON.stringify(name)} more than once`, source, { name });
    }
    seen.add(name);
    if (name === '__metadata__') metadata = readMetadata(value, source);
    else entries.push(readTensorEntry(name, value, source));
  }
  return { metadata, entries };
}

function readMetadata(value: JsonValue, source: string | undefined): Record<string, string> | undefined {
  // The reference types __metadata__ as Option<HashMap<String, String>>: null means "absent".
  if (value === null) return undefined;
  if (!(value instanceof JsonObject)) {
    fail('bad-metadata', `__metadata__ is ${describe(value)}, not an object of strings`, source);
  }
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (let k = 0; k < value.keys.length; k++) {
    const key = value.keys[k] as string;
    const v = value.values[k] as JsonValue;
    if (seen.has(key)) {
      fail('bad-metadata', `__metadata__ has the key ${JSON.stringify(key)} more than once`, source, { key });
    }
    seen.add(key);
    if (typeof v !== 'string') {
      fail('bad-metadata', `__metadata__[${JSON.stringify(key)}] is ${describe(v)}, not a string`, source, { key });
    }
    // defineProperty, so a key named "__proto__" becomes an own property instead of touching the prototype
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function readTensorEntry(name: string, value: JsonValue, source: string | undefined): TensorEntry {
  const q = (): string => JSON.stringify(name);
  const fields = readEntryFields(name, value, source);
  const dtype = fields.dtype;
  if (typeof dtype !== 'string') {
    fail('bad-entry', `tensor ${q()}: dtype is ${describe(dtype)}, not a string`, source, { name, field: 'dtype' });
  }
  if (!Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype)) {
    fail('unknown-dtype', `tensor ${q()}: unknown dtype ${JSON.stringify(dtype)}`, source, { name, dtype });
  }
  const shape = readShape(name, fields.shape, source);
  const [b, e] = readDataOffsets(name, fields.data_offsets, source);
  return { name, dtype, shape, b, e };
}

type EntryField = 'dtype' | 'shape' | 'data_offsets';

/** The three fields of a tensor entry, each present exactly once; other keys are ignored. */
function readEntryFields(name: string, value: JsonValue, source: string | undefined): Record<EntryField, JsonValue> {
  const q = (): string => JSON.stringify(name);
  if (!(value instanceof JsonObject)) {
    fail('bad-entry', `tensor ${q()}: entry is ${describe(value)}, not an object`, source, { name });
  }
  const found: Partial<Record<EntryField, JsonValue>> = {};
  for (let k = 0; k < value.keys.length; k++) {
    const key = value.keys[k] as string;
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') continue; // as serde without deny_unknown_fields
    if (found[key] !== undefined) {
      fail('bad-entry', `tensor ${q()}: field "${key}" appears more than once`, source, { name, field: key });
    }
    found[key] = value.values[k] as JsonValue;
  }
  const { dtype, shape, data_offsets } = found;
  if (dtype === undefined || shape === undefined || data_offsets === undefined) {
    const field = dtype === undefined ? 'dtype' : shape === undefined ? 'shape' : 'data_offsets';
    fail('bad-entry', `tensor ${q()}: missing field "${field}"`, source, { name, field });
  }
  return { dtype, shape, data_offsets };
}

function readShape(name: string, shapeV: JsonValue, source: string | undefined): number[] {
  const q = (): string => JSON.stringify(name);
  if (!Array.isArray(shapeV)) {
    fail('bad-shape', `tensor ${q()}: shape is ${describe(shapeV)}, not an array`, source, { name });
  }
  const shape: number[] = new Array<number>(shapeV.length);
  for (let d = 0; d < shapeV.length; d++) {
    const n = plainSafeInteger(shapeV[d] as JsonValue);
    if (n === undefined) {
      const what = describe(shapeV[d]);
      fail('bad-shape', `tensor ${q()}: shape[${d}] is ${what}, not a non-negative integer up to 2^53-1`, source, {
        name,
        index: d,
      });
    }
    shape[d] = n;
  }
  return shape;
}

function readDataOffsets(name: string, offsetsV: JsonValue, source: string | undefined): [number, number] {
  const q = (): string => JSON.stringify(name);
  if (!Array.isArray(offsetsV) || offsetsV.length !== 2) {
    fail('bad-offsets', `tensor ${q()}: data_offsets is ${describe(offsetsV)}, not an array of 2`, source, { name });
  }
  const b = plainSafeInteger(offsetsV[0] as JsonValue);
  const e = plainSafeInteger(offsetsV[1] as JsonValue);
  if (b === undefined || e === undefined) {
    const which = b === undefined ? 0 : 1;
    fail(
      'bad-offsets',
      `tensor ${q()}: data_offsets[${which}] is ${describe(offsetsV[which])}, not a non-negative integer up to 2^53-1`,
      source,
      { name, index: which },
    );
  }
  if (b > e) {
    fail('bad-offsets', `tensor ${q()}: data_offsets [${b}, ${e}] begin after they end`, source, {
      name,
      dataOffsets: [b, e],
    });
  }
  return [b, e];
}
