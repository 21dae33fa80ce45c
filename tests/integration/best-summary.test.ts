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
type Picked = { id: string; value: number; candidates: number };
type Committed = { id: string; warnings?: string[] };
type SummaryWriter = {
  writeSummary: (branch: string, tip: Uint8Array, metrics: Map<string, Uint8Array>, clear: boolean) => Promise<void>;
};
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

/** Metrics drawn from VALUES, some commits with none. */
function randomMetrics(): Record<string, number> {
  const metrics: Record<string, number> = {};
  if (rand() < 0.85) metrics.loss = VALUES[Math.floor(rand() * VALUES.length)]!;
  if (rand() < 0.5) metrics.acc = VALUES[Math.floor(rand() * VALUES.length)]!;
  return metrics;
}

/** Commits `n` checkpoints on `branch` through the API, each with no warning; `reads`: the commits each read. */
async function commitMany(
  store: TestStore,
  branch: string,
  n: number,
  tag: string,
  metricsOf: (i: number) => Record<string, number> = randomMetrics,
): Promise<(Made & { reads: number })[]> {
  const { openStore } = await dist('api/index.js');
  const api = await openStore(store.store);
  const src = tempDir('ckvc-best-src-');
  const made: (Made & { reads: number })[] = [];
  try {
    for (let i = 0; i < n; i++) {
      fs.writeFileSync(path.join(src, 'w.bin'), `${tag} ${i} ${rand()}`);
      const metrics = metricsOf(i);
      const { result: r, reads } = await commitReads<Committed>(api.objects, () =>
        api.commit({ paths: [src], branch, message: `${tag} ${i}`, metrics, cwd: src }),
      );
      expect(r.warnings ?? []).toEqual([]);
      made.push({ id: r.id, metrics, reads });
    }
  } finally {
    await api.close();
  }
  return made;
}

/** Counts the commits `fn` reads through the store's readCommit (in this process). */
async function commitReads<T>(
  objects: { readCommit: (id: string) => Promise<unknown> },
  fn: () => Promise<T>,
): Promise<{ result: T; reads: number }> {
  let reads = 0;
  const read = objects.readCommit;
  objects.readCommit = (id: string) => {
    reads++;
    return read.call(objects, id);
  };
  try {
    return { result: await fn(), reads };
  } finally {
    objects.readCommit = read;
  }
}

