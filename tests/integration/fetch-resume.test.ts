// Transfers killed between two of their batches (PROTOCOL.md §4: a fetch asks for at most 20,000 objects and
// 64 MiB per request, a push sends bundles of at most 64 MiB, each batch verified and promoted on its own). Commits
// travel after all they reach, so what landed is whole; and a fetch run again asks for a tip it holds without all
// its data (as an older ckvc could leave it). Either way the second run completes, byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun } from '../helpers/ckvc.js';
import { treeDifferences } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { serve, stopServers } from '../helpers/servers.js';

// Over one batch of objects: a recipe and a chunk per file, plus trees.
const FILES = 11_000;

/** The 80 MiB remote the push case leaves, which the fetch case reads (made there when run alone). */
let big: { remote: TestStore; dir: string; id: string } | undefined;

/** 80 MiB that does not compress (two bundles of at most 64 MiB) committed in a store whose origin is empty. */
function bigCommit(): { local: TestStore; remote: TestStore; dir: string; id: string } {
  const local = newStore('ckvc-resume-push-');
  const dir = path.join(tempDir('ckvc-resume-big-'), 'big');
  fs.mkdirSync(dir);
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, `part-${i}.bin`), randomBytes(16 * 1024 * 1024));
  const id = local.json<{ id: string }>(['commit', dir, '-m', 'big']).id;
  const remote = newStore('ckvc-resume-remote-');
  local.ok(['remote', 'add', 'origin', remote.store]);
  return { local, remote, dir, id };
}

describe('transfers killed between batches', () => {
  let src: TestStore;
  let data: string;
  let tip: string;
  beforeAll(() => {
    src = newStore('ckvc-resume-src-');
    data = path.join(tempDir('ckvc-resume-data-'), 'ckpt');
    for (let d = 0; d < FILES / 500; d++) {
      const dir = path.join(data, `shard-${d}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 500; i++) fs.writeFileSync(path.join(dir, `${i}.json`), `{"shard": ${d}, "item": ${i}}\n`);
    }
    tip = src.json<{ id: string }>(['commit', data, '-m', 'many small files']).id;
  });
  afterAll(async () => {
    await stopServers();
    cleanupTemp();
  });

  it('a fetch is completed by running it again, and checks out byte for byte', () => {
    const dst = newStore('ckvc-resume-dst-');
    dst.ok(['remote', 'add', 'origin', src.store]);
    const killed = dst.run(['fetch', 'origin'], { env: { CKVC_FAULT: 'receive.indexed@1' } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    const again = dst.run(['fetch', 'origin']);
    expect(again.code, describeRun(again)).toBe(0);
    expect(dst.ref('refs/remotes/origin/main')).toBe(tip);
    const out = path.join(tempDir('ckvc-resume-out-'), 'co');
    dst.ok(['checkout', 'origin/main', '--to', out]);
    expect(treeDifferences(data, out)).toEqual([]);
    expect(dst.run(['verify', '--read-data']).code).toBe(0);
  }, 240_000);

  it('a push of more than one bundle is completed by running it again; the remote checks out byte for byte', () => {
    const { local, remote, dir, id } = bigCommit();
    big = { remote, dir, id };
    const killed = local.run(['push', 'origin', 'main'], { env: { CKVC_FAULT: 'receive.indexed@1' } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    expect(remote.ref('refs/heads/main')).toBeUndefined();
    const again = local.run(['push', 'origin', 'main']);
    expect(again.code, describeRun(again)).toBe(0);
    expect(remote.ref('refs/heads/main')).toBe(id);
    const out = path.join(tempDir('ckvc-resume-push-out-'), 'co');
    remote.ok(['checkout', 'main', '--to', out]);
    expect(treeDifferences(dir, out)).toEqual([]);
    expect(remote.run(['verify', '--read-data']).code).toBe(0);
  }, 240_000);

  it('a fetch of more than 64 MiB comes in requests of about 64 MiB: killed after the first, a re-run asks for the rest alone', async () => {
    if (!big) {
      // Run alone: the 80 MiB the push case sends, pushed here.
      const { local, remote, dir, id } = bigCommit();
      local.ok(['push', 'origin', 'main']);
      big = { remote, dir, id };
    }
    const { url } = await serve(big.remote);
    for (const from of [big.remote.store, url]) {
      const dst = newStore('ckvc-resume-fetch-');
      dst.ok(['remote', 'add', 'origin', from]);
      const killed = dst.run(['fetch', 'origin'], { env: { CKVC_FAULT: 'receive.indexed@1' } });
      expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
      expect(dst.ref('refs/remotes/origin/main')).toBeUndefined();
      // The plan said each object's size: the first request took at most 64 MiB of the 80, which stayed.
      const again = dst.json<{ bytesReceived: number }>(['fetch', 'origin']);
      expect(again.bytesReceived, from).toBeGreaterThan(8 * 1024 * 1024);
      expect(again.bytesReceived, from).toBeLessThan(40 * 1024 * 1024);
      expect(dst.ref('refs/remotes/origin/main')).toBe(big.id);
      const out = path.join(tempDir('ckvc-resume-fetch-out-'), 'co');
      dst.ok(['checkout', 'origin/main', '--to', out]);
      expect(treeDifferences(big.dir, out)).toEqual([]);
    }
  }, 240_000);
});
