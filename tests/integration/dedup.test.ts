// Deduplication, measured as growth of the packs folder: unchanged tensors cost nothing, a changed embedding
// row costs about one 256 KiB chunk, an identical file costs nothing, and an insertion into an opaque file
// only re-stores the content-defined chunks around it. All data is random so compression cannot blur sizes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { packBytes } from '../helpers/snapshots.js';
import { randomBytes, safetensorsBytes, safetensorsDataStart, type TensorSpec } from '../helpers/data.js';

afterAll(cleanupTemp);

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 256 * KiB;

/** Commits `file` and returns how many bytes the packs grew by. */
function growth(s: TestStore, file: string, args: string[] = []): { id: string; bytes: number } {
  const before = packBytes(s.store);
  const id = commitId(s, [file, '-m', `commit ${path.basename(file)}`, ...args]);
  return { id, bytes: packBytes(s.store) - before };
}

function roundTrips(s: TestStore, id: string, file: string): boolean {
  const out = tempDir('ckvc-out-');
  s.ok(['checkout', id, '--to', out]);
  return fs.readFileSync(path.join(out, path.basename(file))).equals(fs.readFileSync(file));
}

describe('dedup of safetensors by tensor', () => {
  let s: TestStore;
  let dir: string;
  // 8 tensors of 2 MiB (F32 512x1024): 16 MiB in all.
  const TENSOR_BYTES = 2 * MiB;
  const names = Array.from({ length: 8 }, (_, i) => `layers.${i}.weight`);
  const tensors = (seeds: number[]): Record<string, TensorSpec> =>
    Object.fromEntries(
      names.map((n, i) => [n, { dtype: 'F32', shape: [512, 1024], bytes: randomBytes(seeds[i]!, TENSOR_BYTES) }]),
    );

  beforeAll(() => {
    s = newStore();
    dir = tempDir('ckvc-dd-');
  });

  it('first commit stores about the file size; a version with 4 of 8 tensors changed adds about those 4', () => {
    const file = path.join(dir, 'model.safetensors');
    fs.writeFileSync(file, safetensorsBytes(tensors([1, 2, 3, 4, 5, 6, 7, 8])));
    const size = fs.statSync(file).size;
    const g1 = growth(s, file);
    expect(g1.bytes).toBeGreaterThan(size * 0.98);
    expect(g1.bytes).toBeLessThan(size * 1.05);

    fs.writeFileSync(file, safetensorsBytes(tensors([1, 2, 3, 4, 15, 16, 17, 18])));
    const g2 = growth(s, file);
    const changed = 4 * TENSOR_BYTES;
    expect(g2.bytes).toBeGreaterThan(changed * 0.98);
    expect(g2.bytes).toBeLessThan(changed * 1.05);
    expect(roundTrips(s, g2.id, file)).toBe(true);

    const st = s.json(['stats']);
    expect(st.commits).toBe(2);
    expect(st.logicalBytes).toBe(2 * size);
    // 12 distinct tensors of 2 MiB, plus small objects.
    expect(st.uniqueBytes).toBeGreaterThanOrEqual(12 * TENSOR_BYTES);
    expect(st.uniqueBytes).toBeLessThan(12 * TENSOR_BYTES + 64 * KiB);
    expect(st.storedBytes).toBe(packBytes(s.store));
    expect(st.dedupRatio).toBeCloseTo(st.logicalBytes / st.uniqueBytes, 6);
    expect(st.objects.commit).toBe(2);
    expect(st.objects.tensor).toBe(12);
    expect(st.objects.chunk).toBeGreaterThanOrEqual(12 * (TENSOR_BYTES / CHUNK));
  });

  it('committing the identical file again adds (almost) nothing', () => {
    const file = path.join(dir, 'model.safetensors');
    const g = growth(s, file);
    expect(g.bytes).toBeLessThan(4 * KiB);
    expect(roundTrips(s, g.id, file)).toBe(true);
  });

  it('the same tensors under a different header (metadata added, order kept) dedup: only the header is new', () => {
    const file = path.join(dir, 'renamed', 'model.safetensors');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, safetensorsBytes(tensors([1, 2, 3, 4, 15, 16, 17, 18]), { format: 'pt', epoch: '7' }));
    const g = growth(s, file, ['-b', 'meta']);
    expect(g.bytes).toBeLessThan(16 * KiB);
    expect(roundTrips(s, g.id, file)).toBe(true);
  });

  it('the same tensors at other offsets (order reversed, a small tensor in front) dedup: chunks align to each tensor', () => {
    const file = path.join(dir, 'shuffled', 'model.safetensors');
    fs.mkdirSync(path.dirname(file));
    const t = tensors([1, 2, 3, 4, 15, 16, 17, 18]);
    const reordered: Record<string, TensorSpec> = {
      'odd.bias': { dtype: 'F32', shape: [37], bytes: randomBytes(55, 148) },
    };
    for (const n of [...names].reverse()) reordered[n] = t[n]!;
    fs.writeFileSync(file, safetensorsBytes(reordered));
    const g = growth(s, file, ['-b', 'shuffled']);
    expect(g.bytes).toBeLessThan(16 * KiB);
    expect(roundTrips(s, g.id, file)).toBe(true);
  });

  it('changing one row of a 4 MiB embedding stores about that row (a delta against the parent chunk)', () => {
    const file = path.join(dir, 'embed.safetensors');
    // 4096 rows x 256 F32 = 1 KiB per row, 4 MiB in all; plus a small second tensor after it.
    const embed = randomBytes(100, 4 * MiB);
    const head = randomBytes(101, 64 * KiB);
    const build = (e: Buffer) =>
      safetensorsBytes({
        'embed_tokens.weight': { dtype: 'F32', shape: [4096, 256], bytes: e },
        'lm_head.bias': { dtype: 'F32', shape: [16384], bytes: head },
      });
    fs.writeFileSync(file, build(embed));
    growth(s, file, ['-b', 'embed']);

    const changed = Buffer.from(embed);
    randomBytes(102, KiB).copy(changed, 1000 * KiB); // row 1000
    const v2 = build(changed);
    fs.writeFileSync(file, v2);
    // Sanity: the files differ in exactly one 1 KiB row.
    expect(safetensorsDataStart(v2)).toBeGreaterThan(8);
    const g = growth(s, file, ['-b', 'embed']);
    // The changed chunk is new (its ID differs), stored as its XOR against the parent's chunk: the 1 KiB row.
    expect(g.bytes).toBeGreaterThan(KiB);
    expect(g.bytes).toBeLessThan(16 * KiB);
    expect(roundTrips(s, g.id, file)).toBe(true);
  });
});

