// Thin bundles (spec/BUNDLE.md §2 `bases`, §5; PROTOCOL.md §4): push and fetch keep a delta record's coding when
// the receiver holds its base, so a checkpoint pushed or fetched after its parent travels (and is stored there)
// as a delta, and chains stay within writers' bound. A thin bundle is received only by a store holding its bases;
// a server that predates `chains` gets self-contained bundles; gc keeps the bases of a young pack's deltas.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECORD_HEADER_BYTES } from '../../src/core/store-format/pack-format.js';
import { StoreService } from '../../src/remote/store-service.js';
import type { ObjectId } from '../../src/core/store-format/object-id.js';
import { chainsOf } from '../../src/store/delta-chains.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { MAX_WRITTEN_DELTA_DEPTH } from '../../src/store/object-writer.js';
import { writeBundleFile } from '../../src/remote/bundle-writer.js';
import { DirectoryTransport } from '../../src/remote/directory-transport.js';
import { remoteHolds } from '../../src/remote/thin-bases.js';
import { writeBundle } from '../../src/remote/bundle-writer.js';
import { MIN_PLANE_CODED_BYTES } from '../../src/core/store-format/codec/record-codec.js';
import { REQUIRED_CAPABILITIES } from '../../src/core/store-format/bundle-format.js';
import { objectId } from '../../src/core/store-format/object-id.js';
import { ckvc, codesOf, errorCodes } from '../helpers/ckvc.js';
import { hostileBundle, hostileHistory } from '../helpers/hostile-tree.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32, type TensorSpec } from '../helpers/data.js';
import { proxy, relay, serve, stopServers } from '../helpers/servers.js';
import { diffSnapshots, packBytes, snapshotStore } from '../helpers/snapshots.js';
import { memorySink } from '../helpers/memory-sink.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';

const ELEMENTS = 64 * 1024; // one 256 KiB chunk of F32 per tensor
const TENSORS = 3;
const STEPS = MAX_WRITTEN_DELTA_DEPTH + 3;

function checkpoint(tensors: Buffer[]): Buffer {
  const spec: Record<string, TensorSpec> = {};
  tensors.forEach((t, i) => {
    spec[`layer.${i}.weight`] = { dtype: 'F32', shape: [ELEMENTS], bytes: t };
  });
  return safetensorsBytes(spec);
}

/** The training run: STEPS checkpoints, each an optimizer step on the last. */
function series(): Buffer[] {
  let tensors = Array.from({ length: TENSORS }, (_, i) => trainedFloat32(i + 1, ELEMENTS));
  const out: Buffer[] = [];
  for (let k = 0; k < STEPS; k++) {
    if (k > 0) tensors = tensors.map((t, i) => optimizerStepFloat32(t, 100 * k + i));
    out.push(checkpoint(tensors));
  }
  return out;
}

/** The chain depth of each tensor chunk of `commit` in `store`. */
async function chunkDepths(store: string, commit: string): Promise<number[]> {
  const s = await ObjectStore.open(store);
  try {
    const tree = await s.readTree((await s.readCommit(commit)).tree);
    const recipe = await s.readFileRecipe(tree.entries[0]!.id);
    const chunks: ObjectId[] = [];
    for (const p of recipe.parts) if (p.kind === 'tensor') chunks.push(...(await s.readTensor(p.id)).chunks);
    return (await chainsOf(s, chunks)).map((c) => c?.depth ?? -1);
  } finally {
    await s.close();
  }
}

function checkoutEquals(s: TestStore, rev: string, expected: Buffer): boolean {
  const out = tempDir('ckvc-thin-out-');
  s.ok(['checkout', rev, '--to', out]);
  return fs.readFileSync(path.join(out, 'model.safetensors')).equals(expected);
}

afterAll(async () => {
  await stopServers();
  cleanupTemp();
});

