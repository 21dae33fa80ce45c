// S3 remotes have no server to cut packs, so a fetch that needs part of a pack reads it by HTTP ranges (spec/S3.md
// §3): the pack's directory, its records other than chunks, the chunks asked for and the delta bases they need.
// What comes back is untrusted like any fetch: a record that is not what the TOC says, a TOC that does not tile
// the pack, or a damaged body is refused with the store unchanged, and a service that ignores Range still works.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectStore } from '../../src/store/object-store.js';
import { missingTensorChunks } from '../../src/remote/partial-store.js';
import { receiveObjects } from '../../src/remote/object-receiver.js';
import { S3Transport } from '../../src/remote/s3-transport.js';
import { BIN, cliEnv, errorCodes } from '../helpers/ckvc.js';
import { optimizerStepFloat32, safetensorsBytes, trainedFloat32 } from '../helpers/data.js';
import { startS3Server, type S3Server } from '../helpers/s3-server.js';
import { diffSnapshots, snapshotStore, snapshotTree } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';

const MiB = 1024 * 1024;
const PREFIX = 'ranged';

let s3: S3Server;
let src: TestStore;
const steps: string[] = [];

/** One record of the remote's pack as its TOC gives it, with where it lies in the S3 object. */
interface TocRecord {
  id: string;
  type: number;
  codec: number;
  /** Offset of the record header in the S3 object. */
  at: number;
  stored: number;
  /** Where its TOC entry lies in the S3 object. */
  tocAt: number;
}

/** The pack's object file in s3rver's folder and its records (BUNDLE.md §1, FORMAT.md §4). */
function packOf(prefix: string): { file: string; size: number; records: TocRecord[] } {
  const dir = path.dirname(s3.objectFile(`${prefix}/packs/x`));
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.bundle._S3rver_object'));
  expect(names).toHaveLength(1);
  const file = path.join(dir, names[0]!);
  const b = fs.readFileSync(file);
  const packStart = 16 + b.readUInt32LE(12);
  const footer = b.length - 40 - 56;
  const tocOffset = Number(b.readBigUInt64LE(footer));
  const count = b.readUInt32LE(footer + 8);
  const records: TocRecord[] = [];
  for (let i = 0; i < count; i++) {
    const e = packStart + tocOffset + i * 52;
    records.push({
      id: b.subarray(e, e + 32).toString('hex'),
      type: b[e + 32]!,
      codec: b[e + 33]!,
      at: packStart + Number(b.readBigUInt64LE(e + 36)),
      stored: b.readUInt32LE(e + 48),
      tocAt: e,
    });
  }
  return { file, size: b.length, records };
}

/** The remote copied to a new prefix, its pack changed by `damage` (given the bytes and the TOC). */
function damagedRemote(name: string, damage: (b: Buffer, records: TocRecord[]) => void): string {
  const from = path.dirname(path.dirname(s3.objectFile(`${PREFIX}/packs/x`)));
  const to = path.join(path.dirname(from), name);
  fs.cpSync(from, to, { recursive: true });
  const pack = packOf(name);
  const b = fs.readFileSync(pack.file);
  damage(b, pack.records);
  fs.writeFileSync(pack.file, b);
  return `s3://${s3.bucket}/${name}`;
}

function client(url: string): TestStore {
  const c = newStore('ckvc-ranged-client-');
  c.ok(['remote', 'add', 'origin', url], { env: s3.env() });
  return c;
}

/** GETs of pack objects in the server's log since the last clearLog(), by status. */
function packGets(): string[] {
  return s3
    .requests()
    .filter((r) => r.startsWith('GET ') && r.includes('.bundle'))
    .map((r) => r.split(' ')[2]!);
}

/** `ckvc cat ...` with its bytes as they are (the helpers read stdout as text). */
function catBytes(s: TestStore, args: string[]): { stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'cat', ...args, '--store', s.store], {
    env: cliEnv(s3.env()),
    maxBuffer: 64 * MiB,
  });
  if (r.status !== 0) throw new Error(`ckvc cat ${args.join(' ')} failed: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr.toString() };
}

/** A filtered fetch from `url` is refused with `code` (exit `exit`), saying `says`; the fetching store is as it was. */
function expectRefusedFetch(url: string, exit: number, code: string, says?: string): void {
  const c = client(url);
  const before = snapshotStore(c.store);
  const r = c.run(['fetch', 'origin', '--filter', 'tensors:model.*'], { env: s3.env() });
  expect(r.code, r.stderr).toBe(exit);
  expect(errorCodes(r.stderr)).toEqual([code]);
  if (says) expect(r.stderr).toContain(says);
  expect(diffSnapshots(before, snapshotStore(c.store))).toEqual([]);
}

let big: { dir: string; id: string } | undefined;

/** 80 MiB that does not compress, pushed once to s3://BUCKET/ranged-big as two packs (64 MiB and 16 MiB). */
function bigRemote(): { dir: string; id: string } {
  if (big) return big;
  const s = newStore('ckvc-ranged-big-');
  const dir = path.join(s.dir, 'big');
  fs.mkdirSync(dir);
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, `part-${i}.bin`), randomBytes(16 * MiB));
  const id = commitId(s, [dir, '-b', 'big', '-m', 'big']);
  s.ok(['remote', 'add', 's3', `s3://${s3.bucket}/ranged-big`], { env: s3.env() });
  s.ok(['push', 's3', 'big'], { env: s3.env() });
  big = { dir, id };
  return big;
}

