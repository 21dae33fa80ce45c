// The delta-base cache (spec/FORMAT.md §18): each commit leaves the chunks it stored as deltas where the next one,
// in another process, takes its delta bases from instead of decoding their chains. It changes how fast a commit
// runs, never what it stores: the records are those of a commit without the cache, whatever state the cache is
// in (damaged, garbage, another store's), and a gc that frees packs removes it. This file's commands keep their
// caches in a folder of its own (CKVC_CACHE).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commit } from '../../src/api/commit.js';
import { parsePlaneTable } from '../../src/core/store-format/codec/plane-codec.js';
import { CODECS, RECORD_HEADER_BYTES } from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { MAX_WRITTEN_DELTA_DEPTH } from '../../src/store/object-writer.js';
import { baseCacheOf, forgetBaseCache } from '../helpers/base-cache.js';
import { ok, okJson } from '../helpers/ckvc.js';
import { chunkRecords } from '../helpers/chunk-records.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32, type TensorSpec } from '../helpers/data.js';
import { countInflates } from '../helpers/inflate-counter.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore } from '../helpers/test-store.js';

const ELEMENTS = 64 * 1024; // one 256 KiB chunk of F32 per tensor
const TENSORS = 3;

/** `count` checkpoints of a training run: every element's low mantissa bits move each step (deltas pay). */
function series(count: number, seed = 1): Buffer[] {
  let ws = Array.from({ length: TENSORS }, (_, t) => trainedFloat32(seed * 10 + t, ELEMENTS));
  const out: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    if (k > 0) ws = ws.map((w, t) => optimizerStepFloat32(w, seed * 1000 + 10 * k + t));
    const spec: Record<string, TensorSpec> = {};
    ws.forEach((w, t) => {
      spec[`layer.${t}.weight`] = { dtype: 'F32', shape: [ELEMENTS], bytes: w };
    });
    out.push(safetensorsBytes(spec));
  }
  return out;
}

const savedCacheRoot = process.env.CKVC_CACHE;
beforeAll(() => {
  process.env.CKVC_CACHE = tempDir('ckvc-bases-cache-root-');
});
afterAll(() => {
  if (savedCacheRoot === undefined) delete process.env.CKVC_CACHE;
  else process.env.CKVC_CACHE = savedCacheRoot;
  cleanupTemp();
});