describe('a training run pushed and fetched one checkpoint at a time (folder remote)', () => {
  const versions = series();
  const ids: string[] = [];
  const sent: number[] = [];
  const received: number[] = [];
  let local: TestStore;
  let remote: TestStore;
  let fetcher: TestStore;

  beforeAll(() => {
    local = newStore('ckvc-thin-local-');
    remote = newStore('ckvc-thin-remote-');
    fetcher = newStore('ckvc-thin-fetcher-');
    local.ok(['remote', 'add', 'origin', remote.dir]);
    fetcher.ok(['remote', 'add', 'origin', remote.dir]);
    const dir = tempDir('ckvc-thin-in-');
    for (let k = 0; k < STEPS; k++) {
      const file = path.join(dir, 'model.safetensors');
      fs.writeFileSync(file, versions[k]!);
      ids.push(commitId(local, [file, '-m', `step ${k}`]));
      sent.push(local.json(['push', 'origin', 'main']).bytesSent);
      received.push(fetcher.json(['fetch', 'origin']).bytesReceived);
    }
  });

  it('each step after the first travels as a delta, both ways, also where a chain starts again on its root', () => {
    for (let k = 1; k < STEPS; k++) {
      expect(sent[k], `step ${k} pushed`).toBeLessThan(sent[0]! * 0.75);
      expect(received[k], `step ${k} fetched`).toBeLessThan(received[0]! * 0.75);
    }
  });

  it('the remote and the fetcher store the run as the pusher does: the same chains, as small, all within the bound', async () => {
    const expected = Array.from({ length: STEPS }, (_, k) => (k === 0 ? 0 : ((k - 1) % MAX_WRITTEN_DELTA_DEPTH) + 1));
    for (const s of [local, remote, fetcher]) {
      const depths: number[] = [];
      for (const id of ids) depths.push(Math.max(...(await chunkDepths(s.store, id))));
      expect(depths, s.dir).toEqual(expected);
    }
    const deltas = local.json(['stats']).deltas.chunks;
    expect(deltas).toBeGreaterThanOrEqual(TENSORS * (STEPS - 2));
    expect(remote.json(['stats']).deltas.chunks).toBe(deltas);
    expect(fetcher.json(['stats']).deltas.chunks).toBe(deltas);
    expect(packBytes(remote.store)).toBeLessThan(packBytes(local.store) * 1.1);
    expect(packBytes(fetcher.store)).toBeLessThan(packBytes(local.store) * 1.1);
  });

  it('every step checks out byte-identical from the fetcher, and both receivers verify every record', () => {
    for (let k = 0; k < STEPS; k++) expect(checkoutEquals(fetcher, ids[k]!, versions[k]!), `step ${k}`).toBe(true);
    remote.ok(['verify', '--read-data']);
    fetcher.ok(['verify', '--read-data']);
  });
});

