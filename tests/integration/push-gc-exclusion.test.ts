// A push reads the objects it sends from the local store's packs, batch by batch: gc and pack consolidation on
// that store must not delete a pack between a batch's look-up and its read (spec/FORMAT.md §15). The push
// registers with gc's exclusion for each batch, as `pack` and a server sending a fetch do; between batches gc may
// go ahead, since each batch looks its objects up again as it starts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consolidatePacks } from '../../src/store/pack-consolidation.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { errorCodes, REPO_ROOT } from '../helpers/ckvc.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32 } from '../helpers/data.js';
import { packFiles, treeDifferences } from '../helpers/snapshots.js';
import { proxy, relay, serve, stopServers } from '../helpers/servers.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore } from '../helpers/test-store.js';

afterAll(async () => {
  await stopServers();
  cleanupTemp();
});

const ELEMENTS = 64 * 1024; // one 256 KiB chunk per tensor: big enough to be stored as a delta
const STEPS = 70; // commits after the pushed one: more packs than the pack reader keeps open (64)

function model(tensors: Buffer[]): Buffer {
  return safetensorsBytes(
    Object.fromEntries(tensors.map((t, i) => [`layer.${i}.weight`, { dtype: 'F32', shape: [ELEMENTS], bytes: t }])),
  );
}

describe('a push in flight', () => {
  it('holds off pack consolidation on the store it reads from until its batch is sent', async () => {
    const local = newStore('ckvc-push-gc-local-');
    const remote = newStore('ckvc-push-gc-remote-');
    const token = path.join(tempDir('ckvc-push-gc-tok-'), 'token');
    fs.writeFileSync(token, 'push-gc-test-token-0123456789\n');
    const upstream = (await serve(remote, ['--token-file', token])).url;
    // The proxy holds the push's `chains` question (asked after the batch is looked up, before it is read).
    let held: { reached: () => void; release: Promise<void> } | undefined;
    const url = await proxy(upstream, async (req, _body, res, pass) => {
      if (req.url === '/v1/chains' && held) {
        held.reached();
        await held.release;
      }
      const up = await pass();
      relay(req, res, up.status, up.body);
    });
    const env = { CKVC_TOKEN: 'push-gc-test-token-0123456789' };
    local.ok(['remote', 'add', 'origin', url]);

    // Step 0 is on the remote; then more small commits than the pack reader keeps open (so the push's walk over
    // them does not leave every pack open for the batch's read), the last changing the model (delta records on
    // step 0's chunks, so the push asks `chains`).
    let tensors = [1, 2, 3].map((seed) => trainedFloat32(seed, ELEMENTS));
    const dir = tempDir('ckvc-push-gc-src-');
    fs.writeFileSync(path.join(dir, 'model.safetensors'), model(tensors));
    commitId(local, [dir, '-m', 'step 0']);
    expect((await local.runAsync(['push', 'origin', 'main'], { env })).code).toBe(0);
    const { openStore } = await import(path.join(REPO_ROOT, 'dist', 'api', 'index.js'));
    const api = await openStore(local.store);
    const limit = process.env.CKVC_AUTO_SMALL_PACKS;
    process.env.CKVC_AUTO_SMALL_PACKS = String(STEPS + 10); // one pack per commit: nothing merged yet
    let last = '';
    try {
      for (let k = 1; k <= STEPS; k++) {
        fs.writeFileSync(path.join(dir, 'step.json'), JSON.stringify({ step: k, loss: 1 / k }));
        if (k === STEPS) {
          tensors = tensors.map((t, i) => optimizerStepFloat32(t, 10 + i));
          fs.writeFileSync(path.join(dir, 'model.safetensors'), model(tensors));
        }
        last = (await api.commit({ paths: [dir], message: `step ${k}`, cwd: dir })).id;
      }
    } finally {
      await api.close();
      if (limit === undefined) delete process.env.CKVC_AUTO_SMALL_PACKS;
      else process.env.CKVC_AUTO_SMALL_PACKS = limit;
    }
    expect(packFiles(local.store)).toHaveLength(STEPS + 1);

    let reached!: () => void;
    const atChains = new Promise<void>((r) => {
      reached = r;
    });
    let release!: () => void;
    held = { reached, release: new Promise<void>((r) => (release = r)) };
    const pushing = local.runAsync(['push', 'origin', 'main', '--json'], { env, timeoutMs: 60_000 });
    await atChains;
    // What a commit's consolidation (or gc) in another process does meanwhile: it must find the push registered.
    const store = await ObjectStore.open(local.store);
    let report: Awaited<ReturnType<typeof consolidatePacks>>;
    try {
      report = await consolidatePacks(store, { wait: false, all: true });
    } finally {
      await store.close();
      release();
    }
    const pushed = await pushing;
    expect(errorCodes(pushed.stderr)).toEqual([]);
    expect(pushed.code).toBe(0);
    expect(report.packsMerged).toBe(0);
    expect(report.skipped).toMatch(/writing to this store/);
    expect(packFiles(local.store)).toHaveLength(STEPS + 1);

    // Once the push is done, the packs merge, and the remote has every byte of step 2.
    const after = await ObjectStore.open(local.store);
    try {
      expect((await consolidatePacks(after, { wait: false, all: true })).packsMerged).toBe(STEPS + 1);
    } finally {
      await after.close();
    }
    expect(local.json(['verify', '--read-data']).ok).toBe(true);
    const out = tempDir('ckvc-push-gc-out-');
    remote.ok(['checkout', last, '--to', out]);
    expect(treeDifferences(dir, out)).toEqual([]);
  }, 120_000);
});
