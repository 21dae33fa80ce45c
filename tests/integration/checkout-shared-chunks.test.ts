// A chunk that several files of a checkout share (a model saved as safetensors beside a torch.save of model and
// optimizer) is decoded from the store once; later files read it back from the file already written, hashed
// against its ID (src/store/written-chunks.ts). The files must be byte-identical either way, a file changed after
// it was written must not leak into the next one, and a checkout of many files must not keep every one open.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkout } from '../../src/api/checkout.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { WrittenChunks } from '../../src/store/written-chunks.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32, type TensorSpec } from '../helpers/data.js';
import { countInflates } from '../helpers/inflate-counter.js';
import { treeDifferences } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

const MiB = 1024 * 1024;

function weights(step: number): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  for (let i = 0; i < 4; i++) {
    const count = MiB / 4 + 1000 * i;
    let bytes = trainedFloat32(10 + i, count);
    for (let k = 1; k <= step; k++) bytes = optimizerStepFloat32(bytes, 100 * k + i);
    out[`layer.${i}.weight`] = { dtype: 'F32', shape: [count], bytes };
  }
  return out;
}

/** The weights alone, and a "full" file holding them (in another order) beside an optimizer moment. */
function writeStep(dir: string, step: number, twins: number): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const w = weights(step);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(w));
  const full: Record<string, TensorSpec> = Object.fromEntries(Object.entries(w).reverse());
  full['exp_avg'] = { dtype: 'F32', shape: [MiB / 4], bytes: trainedFloat32(99 + step, MiB / 4) };
  for (let t = 0; t < twins; t++) fs.writeFileSync(path.join(dir, `full-${t}.safetensors`), safetensorsBytes(full));
}

/** The chunk IDs of the tensors of `file` in commit `rev`. */
async function chunksOf(store: ObjectStore, rev: string, file: string): Promise<string[]> {
  const tree = await store.readTree((await store.readCommit(rev)).tree);
  const recipe = await store.readFileRecipe(tree.entries.find((e) => e.name === file)!.id);
  const ids: string[] = [];
  for (const p of recipe.parts) if (p.kind === 'tensor') ids.push(...(await store.readTensor(p.id)).chunks);
  return ids;
}

describe('checkout of files that share chunks', () => {
  let s: TestStore;
  let src: string;
  let one: string;
  let two: string;
  let many: string;

  beforeAll(() => {
    s = newStore('ckvc-shared-');
    src = tempDir('ckvc-shared-src-');
    // Steps 0 and 1 of the weights alone (step 1 delta-coded against step 0), then step 1 with one twin, with 20.
    const dir = path.join(src, 'ckpt');
    writeStep(dir, 0, 0);
    s.ok(['commit', dir, '-m', 'step 0']);
    writeStep(dir, 1, 0);
    one = commitId(s, [dir, '-m', 'step 1, weights only']);
    writeStep(dir, 1, 1);
    two = commitId(s, [dir, '-m', 'step 1, with a twin']);
    writeStep(path.join(src, 'many'), 1, 20);
    many = commitId(s, [path.join(src, 'many'), '-m', 'step 1, twenty twins']);
  });

  it('reads a shared chunk from the store once: the weights file reads back what its twin decoded', async () => {
    const store = await ObjectStore.open(s.store);
    const inflates = await countInflates();
    try {
      await checkout(store, { rev: one, to: tempDir('ckvc-shared-one-') });
      const weightsAlone = inflates.count;
      expect(weightsAlone).toBeGreaterThan(0); // delta-coded weights: reading them inflates planes
      inflates.count = 0;
      await checkout(store, { rev: two, to: tempDir('ckvc-shared-full-'), paths: ['full-0.safetensors'] });
      const fullAlone = inflates.count;
      inflates.count = 0;
      const reads = new Map<string, number>();
      const readLocated = store.readLocated.bind(store);
      store.readLocated = (loc, id, ...rest) => {
        reads.set(id, (reads.get(id) ?? 0) + 1);
        return readLocated(loc, id, ...rest);
      };
      const to = tempDir('ckvc-shared-two-');
      const r = await checkout(store, { rev: two, to });
      // full-0 is written first and decodes the weights; model.safetensors reads every one of them back.
      expect(r.written.map((w) => w.path)).toEqual(['full-0.safetensors', 'model.safetensors']);
      const weightChunks = await chunksOf(store, two, 'model.safetensors');
      expect(weightChunks.length).toBeGreaterThan(16);
      expect(weightChunks.map((id) => reads.get(id))).toEqual(weightChunks.map(() => 1));
      // What model.safetensors alone inflates (its header, its weights), the twin's checkout barely adds to.
      expect(inflates.count - fullAlone).toBeLessThan(weightsAlone / 4);
      writeStep(path.join(src, 'expected'), 1, 1);
      expect(treeDifferences(path.join(src, 'expected'), to)).toEqual([]);
    } finally {
      inflates.restore();
      await store.close();
    }
  });

  it('checks out twenty twins byte-identical and closes every file it kept open', async () => {
    const store = await ObjectStore.open(s.store);
    try {
      // One of the files first: the store opens the packs the others need too (and keeps them open).
      await checkout(store, { rev: many, to: tempDir('ckvc-shared-many-'), paths: ['full-0.safetensors'] });
      const fds = fs.readdirSync('/proc/self/fd').length;
      const to = tempDir('ckvc-shared-many-');
      await checkout(store, { rev: many, to });
      expect(fs.readdirSync('/proc/self/fd').length).toBe(fds);
      writeStep(path.join(src, 'expected-many'), 1, 20);
      expect(treeDifferences(path.join(src, 'expected-many'), to)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('decodes from the store a chunk whose written copy changed since, never copying the change', async () => {
    const dir = tempDir('ckvc-shared-changed-');
    const chunk = Buffer.alloc(300_000, 7);
    const id = objectId('chunk', chunk);
    const written = new WrittenChunks();
    const file = path.join(dir, 'a');
    const fh = await fs.promises.open(file, 'wx+');
    await fh.write(Buffer.alloc(100, 1));
    written.writing(fh);
    await fh.write(chunk);
    written.wrote(id, 100, chunk.length);
    written.writing(undefined);
    await written.keep(fh);
    try {
      expect(Buffer.from(written.read(id, chunk.length)!).equals(chunk)).toBe(true);
      expect(written.read(id, chunk.length - 1)).toBeUndefined(); // another length is another chunk
      // The same file, changed in place after it was written (as another program could).
      const other = fs.openSync(file, 'r+');
      fs.writeSync(other, Buffer.from([8]), 0, 1, 100 + 123_456);
      fs.closeSync(other);
      expect(written.read(id, chunk.length)).toBeUndefined();
    } finally {
      await written.close();
    }
  });
});
