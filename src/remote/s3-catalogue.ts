// The small objects of an s3 remote (spec/S3.md §2): refs.json, index.json and each pack's .ids, read as the
// untrusted input they are (capped, shape-checked) and written by conditional writes.
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { CkvcError } from '../core/errors.js';
import { isJsonObject } from '../core/json-object.js';
import { isObjectId, type ObjectId } from '../core/store-format/object-id.js';
import type { Conditions, S3Objects } from './s3-client.js';
import { s3Keys } from './s3-location.js';

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const MAX_PACKS = 100_000;
const MAX_IDS_PER_PACK = 200_000;
/**
 * Object IDs a catalogue may list in all (S3.md §2): a fetch keeps every listing in memory, and the per-object caps
 * alone would allow 20 billion; 8 million (a remote of about 2 TiB in 256 KiB chunks) is about 1 GiB of listings.
 */
const MAX_CATALOGUE_IDS = 8_000_000;
/** The tests lower it to reach it with a small remote. */
const catalogueCap = () => Number(process.env.CKVC_TEST_S3_CATALOGUE_IDS) || MAX_CATALOGUE_IDS;
const PUBLISH_TRIES = 10;
const PACK_NAME = /^[0-9a-f]{64}$/;
const LOAD_CONCURRENCY = 8;

/** A small object as read, with the ETag a conditional write of its successor must match. */
export interface Versioned<T> {
  value: T;
  /** undefined: there was no object (the next write must create it). */
  etag?: string;
}

/** The condition that replaces exactly what was read (none when the service cannot honour conditions). */
export const replacing = (read: Versioned<unknown>, conditional: boolean): Conditions =>
  !conditional ? {} : read.etag ? { ifMatch: read.etag } : { ifAbsent: true };

/** The name of the pack holding `ids`: the SHA-256 of its sorted IDs, one per line. */
export function packName(ids: ObjectId[]): { name: string; listing: Buffer } {
  const listing = Buffer.from(
    [...ids]
      .sort()
      .map((id) => `${id}\n`)
      .join(''),
  );
  return { name: createHash('sha256').update(listing).digest('hex'), listing };
}

