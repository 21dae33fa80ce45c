// Every chunk record of a store as comparable text, for tests that two ways of writing store the same records.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ObjectStore } from '../../src/store/object-store.js';
import { sha256 } from './snapshots.js';

/** Every chunk record of the store at `dir`: ID, codec and stored bytes (verified), sorted. */
export async function chunkRecords(dir: string): Promise<string[]> {
  const store = await ObjectStore.open(dir);
  try {
    const out: string[] = [];
    for (const name of fs.readdirSync(path.join(dir, 'packs'))) {
      const packId = name.slice(0, 64);
      for (const entry of (await store.packs.readToc(packId)).entries) {
        if (entry.type !== 'chunk') continue;
        const stored = await store.packs.readStoredRecord({ packId, entry }, entry.id, { verify: true });
        out.push(`${entry.id} ${entry.codec} ${sha256(stored)}`);
      }
    }
    return out.sort();
  } finally {
    await store.close();
  }
}
