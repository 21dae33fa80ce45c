// Committing reads tensor chunks into pooled buffers it hands over to the object writer, and other data into two
// blocks it reuses, region after region and file after file, of which the writer copies what it keeps into pooled
// buffers too (src/store/ingest/chunk-reader.ts, object-writer.ts). A
// buffer handed back too early would be overwritten by a later chunk before its record is written: these commits
// cross many read blocks and writer batches with every way a chunk's bytes leave the writer (already stored,
// repeated within the commit, stored raw, compressed, delta-coded, dry run), for tensors and content-defined
// chunks of opaque files, and must check out byte-identical. Checkout in turn reads raw records into pool buffers
// it hands back once written (src/store/pack-reader.ts readObject): the random tensors here are such records.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  optimizerStepFloat32,
  randomBytes,
  safetensorsBytes,
  trainedFloat32,
  type TensorSpec,
} from '../helpers/data.js';
import { treeDifferences } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

const MiB = 1024 * 1024;

/**
 * Tensors of 1.5-2.2 MiB (ragged ends: not whole 256 KiB chunks) and two that span several 8 MiB read blocks,
 * about 60 MiB in all, and one repeated.
 */
function tensors(step: number): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  for (let i = 0; i < 16; i++) {
    const count = (1.5 * MiB + i * 48 * 1024 + 4 * i) / 4;
    // Noise does not compress (stored raw, written from the copy); trained weights do (encoded, copy freed early).
    let bytes = i % 3 === 0 ? randomBytes(100 + i, count * 4) : trainedFloat32(100 + i, count);
    // Later steps change every other tensor as an optimizer step does (delta-coded against the step before).
    for (let k = 1; k <= step; k++) if (i % 2 === 1) bytes = optimizerStepFloat32(bytes, 1000 * k + i);
    out[`layer.${i}.weight`] = { dtype: 'F32', shape: [count], bytes };
  }
  const big = (20.25 * MiB) / 4;
  out['big.noise'] = { dtype: 'F32', shape: [big], bytes: randomBytes(7 + step, big * 4) };
  let trained = trainedFloat32(8, big / 2);
  for (let k = 1; k <= step; k++) trained = optimizerStepFloat32(trained, 77 * k);
  out['big.trained'] = { dtype: 'F32', shape: [big / 2], bytes: trained };
  out['tied.weight'] = out['layer.1.weight']!; // the same chunks twice in one commit
  return out;
}

describe('read blocks and chunk copies reused during a commit', () => {
  it('checks out every step byte-identical across new, changed, repeated and unchanged data, two files a commit', () => {
    const s = newStore('ckvc-reuse-');
    const src = tempDir('ckvc-reuse-src-');
    const ids: string[] = [];
    const copies: string[] = [];
    for (let step = 0; step < 3; step++) {
      const dir = path.join(src, 'ckpt');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors(step)));
      // A second file read with the same blocks after the first: half the first's tensors, in another order.
      const reordered = Object.entries(tensors(step)).reverse().slice(0, 8);
      fs.writeFileSync(path.join(dir, 'ema.safetensors'), safetensorsBytes(Object.fromEntries(reordered)));
      // An opaque file (content-defined chunks) over several windows, a 4 MiB stretch repeated, changed at step 2.
      const noise = randomBytes(50, 18 * MiB);
      if (step === 2) randomBytes(51, 64 * 1024).copy(noise, 9 * MiB);
      fs.writeFileSync(path.join(dir, 'optimizer.bin'), Buffer.concat([noise, noise.subarray(2 * MiB, 6 * MiB)]));
      if (step === 1) {
        // A dry run hashes and looks up the same way and keeps nothing: it counts what the commit then stores.
        const dry = s.json(['commit', dir, '-m', 'dry', '--dry-run']);
        const real = s.json(['commit', dir, '-m', `step ${step}`]);
        expect(real.newBytes).toBe(dry.newBytes);
        expect(real.newBytes).toBeGreaterThan(15 * MiB);
        ids.push(real.id);
      } else ids.push(commitId(s, [dir, '-m', `step ${step}`]));
      const copy = path.join(src, `copy-${step}`);
      fs.cpSync(dir, copy, { recursive: true });
      copies.push(copy);
    }
    // Committed again unchanged: nothing new.
    expect(s.json(['commit', path.join(src, 'ckpt'), '-m', 'again']).newBytes).toBe(0);
    expect(s.json(['verify', '--read-data']).ok).toBe(true);
    for (const [i, id] of ids.entries()) {
      const out = tempDir('ckvc-reuse-out-');
      s.ok(['checkout', id, '--to', out]);
      expect(treeDifferences(copies[i]!, out)).toEqual([]);
    }
    expect(s.json(['stats']).deltas.chunks).toBeGreaterThan(40); // the changed tensors of steps 1 and 2
  }, 180_000);
});
