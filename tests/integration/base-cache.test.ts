// The base cache (spec/FORMAT.md §18): each commit leaves the grouped bytes of the chunks it stored as deltas
// outside the store, and the next commit on top of it codes its deltas against them instead of decoding the
// parent's chains. Shown here: the cache is used (bases are not read from the store), chain depths stay exact,
// every entry that does not hash to its chunk or whose record moved is ignored, and what is kept is bounded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commit } from '../../src/api/commit.js';
import { CkvcError } from '../../src/core/errors.js';
import { BASE_CACHE_ENTRY_BYTES, BASE_CACHE_FOOTER_BYTES } from '../../src/core/store-format/base-cache-format.js';
import { ID_BYTES } from '../../src/core/store-format/object-id.js';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { MAX_WRITTEN_DELTA_DEPTH } from '../../src/store/object-writer.js';
import { safetensorsBytes, trainedFloat32, type TensorSpec } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';

const ELEMENTS = 64 * 1024; // one 256 KiB chunk of F32 per tensor
const TENSORS = 3;

/** One optimizer step: every element's low mantissa bits move, the exponents stay (XOR deltas pay). */
function step(prev: Buffer, seed: number): Buffer {
  const b = Buffer.from(prev);
  const noise = trainedFloat32(seed, ELEMENTS);
  for (let i = 0; i < b.length; i += 4)
    b.writeUInt32LE((b.readUInt32LE(i) ^ (noise.readUInt32LE(i) & 0xffff)) >>> 0, i);
  return b;
}

/** Checkpoint k of a run: the same weights, k optimizer steps on. */
function checkpoint(k: number): Buffer {
  const spec: Record<string, TensorSpec> = {};
  for (let t = 0; t < TENSORS; t++) {
    let w = trainedFloat32(t + 1, ELEMENTS);
    for (let j = 1; j <= k; j++) w = step(w, 100 * j + t);
    spec[`layer.${t}.weight`] = { dtype: 'F32', shape: [ELEMENTS], bytes: w };
  }
  return safetensorsBytes(spec);
}

const checkpoints = Array.from({ length: MAX_WRITTEN_DELTA_DEPTH + 3 }, (_, k) => checkpoint(k));