function tensorsOut(s: TestStore, rev: string, glob: string): Map<string, string> {
  const out = tempDir('ckvc-ranged-out-');
  s.ok(['checkout', rev, '--tensor', glob, '--to', out], { env: s3.env() });
  return snapshotTree(out);
}

beforeAll(async () => {
  s3 = await startS3Server(tempDir('ckvc-ranged-s3-'), { conditional: true });
  src = newStore('ckvc-ranged-src-');
  const ckpt = path.join(src.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  // Three optimizer-like steps: every element of every tensor changes, so steps 2 and 3 are delta records on the
  // step before, all in the one pack a push of three small commits makes (about 9 MiB).
  let w = trainedFloat32(1, 256 * 1024);
  let m = trainedFloat32(2, 512 * 1024);
  let v = trainedFloat32(3, 512 * 1024);
  for (const step of [1, 2, 3]) {
    if (step > 1) {
      w = optimizerStepFloat32(w, step * 10 + 1);
      m = optimizerStepFloat32(m, step * 10 + 2);
      v = optimizerStepFloat32(v, step * 10 + 3);
    }
    fs.writeFileSync(
      path.join(ckpt, 'model.safetensors'),
      safetensorsBytes({
        'model.w': { dtype: 'F32', shape: [256, 1024], bytes: w },
        'optimizer.m': { dtype: 'F32', shape: [512, 1024], bytes: m },
        'optimizer.v': { dtype: 'F32', shape: [512, 1024], bytes: v },
      }),
    );
    steps.push(commitId(src, [ckpt, '-b', 'main', '-m', `step ${step}`]));
  }
  src.ok(['remote', 'add', 's3', `s3://${s3.bucket}/${PREFIX}`], { env: s3.env() });
  src.ok(['push', 's3', 'main'], { env: s3.env() });
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  cleanupTemp();
});

describe('S3 fetches by ranges', () => {
  it('a filtered fetch reads the directory, the records other than chunks and the chunks it selects, not the pack', () => {
    const pack = packOf(PREFIX);
    expect(pack.size).toBeGreaterThan(6 * MiB);
    expect(pack.records.filter((r) => r.codec === 6).length).toBeGreaterThanOrEqual(6);
    const c = client(`s3://${s3.bucket}/${PREFIX}`);
    s3.clearLog();
    const r = c.json<{ bytesReceived: number; bytesDownloaded?: number; partial: number }>(
      ['fetch', 'origin', '--filter', 'tensors:model.*'],
      { env: s3.env() },
    );
    expect(r.partial).toBe(3);
    const gets = packGets();
    expect(gets.length).toBeGreaterThanOrEqual(3);
    expect(gets.every((status) => status === '206')).toBe(true);
    // model.w of three steps is about a sixth of the pack; the other tensors' chunks stayed on the server.
    const downloaded = r.bytesDownloaded ?? r.bytesReceived;
    expect(downloaded).toBeLessThan(pack.size / 3);
    expect(tensorsOut(c, 'origin/main', 'model.*')).toEqual(tensorsOut(src, 'main', 'model.*'));
    expect(tensorsOut(c, `${steps[0]}`, 'model.*')).toEqual(tensorsOut(src, steps[0]!, 'model.*'));
    expect(c.json<{ ok: boolean }>(['verify', '--read-data', '--json']).ok).toBe(true);
  });

  it('reading a left-out tensor at the tip fetches its chunks and the step-1 and step-2 bases they decode through, by ranges', () => {
    const c = client(`s3://${s3.bucket}/${PREFIX}`);
    c.ok(['fetch', 'origin', '--filter', 'tensors:model.*'], { env: s3.env() });
    s3.clearLog();
    const r = catBytes(c, ['origin/main:model.safetensors', '--tensor', 'optimizer.v']);
    expect(r.stdout.equals(catBytes(src, ['main:model.safetensors', '--tensor', 'optimizer.v']).stdout)).toBe(true);
    expect(packGets().every((status) => status === '206')).toBe(true);
    const m = /, ([\d.]+) (KiB|MiB) downloaded\)/.exec(r.stderr);
    // The tensor's three steps are a third of the pack at most; without ranges the whole pack came.
    if (m) expect(Number(m[1]) * (m[2] === 'KiB' ? 1024 : MiB)).toBeLessThan(packOf(PREFIX).size / 2);
    expect(c.json<{ ok: boolean }>(['verify', '--read-data', '--json']).ok).toBe(true);
  });

  it('one command reading a pack twice does not read the bases it already holds again (the second part is thin on them)', async () => {
    const c = client(`s3://${s3.bucket}/${PREFIX}`);
    c.ok(['fetch', 'origin', '--filter', 'tensors:model.*'], { env: s3.env() });
    const saved = { ...process.env };
    for (const [k, v] of Object.entries(s3.env())) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const store = await ObjectStore.open(c.store);
    try {
      const t = await S3Transport.open(`s3://${s3.bucket}/${PREFIX}`, store, { remember: async () => {} });
      try {
        const only = (_p: string, names: readonly string[]) => names.includes('optimizer.m');
        const two = (await missingTensorChunks(store, steps[1]!, only)).chunks;
        const three = (await missingTensorChunks(store, steps[2]!, only)).chunks;
        expect(two.length).toBeGreaterThan(0);
        expect(three.length).toBe(two.length);
        await receiveObjects(store, t, two);
        const before = t.bytesDownloaded();
        await receiveObjects(store, t, three);
        const records = new Map(packOf(PREFIX).records.map((r) => [r.id, r]));
        const size = (ids: string[]) => ids.reduce((n, id) => n + 44 + records.get(id)!.stored, 0);
        expect(three.every((id) => records.get(id)!.codec === 6)).toBe(true);
        // Step 3's records, with no more than what lies between them: not step 2's again.
        expect(t.bytesDownloaded() - before).toBeGreaterThanOrEqual(size(three));
        expect(t.bytesDownloaded() - before).toBeLessThan(size(three) + size(two));
      } finally {
        await t.close();
      }
    } finally {
      await store.close();
      process.env = saved;
    }
    const want = catBytes(src, ['main:model.safetensors', '--tensor', 'optimizer.m']).stdout;
    expect(catBytes(c, ['origin/main:model.safetensors', '--tensor', 'optimizer.m']).stdout.equals(want)).toBe(true);
    expect(c.json<{ ok: boolean }>(['verify', '--read-data', '--json']).ok).toBe(true);
  });

  it('a chunk record damaged on the server is refused (12) and the store is as it was', () => {
    const url = damagedRemote('ranged-damaged-body', (b, records) => {
      for (const r of records) if (r.type === 1 && r.stored > 64) b[r.at + 44 + (r.stored >> 1)]! ^= 0x10;
    });
    expectRefusedFetch(url, 12, 'CKVC_BAD_BUNDLE');
  });

  it('a record that is not the one its TOC entry names is refused (12) and the store is as it was', () => {
    const url = damagedRemote('ranged-damaged-header', (b, records) => {
      // Every chunk's record header names another object than its TOC entry does.
      for (const r of records) if (r.type === 1) b[r.at + 12]! ^= 0xff;
    });
    expectRefusedFetch(url, 12, 'CKVC_BAD_BUNDLE', 'not the one its TOC names');
  });

  it('a delta record whose base is not in its pack is refused (12): each pack stands alone', () => {
    const url = damagedRemote('ranged-foreign-base', (b, records) => {
      // Every delta record names a base no pack holds (its stored bytes 2..34, FORMAT.md §4.3).
      for (const r of records) if (r.codec === 6) b[r.at + 44 + 2]! ^= 0xff;
    });
    expectRefusedFetch(url, 12, 'CKVC_BAD_BUNDLE', 'which is not in the pack');
  });

  it('a service that answers more than the range asked is refused (22) and the store is as it was', () => {
    s3.widenRanges(true);
    try {
      expectRefusedFetch(`s3://${s3.bucket}/${PREFIX}`, 22, 'CKVC_REMOTE', 'with another range');
    } finally {
      s3.widenRanges(false);
    }
  });

  it('a TOC whose records do not tile the pack is refused (12) before any record is read', () => {
    const url = damagedRemote('ranged-damaged-toc', (b, records) => {
      const r = records[1]!;
      b.writeUInt32LE(r.stored + 1, r.tocAt + 48);
    });
    s3.clearLog();
    expectRefusedFetch(url, 12, 'CKVC_CORRUPT_PACK');
    // The pack's first 64 KiB (its header) and its end (TOC and footer): no record was asked for.
    expect(packGets()).toEqual(['206', '206']);
  });

  it('Ctrl-C while packs download leaves nothing of them in tmp/ (exit by SIGINT, the store as it was)', async () => {
    const c = client(`s3://${s3.bucket}/${PREFIX}`);
    const before = snapshotStore(c.store);
    const tmp = path.join(c.store, 'tmp');
    const scratch = () => (fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((n) => n.startsWith('s3-fetch-')) : []);
    s3.stallBodiesOf('.bundle'); // every pack read stops after 4 KiB: the fetch waits with its scratch store made
    try {
      const run = c.start(['fetch', 'origin'], { env: s3.env() });
      const deadline = Date.now() + 20_000;
      while (scratch().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(scratch(), 'the scratch store appeared').not.toEqual([]);
      run.child.kill('SIGINT');
      const r = await run.done;
      expect([r.code, r.signal]).toEqual([null, 'SIGINT']);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_INTERRUPTED']);
    } finally {
      s3.stallBodiesOf(undefined);
    }
    expect(scratch()).toEqual([]);
    expect(diffSnapshots(before, snapshotStore(c.store))).toEqual([]);
  });

  it('a fetch killed after its first pack was promoted asks the re-run for the other packs alone', () => {
    const { dir, id } = bigRemote();
    const c = client(`s3://${s3.bucket}/ranged-big`);
    // The first index write is the scratch store's (the pack received there), the second this store's batch.
    const killed = c.run(['fetch', 'origin'], { env: s3.env({ CKVC_FAULT: 'receive.indexed@2' }) });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const again = c.json<{ bytesReceived: number }>(['fetch', 'origin'], { env: s3.env() });
    expect(again.bytesReceived).toBeGreaterThan(8 * MiB);
    expect(again.bytesReceived).toBeLessThan(40 * MiB);
    expect(c.ref('refs/remotes/origin/big')).toBe(id);
    const out = tempDir('ckvc-ranged-big-out-');
    c.ok(['checkout', 'origin/big', '--to', out], { env: s3.env() });
    expect(snapshotTree(out)).toEqual(snapshotTree(dir));
  });

  it('Ctrl-C after a first batch says what stays, and the re-run goes on from there', async () => {
    bigRemote();
    const c = client(`s3://${s3.bucket}/ranged-big`);
    const index = JSON.parse(fs.readFileSync(s3.objectFile('ranged-big/index.json'), 'utf8')) as { packs: string[] };
    expect(index.packs).toHaveLength(2);
    s3.stallBodiesOf(`${index.packs[1]}.bundle`); // the first pack comes and is promoted; the second stops
    // The second pack is asked for once the first batch is promoted and reported: then the fetch waits on it.
    const waiting = () => s3.requests().some((l) => l.includes(`${index.packs[1]}.bundle`) && l.includes('STALLED'));
    s3.clearLog();
    try {
      const run = c.start(['fetch', 'origin'], { env: s3.env() });
      const deadline = Date.now() + 30_000;
      while (!waiting() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(waiting(), 'the fetch waits on the second pack').toBe(true);
      run.child.kill('SIGINT');
      const r = await run.done;
      expect([r.code, r.signal]).toEqual([null, 'SIGINT']);
      expect(r.stderr).toMatch(/of its finished batches are here and stay: run it again to go on/);
    } finally {
      s3.stallBodiesOf(undefined);
    }
    const again = c.json<{ bytesReceived: number }>(['fetch', 'origin'], { env: s3.env() });
    expect(again.bytesReceived).toBeLessThan(40 * MiB);
  });

  it('a service that ignores Range sends whole packs: the fetch takes them whole and is the same', () => {
    const c = client(`s3://${s3.bucket}/${PREFIX}`);
    s3.ignoreRanges(true);
    try {
      s3.clearLog();
      const r = c.json<{ bytesDownloaded?: number; partial: number }>(
        ['fetch', 'origin', '--filter', 'tensors:model.*'],
        { env: s3.env() },
      );
      expect(r.partial).toBe(3);
      expect(r.bytesDownloaded).toBeGreaterThanOrEqual(packOf(PREFIX).size);
      expect(packGets().every((status) => status === '200')).toBe(true);
    } finally {
      s3.ignoreRanges(false);
    }
    expect(tensorsOut(c, 'origin/main', 'model.*')).toEqual(tensorsOut(src, 'main', 'model.*'));
    expect(c.json<{ ok: boolean }>(['verify', '--read-data', '--json']).ok).toBe(true);
  });
});