function parsedOrUndefined(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function outside(s3: S3Objects, key: string, why: string): CkvcError {
  return new CkvcError('CKVC_REMOTE', `s3://${s3.loc.bucket}/${key} is not what a ckvc remote writes there: ${why}`, {
    url: s3.url,
    key,
  });
}

async function readJson(s3: S3Objects, key: string): Promise<Versioned<Record<string, unknown>> | undefined> {
  let r = await s3.read(key, MAX_JSON_BYTES);
  if (!r) return undefined;
  let v = parsedOrUndefined(r.body);
  if (v === undefined) {
    // An object store's PUT is atomic, but some S3-compatible servers (s3rver) let a read see an object half
    // rewritten: read once more before calling it foreign.
    await sleep(50);
    r = await s3.read(key, MAX_JSON_BYTES);
    if (!r) return undefined;
    v = parsedOrUndefined(r.body);
    if (v === undefined) throw outside(s3, key, 'not JSON');
  }
  if (!isJsonObject(v) || v.version !== 1) {
    throw outside(s3, key, 'not a JSON object of version 1 (a newer ckvc may have written it)');
  }
  return { value: v, etag: r.etag };
}

export async function readRefs(s3: S3Objects): Promise<Versioned<Record<string, ObjectId>>> {
  const key = s3Keys(s3.loc).refs;
  const r = await readJson(s3, key);
  if (!r) return { value: {} };
  const refs = r.value.refs;
  if (
    refs === null ||
    typeof refs !== 'object' ||
    Array.isArray(refs) ||
    !Object.values(refs).every((v) => typeof v === 'string')
  ) {
    throw outside(s3, key, '"refs" is not a map of names to IDs');
  }
  return { value: refs as Record<string, ObjectId>, etag: r.etag };
}

export const refsBody = (refs: Record<string, ObjectId>): Buffer => {
  const sorted = Object.fromEntries(Object.entries(refs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(`${JSON.stringify({ version: 1, refs: sorted }, null, 1)}\n`);
};

export async function readIndex(s3: S3Objects): Promise<Versioned<string[]>> {
  const key = s3Keys(s3.loc).index;
  const r = await readJson(s3, key);
  if (!r) return { value: [] };
  const packs = r.value.packs;
  if (
    !Array.isArray(packs) ||
    packs.length > MAX_PACKS ||
    !packs.every((p) => typeof p === 'string' && PACK_NAME.test(p))
  ) {
    throw outside(s3, key, `"packs" is not a list of at most ${MAX_PACKS} pack names`);
  }
  return { value: [...new Set(packs as string[])], etag: r.etag };
}

async function readIds(s3: S3Objects, name: string): Promise<ObjectId[]> {
  const key = s3Keys(s3.loc).ids(name);
  const r = await s3.read(key, MAX_IDS_PER_PACK * 65);
  if (!r)
    throw new CkvcError(
      'CKVC_REMOTE',
      `s3://${s3.loc.bucket}/${key} is missing though index.json lists pack ${name.slice(0, 12)}`,
      { url: s3.url, key },
    );
  const text = r.body.toString('latin1');
  const ids = text.split('\n');
  if (ids.pop() !== '' || !ids.every((id) => isObjectId(id)))
    throw outside(s3, key, 'not a list of object IDs, one per line');
  if (packName(ids).name !== name)
    throw outside(s3, key, `its IDs do not hash to the pack's name ${name.slice(0, 12)}`);
  return ids;
}

/** What the remote holds: each listed pack's objects (`pack` maps an ID to the first pack listing it). */
export interface Catalogue {
  packs: string[];
  pack: Map<ObjectId, string>;
  idsOf: Map<string, ObjectId[]>;
}

export async function loadCatalogue(s3: S3Objects): Promise<Catalogue> {
  const packs = (await readIndex(s3)).value;
  const idsOf = new Map<string, ObjectId[]>();
  let next = 0;
  let listed = 0;
  const worker = async () => {
    while (next < packs.length) {
      const name = packs[next++]!;
      const ids = await readIds(s3, name);
      listed += ids.length;
      if (listed > catalogueCap())
        throw new CkvcError(
          'CKVC_REMOTE',
          `${s3.url} lists more than ${catalogueCap().toLocaleString('en-US')} objects in its packs, more than ` +
            'ckvc reads from one S3 remote; nothing was fetched',
          { url: s3.url, limit: catalogueCap() },
        );
      idsOf.set(name, ids);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, packs.length) }, worker));
  const pack = new Map<ObjectId, string>();
  for (const name of packs) for (const id of idsOf.get(name)!) if (!pack.has(id)) pack.set(id, name);
  return { packs, pack, idsOf };
}

/** Writes the pack's .ids, then lists the pack in index.json (retried when another writer got there first). */
export async function publishPack(s3: S3Objects, name: string, listing: Buffer, conditional: boolean): Promise<void> {
  const keys = s3Keys(s3.loc);
  await s3.write(keys.ids(name), listing);
  for (let i = 0; i < PUBLISH_TRIES; i++) {
    const cur = await readIndex(s3);
    if (cur.value.includes(name)) return;
    const body = Buffer.from(`${JSON.stringify({ version: 1, packs: [...cur.value, name] }, null, 1)}\n`);
    if ((await s3.write(keys.index, body, replacing(cur, conditional))) !== 'conflict') return;
  }
  throw new CkvcError(
    'CKVC_REF_CONFLICT',
    `s3://${s3.loc.bucket}/${keys.index} kept changing under ${PUBLISH_TRIES} tries (other pushers); push again`,
    { url: s3.url },
  );
}
