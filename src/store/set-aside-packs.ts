// The packs `ckvc repair` kept in damaged/ (spec/FORMAT.md §10.1), as the last place a lost object is looked for:
// a delta record there that did not decode only because its base was lost reads again once repair has brought the
// base back from another source. Every record is decoded and re-hashed as it is read, so nothing damaged leaves
// damaged/; and since the folder itself is what is read, a repair killed halfway loses nothing of this.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CkvcError } from '../core/errors.js';
import type { ObjectId } from '../core/store-format/object-id.js';
import { damagedPackRecords } from './damaged-pack-records.js';
import type { ObjectStore } from './object-store.js';
import { PackReader, type ObjectLocation } from './pack-reader.js';
import { PackWriter } from './pack-writer.js';
import type { StoreLayout } from './store-layout.js';

export interface SetAsideRecords {
  readonly name: string;
  holds(ids: ObjectId[]): Promise<boolean[]>;
  /** Stores those of `ids` that read back sound now in a new pack, indexed; returns how many. */
  restore(ids: ObjectId[]): Promise<{ objects: number; bytes: number }>;
  close(): Promise<void>;
}

/** The records of damaged/'s packs, or undefined when it holds none. */
export async function setAsideRecords(store: ObjectStore): Promise<SetAsideRecords | undefined> {
  const dir = store.layout.damagedDir;
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}\.pack$/.test(n));
  const reader = new PackReader(store.layout);
  // A delta's base is wherever the store has it now.
  reader.setBaseLocator(async (id) => (await store.locate([id]))[0]);
  const byId = new Map<ObjectId, ObjectLocation[]>();
  for (const name of names.sort()) {
    const packId = name.slice(0, 64);
    // A sound rewrite of the same name is in packs/ (only its TOC or footer was hit): nothing here is missing.
    if (await fs.stat(store.layout.packFile(packId)).catch(() => undefined)) continue;
    const file = path.join(dir, name);
    reader.readPackFrom(packId, file);
    for (const entry of await damagedPackRecords(reader, packId, file, [])) {
      const list = byId.get(entry.id) ?? [];
      list.push({ packId, entry });
      byId.set(entry.id, list);
    }
  }
  if (!byId.size) {
    await reader.close();
    return undefined;
  }
  return {
    name: 'the damaged packs kept in damaged/',
    holds: async (ids) => ids.map((id) => byId.has(id)),
    async restore(ids) {
      let writer: PackWriter | undefined;
      try {
        for (const id of ids) {
          for (const loc of byId.get(id) ?? []) {
            const read = await readSound(reader, loc);
            if (!read) continue;
            writer ??= await PackWriter.create(store.layout);
            const { type, codec, rawLength, storedLength } = loc.entry;
            if ('body' in read) await writer.addStored({ id, type, codec, rawLength, storedLength }, read.body);
            else await writer.add(type, id, read.raw, read.width);
            break;
          }
        }
        const done = await writer?.finish();
        writer = undefined;
        if (!done) return { objects: 0, bytes: 0 };
        await store.indexPack({ packId: done.packId, entries: done.entries });
        return { objects: done.entries.length, bytes: 0 };
      } catch (e) {
        await writer?.abort();
        throw e;
      }
    },
    close: () => reader.close(),
  };
}

/**
 * The record at `loc`, decoded and re-hashed: a delta decoded (to be stored on its own), anything else as stored;
 * undefined when it does not read back.
 */
async function readSound(
  reader: PackReader,
  loc: ObjectLocation,
): Promise<{ body: Buffer } | { raw: Uint8Array; width: number } | undefined> {
  const { id, type } = loc.entry;
  try {
    const head = await reader.readDeltaHead(loc);
    if (head) return { raw: await reader.readObject(loc, id, type), width: head.width };
    return { body: await reader.readStoredRecord(loc, id, { verify: true }) };
  } catch (e) {
    if (e instanceof CkvcError) return undefined;
    throw e;
  }
}

/** The packs in damaged/ and their bytes, for verify to note (nothing there is read). */
export async function setAsideTotals(layout: StoreLayout): Promise<{ packs: number; bytes: number }> {
  const out = { packs: 0, bytes: 0 };
  const dir = layout.damagedDir;
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (!st?.isFile()) continue;
    out.packs++;
    out.bytes += st.size;
  }
  return out;
}
