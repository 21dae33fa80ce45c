// Changed tensor chunks stored as XOR deltas against the parent commit's chunk (spec/FORMAT.md §4.3): smaller
// stores, byte-identical checkouts, bounded chains, bases that gc keeps, bundles that carry a delta only with
// its base, and received deltas whose base is missing refused whole.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commit } from '../../src/api/commit.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { MIN_PLANE_CODED_BYTES } from '../../src/core/store-format/codec/record-codec.js';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { MAX_WRITTEN_DELTA_DEPTH } from '../../src/store/object-writer.js';
import { PackWriter } from '../../src/store/pack-writer.js';
import { ckvc, errorCodes, ok } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { countInflates } from '../helpers/inflate-counter.js';
import { chunkRecords } from '../helpers/chunk-records.js';
import { forgetBaseCache } from '../helpers/base-cache.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, packBytes, snapshotStore } from '../helpers/snapshots.js';
import { safetensorsBytes, trainedFloat32, type TensorSpec } from '../helpers/data.js';
import { hostileBundle, hostileHistory } from '../helpers/hostile-tree.js';

const KiB = 1024;
const ELEMENTS = 64 * KiB; // one 256 KiB chunk of F32 per tensor
const STEPS = MAX_WRITTEN_DELTA_DEPTH + 3;

const weights = (seed: number): Buffer => trainedFloat32(seed, ELEMENTS);
/** The chain depth of step k's chunks: 1 to the bound, then 1 again on the chain's root (step 0). */
const depthAt = (k: number): number => (k === 0 ? 0 : ((k - 1) % MAX_WRITTEN_DELTA_DEPTH) + 1);

/** One optimizer step: every element's low mantissa bits move, the exponents stay. */
function step(prev: Buffer, seed: number): Buffer {
  const b = Buffer.from(prev);
  const noise = weights(seed);
  for (let i = 0; i < b.length; i += 4)
    b.writeUInt32LE((b.readUInt32LE(i) ^ (noise.readUInt32LE(i) & 0xffff)) >>> 0, i);
  return b;
}

function checkpoint(tensors: Buffer[]): Buffer {
  const spec: Record<string, TensorSpec> = {};
  tensors.forEach((t, i) => {
    spec[`layer.${i}.weight`] = { dtype: 'F32', shape: [ELEMENTS], bytes: t };
  });
  return safetensorsBytes(spec);
}

describe('delta coding of changed tensors', () => {
  let s: TestStore;
  let dir: string;
  const versions: Buffer[] = [];
  const ids: string[] = [];
  const growth: number[] = [];

  beforeAll(() => {
    s = newStore('ckvc-delta-');
    dir = tempDir('ckvc-delta-in-');
    let tensors = [weights(1), weights(2), weights(3)];
    for (let k = 0; k < STEPS; k++) {
      if (k > 0) tensors = tensors.map((t, i) => step(t, 100 * k + i));
      const file = path.join(dir, 'model.safetensors');
      const bytes = checkpoint(tensors);
      fs.writeFileSync(file, bytes);
      versions.push(bytes);
      const before = packBytes(s.store);
      ids.push(commitId(s, [file, '-m', `step ${k}`, '--step', String(k)]));
      growth.push(packBytes(s.store) - before);
    }
  });

  afterAll(() => cleanupTemp());

  it('stores each step after the first in well under a plain one, and every step checks out byte-identical', () => {
    // Step N+1, whose parent's chain is full, is a delta on the first step (the chain's root), not plain.
    for (let k = 1; k < STEPS; k++) expect(growth[k], `step ${k}`).toBeLessThan(growth[0]! * 0.75);
    for (let k = 0; k < STEPS; k++) {
      const out = tempDir('ckvc-delta-out-');
      s.ok(['checkout', ids[k]!, '--to', out]);
      expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(versions[k]!), `step ${k}`).toBe(true);
    }
    s.ok(['verify', '--read-data']);
    const st = s.json(['stats']);
    expect(st.deltas.chunks).toBeGreaterThanOrEqual(3 * (STEPS - 2));
    expect(st.deltas.ratio).toBeGreaterThan(1.5);
    expect(s.ok(['stats']).stdout).toMatch(/^deltas: +\d+ chunk\(s\), .* stored in .* \(\d+\.\d\dx\)$/m);
  });

  it(`keeps every delta chain within ${MAX_WRITTEN_DELTA_DEPTH} bases (past that, a chunk is based on its chain's root)`, async () => {
    const store = await ObjectStore.open(s.store);
    try {
      const depths: number[] = [];
      for (const id of ids) {
        const tree = await store.readTree((await store.readCommit(id)).tree);
        const recipe = await store.readFileRecipe(tree.entries[0]!.id);
        const part = recipe.parts.find((p) => p.kind === 'tensor')!;
        const tensor = await store.readTensor(part.id);
        depths.push((await store.readChunkGrouped(tensor.chunks[0]!, 4))!.depth);
      }
      expect(depths).toEqual(Array.from({ length: STEPS }, (_, k) => depthAt(k)));
    } finally {
      await store.close();
    }
  });

  it('gc after prune frees the pruned steps: a kept delta whose base was pruned is re-encoded; every kept step checks out', () => {
    // Keep steps N, N+1, N+2: step N is the deepest delta (its base, step N-1, is pruned), N+1 starts a chain.
    const keep = [STEPS - 3, STEPS - 2, STEPS - 1];
    s.ok(['prune', '--keep-last', '3']);
    s.ok(['gc', '--grace', '0']);
    s.ok(['verify', '--read-data']);
    expect(packBytes(s.store)).toBeLessThan(growth[0]! * 2.7);
    for (const k of keep) {
      const out = tempDir('ckvc-delta-out-');
      s.ok(['checkout', ids[k]!, '--to', out]);
      expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(versions[k]!), `step ${k}`).toBe(true);
    }
  });

  it('a bundle made --since the parent re-encodes deltas whose base stays behind; the receiver verifies and checks out', () => {
    const r = newStore('ckvc-delta-recv-');
    const b = tempDir('ckvc-delta-b-');
    s.ok(['branch', 'previous', ids[STEPS - 2]!]);
    s.ok(['pack', 'previous', '-o', path.join(b, 'first.ckvc')]);
    r.ok(['pull', path.join(b, 'first.ckvc')]);
    s.ok(['pack', 'main', '--since', 'previous', '-o', path.join(b, 'rest.ckvc')]);
    ok(['verify', path.join(b, 'rest.ckvc')]);
    r.ok(['pull', path.join(b, 'rest.ckvc')]);
    r.ok(['verify', '--read-data']);
    const out = tempDir('ckvc-delta-out-');
    r.ok(['checkout', ids[STEPS - 1]!, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(versions[STEPS - 1]!)).toBe(true);
  });
});

