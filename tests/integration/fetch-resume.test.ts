// A fetch killed between two of its batches (PROTOCOL.md §4: objects are received 20,000 per request, each batch
// verified and promoted on its own) leaves the tip commit here without all of its data. Running the fetch again
// must ask for what is still missing and complete, not take the commit for fetched and fail on its closure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun } from '../helpers/ckvc.js';
import { treeDifferences } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';

// Over one batch of objects: a recipe and a chunk per file, plus trees.
const FILES = 11_000;

describe('a fetch killed between batches', () => {
  let src: TestStore;
  let data: string;
  let tip: string;
  beforeAll(() => {
    src = newStore('ckvc-resume-src-');
    data = path.join(tempDir('ckvc-resume-data-'), 'ckpt');
    for (let d = 0; d < FILES / 500; d++) {
      const dir = path.join(data, `shard-${d}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 500; i++) fs.writeFileSync(path.join(dir, `${i}.json`), `{"shard": ${d}, "item": ${i}}\n`);
    }
    tip = src.json<{ id: string }>(['commit', data, '-m', 'many small files']).id;
  });
  afterAll(cleanupTemp);

  it('is completed by running it again, and checks out byte for byte', () => {
    const dst = newStore('ckvc-resume-dst-');
    dst.ok(['remote', 'add', 'origin', src.store]);
    const killed = dst.run(['fetch', 'origin'], { env: { CKVC_FAULT: 'receive.indexed@1' } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    // The first batch landed: the tip commit is here (log reads it), its data only in part.
    expect(dst.run(['log', '-n', '1', tip]).code).toBe(0);
    const again = dst.run(['fetch', 'origin']);
    expect(again.code, describeRun(again)).toBe(0);
    expect(dst.ref('refs/remotes/origin/main')).toBe(tip);
    const out = path.join(tempDir('ckvc-resume-out-'), 'co');
    dst.ok(['checkout', 'origin/main', '--to', out]);
    expect(treeDifferences(data, out)).toEqual([]);
    expect(dst.run(['verify', '--read-data']).code).toBe(0);
  }, 240_000);
});
