// Fuzz target 5: the pack reader, in process and end to end, on a real store made with the CLI (init, three
// commits with a safetensors file, text, random and zero-filled files and a config, plus an annotated tag).
//
//  - in process: src/store/pack-reader.ts reads mutated copies of the store's packs. readToc gives entries that
//    tile the pack or refuses with CKVC_CORRUPT_PACK / CKVC_UNSUPPORTED_VERSION; readObject, at the locations an
//    index built from the intact pack gives and at those the damaged TOC gives, returns exactly the original
//    bytes of the object or refuses with CKVC_CORRUPT_PACK / CKVC_CORRUPT_OBJECT.
//  - end to end: each case copies the store, damages one pack once (flip a bit, truncate, zero a range, swap two
//    records) and runs `ckvc verify --read-data --json` (exit 12, every problem with a CKVC_ code; exit 0 only if
//    no byte changed) and `ckvc checkout HEAD --to DIR` (exit 0 with identical files, or exit 12/14 with one
//    stderr line ending in [CKVC_...]; never a stack trace, a temp file left behind, or a file with wrong
//    content). Each run is killed after 10 s and then counts as a hang. Every 4th case also deletes the index.
//
// Needs dist/ (the CLI runs compiled code): `npx tsc -p .` or `npm run build` first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzTimeout, sameBytes, scaled } from './fuzz-helpers.js';
import { Level } from 'level';
import {
  createFixture,
  fuzzCli,
  fuzzPackReader,
  fuzzPackReaderLocations,
  listFiles,
  packsOf,
  run,
  type Fixture,
} from './fuzz-store-lib.js';

let fx: Fixture;

beforeAll(() => {
  fx = createFixture();
}, 120_000);

afterAll(() => fx?.cleanup());

describe('fuzz: pack reader on a real store', () => {
  it('the intact store verifies and checks out byte for byte', () => {
    expect(listFiles(fx.expectedDir)).toEqual(listFiles(fx.srcDir));
    for (const f of listFiles(fx.srcDir)) {
      expect(
        sameBytes(fs.readFileSync(path.join(fx.expectedDir, f)), fs.readFileSync(path.join(fx.srcDir, f))),
        f,
      ).toBe(true);
    }
    const v = run(fx.root, ['verify', '--read-data', '--json', '--store', fx.store]);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).ok).toBe(true);
    expect(packsOf(fx.store).length).toBeGreaterThanOrEqual(3);
  });

  it(
    'PackReader over mutated packs: the original bytes of an object, or a refusal with a code',
    async () => {
      expect(await fuzzPackReader(fx, scaled(1500))).toEqual([]);
    },
    fuzzTimeout(),
  );

  it(
    'PackReader with damaged index locations: the original bytes of an object, or a refusal with a code',
    async () => {
      expect(await fuzzPackReaderLocations(fx, scaled(2000))).toEqual([]);
    },
    fuzzTimeout(),
  );

  it(
    'ckvc verify --read-data and checkout on stores with one damaged pack',
    async () => {
      const r = await fuzzCli(fx, scaled(40));
      expect(r.failures).toEqual([]);
      expect(r.undetected / r.cases, 'share of damaged stores verify --read-data passed').toBeLessThan(0.05);
      // Records are small here: a damaged length field must not make the CLI allocate what it claims.
      expect(r.maxChildRssMiB).toBeLessThan(400);
    },
    fuzzTimeout(600_000),
  );
});

// Found by the location fuzz above, reproduced through the CLI. The index is a cache (spec/FORMAT.md §8) whose
// values are not checked against the 64 MiB limit (object-index.ts decodeLocation), and PackReader.readObject
// allocates 44 + stored_length bytes from the location before reading the record header. A location whose
// stored_length is 0xffffffff makes Buffer.allocUnsafe throw a RangeError: checkout, and verify itself, exit 1
// with a stack trace (CKVC_INTERNAL) instead of reporting a damaged store.
describe('fuzz findings: a damaged index location', () => {
  it('checkout and verify exit 12 with a CKVC_ code, not a RangeError, when a location says 0xffffffff bytes', async () => {
    const dir = fs.mkdtempSync(path.join(fx.root, 'bad-index-'));
    const copy = path.join(dir, 'store');
    fs.cpSync(fx.store, copy, { recursive: true });
    const db = new Level<Buffer, Buffer>(path.join(copy, 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    let patched = 0;
    for await (const [k, v] of db.iterator({ gte: Buffer.from([0x6f]), lt: Buffer.from([0x70]) })) {
      if (v.length === 52 && v[48] === 4) {
        // tree locations: checkout and verify both read the root tree
        v.writeUInt32LE(0xffffffff, 40); // stored_length
        await db.put(k, v);
        patched++;
      }
    }
    await db.close();
    expect(patched).toBeGreaterThan(0);
    for (const args of [['checkout', 'HEAD', '--to', path.join(dir, 'out')], ['verify']]) {
      const r = run(dir, [...args, '--store', copy]);
      expect(r.stderr, `ckvc ${args[0]}`).not.toMatch(/RangeError|\n\s+at |CKVC_INTERNAL/);
      expect(r.code, `ckvc ${args[0]}: ${r.stderr}`).toBe(12);
    }
  });
});