describe('gc and duplicate copies', () => {
  afterAll(() => cleanupTemp());

  it('a delta copy in a pack too young to rewrite keeps its base, even when an old copy of it is re-encoded', async () => {
    const s = newStore('ckvc-delta-dup-');
    const file = path.join(tempDir('ckvc-delta-dup-in-'), 'model.safetensors');
    const v1 = checkpoint([weights(11)]);
    const v2 = checkpoint([step(weights(11), 12)]);
    fs.writeFileSync(file, v1);
    s.ok(['commit', file, '-m', 'one']);
    fs.writeFileSync(file, v2);
    const second = commitId(s, [file, '-m', 'two']);
    // Plant a second, young copy of every delta record (as a crashed gc or two racing commits can leave).
    const store = await ObjectStore.open(s.store);
    try {
      const packs = fs.readdirSync(path.join(s.store, 'packs'));
      const writer = await PackWriter.create(store.layout);
      for (const name of packs) {
        const packId = name.slice(0, 64);
        for (const entry of (await store.packs.readToc(packId)).entries) {
          if (entry.codec !== CODECS.xorPlanes) continue;
          const body = await store.packs.readStoredRecord({ packId, entry }, entry.id, { verify: true });
          await writer.addStored(entry, body);
        }
      }
      expect(writer.count).toBeGreaterThan(0);
      await writer.finish();
      // Every pack but the planted one is made old.
      const old = new Date(Date.now() - 3 * 3600_000);
      for (const name of packs) fs.utimesSync(path.join(s.store, 'packs', name), old, old);
    } finally {
      await store.close();
    }
    s.ok(['index', 'rebuild']);
    s.ok(['prune', '--keep-last', '1']); // releases the first commit's data: the deltas' bases
    s.ok(['gc', '--grace', '1h']);
    s.ok(['verify', '--read-data']);
    const out = tempDir('ckvc-delta-dup-out-');
    s.ok(['checkout', second, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(v2)).toBe(true);
  });
});

describe('a store handle that commits a series (a long-lived committer)', () => {
  afterAll(() => cleanupTemp());

  it('takes the bases it wrote from memory, inflating none, and stores exactly what a process per commit stores', async () => {
    const kept = newStore('ckvc-delta-kept-');
    const fresh = newStore('ckvc-delta-fresh-');
    const input = tempDir('ckvc-delta-kept-in-');
    const file = path.join(input, 'model.safetensors');
    const inflated = await countInflates();
    const inflates = { kept: [] as number[], fresh: [] as number[] };
    const keptStore = await ObjectStore.open(kept.store);
    let tensors = [weights(31), weights(32), weights(33)];
    try {
      for (let k = 0; k < STEPS; k++) {
        if (k > 0) tensors = tensors.map((t, i) => step(t, 500 * k + i));
        fs.writeFileSync(file, checkpoint(tensors));
        const opts = { paths: [file], message: `step ${k}`, branch: 'main', cwd: input };
        // The memory alone, without the delta-base cache (delta-base-cache.test.ts), which would serve it too.
        forgetBaseCache(kept.store);
        inflated.count = 0;
        await commit(keptStore, opts);
        inflates.kept.push(inflated.count);
        // A process per commit without the delta-base cache (as after a gc): its bases come through their chains.
        forgetBaseCache(fresh.store);
        const freshStore = await ObjectStore.open(fresh.store);
        inflated.count = 0;
        try {
          await commit(freshStore, opts);
        } finally {
          await freshStore.close();
        }
        inflates.fresh.push(inflated.count);
      }
    } finally {
      inflated.restore();
      await keptStore.close();
    }
    const records = await chunkRecords(kept.store);
    expect(records.filter((r) => r.includes(` ${CODECS.xorPlanes} `)).length).toBeGreaterThanOrEqual(3 * (STEPS - 2));
    expect(records).toEqual(await chunkRecords(fresh.store));
    // Without the memory a commit inflates a plane per link of its bases' chains; with it, only the parent's
    // tree and file recipe, but for the step whose parent's chains are full: that one reads the chains' roots,
    // one record each (delta-restart.test.ts).
    expect(Math.max(...inflates.fresh)).toBeGreaterThan(3 * (MAX_WRITTEN_DELTA_DEPTH - 1));
    // a handle's first writer keeps no copies (a CLI command writes once), so the memory serves from the third
    const rooted = MAX_WRITTEN_DELTA_DEPTH + 1;
    expect(Math.max(...inflates.kept.slice(0, 2))).toBeGreaterThan(3);
    expect(Math.max(...inflates.kept.slice(2).filter((_, i) => i + 2 !== rooted))).toBeLessThan(3);
    expect(inflates.kept[rooted]).toBeLessThan(inflates.fresh[rooted - 1]!);
    const out = tempDir('ckvc-delta-kept-out-');
    kept.ok(['checkout', 'main', '--to', out]);
    expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(checkpoint(tensors))).toBe(true);
    kept.ok(['verify', '--read-data']);
  });
});

