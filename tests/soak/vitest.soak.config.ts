// The long runs, kept out of `npm test`: the full concurrency soak (tests/soak/*.soak.ts) plus every
// reliability test at a larger scale (kill-loop rounds, fuzz cases). Run from the repo root: npm run soak
// Scale with CKVC_SOAK_SCALE / CKVC_FUZZ_SCALE in the environment (defaults below).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  root,
  test: {
    // tests/soak/*.soak.ts: the long runs only (npm test excludes tests/soak); tests/reliability again, scaled up;
    // ref-batch.test.ts at 20,000 refs.
    include: ['tests/soak/**/*.soak.ts', 'tests/reliability/**/*.test.ts', 'tests/integration/ref-batch.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    // One file at a time: the soak measures ckvc against itself, not against the other tests.
    fileParallelism: false,
    env: {
      CKVC_TEST_FAULTS: '1',
      CKVC_SOAK_SCALE: process.env.CKVC_SOAK_SCALE ?? '10',
      CKVC_FUZZ_SCALE: process.env.CKVC_FUZZ_SCALE ?? '10',
    },
    setupFiles: ['./tests/child-environment.ts'],
    reporters: ['default', './tests/summary-reporter.ts'],
  },
});
