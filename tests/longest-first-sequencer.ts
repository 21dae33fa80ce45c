// The order test files start in. With two files at a time, a long file started last runs alone while the other
// worker sits idle: the run ends when it ends. Vitest starts the longest first when its results cache
// (node_modules/.vite) knows the durations, but a fresh clone has none and vitest falls back to the largest
// source file first, which puts quick fuzz files ahead of the long CLI files. These files, measured longest on
// this machine, start first in that case; the rest follow in vitest's own order.
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The longest files of `npm test` (per-file times, 2 workers), longest first. */
export const LONGEST_FILES = [
  'tests/reliability/crash-points.test.ts',
  'tests/integration/transport-conformance.test.ts',
  'tests/integration/read-only-store.test.ts',
  'tests/reliability/fuzz-store.test.ts',
  'tests/integration/fetch-resume.test.ts',
  'tests/integration/curate.test.ts',
  'tests/reliability/gc-crash.test.ts',
  'tests/integration/watch.test.ts',
  'tests/integration/prune-walk.test.ts',
  'tests/reliability/temp-cleanup.test.ts',
  'tests/integration/partial-fetch.test.ts',
  'tests/integration/examples.test.ts',
];

const rank = (spec: TestSpecification): number => {
  const i = LONGEST_FILES.findIndex((f) => spec.moduleId.endsWith(`/${f}`));
  return i < 0 ? LONGEST_FILES.length : i;
};

export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cached = files.every((f) => this.ctx.cache.getFileTestResults(`${f.project.name}:${this.key(f)}`));
    const base = await super.sort(files);
    if (cached) return base;
    // Array.prototype.sort is stable: files outside the list keep vitest's order.
    return base.sort((a, b) => rank(a) - rank(b));
  }

  private key(spec: TestSpecification): string {
    const root = this.ctx.config.root.replace(/\/$/, '');
    return spec.moduleId.startsWith(`${root}/`) ? spec.moduleId.slice(root.length + 1) : spec.moduleId;
  }
}
