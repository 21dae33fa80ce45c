// A chunk whose base already sits as deep as writers let chains go is stored plain and starts a new chain
// (spec/FORMAT.md §4.3). The writer learns that depth from the chain's record headers before decoding anything:
// the commit that restarts the chains reads the base records' headers, not their planes. Each commit opens the
// store afresh, as a CLI commit does: a store handle that committed the parent remembers its chunks
// (recent-chunks.ts, tested in delta-coding.test.ts) and reads no base at all.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commit } from '../../src/api/commit.js';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { MAX_WRITTEN_DELTA_DEPTH } from '../../src/store/object-writer.js';
import { safetensorsBytes, trainedFloat32, type TensorSpec } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { countInflates } from '../helpers/inflate-counter.js';
import { newStore } from '../helpers/test-store.js';

const ELEMENTS = 64 * 1024; // one 256 KiB chunk of F32 per tensor
const TENSORS = 3;

function checkpoints(count: number): Buffer[] {
  let ws = Array.from({ length: TENSORS }, (_, t) => trainedFloat32(t + 1, ELEMENTS));
  const out: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    if (k > 0)
      ws = ws.map((w, t) => {
        // one optimizer step: the low mantissa bits move, the exponents stay (deltas pay)
        const b = Buffer.from(w);
        const noise = trainedFloat32(100 * k + t, ELEMENTS);
        for (let i = 0; i < b.length; i += 4)
          b.writeUInt32LE((b.readUInt32LE(i) ^ (noise.readUInt32LE(i) & 0xffff)) >>> 0, i);
        return b;
      });
    const spec: Record<string, TensorSpec> = {};
    ws.forEach((w, t) => {
      spec[`layer.${t}.weight`] = { dtype: 'F32', shape: [ELEMENTS], bytes: w };
    });
    out.push(safetensorsBytes(spec));
  }
  return out;
}

afterAll(() => cleanupTemp());

describe('restarting a chain at the depth bound', () => {
  it('reads only the headers of a base as deep as chains go, and stores the chunk plain', async () => {
    const s = newStore('ckvc-restart-');
    const input = tempDir('ckvc-restart-in-');
    const file = path.join(input, 'model.safetensors');
    const series = checkpoints(MAX_WRITTEN_DELTA_DEPTH + 2);
    let store = await ObjectStore.open(s.store);
    try {
      // Inflates each commit makes: its bases' planes, and the parent's tree, file recipe and tensors.
      const read = await countInflates();
      const readByStep: number[] = [];
      const trees: string[] = [];
      for (const [k, bytes] of series.entries()) {
        fs.writeFileSync(file, bytes);
        await store.close();
        store = await ObjectStore.open(s.store);
        read.count = 0;
        trees.push((await commit(store, { paths: [file], message: `step ${k}`, branch: 'main', cwd: input })).tree);
        readByStep.push(read.count);
      }
      const restart = MAX_WRITTEN_DELTA_DEPTH + 1;
      const codecs = async (tree: string) => {
        const recipe = await store.readFileRecipe((await store.readTree(tree)).entries[0]!.id);
        const out: number[] = [];
        for (const p of recipe.parts)
          if (p.kind === 'tensor') {
            const chunk = (await store.readTensor(p.id)).chunks[0]!;
            out.push((await store.locate([chunk]))[0]!.entry.codec);
          }
        return out;
      };
      expect(await codecs(trees[restart - 1]!)).toEqual(Array(TENSORS).fill(CODECS.xorPlanes));
      expect(await codecs(trees[restart]!)).toEqual(Array(TENSORS).fill(CODECS.planes));
      // The commit before decoded its bases through 7 links; the restart reads each base's own record and the
      // headers of its 8 bases, and inflates none of their planes.
      read.restore();
      expect(readByStep[restart - 1]!).toBeGreaterThan(TENSORS * MAX_WRITTEN_DELTA_DEPTH); // a plane per link
      expect(readByStep[restart]!).toBeLessThan(TENSORS); // the parent's tree and file recipe, no plane
    } finally {
      await store.close();
    }
    const out = tempDir('ckvc-restart-out-');
    s.ok(['checkout', 'main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(series.at(-1)!)).toBe(true);
  });
});
