import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // The long runs (npm run soak) have their own config.
    exclude: [...configDefaults.exclude, 'tests/soak/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Fault injection (spec/FAULTS.md) is honoured only when switched on; every ckvc a test spawns inherits this.
    env: { CKVC_TEST_FAULTS: '1' },
    reporters: ['default', './tests/summary-reporter.ts'],
  },
});
