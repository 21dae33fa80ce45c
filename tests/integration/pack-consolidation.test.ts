// Pack consolidation (spec/FORMAT.md §15.2): a store of many small commits keeps a bounded number of packs, and
// merging them loses nothing; it never makes a commit wait for another writer, and gc merges too. (A commit
// waits for a live gc.lock before it starts anyway, FORMAT.md §15; consolidation itself never waits.)
// The 120-commit store is built through the Node API (one process: seconds, not minutes of CLI starts); every
// check runs the real CLI.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { packFiles, treeDifferences } from '../helpers/snapshots.js';
import { geometricPrefix } from '../../src/store/pack-consolidation.js';

afterAll(cleanupTemp);

const COMMITS = 120;
const BRANCHES = 5;

function writeCkpt(dir: string, i: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'state.json'),
    JSON.stringify({ step: i, w: Array.from({ length: 32 }, (_, k) => (i * 7 + k) % 101) }),
  );
  fs.writeFileSync(path.join(dir, `shard-${i % 3}.bin`), Buffer.alloc(300 + i, i & 0xff));
}

describe('a store of many small commits', () => {
  let s: TestStore;
  const made: { id: string; dir: string }[] = [];

  beforeAll(async () => {
    s = newStore('ckvc-consol-');
    const { openStore } = await import(path.join(REPO_ROOT, 'dist', 'api', 'index.js'));
    const store = await openStore(s.store);
    const src = tempDir('ckvc-consol-src-');
    try {
      for (let i = 0; i < COMMITS; i++) {
        const dir = path.join(src, `c${i}`);
        writeCkpt(dir, i);
        const r = await store.commit({
          paths: [dir],
          branch: `b${i % BRANCHES}`,
          message: `step ${i}`,
          metrics: { loss: 1 / (i + 1) },
          cwd: src,
        });
        made.push({ id: r.id, dir });
      }
    } finally {
      await store.close();
    }
  }, 120_000);

  it('keeps the pack count bounded (one pack per commit before consolidation)', () => {
    // At most 32 small packs wait for the next merge, plus the merged ones in geometric sizes (a handful here).
    const n = packFiles(s.store).length;
    expect(n).toBeLessThanOrEqual(32 + 8);
    expect(n).toBeLessThan(COMMITS / 2);
  });

  it('loses nothing: verify --read-data is clean, log lists every commit, old and new commits check out byte-identical', () => {
    const v = s.json(['verify', '--read-data']);
    expect(v.ok).toBe(true);
    expect(v.checked.commits).toBe(COMMITS);
    const logged = new Set<string>();
    for (let b = 0; b < BRANCHES; b++) for (const c of s.json<{ id: string }[]>(['log', `b${b}`])) logged.add(c.id);
    expect([...logged].sort()).toEqual(made.map((m) => m.id).sort());
    for (const i of [0, 1, 37, 64, COMMITS - 1]) {
      const out = tempDir('ckvc-consol-co-');
      s.ok(['checkout', made[i]!.id, '--to', out]);
      expect(treeDifferences(made[i]!.dir, out)).toEqual([]);
    }
    expect(s.json(['stats']).commits).toBe(COMMITS);
  });
});

const liveOwner = () => JSON.stringify({ pid: process.pid, host: os.hostname(), nonce: 'test', time: Date.now() });

describe('consolidation never waits', () => {
  const env = { CKVC_AUTO_SMALL_PACKS: '2' };

  it('skips while another writer is registered, and merges on the next commit once it is gone', () => {
    const s = newStore('ckvc-consol-wait-');
    const src = tempDir('ckvc-consol-wait-src-');
    const ids: string[] = [];
    const commit = (i: number) => {
      const dir = path.join(src, `c${i}`);
      writeCkpt(dir, i);
      ids.push(commitId(s, [dir, '-m', `c${i}`], { env, timeoutMs: 30_000 }));
    };
    commit(0);
    commit(1);
    expect(packFiles(s.store)).toHaveLength(2);
    // A live writer (this test process) registered: the third commit lands at once and merges nothing.
    const writer = path.join(s.store, 'locks', 'writers', `${process.pid}-test`);
    fs.writeFileSync(writer, liveOwner());
    const t0 = Date.now();
    commit(2);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(packFiles(s.store)).toHaveLength(3);
    fs.rmSync(writer);
    commit(3);
    expect(packFiles(s.store).length).toBeLessThan(4);
    expect(s.json(['verify', '--read-data']).ok).toBe(true);
    for (const [i, id] of ids.entries()) {
      const out = tempDir('ckvc-consol-wait-co-');
      s.ok(['checkout', id, '--to', out]);
      expect(treeDifferences(path.join(src, `c${i}`), out)).toEqual([]);
    }
  }, 120_000);

  it('gc merges small packs when there are too many, and reports it', () => {
    const s = newStore('ckvc-consol-gc-');
    const src = tempDir('ckvc-consol-gc-src-');
    for (let i = 0; i < 4; i++) {
      const dir = path.join(src, `c${i}`);
      writeCkpt(dir, i);
      commitId(s, [dir, '-m', `c${i}`]); // the default limit: no merge yet
    }
    expect(packFiles(s.store)).toHaveLength(4);
    const r = s.json(['gc', '--grace', '0'], { env });
    expect(r.packsConsolidated).toBeGreaterThanOrEqual(2);
    expect(packFiles(s.store)).toHaveLength(r.packsAfter);
    expect(r.packsAfter).toBeLessThan(4);
    expect(s.json(['verify', '--read-data']).ok).toBe(true);
  }, 120_000);
});

describe('which packs merge (geometric rule)', () => {
  it('merges the smallest prefix that leaves every pack at least twice all smaller ones', () => {
    expect(geometricPrefix([1, 1, 1, 1])).toBe(4);
    expect(geometricPrefix([1, 1, 1, 100])).toBe(3);
    expect(geometricPrefix([1, 1, 8, 100])).toBe(2); // 1 < 2*1: merge [1, 1]; 8 >= 2*2 and 100 >= 2*10 stay
    expect(geometricPrefix([1, 3, 9, 27])).toBe(0); // already geometric: nothing to do
    expect(geometricPrefix([5])).toBe(0);
    expect(geometricPrefix([])).toBe(0);
  });
});
