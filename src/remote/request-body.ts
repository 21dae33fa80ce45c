// The JSON bodies of the sync protocol's requests (spec/PROTOCOL.md §3), checked field by field before anything
// acts on them: a body is untrusted input, and a cast that lets `[null]` through turns into a 500 further on.
import { bad, bundleRefNameProblem } from '../core/store-format/bundle-format.js';
import { CkvcError } from '../core/errors.js';
import { isJsonObject } from '../core/json-object.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import { MAX_DELTA_CHAIN } from '../store/pack-reader.js';
import { checkFilter } from '../store/promise-records.js';

export const MAX_IDS_PER_REQUEST = 200_000;
export const MAX_REF_CHANGES = 10_000;
const MAX_WHO = 200;

export interface RefChange {
  name: string;
  old: ObjectId | null;
  new: ObjectId | null;
}

const where = (endpoint: string) => `the ${endpoint} request`;

function object(v: unknown, what: string, keys: { required: string[]; optional?: string[] }): Record<string, unknown> {
  if (!isJsonObject(v)) throw bad(what, 'is not a JSON object');
  const o = v;
  const known = new Set([...keys.required, ...(keys.optional ?? [])]);
  const extra = Object.keys(o).find((k) => !known.has(k));
  if (extra !== undefined)
    throw bad(what, `has an unknown field ${JSON.stringify(extra)}; it takes ${[...known].join(', ')}`, {
      field: extra,
    });
  const missing = keys.required.find((k) => !(k in o));
  if (missing !== undefined) throw bad(what, `lacks the field ${JSON.stringify(missing)}`, { field: missing });
  return o;
}

export function checkIds(ids: unknown, what: string, max = MAX_IDS_PER_REQUEST): ObjectId[] {
  if (!Array.isArray(ids) || ids.length > max) throw bad(what, `must be a list of at most ${max} object IDs`);
  const i = ids.findIndex((x) => typeof x !== 'string' || !isObjectId(x));
  if (i >= 0) throw bad(what, `[${i}] is not an object ID (64 lowercase hex digits)`, { index: i });
  return ids as ObjectId[];
}

export function parseIdsBody(v: unknown, endpoint: string): ObjectId[] {
  return checkIds(object(v, where(endpoint), { required: ['ids'] }).ids, `${where(endpoint)}: ids`);
}

/** `{"ids": [...], "bases"?: {id: depth}}`: chunks the client holds outside `ids`, with their chain depth there. */
export function parseObjectsBody(v: unknown): { ids: ObjectId[]; bases?: Map<ObjectId, number> } {
  const o = object(v, where('objects'), { required: ['ids'], optional: ['bases'] });
  const ids = checkIds(o.ids, `${where('objects')}: ids`);
  if (o.bases === undefined) return { ids };
  return { ids, bases: checkDepths(o.bases, `${where('objects')}: bases`, ids.length) };
}

/** A map of object ID to chain depth (an integer 0 to 64), at most `max` entries. */
export function checkDepths(v: unknown, what: string, max: number): Map<ObjectId, number> {
  if (!isJsonObject(v)) throw bad(what, 'is not a JSON object');
  const entries = Object.entries(v);
  if (entries.length > max) throw bad(what, `names ${entries.length} chunks, more than the ${max} objects asked for`);
  const out = new Map<ObjectId, number>();
  for (const [id, depth] of entries) {
    if (!isObjectId(id)) throw bad(what, `has a key that is not an object ID (64 lowercase hex digits)`);
    if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 0 || depth > MAX_DELTA_CHAIN)
      throw bad(what, `gives ${id.slice(0, 16)} a depth that is not an integer from 0 to ${MAX_DELTA_CHAIN}`, { id });
    out.set(id, depth);
  }
  return out;
}

export function parsePlanBody(v: unknown): { wants: ObjectId[]; haves: ObjectId[]; filter?: string[] } {
  const o = object(v, where('plan'), { required: ['wants', 'haves'], optional: ['filter'] });
  const ids = {
    wants: checkIds(o.wants, `${where('plan')}: wants`),
    haves: checkIds(o.haves, `${where('plan')}: haves`),
  };
  if (o.filter === undefined) return ids;
  return { ...ids, filter: checkFilterBody(o.filter, `${where('plan')}: filter`) };
}

/** `{"tensors": [glob, ...]}`: 1 to 256 globs (PROTOCOL.md §3), each a valid glob. */
function checkFilterBody(v: unknown, what: string): string[] {
  const f = object(v, what, { required: ['tensors'] });
  if (!Array.isArray(f.tensors) || !f.tensors.every((g) => typeof g === 'string' && g !== ''))
    throw bad(what, 'tensors must be a list of non-empty glob strings');
  try {
    return checkFilter(f.tensors as string[], what);
  } catch (e) {
    throw bad(what, e instanceof Error ? e.message : String(e));
  }
}

/** Ref changes as update-refs takes them: well-formed names and IDs, each ref once, at most MAX_REF_CHANGES. */
export function checkRefChanges(changes: unknown, what: string): RefChange[] {
  if (!Array.isArray(changes) || changes.length === 0 || changes.length > MAX_REF_CHANGES) {
    throw bad(what, `changes must be a list of 1 to ${MAX_REF_CHANGES} ref updates`);
  }
  const seen = new Set<string>();
  return changes.map((c, i) => {
    const at = `${what}: changes[${i}]`;
    const o = object(c, at, { required: ['name', 'old', 'new'] });
    if (typeof o.name !== 'string') throw bad(at, 'name is not a string');
    const problem = bundleRefNameProblem(o.name);
    if (problem)
      throw new CkvcError('CKVC_BAD_REF_NAME', `${at}: ref ${JSON.stringify(o.name)} ${problem}`, { ref: o.name });
    // An alias is the store's own: it follows its metric by its definition there, which no push may move or drop.
    if (!o.name.startsWith('refs/heads/') && !o.name.startsWith('refs/tags/'))
      throw new CkvcError(
        'CKVC_BAD_REF_NAME',
        `${at}: ref ${JSON.stringify(o.name)} is no branch or tag: a push moves those alone (a store moves its aliases itself)`,
        { ref: o.name },
      );
    if (seen.has(o.name)) throw bad(at, `names ${o.name} a second time`, { ref: o.name });
    seen.add(o.name);
    if (o.old !== null && (typeof o.old !== 'string' || !isObjectId(o.old)))
      throw bad(at, `old (of ${o.name}) is neither null nor an object ID`, { ref: o.name });
    if (o.new !== null && (typeof o.new !== 'string' || !isObjectId(o.new)))
      throw bad(at, `new (of ${o.name}) is neither null nor an object ID`, { ref: o.name });
    if (o.new === null && o.old === null)
      throw bad(at, `deletes ${o.name} without saying which value it deletes (old is null)`, { ref: o.name });
    return { name: o.name, old: o.old as ObjectId | null, new: o.new };
  });
}

export function parseUpdateRefsBody(v: unknown): { changes: RefChange[]; force: boolean; who: string } {
  const what = where('update-refs');
  const o = object(v, what, { required: ['changes'], optional: ['force', 'who'] });
  if (o.force !== undefined && typeof o.force !== 'boolean') throw bad(what, 'force is not true or false');
  if (o.who !== undefined && (typeof o.who !== 'string' || o.who.length > MAX_WHO))
    throw bad(what, `who is not a text of at most ${MAX_WHO} characters`);
  return {
    changes: checkRefChanges(o.changes, what),
    force: o.force === true,
    who: (o.who as string | undefined) ?? 'remote',
  };
}
