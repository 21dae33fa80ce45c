// Read commands parse the index's LevelDB write-ahead log at every start (index-view.ts); a writer that leaves a
// big one moves it into a table before it closes the index, so `log`, `checkout` and the rest do not pay for a big
// commit's entries on every run (issue 12, start-up). Every entry must still be in the index (read here with the
// same LevelDB reader the commands use: they would fall back to the packs' tables of contents and hide a loss),
// and once the store is closed nothing of the writer may still hold the index.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import { initStore, openStore } from '../../src/api/index.js';
import { LevelSnapshot } from '../../src/store/index-snapshot.js';
import { safetensorsBytes } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

/** Bytes in the index's write-ahead logs and how many tables it has. */
function indexFiles(store: string): { logBytes: number; tables: number } {
  const dir = path.join(store, 'index');
  let logBytes = 0;
  let tables = 0;
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith('.log')) logBytes += fs.statSync(path.join(dir, f)).size;
    if (f.endsWith('.ldb')) tables++;
  }
  return { logBytes, tables };
}

/** The index's keys, by their first byte ('o' objects, 'p' packs, 'c' commit bodies), as LevelDB holds them. */
async function indexKeys(store: string): Promise<Map<string, Set<string>>> {
  const out = await LevelSnapshot.load(path.join(store, 'index'));
  if (out.kind !== 'ok') throw new Error(`index snapshot: ${out.kind}`);
  const keys = new Map<string, Set<string>>();
  try {
    for await (const [k] of out.snapshot.range(Buffer.alloc(0), Buffer.from([0xff, 0xff, 0xff]))) {
      const kind = String.fromCharCode(k[0]!);
      if (!keys.has(kind)) keys.set(kind, new Set());
      keys.get(kind)!.add(k.subarray(1).toString('hex'));
    }
  } finally {
    await out.snapshot.close();
  }
  return keys;
}

/** The IDs of the store's pack files. */
function packIds(s: TestStore): string[] {
  return fs
    .readdirSync(path.join(s.store, 'packs'))
    .filter((f) => f.endsWith('.pack'))
    .map((f) => f.slice(0, -'.pack'.length));
}

/** 1,000 tensors: a commit of all of them leaves about 1,000 chunk entries in the log (over 64 KiB). */
const manyTensors = (): Record<string, { dtype: string; shape: number[]; bytes?: Buffer }> =>
  Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`layer${i}.weight`, { dtype: 'F32', shape: [256] }]));

describe('the index after a writer', () => {
  it('moves a big write-ahead log into a table and leaves a small one; every entry stays indexed', async () => {
    const s = newStore();
    const f = path.join(s.dir, 'model.safetensors');
    const ids: string[] = [];
    const written: Buffer[] = [];
    const tensors = manyTensors();
    const commit = (seed: number) => {
      written.push(safetensorsBytes(tensors, undefined, seed));
      fs.writeFileSync(f, written.at(-1)!);
      ids.push(s.json<{ id: string }>(['commit', f, '-b', 'main', '-m', `step ${ids.length + 1}`]).id);
    };
    commit(1);
    // The commit's ~1,000 entries went into a table. The branch's metric summary, written after them, is in the
    // same table when it came within the index's linger, else alone in a new log of under a hundred bytes.
    expect(indexFiles(s.store).logBytes).toBeLessThan(1024);
    expect(indexFiles(s.store).tables).toBeGreaterThan(0);
    // One tensor changed: a handful of entries, not worth a table's fsyncs.
    tensors['layer0.weight']!.bytes = Buffer.alloc(1024, 7);
    commit(1);
    expect(indexFiles(s.store).logBytes).toBeGreaterThan(0);
    expect(indexFiles(s.store).logBytes).toBeLessThan(16 * 1024);

    const keys = await indexKeys(s.store);
    const packs = packIds(s);
    expect([...(keys.get('p') ?? [])].sort()).toEqual([...packs].sort());
    const perType = s.json<{ objects: Record<string, number> }>(['stats']).objects;
    expect(keys.get('o')?.size).toBe(Object.values(perType).reduce((a, b) => a + b, 0));
    for (const id of ids) expect(keys.get('o')?.has(id)).toBe(true);
    for (const id of ids) expect(keys.get('c')?.has(id)).toBe(true);

    expect(s.json<{ id: string }[]>(['log']).map((c) => c.id)).toEqual([...ids].reverse());
    ids.forEach((id, i) => {
      const to = path.join(s.dir, `out-${i}`);
      s.ok(['checkout', id, '--to', to]);
      expect(fs.readFileSync(path.join(to, 'model.safetensors')).equals(written[i]!)).toBe(true);
    });
  });

  it('after close() returns, the writer no longer holds the index, whenever close() comes', async () => {
    // The index stays open ~25 ms after a session for the next one, then closes (moving a big log first). A close()
    // that came while that was under way used to return at once, with LevelDB still holding the lock.
    const data = safetensorsBytes(manyTensors(), undefined, 3);
    const locked: number[] = [];
    for (let delay = 15; delay <= 45; delay += 3) {
      const dir = tempDir('ckvc-index-close-');
      await initStore(dir);
      fs.writeFileSync(path.join(dir, 'model.safetensors'), data);
      const store = await openStore(path.join(dir, '.ckvc'));
      await store.commit({ paths: [path.join(dir, 'model.safetensors')], message: 'x', cwd: dir });
      await new Promise((r) => setTimeout(r, delay));
      await store.close();
      const db = new Level<Buffer, Buffer>(path.join(dir, '.ckvc', 'index'), {
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
      });
      try {
        await db.open();
      } catch {
        locked.push(delay);
      } finally {
        await db.close().catch(() => {});
      }
      expect(indexFiles(path.join(dir, '.ckvc')).logBytes).toBe(0);
    }
    expect(locked).toEqual([]);
  });
});