/** `best` in a fresh process-level open of the store, counting the commits it reads. */
async function bestCounted(store: TestStore, metric: string, mode: 'min' | 'max', branch = 'main') {
  const { openStore } = await dist('api/index.js');
  const api = await openStore(store.store);
  try {
    const { result: r, reads } = await commitReads<Picked | undefined>(api.objects, () =>
      api.best({ metric, mode, branch }).catch((e: { code?: string }) => {
        if (e.code === 'CKVC_NO_METRIC') return undefined;
        throw e;
      }),
    );
    return { best: r && { id: r.id, value: r.value, candidates: r.candidates }, reads };
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

  it('a branch fast-forwarded by a pull: the pull folds the new commits onto the entry', async () => {
    const ahead = copyStore(base);
    const more = await commitMany(ahead, 'main', 5, 'ahead');
    const bundle = path.join(tempDir('ckvc-best-bundle-'), 'main.ckvb');
    ahead.ok(['pack', 'main', '-o', bundle]);
    const s = copyStore(base);
    s.ok(['pull', bundle, '--update-refs']);
    // The pull brought the entries to the pulled tip: best reads the tip and the best commit, not the five
    // pulled commits again at every run (it read 7 when the pull left the entries behind).
    expect(await expectBestEverywhere(s, [...main, ...more])).toBeLessThanOrEqual(2);
    // Without --update-refs the bundle's branch lands as bundle/main, and its entries are recorded too.
    const t = copyStore(base);
    t.ok(['pull', bundle]);
    expect(await expectBestEverywhere(t, [...main, ...more], 'bundle/main')).toBeLessThanOrEqual(2);
    // From a remote (a store folder): the same.
    const r = copyStore(base);
    r.ok(['remote', 'add', 'ahead', ahead.store]);
    r.ok(['pull', 'ahead', 'main']);
    expect(await expectBestEverywhere(r, [...main, ...more])).toBeLessThanOrEqual(2);
  });

  it('damaged entries, or entries naming a commit without the value they record, are walked around', async () => {
    const { openStore } = await dist('api/index.js');
    const { encodeSummaryTip, encodeMetricExtremes } = await dist('core/store-format/branch-summary.js');
    const tip = encodeSummaryTip({ tip: main.at(-1)!.id });
    const lying = (i: number) =>
      encodeMetricExtremes({ count: 1, min: { value: -7, id: main[i]!.id }, max: { value: 99, id: main[i + 1]!.id } });
    const cases: [Uint8Array, Map<string, Uint8Array>][] = [
      [Buffer.from('not a summary'), new Map()],
      [tip, new Map([['loss', Buffer.from('damaged')]])],
      [
        tip,
        new Map([
          ['loss', lying(3)],
          ['acc', lying(5)],
        ]),
      ],
    ];
    for (const [k, [tipEntry, metrics]] of cases.entries()) {
      const s = copyStore(base);
      const api = await openStore(s.store);
      await api.objects.index.session((x: SummaryWriter) => x.writeSummary('main', tipEntry, metrics, false));
      await api.close();
      await expectBestEverywhere(s, main);
      // The next commit rebuilds what it can tell is damaged; entries that decode but lie stay walked around.
      const more = await commitMany(s, 'main', 1, 'after-damage');
      const reads = await expectBestEverywhere(s, [...main, ...more]);
      if (k < 2) expect(reads).toBeLessThanOrEqual(2);
    }
  });

  it('a commit reads the same few commits however many metric names the branch has seen', async () => {
    const s = newStore('ckvc-best-wide-');
    // The first 20 commits record 300 names each (6,000 on the branch), the rest only loss.
    const made = await commitMany(s, 'main', 40, 'wide', (i) => {
      const metrics: Record<string, number> = { loss: 1 / (i + 2) };
      if (i < 20) for (let k = 0; k < 300; k++) metrics[`grad_norm/layer.${i}.${k}`] = k;
      return metrics;
    });
    const reads = made.map((m) => m.reads);
    expect(Math.max(...reads.slice(1))).toBeLessThanOrEqual(reads[1]! + 1);
    expect(await expectBestEverywhere(s, made)).toBeLessThanOrEqual(2);
    const wide = s.json<{ id: string; candidates: number }>(['best', '--metric', 'grad_norm/layer.7.9', '--max']);
    expect(wide).toMatchObject({ id: made[7]!.id, candidates: 1 });
  });

  it('on a shallow branch each commit folds one commit, and the history arriving below the graft counts', async () => {
    const work = tempDir('ckvc-best-shallow-');
    const [shallow, full] = [path.join(work, 'd1.ckvb'), path.join(work, 'full.ckvb')];
    base.ok(['pack', 'main', '-o', shallow, '--depth', '1']);
    base.ok(['pack', 'main', '-o', full]);
    const s = newStore('ckvc-best-shallow-store-');
    s.ok(['pull', shallow, '--update-refs']);
    const made = await commitMany(s, 'main', 25, 'on top', (i) => ({ loss: 10 + i }));
    const reads = made.map((m) => m.reads);
    expect(Math.max(...reads.slice(1))).toBeLessThanOrEqual(reads[1]! + 1);
    expect(await expectBestEverywhere(s, [main.at(-1)!, ...made])).toBeLessThanOrEqual(3);
    s.ok(['pull', full]);
    expect(await expectBestEverywhere(s, [...main, ...made])).toBeGreaterThan(100);
  });

  it('a shallow branch deleted, its graft gone with gc, and the name used again: best and commit work', async () => {
    const work = tempDir('ckvc-best-gc-graft-');
    const shallow = path.join(work, 'd2.ckvb');
    base.ok(['pack', 'main', '-o', shallow, '--depth', '2']);
    const s = newStore('ckvc-best-gc-graft-store-');
    s.ok(['pull', shallow, '--update-refs']);
    await commitMany(s, 'main', 1, 'shallow-top');
    await commitMany(s, 'other', 1, 'other');
    s.ok(['switch', 'other']);
    s.ok(['branch', '-d', 'main']);
    s.ok(['gc', '--grace', '0', '--expire-reflog', '0']);
    s.ok(['branch', 'main', 'other']);
    const again = await commitMany(s, 'main', 2, 'main-again');
    await expectBestEverywhere(s, again);
  });

  it('a commit whose branch has already moved on leaves the newer entries alone', async () => {
    const s = copyStore(base);
    const [older] = await commitMany(s, 'main', 1, 'older');
    const newer = await commitMany(s, 'main', 2, 'newer');
    const { openStore } = await dist('api/index.js');
    const { recordBranchSummary } = await dist('api/branch-summary.js');
    const api = await openStore(s.store);
    let reads: number;
    try {
      // What a concurrent committer that landed `older` does when it records after the others.
      ({ reads } = await commitReads(api.objects, () => recordBranchSummary(api.objects, 'main', older!.id)));
    } finally {
      await api.close();
    }
    expect(reads).toBe(0);
    expect(await expectBestEverywhere(s, [...main, older!, ...newer])).toBeLessThanOrEqual(2);
  });

  it('a branch started elsewhere counts only its own commits', async () => {
    const s = copyStore(base);
    s.ok(['branch', 'side', main[40]!.id]);
    const side = await commitMany(s, 'side', 8, 'side');
    expect(await expectBestEverywhere(s, side, 'side')).toBeLessThanOrEqual(2);
    expect(await expectBestEverywhere(s, main)).toBeLessThanOrEqual(2);
  });
});
