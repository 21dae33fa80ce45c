// Read commands parse the index's LevelDB write-ahead log at every start (index-view.ts); a writer that leaves a
// big one moves it into a table before it closes the index, so `log`, `checkout` and the rest do not pay for a big
// commit's entries on every run (issue 12, start-up). Every entry must still be found, in a table or in the log.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { safetensorsBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

/** Bytes in the index's write-ahead logs and how many tables it has. */
function indexFiles(s: TestStore): { logBytes: number; tables: number } {
  const dir = path.join(s.store, 'index');
  let logBytes = 0;
  let tables = 0;
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith('.log')) logBytes += fs.statSync(path.join(dir, f)).size;
    if (f.endsWith('.ldb')) tables++;
  }
  return { logBytes, tables };
}

describe('the index after a writer', () => {
  it('moves a big write-ahead log into a table and leaves a small one; readers find every entry', () => {
    const s = newStore();
    const f = path.join(s.dir, 'model.safetensors');
    const ids: string[] = [];
    const written: Buffer[] = [];
    // 1,000 tensors: the first commit's log holds about 1,000 chunk entries (over 64 KiB).
    const tensors: Record<string, { dtype: string; shape: number[]; bytes?: Buffer }> = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [`layer${i}.weight`, { dtype: 'F32', shape: [256] }]),
    );
    const commit = (step: number) => {
      written.push(safetensorsBytes(tensors, undefined, step));
      fs.writeFileSync(f, written.at(-1)!);
      ids.push(s.json<{ id: string }>(['commit', f, '-b', 'main', '-m', `step ${step}`]).id);
    };
    commit(1);
    expect(indexFiles(s).logBytes).toBe(0);
    expect(indexFiles(s).tables).toBeGreaterThan(0);
    // One tensor changed: a handful of entries, not worth a table's fsyncs.
    tensors['layer0.weight']!.bytes = Buffer.alloc(1024, 7);
    commit(1);
    expect(indexFiles(s).logBytes).toBeGreaterThan(0);
    expect(indexFiles(s).logBytes).toBeLessThan(16 * 1024);
    expect(s.json<{ id: string }[]>(['log']).map((c) => c.id)).toEqual([...ids].reverse());
    ids.forEach((id, i) => {
      const to = path.join(s.dir, `out-${i}`);
      s.ok(['checkout', id, '--to', to]);
      expect(fs.readFileSync(path.join(to, 'model.safetensors')).equals(written[i]!)).toBe(true);
    });
    expect(s.run(['verify']).code).toBe(0);
  });
});
