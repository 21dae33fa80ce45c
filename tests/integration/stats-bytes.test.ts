// `ckvc stats` never shows unique bytes above logical bytes (issue 16). Unique bytes are the file data the store
// holds after dedup; metadata (commits, trees, recipes, tensor entries, config snapshots) is reported apart, and
// data no branch or tag reaches (a deleted branch before gc) does not lift unique above logical. Both cases used
// to: a store of small JSON snapshots showed 16 B logical and 630 B unique.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { randomBytes, safetensorsBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

interface Stats {
  logicalBytes: number;
  uniqueBytes: number;
  metadataBytes: number;
  dedupRatio: number;
}

const stats = (s: TestStore) => s.json<Stats>(['stats']);

function expectInvariant(st: Stats): void {
  expect(st.uniqueBytes).toBeLessThanOrEqual(st.logicalBytes);
  expect(st.uniqueBytes).toBeGreaterThanOrEqual(0);
  expect(st.metadataBytes).toBeGreaterThan(0);
}

describe('stats: unique bytes never above logical bytes', () => {
  it('small JSON snapshots: metadata is counted apart, unique is the distinct file bytes', () => {
    const s = newStore();
    const f = path.join(s.dir, 'agent.json');
    const cfg = path.join(s.dir, 'cfg.yaml');
    fs.writeFileSync(cfg, `lr: 0.001\nnotes: "${'x'.repeat(200)}"\n`);
    for (const text of ['{"a":1}', '{"a":2}', '{"a":1}']) {
      fs.writeFileSync(f, text);
      s.ok(['commit', f, '-b', 'main', '-m', text, '--config', cfg]);
    }
    const st = stats(s);
    expect(st.logicalBytes).toBe(21);
    expect(st.uniqueBytes).toBe(14);
    expect(st.metadataBytes).toBeGreaterThan(200); // the config snapshot and three commits
    expect(st.dedupRatio).toBeCloseTo(21 / 14, 6);
    expect(s.ok(['stats']).stdout).toMatch(/unique bytes: +14 B \(file data after dedup, 1\.50x\)/);
  });

  it('a deleted branch awaiting gc does not lift unique above logical; tensor stores hold the invariant', () => {
    const s = newStore();
    const big = path.join(s.dir, 'big.bin');
    const small = path.join(s.dir, 'small.bin');
    fs.writeFileSync(small, randomBytes(1, 1000));
    s.ok(['commit', small, '-b', 'main', '-m', 'small']);
    fs.writeFileSync(big, randomBytes(2, 300_000));
    s.ok(['commit', big, '-b', 'other', '-m', 'big']);
    expectInvariant(stats(s));
    s.ok(['branch', '-d', 'other']);
    const after = stats(s);
    expect(after.logicalBytes).toBe(1000);
    expect(after.uniqueBytes).toBe(1000);
    expectInvariant(after);

    const t = newStore();
    const model = path.join(t.dir, 'model.safetensors');
    for (let i = 0; i < 3; i++) {
      fs.writeFileSync(
        model,
        safetensorsBytes({
          embed: { dtype: 'F32', shape: [64, 64], bytes: randomBytes(1, 64 * 64 * 4) },
          head: { dtype: 'F32', shape: [64, 16], bytes: randomBytes(10 + i, 64 * 16 * 4) },
        }),
      );
      t.ok(['commit', model, '-b', 'main', '-m', `step ${i}`]);
    }
    const st = stats(t);
    expectInvariant(st);
    // The embedding is stored once: well under the three plain copies.
    expect(st.uniqueBytes).toBeLessThan(st.logicalBytes * 0.6);
  });
});
