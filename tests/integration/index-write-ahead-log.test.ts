// Read commands parse the index's LevelDB write-ahead log at every start (index-view.ts); a writer moves what it
// added into a table before it closes the index, so `log`, `checkout` and the rest do not pay for the last
// commit's entries on every run (issue 12, start-up). The entries must still be there, read from the table.
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
  it('leaves no entries in the write-ahead log; readers find them in the tables', () => {
    const s = newStore();
    const f = path.join(s.dir, 'model.safetensors');
    const ids: string[] = [];
    const written: Buffer[] = [];
    // 40 tensors a step, each changed: the log would hold a few hundred entries.
    const tensors = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`layer${i}.weight`, { dtype: 'F32', shape: [2048] }]),
    );
    for (let step = 1; step <= 3; step++) {
      written.push(safetensorsBytes(tensors, undefined, step));
      fs.writeFileSync(f, written.at(-1)!);
      ids.push(s.json<{ id: string }>(['commit', f, '-b', 'main', '-m', `step ${step}`]).id);
      const files = indexFiles(s);
      expect(files.logBytes).toBe(0);
      expect(files.tables).toBeGreaterThan(0);
    }
    expect(s.json<{ id: string }[]>(['log']).map((c) => c.id)).toEqual([...ids].reverse());
    ids.forEach((id, i) => {
      const to = path.join(s.dir, `out-${i}`);
      s.ok(['checkout', id, '--to', to]);
      expect(fs.readFileSync(path.join(to, 'model.safetensors')).equals(written[i]!)).toBe(true);
    });
    expect(s.run(['verify']).code).toBe(0);
  });
});
