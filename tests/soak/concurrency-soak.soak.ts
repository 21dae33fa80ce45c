// The full concurrency soak (not part of `npm test`): 8 committer processes x 25 checkpoints each on 4 branches,
// with two reader loops (log + checkout) and a gc loop (gc --grace 0) running beside them. Afterwards every acknowledged commit is on its
// branch and checks out byte-identical, nothing unacknowledged appeared, and verify --read-data is clean.
// Run: npm run soak
import { afterAll, describe, it } from 'vitest';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { concurrencySoak, expectSoakClean } from '../helpers/concurrency-soak.js';

afterAll(cleanupTemp);

const PROCESSES = Number(process.env.CKVC_SOAK_PROCESSES ?? 8);
const COMMITS = Number(process.env.CKVC_SOAK_COMMITS ?? 25);
const BRANCHES = Number(process.env.CKVC_SOAK_BRANCHES ?? 4);

describe('concurrency soak (full)', () => {
  it(`${PROCESSES} processes x ${COMMITS} commits on ${BRANCHES} branches, readers and a gc loop beside them`, async () => {
    const r = await concurrencySoak({
      processes: PROCESSES,
      commitsEach: COMMITS,
      branches: BRANCHES,
      readers: 2,
      gcLoops: 1,
      tensorBytes: 1024 * 1024,
      opaqueBytes: 512 * 1024,
      seed: Number(process.env.CKVC_SOAK_SEED ?? 11),
      log: (m) => console.log(m),
    });
    console.log(
      `soak: ${r.acknowledged} acknowledged, ${r.readerRuns} reader logs, ${r.readerCheckouts} reader checkouts, ${r.gcRuns} gc runs freeing ${r.gcBytesFreed} bytes, ${r.seconds.toFixed(0)} s`,
    );
    expectSoakClean(r, PROCESSES * COMMITS);
  }, 3_600_000);
});
