// The concurrency soak, shortened for CI: 4 committer processes x 4 commits on 2 branches, with a reader loop
// (log + checkout) and a gc loop (gc --grace 0) running beside them. The full size (8 x 25 on 4 branches) is
// tests/soak/concurrency-soak.soak.ts, run with `npm run soak` (tests/soak/vitest.soak.config.ts). Both use concurrencySoak() from
// tests/helpers/reliability.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { concurrencySoak, expectSoakClean } from '../helpers/concurrency-soak.js';

afterAll(cleanupTemp);

describe('concurrency soak (short)', () => {
  it('4 processes x 4 commits on 2 branches with a reader and gc beside them: every acknowledged commit is there, byte-identical; verify clean', async () => {
    const r = await concurrencySoak({
      processes: 4,
      commitsEach: 4,
      branches: 2,
      readers: 1,
      gcLoops: 1,
      tensorBytes: 256 * 1024,
      opaqueBytes: 128 * 1024,
      seed: 7,
      log: (m) => console.log(m),
    });
    expectSoakClean(r, 16);
    expect(r.readerRuns).toBeGreaterThan(0);
  }, 180_000);
});
