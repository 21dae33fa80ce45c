// A chunk whose base already sits as deep as writers let chains go is stored as a delta on the first record of
// that chain (the one stored without a base), so the chain starts again one deep instead of with a plain copy
// (spec/FORMAT.md §4.3). The writer learns that depth from the chain's record headers and decodes only the root:
// the commit that restarts the chains reads the headers of the chain and the root's planes, not every link's.
// Each commit opens the store afresh, as a CLI commit does: a store handle that committed the parent remembers its
// chunks (recent-chunks.ts, tested in delta-coding.test.ts) and reads no base but the roots. The delta-base cache a
// commit leaves for the next (spec/FORMAT.md §18, delta-base-cache.test.ts) is removed before each commit here, as
// after a gc: these are the reads a commit makes without it.
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
import { forgetBaseCache } from '../helpers/base-cache.js';
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
  it("reads only the headers of a base as deep as chains go, and stores the chunk as a delta on its chain's root", async () => {
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
        forgetBaseCache(s.store);
        await store.close();
        store = await ObjectStore.open(s.store);
        read.count = 0;
        trees.push((await commit(store, { paths: [file], message: `step ${k}`, branch: 'main', cwd: input })).tree);
        readByStep.push(read.count);
      }
      const restart = MAX_WRITTEN_DELTA_DEPTH + 1;
      /** Each tensor's first chunk in `tree`: its ID, its record's codec and the base that record names. */
      const chunks = async (tree: string) => {
        const recipe = await store.readFileRecipe((await store.readTree(tree)).entries[0]!.id);
        const out: { id: string; codec: number; base: string | undefined }[] = [];
        for (const p of recipe.parts)
          if (p.kind === 'tensor') {
            const id = (await store.readTensor(p.id)).chunks[0]!;
            const loc = (await store.locate([id]))[0]!;
            out.push({ id, codec: loc.entry.codec, base: await store.packs.readDeltaBaseId(loc) });
          }
        return out;
      };
      const roots = await chunks(trees[0]!);
      expect(roots.map((c) => c.codec)).toEqual(Array(TENSORS).fill(CODECS.planes));
      expect((await chunks(trees[restart - 1]!)).map((c) => c.codec)).toEqual(Array(TENSORS).fill(CODECS.xorPlanes));
      const restarted = await chunks(trees[restart]!);
      expect(restarted.map((c) => c.codec)).toEqual(Array(TENSORS).fill(CODECS.xorPlanes));
      expect(restarted.map((c) => c.base)).toEqual(roots.map((c) => c.id));
      // The commit before decoded its bases through 7 links; the restart reads the headers of each base's 8
      // bases and inflates only the roots' planes: fewer than one link's worth per tensor of the commit before.
      read.restore();
      expect(readByStep[restart - 1]!).toBeGreaterThan(TENSORS * MAX_WRITTEN_DELTA_DEPTH); // a plane per link
      expect(readByStep[restart]!).toBeLessThan(readByStep[restart - 1]! / 2);
      expect(readByStep[restart]!).toBeLessThanOrEqual(TENSORS * 4 + 2); // 4 planes per root, tree and recipe
    } finally {
      await store.close();
    }
    const out = tempDir('ckvc-restart-out-');
    s.ok(['checkout', 'main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(series.at(-1)!)).toBe(true);
  });
});