describe('small tensor chunks', () => {
  afterAll(() => cleanupTemp());

  it(`are one frame of grouped bytes, never a delta (under ${MIN_PLANE_CODED_BYTES} bytes); every step checks out byte-identical`, async () => {
    const s = newStore('ckvc-delta-small-');
    const file = path.join(tempDir('ckvc-delta-small-in-'), 'model.safetensors');
    const bias = (seed: number) => trainedFloat32(seed, MIN_PLANE_CODED_BYTES / 4 - 1);
    let big = weights(21);
    let small = bias(22);
    const versions: Buffer[] = [];
    const commits: string[] = [];
    for (let k = 0; k < 4; k++) {
      if (k > 0) {
        big = step(big, 200 + k);
        small = step(small, 300 + k);
      }
      const bytes = safetensorsBytes({
        'layer.bias': { dtype: 'F32', shape: [small.length / 4], bytes: small },
        'layer.weight': { dtype: 'F32', shape: [ELEMENTS], bytes: big },
      });
      fs.writeFileSync(file, bytes);
      versions.push(bytes);
      commits.push(commitId(s, [file, '-m', `step ${k}`]));
    }
    const store = await ObjectStore.open(s.store);
    const codecs = { small: new Set<number>(), big: new Set<number>() };
    try {
      for (const name of fs.readdirSync(path.join(s.store, 'packs'))) {
        for (const e of (await store.packs.readToc(name.slice(0, 64))).entries) {
          if (e.type !== 'chunk') continue;
          if (e.rawLength === small.length) codecs.small.add(e.codec);
          if (e.rawLength === big.length) codecs.big.add(e.codec);
        }
      }
    } finally {
      await store.close();
    }
    expect([...codecs.small]).toEqual([CODECS.group4zstd]);
    expect(codecs.big.has(CODECS.xorPlanes)).toBe(true);
    for (let k = 0; k < commits.length; k++) {
      const out = tempDir('ckvc-delta-small-out-');
      s.ok(['checkout', commits[k]!, '--to', out]);
      expect(fs.readFileSync(path.join(out, 'model.safetensors')).equals(versions[k]!), `step ${k}`).toBe(true);
    }
    s.ok(['verify', '--read-data']);
  });
});

