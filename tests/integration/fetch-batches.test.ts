// A fetch of large checkpoints asks for its objects in batches of about 64 MiB (spec/PROTOCOL.md §4), each promoted
// once verified: a fetch cut off midway keeps what arrived, and running it again asks only for the rest (a
// first-time user's Ctrl-C at 3 s into a 517 MiB fetch kept nothing, the whole plan being one batch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { proxy, relay, serve, stopServers } from '../helpers/servers.js';
import { randomBytes } from '../helpers/data.js';
import { nextBatchObjects } from '../../src/remote/object-receiver.js';

const MiB = 1024 * 1024;
let src: TestStore;
let url: string;
const files = new Map<string, Buffer>();

beforeAll(async () => {
  src = newStore('ckvc-resume-src-');
  const dir = tempDir('ckvc-resume-data-');
  // Incompressible, so that stored bytes are what travels: 3 x 40 MiB.
  for (const i of [1, 2, 3]) {
    const bytes = randomBytes(900 + i, 40 * MiB);
    files.set(`part${i}.bin`, bytes);
    fs.writeFileSync(path.join(dir, `part${i}.bin`), bytes);
  }
  await src.jsonAsync(['commit', dir, '-m', 'big', '-b', 'main']);
  url = (await serve(src)).url;
}, 120_000);
afterAll(async () => {
  await stopServers();
  cleanupTemp();
});

describe('fetch in batches', () => {
  it('batch sizes follow the bytes per object seen: small first, at most 4-fold growth, about 64 MiB', () => {
    expect(nextBatchObjects(16, 0, 0)).toBe(64);
    expect(nextBatchObjects(16, 16, 16 * MiB)).toBe(64); // 1 MiB objects: 64 of them
    expect(nextBatchObjects(64, 80, 80 * 4 * MiB)).toBe(16); // 4 MiB objects: 16
    expect(nextBatchObjects(16, 16, 16 * 1000)).toBe(64); // small objects grow 4-fold...
    expect(nextBatchObjects(16_384, 30_000, 30_000 * 100)).toBe(20_000); // ...up to the cap
    expect(nextBatchObjects(1, 1, 512 * MiB)).toBe(1);
  });

  it('a fetch cut off midway keeps the batches that arrived; the re-run asks only for the rest', async () => {
    const sizes: number[] = [];
    let cut = false;
    const flaky = await proxy(url, async (req, _body, res, pass) => {
      const up = await pass();
      if (req.url === '/v1/objects') {
        sizes.push(up.body.length);
        // The fourth batch never arrives whole: the connection drops halfway through it.
        if (sizes.length === 4) {
          cut = true;
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': up.body.length });
          res.write(up.body.subarray(0, up.body.length >> 1));
          res.socket?.destroy();
          return;
        }
      }
      relay(req, res, up.status, up.body);
    });
    const T = newStore('ckvc-resume-dst-');
    await T.jsonAsync(['remote', 'add', 'origin', flaky]);
    const first = await T.runAsync(['fetch', 'origin']);
    expect(cut).toBe(true);
    expect(first.code, describeRun(first)).toBe(22);
    expect(errorCodes(first.stderr)).toEqual(['CKVC_REMOTE']);
    // Batches start small (sizes unknown) and stay under about 64 MiB.
    expect(sizes[0]).toBeLessThan(24 * MiB);
    for (const s of sizes) expect(s).toBeLessThan(80 * MiB);
    const kept = sizes[0]! + sizes[1]! + sizes[2]!;
    expect(kept, JSON.stringify(sizes)).toBeGreaterThan(40 * MiB);

    const again = await T.jsonAsync<{ bytesReceived: number }>(['fetch', 'origin']);
    expect(again.bytesReceived).toBeGreaterThan(0);
    expect(again.bytesReceived).toBeLessThan(120 * MiB - kept + 4 * MiB);
    const out = tempDir('ckvc-resume-out-');
    const co = await T.runAsync(['checkout', 'origin/main', '--to', out]);
    expect(co.code, describeRun(co)).toBe(0);
    for (const [name, bytes] of files) expect(fs.readFileSync(path.join(out, name)).equals(bytes), name).toBe(true);
  }, 120_000);
});