describe('dedup of opaque files by content-defined chunks', () => {
  it('100 bytes inserted near the start of an 8 MiB file re-stores a small fraction of it', () => {
    const s = newStore();
    const dir = tempDir('ckvc-dd-');
    const file = path.join(dir, 'agent.pkl');
    const base = randomBytes(7, 8 * MiB);
    fs.writeFileSync(file, base);
    const g1 = growth(s, file);
    expect(g1.bytes).toBeGreaterThan(8 * MiB * 0.98);

    const inserted = Buffer.concat([base.subarray(0, 5000), randomBytes(8, 100), base.subarray(5000)]);
    fs.writeFileSync(file, inserted);
    const g2 = growth(s, file);
    expect(g2.bytes).toBeLessThan(8 * MiB * 0.25);
    expect(roundTrips(s, g2.id, file)).toBe(true);

    // And in the middle of the file: still only the chunks around the edit.
    const mid = Buffer.concat([inserted.subarray(0, 4 * MiB), randomBytes(9, 100), inserted.subarray(4 * MiB)]);
    fs.writeFileSync(file, mid);
    const g3 = growth(s, file);
    expect(g3.bytes).toBeLessThan(8 * MiB * 0.25);
    expect(roundTrips(s, g3.id, file)).toBe(true);

    const v = s.run(['verify', '--read-data']);
    expect(v.code).toBe(0);
  });
});