describe('received deltas', () => {
  afterAll(() => cleanupTemp());

  it('a bundle whose delta record names a base it does not carry is refused whole; the store is unchanged', async () => {
    const base = Buffer.alloc(MIN_PLANE_CODED_BYTES); // smaller chunks are never written as deltas
    for (let i = 0; i < base.length; i += 4) base.writeFloatLE(Math.sin(i), i);
    const data = Buffer.from(base);
    for (let i = 0; i < data.length; i += 4) data[i]! ^= 3;
    const h = hostileHistory({ 'w.bin': data });
    const chunk = h.objects.find((o) => o.type === 'chunk')!;
    chunk.deltaBase = { id: objectId('chunk', base), bytes: base, width: 4 };
    const scratch = tempDir('ckvc-delta-h-');
    const file = path.join(scratch, 'evil.ckvc');
    await hostileBundle(file, scratch, h, 'main');
    const v = ckvc(['verify', file]);
    expect(v.code).toBe(12);
    expect(errorCodes(v.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(v.stderr).toMatch(/delta base/);
    const r = newStore('ckvc-delta-evil-');
    const before = snapshotStore(r.store);
    const p = r.run(['pull', file]);
    expect(p.code).toBe(12);
    expect(errorCodes(p.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(diffSnapshots(before, snapshotStore(r.store))).toEqual([]);
  });
});

describe('store format version', () => {
  afterAll(() => cleanupTemp());

  it('a version 1 store becomes version 2 when its first version 2 pack is written; a newer one is refused', () => {
    const s = newStore('ckvc-delta-v-');
    const cfgFile = path.join(s.store, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    expect(cfg.version).toBe(2);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, version: 1 }));
    const file = path.join(tempDir('ckvc-delta-v-in-'), 'model.safetensors');
    fs.writeFileSync(file, checkpoint([weights(5)]));
    s.ok(['branch']);
    expect(JSON.parse(fs.readFileSync(cfgFile, 'utf8')).version).toBe(1); // reading changes nothing
    s.ok(['commit', file, '-m', 'first']);
    expect(JSON.parse(fs.readFileSync(cfgFile, 'utf8')).version).toBe(2);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, version: 4 }));
    const r = s.run(['branch']);
    expect(r.code).toBe(18);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_UNSUPPORTED_VERSION']);
  });

  it('a config.json whose chunking parameters cannot cut data refuses commits, leaves the store as it was, and reads', () => {
    const s = newStore('ckvc-delta-cs-');
    const cfgFile = path.join(s.store, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    const file = path.join(tempDir('ckvc-delta-cs-in-'), 'model.safetensors');
    fs.writeFileSync(file, checkpoint([weights(5)]));
    s.ok(['commit', file, '-m', 'before']);
    const packs = fs.readdirSync(path.join(s.store, 'packs'));
    for (const bad of [0, -1, 1.5, '262144', null, 64 * 1024 * 1024 + 1]) {
      fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, tensorChunkSize: bad }));
      fs.writeFileSync(file, checkpoint([weights(6)]));
      const r = s.run(['commit', file, '-m', 'refused']);
      expect(errorCodes(r.stderr), `tensorChunkSize ${JSON.stringify(bad)}`).toEqual(['CKVC_BAD_ARGUMENT']);
      expect(r.code).toBe(15);
      expect(r.stderr).toContain('tensorChunkSize');
      expect(fs.readdirSync(path.join(s.store, 'packs'))).toEqual(packs);
      // Readers never need it (FORMAT.md §1): the history stays readable.
      expect(s.json(['log']).length).toBe(1);
    }
    // The content-defined chunker's parameters are checked at the same point, even by a commit of tensors only.
    for (const cdc of [{ min: 0, avg: 3000, max: 8192 }, { min: 10, avg: 8, max: 64 }, null]) {
      fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, cdc }));
      const r = s.run(['commit', file, '-m', 'refused']);
      expect(errorCodes(r.stderr), `cdc ${JSON.stringify(cdc)}`).toEqual(['CKVC_BAD_ARGUMENT']);
      expect(r.stderr).toContain('cdc');
      expect(fs.readdirSync(path.join(s.store, 'packs'))).toEqual(packs);
    }
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, tensorChunkSize: 4096 }));
    s.ok(['commit', file, '-m', 'small chunks']);
    expect(s.json(['verify', '--read-data']).ok).toBe(true);
  });
});
