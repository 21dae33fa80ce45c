// `best` from the index's branch metric summaries (spec/FORMAT.md §8, 'b' keys): after a commit it reads the
// entry and the commit it names, not the branch's history; wherever the entry is behind, off the branch,
// damaged or wrong, the answer is still the one walking the whole branch gives. Histories are built through the
// Node API (one process); `best` runs in process too, so that the commits it reads can be counted, and through
// the CLI.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { copyStore, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

type Made = { id: string; metrics: Record<string, number> };
const dist = (p: string) => import(path.join(REPO_ROOT, 'dist', p));

/** The rule `best` has always had: the branch's commits with a finite value, lowest or highest, ties earliest. */
function expectedBest(commits: Made[], metric: string, mode: 'min' | 'max') {
  let top: { id: string; value: number } | undefined;
  let candidates = 0;
  for (const c of commits) {
    const v = c.metrics[metric];
    if (v === undefined || !Number.isFinite(v)) continue;
    candidates++;
    if (!top || (mode === 'min' ? v < top.value : v > top.value)) top = { id: c.id, value: v };
  }
  return top && { id: top.id, value: top.value, candidates };
}

let seed = 99;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
}
const VALUES = [0.5, 0.25, 1, 2, 0.25, Number.NaN, 3, Number.POSITIVE_INFINITY, 0.125];

/** Commits `n` checkpoints on `branch` through the API; metrics drawn from VALUES, some commits with none. */
async function commitMany(store: TestStore, branch: string, n: number, tag: string): Promise<Made[]> {
  const { openStore } = await dist('api/index.js');
  const api = await openStore(store.store);
  const src = tempDir('ckvc-best-src-');
  const made: Made[] = [];
  try {
    for (let i = 0; i < n; i++) {
      fs.writeFileSync(path.join(src, 'w.bin'), `${tag} ${i} ${rand()}`);
      const metrics: Record<string, number> = {};
      if (rand() < 0.85) metrics.loss = VALUES[Math.floor(rand() * VALUES.length)]!;
      if (rand() < 0.5) metrics.acc = VALUES[Math.floor(rand() * VALUES.length)]!;
      const r = await api.commit({ paths: [src], branch, message: `${tag} ${i}`, metrics, cwd: src });
      made.push({ id: r.id, metrics });
    }
  } finally {
    await api.close();
  }
  return made;
}

/** `best` in a fresh process-level open of the store, counting the commits it reads. */
async function bestCounted(store: TestStore, metric: string, mode: 'min' | 'max', branch = 'main') {
  const { openStore } = await dist('api/index.js');
  const api = await openStore(store.store);
  let reads = 0;
  const read = api.objects.readCommit.bind(api.objects);
  api.objects.readCommit = (id: string) => {
    reads++;
    return read(id);
  };
  try {
    const r = await api.best({ metric, mode, branch });
    return { best: { id: r.id, value: r.value, candidates: r.candidates }, reads };
  } finally {
    await api.close();
  }
}

async function expectBestEverywhere(store: TestStore, commits: Made[], branch = 'main'): Promise<number> {
  let most = 0;
  for (const metric of ['loss', 'acc'])
    for (const mode of ['min', 'max'] as const) {
      const want = expectedBest(commits, metric, mode);
      const { best, reads } = await bestCounted(store, metric, mode, branch);
      expect(best, `${metric} ${mode}`).toEqual(want);
      most = Math.max(most, reads);
    }
  const cli = store.json<{ id: string }>(['best', '--metric', 'loss', '--min', '-b', branch]);
  expect(cli.id).toBe(expectedBest(commits, 'loss', 'min')!.id);
  return most;
}

describe('best from branch metric summaries', () => {
  let base: TestStore;
  let main: Made[];

  beforeAll(async () => {
    base = newStore('ckvc-best-summary-');
    main = await commitMany(base, 'main', 120, 'main');
  }, 120_000);

  it('after commits, reads the tip and the best commit only, and picks what walking the branch picks', async () => {
    expect(await expectBestEverywhere(base, main)).toBeLessThanOrEqual(2);
  });

  it('a branch moved back below its entry walks to the answer, and the next commit brings the entry back', async () => {
    const s = copyStore(base);
    s.ok(['branch', 'hold', main[0]!.id]);
    s.ok(['switch', 'hold']);
    s.ok(['branch', '-d', 'main']);
    s.ok(['branch', 'main', main[59]!.id]);
    const kept = main.slice(0, 60);
    expect(await expectBestEverywhere(s, kept)).toBeGreaterThan(50);
    const more = await commitMany(s, 'main', 3, 'again');
    expect(await expectBestEverywhere(s, [...kept, ...more])).toBeLessThanOrEqual(2);
  });

  it('a branch fast-forwarded by a pull folds the new commits onto the entry', async () => {
    const ahead = copyStore(base);
    const more = await commitMany(ahead, 'main', 5, 'ahead');
    const bundle = path.join(tempDir('ckvc-best-bundle-'), 'main.ckvb');
    ahead.ok(['pack', 'main', '-o', bundle]);
    const s = copyStore(base);
    s.ok(['pull', bundle, '--update-refs']);
    // The five pulled commits, the entry's tip (met and stopped at) and the best commit.
    expect(await expectBestEverywhere(s, [...main, ...more])).toBeLessThanOrEqual(7);
  });

  it('a damaged entry, or one naming a commit without the value it records, is walked around', async () => {
    const { openStore } = await dist('api/index.js');
    const { encodeBranchSummary } = await dist('core/store-format/branch-summary.js');
    for (const entry of [
      Buffer.from('not a summary'),
      // The tip is right, but the commit named as best holds another value.
      encodeBranchSummary({
        tip: main.at(-1)!.id,
        metrics: new Map([
          ['loss', { count: 1, min: { value: -7, id: main[3]!.id }, max: { value: 99, id: main[4]!.id } }],
          ['acc', { count: 1, min: { value: -7, id: main[5]!.id }, max: { value: 99, id: main[6]!.id } }],
        ]),
      }),
    ]) {
      const s = copyStore(base);
      const api = await openStore(s.store);
      await api.objects.index.session((x: { putBranchSummary: (b: string, e: Uint8Array) => Promise<void> }) =>
        x.putBranchSummary('main', entry),
      );
      await api.close();
      await expectBestEverywhere(s, main);
    }
  });

  it('a branch started elsewhere counts only its own commits', async () => {
    const s = copyStore(base);
    s.ok(['branch', 'side', main[40]!.id]);
    const side = await commitMany(s, 'side', 8, 'side');
    expect(await expectBestEverywhere(s, side, 'side')).toBeLessThanOrEqual(2);
    expect(await expectBestEverywhere(s, main)).toBeLessThanOrEqual(2);
  });
});