describe('base cache', () => {
  let s: TestStore;
  let store: ObjectStore;
  let input: string;
  let cacheRoot: string;
  const savedEnv = { dir: process.env.CKVC_CACHE_DIR, off: process.env.CKVC_BASE_CACHE };

  beforeEach(async () => {
    s = newStore('ckvc-base-cache-');
    store = await ObjectStore.open(s.store);
    input = tempDir('ckvc-base-cache-in-');
    cacheRoot = tempDir('ckvc-base-cache-dir-');
    process.env.CKVC_CACHE_DIR = cacheRoot;
    delete process.env.CKVC_BASE_CACHE;
  });

  afterEach(async () => {
    await store.close();
    process.env.CKVC_CACHE_DIR = savedEnv.dir;
    if (savedEnv.off === undefined) delete process.env.CKVC_BASE_CACHE;
    else process.env.CKVC_BASE_CACHE = savedEnv.off;
  });

  afterAll(() => cleanupTemp());

  async function commitStep(k: number, branch = 'main') {
    const file = path.join(input, 'model.safetensors');
    fs.writeFileSync(file, checkpoints[k]!);
    return commit(store, { paths: [file], message: `step ${k}`, branch, cwd: input });
  }

  /** The tensors' chunks of a commit's tree, with their records' codecs and chain depths. */
  async function chunksOf(tree: string) {
    const t = await store.readTree(tree);
    const recipe = await store.readFileRecipe(t.entries[0]!.id);
    const out: { id: string; codec: number; depth: number }[] = [];
    for (const p of recipe.parts) {
      if (p.kind !== 'tensor') continue;
      const id = (await store.readTensor(p.id)).chunks[0]!;
      const loc = (await store.locate([id]))[0]!;
      out.push({
        id,
        codec: loc.entry.codec,
        depth: (await ObjectStore.prototype.readChunkGrouped.call(store, id, 4))!.depth,
      });
    }
    return out;
  }

  /** Counts the bases read from the store from now on; `fail` makes every such read fail instead. */
  function watchStoreBaseReads(fail: boolean): { count: number } {
    const seen = { count: 0 };
    const read = store.readChunkGrouped.bind(store);
    store.readChunkGrouped = async (id, width) => {
      seen.count++;
      if (fail) throw new CkvcError('CKVC_CORRUPT_OBJECT', 'test: bases are not read from the store here', {});
      return read(id, width);
    };
    return seen;
  }

  const cacheFolder = () => {
    const stores = path.join(cacheRoot, 'bases');
    const folders = fs.existsSync(stores) ? fs.readdirSync(stores) : [];
    expect(folders.length).toBeLessThanOrEqual(1);
    return folders.length ? path.join(stores, folders[0]!) : undefined;
  };
  const cacheFiles = () => {
    const dir = cacheFolder();
    return dir ? fs.readdirSync(dir).sort() : [];
  };

  it('codes a commit against the bases its parent left, reading none from the store, and keeps depths exact', async () => {
    const first = await commitStep(0);
    expect(cacheFiles()).toEqual([]); // no parent: nothing could be a delta
    const trees = [first.tree];
    const reads: number[] = [0];
    for (let k = 1; k < checkpoints.length; k++) {
      const seen = watchStoreBaseReads(false);
      const r = await commitStep(k);
      reads.push(seen.count);
      trees.push(r.tree);
      // The parent's file is replaced by this commit's (a plain restart of every chain leaves none).
      const restart = k % (MAX_WRITTEN_DELTA_DEPTH + 1) === 0;
      expect(cacheFiles(), `step ${k}`).toEqual(restart ? [] : [`${r.tree}.bases`]);
    }
    // Bases are read from the store only where the parent left no file: after the first commit, and after the
    // commit that restarted every chain; everywhere else they came from the cache.
    const restartStep = MAX_WRITTEN_DELTA_DEPTH + 1;
    expect(reads).toEqual(reads.map((_, k) => (k === 1 || k === restartStep + 1 ? TENSORS : 0)));
    for (let k = 0; k < trees.length; k++) {
      const chunks = await chunksOf(trees[k]!);
      const depth = k % (MAX_WRITTEN_DELTA_DEPTH + 1);
      expect(
        chunks.map((c) => c.depth),
        `step ${k}`,
      ).toEqual(Array(TENSORS).fill(depth));
      expect(
        chunks.map((c) => c.codec),
        `step ${k}`,
      ).toEqual(Array(TENSORS).fill(depth ? CODECS.xorPlanes : CODECS.planes));
    }
    for (const k of [2, trees.length - 1]) {
      const out = tempDir('ckvc-base-cache-out-');
      s.ok(['checkout', `main~${trees.length - 1 - k}`, '--to', out]);
      expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(checkpoints[k]!), `step ${k}`).toBe(true);
    }
    s.ok(['verify', '--read-data']);
  });

  it('stores the same records with the cache as without it', async () => {
    for (let k = 0; k < 4; k++) await commitStep(k);
    const withCache = s.json<{ storedBytes: number; objects: Record<string, number> }>(['stats']);
    await store.close();
    s = newStore('ckvc-base-cache-off-');
    store = await ObjectStore.open(s.store);
    process.env.CKVC_BASE_CACHE = '0';
    fs.rmSync(path.join(cacheRoot, 'bases'), { recursive: true });
    for (let k = 0; k < 4; k++) await commitStep(k);
    expect(fs.existsSync(path.join(cacheRoot, 'bases'))).toBe(false);
    const without = s.json<{ storedBytes: number; objects: Record<string, number> }>(['stats']);
    expect(without.objects).toEqual(withCache.objects);
    expect(without.storedBytes).toBe(withCache.storedBytes);
  });

  /** Commits steps 0 and 1, damages the cache file step 1 left with `damage`, then commits step 2 with bases
   * unreadable from the store: the codecs of step 2's chunks say whether the cache served them. */
  async function step2After(damage: (file: string) => void): Promise<number[]> {
    await commitStep(0);
    const one = await commitStep(1);
    const file = path.join(cacheFolder()!, `${one.tree}.bases`);
    damage(file);
    watchStoreBaseReads(true);
    const two = await commitStep(2);
    const out = tempDir('ckvc-base-cache-out-');
    s.ok(['checkout', two.id, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(checkpoints[2]!)).toBe(true);
    return (await chunksOf(two.tree)).map((c) => c.codec);
  }

  it('serves bases from an intact file (the control for the damaged ones below)', async () => {
    expect(await step2After(() => {})).toEqual(Array(TENSORS).fill(CODECS.xorPlanes));
  });

  it('ignores an entry whose bytes do not hash to its chunk', async () => {
    const codecs = await step2After((file) => {
      const b = fs.readFileSync(file);
      b.writeUInt8(b.readUInt8(8 + 1000) ^ 0x40, 8 + 1000); // in the first entry's bytes (after the magic)
      fs.writeFileSync(file, b);
    });
    // The damaged entry's chunk is stored plain (its base could not be read), the others from the cache.
    expect(codecs.filter((c) => c === CODECS.planes)).toHaveLength(1);
    expect(codecs.filter((c) => c === CODECS.xorPlanes)).toHaveLength(TENSORS - 1);
  });

  it('ignores entries whose record is no longer where they say (repacked or re-encoded by gc)', async () => {
    const codecs = await step2After((file) => {
      const b = fs.readFileSync(file);
      const count = b.readUInt32LE(b.length - BASE_CACHE_FOOTER_BYTES);
      const entries = Number(b.readBigUInt64LE(b.length - BASE_CACHE_FOOTER_BYTES + 4));
      for (let i = 0; i < count; i++) {
        const at = entries + i * BASE_CACHE_ENTRY_BYTES + ID_BYTES + 2 + ID_BYTES; // record offset
        b.writeBigUInt64LE(b.readBigUInt64LE(at) + 1n, at);
      }
      fs.writeFileSync(file, b);
    });
    expect(codecs).toEqual(Array(TENSORS).fill(CODECS.planes));
  });

  it('ignores a truncated or foreign file whole, and the commit goes ahead', async () => {
    expect(await step2After((file) => fs.truncateSync(file, fs.statSync(file).size - 1))).toEqual(
      Array(TENSORS).fill(CODECS.planes),
    );
  });

  it('keeps at most 4 files per store, and none when CKVC_BASE_CACHE=0', async () => {
    for (const branch of ['a', 'b', 'c', 'd', 'e']) {
      await commitStep(0, branch);
      await commitStep(1, branch);
    }
    // Every branch's second commit left the same tree's file; a distinct one per branch needs distinct steps.
    expect(cacheFiles()).toHaveLength(1);
    for (const [i, branch] of ['a', 'b', 'c', 'd', 'e'].entries()) {
      await commitStep(2 + i, branch);
      // mtimes order the files; keep them apart on coarse clocks
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(cacheFiles()).toHaveLength(4);
    process.env.CKVC_BASE_CACHE = '0';
    fs.rmSync(path.join(cacheRoot, 'bases'), { recursive: true });
    await commitStep(8, 'a');
    expect(fs.existsSync(path.join(cacheRoot, 'bases'))).toBe(false);
  });
});
