// Long fuzz run ("Prove that nothing is lost"), part of `npm run soak` (not of `npm test`). It runs with the
// reliability fuzz suites, which scale with the same variable:
//
//   npm run soak                        (the whole soak; CKVC_FUZZ_SCALE defaults to 10)
//   CKVC_FUZZ_SCALE=50 npx vitest run --config tests/soak/vitest.soak.config.ts fuzz
//   (add CKVC_FUZZ_SEED=<n> to explore other inputs; every failure message names its seed and case)
//
// What it adds to the scaled CI suites: a store of bigger checkpoints (tensors of several 256 KiB chunks in
// grouped-zstd codecs, a content-defined-chunked opaque file), its packs fuzzed in process through PackReader,
// and damaged copies of it taken through the CLI with up to 3 mutations per store. At scale 50 this file runs
// 175,000 PackReader cases and 2,000 damaged stores (4,000 ckvc runs): roughly an hour on 2 cores, and about as
// long again for the scaled reliability suites (whose end-to-end part is another 2,000 damaged stores).
//
// It runs when CKVC_FUZZ_SCALE is above 1 or CKVC_SOAK=1; otherwise it is skipped. Needs dist/ (npm run build).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_SCALE, scaled } from '../reliability/fuzz-helpers.js';
import {
  createFixture,
  fuzzCli,
  fuzzPackReader,
  fuzzPackReaderLocations,
  type Fixture,
} from '../reliability/fuzz-store-lib.js';

const SOAK = FUZZ_SCALE > 1 || process.env.CKVC_SOAK === '1';

describe.skipIf(!SOAK)(`soak: fuzz a store of bigger checkpoints (CKVC_FUZZ_SCALE=${FUZZ_SCALE})`, () => {
  let fx: Fixture;

  beforeAll(() => {
    fx = createFixture({ big: true });
  }, 300_000);

  afterAll(() => fx?.cleanup());

  it(
    'PackReader over mutated packs of multi-chunk tensors and CDC files',
    async () => {
      expect(await fuzzPackReader(fx, scaled(1500), 'soak-pack-reader')).toEqual([]);
    },
    24 * 3600_000,
  );

  it(
    'PackReader with damaged index locations',
    async () => {
      expect(await fuzzPackReaderLocations(fx, scaled(2000), 'soak-pack-reader-locations')).toEqual([]);
    },
    24 * 3600_000,
  );

  it(
    'ckvc verify --read-data and checkout on stores with up to 3 damaged spots',
    async () => {
      const r = await fuzzCli(fx, scaled(40), { target: 'soak-store-cli', maxMutations: 3 });
      expect(r.failures).toEqual([]);
      expect(r.undetected / r.cases).toBeLessThan(0.05);
      expect(r.maxChildRssMiB).toBeLessThan(600);
    },
    24 * 3600_000,
  );
});