describe('the delta-base cache', () => {
  it('gives a commit in a fresh store handle its bases without inflating their chains, and the same records as without it', async () => {
    const cached = newStore('ckvc-bases-cached-');
    const plain = newStore('ckvc-bases-plain-');
    const input = tempDir('ckvc-bases-in-');
    const file = path.join(input, 'model.safetensors');
    const steps = series(MAX_WRITTEN_DELTA_DEPTH + 3);
    const inflated = await countInflates();
    const inflates = { cached: [] as number[], plain: [] as number[] };
    try {
      for (const [k, bytes] of steps.entries()) {
        fs.writeFileSync(file, bytes);
        const opts = { paths: [file], message: `step ${k}`, branch: 'main', cwd: input };
        for (const [which, s] of [
          ['cached', cached],
          ['plain', plain],
        ] as const) {
          if (which === 'plain') forgetBaseCache(s.store);
          // A handle per commit, as a CLI commit has: no memory of the commit before (recent-chunks.ts).
          const store = await ObjectStore.open(s.store);
          inflated.count = 0;
          try {
            await commit(store, opts);
          } finally {
            await store.close();
          }
          inflates[which].push(inflated.count);
        }
        // The first commit stores no delta, so leaves no cache (its chunks decode with a read and an inflate).
        expect(fs.existsSync(baseCacheOf(cached.store))).toBe(k > 0);
        expect(fs.readdirSync(cached.store)).not.toContain('cache'); // never in the store
      }
    } finally {
      inflated.restore();
    }
    const records = await chunkRecords(cached.store);
    expect(records.filter((r) => r.includes(` ${CODECS.xorPlanes} `)).length).toBeGreaterThanOrEqual(
      TENSORS * (steps.length - 2),
    );
    expect(records).toEqual(await chunkRecords(plain.store));
    // Without the cache a commit inflates a plane per link of its bases' chains; with it, only the parent's tree
    // and file recipe, from the third step on (the first stores no delta to cache), but for the step that restarts
    // the chains on their roots (stored without a base, so never cached).
    const rooted = MAX_WRITTEN_DELTA_DEPTH + 1;
    expect(Math.max(...inflates.plain)).toBeGreaterThan(TENSORS * (MAX_WRITTEN_DELTA_DEPTH - 1));
    expect(Math.max(...inflates.cached.slice(2).filter((_, i) => i + 2 !== rooted))).toBeLessThan(3);
    expect(inflates.cached[rooted]).toBeLessThanOrEqual(inflates.plain[rooted]!);
    const out = tempDir('ckvc-bases-out-');
    cached.ok(['checkout', 'main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(steps.at(-1)!)).toBe(true);
    cached.ok(['verify', '--read-data']);
  });

  it('leaves a commit process what it stores when the cache is damaged, garbage or of another series', () => {
    const cached = newStore('ckvc-bases-hostile-');
    const plain = newStore('ckvc-bases-hostile-plain-');
    const input = tempDir('ckvc-bases-hostile-in-');
    const file = path.join(input, 'model.safetensors');
    const steps = series(6, 2);
    // A valid cache of another store's series: its IDs are not this series' bases.
    const foreign = newStore('ckvc-bases-foreign-');
    const foreignFile = path.join(tempDir('ckvc-bases-foreign-in-'), 'model.safetensors');
    for (const [k, bytes] of series(2, 3).entries()) {
      fs.writeFileSync(foreignFile, bytes);
      foreign.ok(['commit', foreignFile, '-b', 'main', '-m', `other ${k}`]);
    }
    const spoil: ((cache: string) => void)[] = [
      () => {},
      () => {},
      (cache) => {
        // Every chunk's bytes damaged where a delta reads them (the exponent bytes of F32 elements), the layout
        // intact: each entry fails its hash. Taken as bases, they would change what the commit stores.
        const b = fs.readFileSync(cache);
        const dataEnd = Number(b.readBigUInt64LE(b.length - 20));
        for (let i = 3; i < dataEnd; i += 64) b[i] = b[i]! ^ 0x01;
        fs.writeFileSync(cache, b);
      },
      (cache) => fs.writeFileSync(cache, Buffer.alloc(70_000, 0x5a)),
      (cache) => fs.copyFileSync(baseCacheOf(foreign.store), cache),
      (cache) => fs.rmSync(cache),
    ];
    for (const [k, bytes] of steps.entries()) {
      fs.writeFileSync(file, bytes);
      // From the third commit on: the first stores no delta, so the second finds no cache.
      if (k > 1) spoil[k]!(baseCacheOf(cached.store));
      forgetBaseCache(plain.store);
      // Real processes, one per commit.
      ok(['commit', file, '-b', 'main', '-m', `step ${k}`, '--store', cached.store], { cwd: input });
      ok(['commit', file, '-b', 'main', '-m', `step ${k}`, '--store', plain.store], { cwd: input });
    }
    return (async () => {
      expect(await chunkRecords(cached.store)).toEqual(await chunkRecords(plain.store));
      const out = tempDir('ckvc-bases-hostile-out-');
      ok(['checkout', 'main', '--to', out, '--store', cached.store]);
      expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(steps.at(-1)!)).toBe(true);
      ok(['verify', '--read-data', '--store', cached.store]);
    })();
  });

  it('does not build on a parent record damaged where it can be compared with the cache: the chunk is stored plain, and reads back', async () => {
    const s = newStore('ckvc-bases-damaged-');
    const input = tempDir('ckvc-bases-damaged-in-');
    const file = path.join(input, 'model.safetensors');
    const steps = series(3, 5);
    const commitStep = async (k: number) => {
      fs.writeFileSync(file, steps[k]!);
      const store = await ObjectStore.open(s.store);
      try {
        return await commit(store, { paths: [file], message: `step ${k}`, branch: 'main', cwd: input });
      } finally {
        await store.close();
      }
    };
    await commitStep(0);
    await commitStep(1);
    expect(fs.existsSync(baseCacheOf(s.store))).toBe(true);
    // One byte of a plane step 1 stored as it is (not compressed, not XORed) in one of its delta records.
    const store = await ObjectStore.open(s.store);
    let damaged: string | undefined;
    try {
      for (const name of fs.readdirSync(path.join(s.store, 'packs'))) {
        const packId = name.slice(0, 64);
        const packFile = path.join(s.store, 'packs', name);
        for (const entry of (await store.packs.readToc(packId)).entries) {
          if (damaged || entry.codec !== CODECS.xorPlanes) continue;
          const body = (
            await store.packs.readAt(packId, entry.offset, RECORD_HEADER_BYTES + entry.storedLength)
          ).subarray(RECORD_HEADER_BYTES);
          const table = parsePlaneTable(body, body.length, entry.rawLength, true, 'test');
          const plain = table.planes.find((p) => p.mode === 0);
          if (!plain) continue;
          const fd = fs.openSync(packFile, 'r+');
          const at = entry.offset + RECORD_HEADER_BYTES + plain.offset + 100;
          fs.writeSync(fd, Buffer.from([body[plain.offset + 100]! ^ 0x10]), 0, 1, at);
          fs.closeSync(fd);
          damaged = entry.id;
        }
      }
    } finally {
      await store.close();
    }
    expect(damaged).toBeDefined();
    await commitStep(2);
    // Step 2's chunk at that place is stored without a base (the damaged record could not be read as its base),
    // so step 2 reads back whole although step 1 does not.
    const after = await ObjectStore.open(s.store);
    try {
      const tip = await after.readCommit((await after.refs.read('refs/heads/main'))!);
      const recipe = await after.readFileRecipe((await after.readTree(tip.tree)).entries[0]!.id);
      for (const part of recipe.parts) {
        if (part.kind !== 'tensor') continue;
        for (const chunk of (await after.readTensor(part.id)).chunks) {
          const loc = (await after.locate([chunk]))[0]!;
          const base = await after.packs.readDeltaBaseId(loc);
          expect(base, `chunk ${chunk.slice(0, 12)} is a delta on the damaged record`).not.toBe(damaged);
        }
      }
    } finally {
      await after.close();
    }
    const out = tempDir('ckvc-bases-damaged-out-');
    s.ok(['checkout', 'main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(steps[2]!)).toBe(true);
  });

  it('is kept by a gc that frees nothing and removed by one that deletes packs', () => {
    const s = newStore('ckvc-bases-gc-');
    const input = tempDir('ckvc-bases-gc-in-');
    const file = path.join(input, 'model.safetensors');
    const steps = series(3, 4);
    fs.writeFileSync(file, steps[0]!);
    s.ok(['commit', file, '-b', 'main', '-m', 'step 0']);
    // A branch whose data nothing else holds: once it is deleted and its reflog expired, gc frees its pack.
    fs.writeFileSync(file, steps[1]!);
    s.ok(['commit', file, '-b', 'scratch', '-m', 'scratch']);
    s.ok(['branch', '-d', 'scratch']);
    fs.writeFileSync(file, steps[2]!);
    s.ok(['commit', file, '-b', 'main', '-m', 'step 2']);
    const cache = baseCacheOf(s.store);
    expect(fs.existsSync(cache)).toBe(true);
    expect(okJson(['gc', '--grace', '0', '--store', s.store]).packsDeleted).toBe(0);
    expect(fs.existsSync(cache)).toBe(true);
    const dry = okJson(['gc', '--grace', '0', '--expire-reflog', '0', '--dry-run', '--store', s.store]);
    expect(dry.packsDeleted).toBeGreaterThan(0);
    expect(fs.existsSync(cache)).toBe(true);
    const freed = okJson(['gc', '--grace', '0', '--expire-reflog', '0', '--store', s.store]);
    expect(freed.packsDeleted).toBeGreaterThan(0);
    expect(fs.existsSync(cache)).toBe(false);
    const out = tempDir('ckvc-bases-gc-out-');
    s.ok(['checkout', 'main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(steps[2]!)).toBe(true);
    s.ok(['verify', '--read-data']);
  });
});