describe('thin bundle files', () => {
  const versions = series().slice(0, 3);
  let src: TestStore;
  let ids: string[];
  let thin: string;

  beforeAll(async () => {
    src = newStore('ckvc-thin-src-');
    const dir = tempDir('ckvc-thin-in-');
    ids = versions.map((v, k) => {
      fs.writeFileSync(path.join(dir, 'model.safetensors'), v);
      return commitId(src, [path.join(dir, 'model.safetensors'), '-m', `step ${k}`]);
    });
    // The objects of the last step alone, thin on the step before (as a push to a holder of it would send them).
    const store = await ObjectStore.open(src.store);
    try {
      const before = new Set(await objectsOf(store, ids[1]!));
      const objects = (await objectsOf(store, ids[2]!)).filter((id) => !before.has(id));
      const holds = new Map([...before].map((id) => [id, 1]));
      thin = path.join(tempDir('ckvc-thin-b-'), 'thin.ckvc');
      const w = await writeBundleFile(
        store,
        {
          refs: [{ name: 'refs/heads/main', id: ids[2]! }],
          objects,
          prerequisites: [ids[1]!],
          pruned: [],
          receiverHolds: holds,
        },
        thin,
      );
      expect(w.deltasKept).toBe(TENSORS);
      expect(w.deltasReencoded).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('verify FILE refuses a thin bundle (no store to hold its bases) with 12, saying so', () => {
    const v = ckvc(['verify', thin]);
    expect(v.code).toBe(12);
    expect(errorCodes(v.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(v.stderr).toMatch(/is thin: 3 of its delta records' bases are not in it/);
  });

  it('a store without the bases refuses it whole and is unchanged; one holding them takes it, deltas kept', () => {
    const empty = newStore('ckvc-thin-empty-');
    const before = snapshotStore(empty.store);
    const r = empty.run(['pull', thin]);
    expect(r.code).toBe(12);
    expect(codesOf(r)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(r.stderr).toMatch(/builds on 3 chunk\(s\) this store does not hold/);
    expect(diffSnapshots(before, snapshotStore(empty.store))).toEqual([]);

    const holder = newStore('ckvc-thin-holder-');
    holder.ok(['remote', 'add', 'src', src.dir]);
    holder.ok(['fetch', 'src']);
    // Up to step 1 only: move the branch back so the holder lacks step 2.
    holder.ok(['pull', thin, '--update-refs', '--force']);
    expect(checkoutEquals(holder, ids[2]!, versions[2]!)).toBe(true);
    holder.ok(['verify', '--read-data']);
  });
});

describe('hostile thin bundles', () => {
  it('a delta on a chunk the store holds but the header does not list is refused whole; the store is unchanged', async () => {
    const base = Buffer.alloc(MIN_PLANE_CODED_BYTES);
    for (let i = 0; i < base.length; i += 4) base.writeFloatLE(Math.sin(i), i);
    const data = Buffer.from(base);
    for (let i = 0; i < data.length; i += 4) data[i]! ^= 3;
    const r = newStore('ckvc-thin-evil-');
    // The receiver holds the base (committed as a file of its own)...
    const dir = tempDir('ckvc-thin-evil-in-');
    fs.writeFileSync(path.join(dir, 'w.bin'), base);
    r.ok(['commit', path.join(dir, 'w.bin'), '-m', 'base']);
    const h = hostileHistory({ 'w.bin': data });
    const chunk = h.objects.find((o) => o.type === 'chunk')!;
    chunk.deltaBase = { id: objectId('chunk', base), bytes: base, width: 4 };
    const scratch = tempDir('ckvc-thin-evil-');
    const file = path.join(scratch, 'evil.ckvc');
    // ...but the bundle names another chunk as the base it builds on.
    const other = objectId('chunk', Buffer.from('not the base'));
    await hostileBundle(file, scratch, h, 'evil', { required: [...REQUIRED_CAPABILITIES, 'thin'], bases: [other] });
    const before = snapshotStore(r.store);
    const p = r.run(['pull', file]);
    expect(p.code).toBe(12);
    expect(codesOf(p)).toEqual(['CKVC_BAD_BUNDLE']);
    expect(p.stderr).toMatch(/names chunk [0-9a-f]{16} as its delta base, which is neither in it nor among its bases/);
    expect(diffSnapshots(before, snapshotStore(r.store))).toEqual([]);
  });
});

describe('review findings, each a test that failed before its fix', () => {
  const N = 64 * 1024;
  const ck = (t: Buffer) => safetensorsBytes({ w: { dtype: 'F32', shape: [N], bytes: t } });

  /** The one tensor chunk of `commit`'s model.safetensors in `store`. */
  async function chunkOf(store: ObjectStore, commit: string): Promise<ObjectId> {
    const tree = await store.readTree((await store.readCommit(commit)).tree);
    const recipe = await store.readFileRecipe(tree.entries[0]!.id);
    return (await store.readTensor(recipe.parts.find((p) => p.kind === 'tensor')!.id)).chunks[0]!;
  }

  /** A store that committed one checkpoint and pushed it to an empty folder remote. */
  function pushedFirstStep(prefix: string) {
    const local = newStore(`${prefix}l-`);
    const remote = newStore(`${prefix}r-`);
    local.ok(['remote', 'add', 'origin', remote.dir]);
    const f = path.join(tempDir('ckvc-thin-in-'), 'model.safetensors');
    const t0 = trainedFloat32(1, N);
    fs.writeFileSync(f, ck(t0));
    const c0 = commitId(local, [f, '-m', 's0']);
    local.ok(['push', 'origin', 'main']);
    return { local, remote, f, t0, c0 };
  }

  it('a base the remote holds but cannot read: the push is sent again self-contained, and succeeds', async () => {
    const { local, remote, f, t0, c0 } = pushedFirstStep('ckvc-thin-rot-');
    const r = await ObjectStore.open(remote.store);
    try {
      const loc = (await r.locate([await chunkOf(r, c0)]))[0]!;
      const pack = (fs.readdirSync(path.join(remote.store, 'packs'), { recursive: true }) as string[])
        .map((x) => path.join(remote.store, 'packs', x))
        .find((x) => x.includes(loc.packId) && x.endsWith('.pack'))!;
      const fd = fs.openSync(pack, 'r+');
      const at = loc.entry.offset + RECORD_HEADER_BYTES + loc.entry.storedLength - 1;
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0]! ^= 0xff;
      fs.writeSync(fd, b, 0, 1, at);
      fs.closeSync(fd);
    } finally {
      await r.close();
    }
    const step = ck(optimizerStepFloat32(t0, 7));
    fs.writeFileSync(f, step);
    const c1 = commitId(local, [f, '-m', 's1']);
    local.ok(['push', 'origin', 'main']);
    expect(checkoutEquals(remote, c1, step)).toBe(true);
  });

  it("a received copy of a chunk the store holds never replaces the store's copy (a hostile 64-deep one)", async () => {
    const v = newStore('ckvc-thin-dup-');
    const f = path.join(tempDir('ckvc-thin-in-'), 'model.safetensors');
    const t0 = trainedFloat32(1, N);
    fs.writeFileSync(f, ck(t0));
    const c0 = commitId(v, [f, '-m', 's0']);
    const step = ck(optimizerStepFloat32(t0, 7));
    fs.writeFileSync(f, step);
    const c1 = commitId(v, [f, '-m', 's1']);
    const s = await ObjectStore.open(v.store);
    let x: ObjectId;
    let xBytes: Uint8Array;
    let before: unknown;
    try {
      x = await chunkOf(s, c0);
      xBytes = await s.readRaw(x, 'chunk');
      before = await chainsOf(s, [x, await chunkOf(s, c1)]);
    } finally {
      await s.close();
    }
    // The same chunk again, as a delta at the end of a 64-link chain of junk chunks.
    const h = hostileHistory({ 'a.txt': 'hello' });
    let prev: { id: ObjectId; bytes: Uint8Array } | undefined;
    for (let k = 0; k < 64; k++) {
      const b = Buffer.from(xBytes);
      for (let i = 0; i < b.length; i += 4) b[i] = (i * 7 + k) & 0xff;
      const id = objectId('chunk', b);
      h.objects.push({ type: 'chunk', id, body: b, ...(prev ? { deltaBase: { ...prev, width: 4 } } : {}) });
      prev = { id, bytes: b };
    }
    h.objects.push({ type: 'chunk', id: x, body: xBytes, deltaBase: { ...prev!, width: 4 } });
    const scratch = tempDir('ckvc-thin-dup-b-');
    await hostileBundle(path.join(scratch, 'dup.ckvc'), scratch, h, 'dup');
    v.ok(['pull', path.join(scratch, 'dup.ckvc')]);
    const after = await ObjectStore.open(v.store);
    try {
      expect(await chainsOf(after, [x, await chunkOf(after, c1)])).toEqual(before);
    } finally {
      await after.close();
    }
    expect(checkoutEquals(v, c1, step)).toBe(true);
  });

  it('a slow thin push holds no writer registration while its bytes arrive: gc runs meanwhile', async () => {
    const { local, remote, f, t0, c0 } = pushedFirstStep('ckvc-thin-slow-');
    fs.writeFileSync(f, ck(optimizerStepFloat32(t0, 7)));
    const c1 = commitId(local, [f, '-m', 's1']);
    const store = await ObjectStore.open(local.store);
    const t = await DirectoryTransport.open(remote.store, 'test');
    const out = memorySink();
    let objects = 0;
    try {
      const have = new Set(await objectsOf(store, c0));
      const batch = (await objectsOf(store, c1)).filter((id) => !have.has(id));
      objects = batch.length;
      const holds = await remoteHolds(store, t, await store.locateAll(batch, 'object to send'));
      const content = { refs: [], objects: batch, prerequisites: [], pruned: [], receiverHolds: holds };
      expect((await writeBundle(store, content, out.sink)).deltasKept).toBe(1);
    } finally {
      await t.close();
      await store.close();
    }
    const bundle = out.bytes();
    async function* slow() {
      yield bundle.subarray(0, 300);
      await new Promise((r) => setTimeout(r, 2500));
      yield bundle.subarray(300);
    }
    const rs = await ObjectStore.open(remote.store);
    try {
      const receiving = new StoreService(rs).receiveObjects(slow(), 'a slow push');
      await new Promise((r) => setTimeout(r, 300));
      const gc = await remote.runAsync(['gc', '--json'], { env: { CKVC_GC_WAIT_MS: '1000' } });
      expect(gc.code, gc.stderr).toBe(0);
      expect(await receiving).toEqual({ objects, newObjects: objects });
    } finally {
      await rs.close();
    }
  });
});

/** Every object `commit` reaches (its history included), in the order a push sends them. */
async function objectsOf(store: ObjectStore, commit: string): Promise<ObjectId[]> {
  const { collectObjects } = await import('../../src/remote/object-collector.js');
  return (await collectObjects(store, [commit], { isBoundary: async () => false })).objects;
}

describe('a server that predates chains', () => {
  it('gets self-contained bundles: push and fetch work, each step sent whole', async () => {
    const versions = series().slice(0, 2);
    const local = newStore('ckvc-thin-old-local-');
    const remote = newStore('ckvc-thin-old-remote-');
    const token = path.join(tempDir('ckvc-thin-tok-'), 'token');
    fs.writeFileSync(token, 'thin-test-token-0123456789\n');
    const upstream = (await serve(remote, ['--token-file', token])).url;
    let asked = 0;
    const url = await proxy(upstream, async (req, _body, res, pass) => {
      if (req.url === '/v1/chains') {
        asked++;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { code: 'CKVC_USAGE', message: 'no such endpoint: POST /v1/chains', exit: 2, data: {} },
          }),
        );
        return;
      }
      const up = await pass();
      relay(req, res, up.status, up.body);
    });
    const env = { CKVC_TOKEN: 'thin-test-token-0123456789' };
    local.ok(['remote', 'add', 'origin', url]);
    const dir = tempDir('ckvc-thin-in-');
    const sent: number[] = [];
    const ids: string[] = [];
    // The proxy runs in this process: commands that go through it must not block it (async, not the warm helper).
    for (const [k, v] of versions.entries()) {
      fs.writeFileSync(path.join(dir, 'model.safetensors'), v);
      ids.push(commitId(local, [path.join(dir, 'model.safetensors'), '-m', `step ${k}`]));
      sent.push((await local.jsonAsync(['push', 'origin', 'main'], { env })).bytesSent);
    }
    expect(asked).toBeGreaterThan(0);
    expect(sent[1]).toBeGreaterThan(sent[0]! * 0.9);
    const fetcher = newStore('ckvc-thin-old-fetcher-');
    fetcher.ok(['remote', 'add', 'origin', url]);
    await fetcher.jsonAsync(['fetch', 'origin']);
    expect(checkoutEquals(fetcher, ids[1]!, versions[1]!)).toBe(true);
    remote.ok(['verify', '--read-data']);
  });
});

describe('gc on the receiving side of a push', () => {
  it("keeps the bases of a young pack's deltas whose refs have not moved yet, whatever else freed them", async () => {
    const versions = series().slice(0, 2);
    const local = newStore('ckvc-thin-gc-local-');
    const remote = newStore('ckvc-thin-gc-remote-');
    const dir = tempDir('ckvc-thin-in-');
    const file = path.join(dir, 'model.safetensors');
    fs.writeFileSync(file, versions[0]!);
    const first = commitId(local, [file, '-b', 'run', '-m', 'step 0']);
    local.ok(['remote', 'add', 'origin', remote.dir]);
    local.ok(['push', 'origin', 'run']);
    fs.writeFileSync(file, versions[1]!);
    const second = commitId(local, [file, '-b', 'run', '-m', 'step 1']);
    // The objects of step 1 arrive (thin on step 0) but the push stops before its refs move.
    const store = await ObjectStore.open(local.store);
    const t = await DirectoryTransport.open(remote.store, 'test');
    try {
      const have = new Set(await objectsOf(store, first));
      const batch = (await objectsOf(store, second)).filter((id) => !have.has(id));
      const holds = await remoteHolds(store, t, await store.locateAll(batch, 'object to send'));
      expect(holds?.size).toBe(TENSORS);
      await t.sendObjects(async (sink) => {
        const w = await writeBundle(
          store,
          { refs: [], objects: batch, prerequisites: [], pruned: [], receiverHolds: holds },
          sink,
        );
        expect(w.deltasKept).toBe(TENSORS);
      });
    } finally {
      await t.close();
      await store.close();
    }
    // Meanwhile step 0 becomes garbage there (its branch deleted, its reflog expired, its packs old).
    remote.ok(['branch', '-d', 'run']);
    const received = new Set(fs.readdirSync(path.join(remote.store, 'packs'), { recursive: true }) as string[]);
    const old = new Date(Date.now() - 3 * 3600_000);
    for (const f of received) {
      const p = path.join(remote.store, 'packs', f);
      if (fs.statSync(p).isFile() && !isNewest(remote, p)) fs.utimesSync(p, old, old);
    }
    remote.ok(['gc', '--expire-reflog', '0']);
    // Step 0 is gone there, but not the chunks the delivered deltas build on: every record still decodes.
    const r = await ObjectStore.open(remote.store);
    try {
      expect(await r.typeOf(first)).toBeUndefined();
    } finally {
      await r.close();
    }
    remote.ok(['verify', '--read-data']);
  });
});

/** Whether pack file `p` is the one most recently written to `s` (the one the interrupted push delivered). */
function isNewest(s: TestStore, p: string): boolean {
  const packs = (fs.readdirSync(path.join(s.store, 'packs'), { recursive: true }) as string[])
    .map((f) => path.join(s.store, 'packs', f))
    .filter((f) => fs.statSync(f).isFile() && f.endsWith('.pack'));
  const newest = packs.reduce((a, b) => (fs.statSync(a).mtimeMs >= fs.statSync(b).mtimeMs ? a : b));
  return p === newest;
}
