import { configDefaults, defineConfig } from 'vitest/config';
import LongestFirstSequencer from './tests/longest-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // The long runs (npm run soak) have their own config.
    exclude: [...configDefaults.exclude, 'tests/soak/**'],
    // Two test files at a time: most tests wait on the ckvc processes they start, so one file alone leaves a core
    // idle (vitest's default here is one worker on two cores). Timeouts allow for the shared machine.
    maxWorkers: 2,
    // The long files first, so that the run does not end on one of them alone (tests/longest-first-sequencer.ts).
    sequence: { sequencer: LongestFirstSequencer },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Fault injection (spec/FAULTS.md) is honoured only when switched on; every ckvc a test spawns inherits this.
    env: { CKVC_TEST_FAULTS: '1' },
    setupFiles: ['./tests/child-environment.ts'],
    globalSetup: ['./tests/cache-folder-setup.ts'],
    reporters: ['default', './tests/summary-reporter.ts'],
  },
});
