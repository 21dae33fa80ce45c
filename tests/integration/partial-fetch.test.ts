// Partial fetch (spec/FORMAT.md §13.2, PROTOCOL.md §4): `fetch --filter tensors:GLOB` brings commits, trees and
// recipes but only the matching tensors' data; the rest is fetched on demand by checkout and cat, verify is
// clean meanwhile, pack and push refuse to send what is not here, and a fetch without filter fills it in. The
// same cases run through the real CLI over a folder, a `ckvc serve`, a real sshd and an S3 service.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, errorCodes } from '../helpers/ckvc.js';
import { diffSnapshots, snapshotTree, snapshotStore } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { safetensorsBytes } from '../helpers/data.js';
import { proxy, relay, serve, stopServers } from '../helpers/servers.js';
import { startS3Server, type S3Server } from '../helpers/s3-server.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

type Env = Record<string, string | undefined>;

interface Reach {
  url: string;
  addArgs?: string[];
  env?: Env;
}

interface PartialCase {
  name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** Makes the source store reachable as a remote. */
  reach(src: TestStore): Promise<Reach>;
  /** The same remote, unreachable now. */
  offline(src: TestStore, up: Reach): Promise<Reach>;
}

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net
      .createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
  });
}

let s3: S3Server;
let sshd: Sshd;

const CASES: PartialCase[] = [
  {
    name: 'folder',
    reach: async (src) => ({ url: src.dir }),
    offline: async (src) => ({ url: path.join(src.dir, 'gone') }),
  },
  {
    name: 'HTTP',
    stop: stopServers,
    reach: async (src) => ({ url: (await serve(src)).url }),
    offline: async () => ({ url: `http://127.0.0.1:${await closedPort()}/` }),
  },
  {
    name: 'SSH',
    start: async () => {
      sshd = await startSshd();
    },
    stop: async () => sshd?.stop(),
    reach: async (src) => ({ url: sshd.url(src.store), addArgs: ['--remote-ckvc', sshd.remoteCkvc], env: sshd.env }),
    offline: async () => ({ url: `ssh://127.0.0.1:${await closedPort()}/nowhere`, env: sshd.env }),
  },
  {
    name: 'S3',
    start: async () => {
      s3 = await startS3Server(tempDir('ckvc-partial-s3-'), { conditional: true });
    },
    stop: async () => s3?.stop(),
    reach: async (src) => {
      const url = `s3://${s3.bucket}/${path.basename(src.dir)}`;
      src.ok(['remote', 'add', 's3', url], { env: s3.env() });
      src.ok(['push', 's3', 'main'], { env: s3.env() });
      return { url, env: s3.env() };
    },
    offline: async (_src, up) => ({
      url: up.url,
      env: s3.env({ AWS_ENDPOINT_URL: `http://127.0.0.1:${await closedPort()}`, AWS_MAX_ATTEMPTS: '1' }),
    }),
  },
];

const KiB = 1024;
/** model.w is 512 KiB, each optimizer tensor 1 MiB, all changed by the second commit: 5 MiB of tensor data. */
function checkpoint(step: number): Buffer {
  return safetensorsBytes(
    {
      'model.w': { dtype: 'F32', shape: [128, 1024] },
      'optimizer.m': { dtype: 'F32', shape: [256, 1024] },
      'optimizer.v': { dtype: 'F32', shape: [256, 1024] },
    },
    { format: 'pt' },
    step,
  );
}

let sourceTemplate: TestStore | undefined;

/** The source store of every transport: two commits, made once and copied. */
function makeSource(): TestStore {
  sourceTemplate ??= commitSource();
  return copyStore(sourceTemplate, 'ckvc-partial-src-');
}

function commitSource(): TestStore {
  const src = newStore('ckvc-partial-src-');
  const ckpt = path.join(src.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  for (const step of [1, 2]) {
    fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(step));
    src.ok(['commit', ckpt, '-b', 'main', '-m', `step ${step}`]);
  }
  return src;
}

const promised = (s: TestStore) => {
  const dir = path.join(s.store, 'promised');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.json')) : [];
};

/** A proxy's answer with the upstream status and `body`, typed as the protocol types that endpoint. */
/** `ckvc cat ...` as bytes (the helpers read stdout as text). */
/** The client's remotes.json entry of origin. */
function remoteEntry(s: TestStore): { url: string; filter?: string[] } {
  return JSON.parse(fs.readFileSync(path.join(s.store, 'remotes.json'), 'utf8')).origin;
}

function catBytes(s: TestStore, args: string[], env?: Env): Buffer {
  return catWithNotes(s, args, env).stdout;
}

function catWithNotes(s: TestStore, args: string[], env?: Env): { stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'cat', ...args, '--store', s.store], {
    env: cliEnv(env),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`ckvc cat ${args.join(' ')} failed: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr.toString() };
}

afterAll(() => cleanupTemp());

describe.each(CASES)('partial fetch over $name', (tc) => {
  let src: TestStore;
  let client: TestStore;
  let up: Reach;
  let partialBytes = 0;
  const env = () => up.env;
  /** Points origin at `r` (the URL only: a `remote remove`/`add` pair would cost two more processes per step). */
  const setRemote = (r: Reach) => {
    const file = path.join(client.store, 'remotes.json');
    const remotes = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, { url: string }>;
    remotes.origin!.url = r.url;
    fs.writeFileSync(file, JSON.stringify(remotes));
  };

  beforeAll(async () => {
    await tc.start?.();
    src = makeSource();
    up = await tc.reach(src);
    client = newStore('ckvc-partial-client-');
    client.ok(['remote', 'add', 'origin', up.url, ...(up.addArgs ?? [])], { env: up.env });
  }, 60_000);
  afterAll(async () => tc.stop?.());

  it('fetches commits and recipes but only the matching tensors, and verify is clean', () => {
    const r = client.json<{ bytesReceived: number; partial: number; bytesDownloaded?: number }>(
      ['fetch', 'origin', '--filter', 'tensors:model.*', '--json'],
      { env: env() },
    );
    expect(r.partial).toBe(2);
    // S3 reads only the parts of its 5 MiB pack that hold them, by ranges (spec/S3.md §3): the downloaded bytes
    // (said when over what was kept) stay near the bytes kept, far from the pack's.
    if (tc.name === 'S3') expect(r.bytesDownloaded ?? 0).toBeLessThan(1200 * KiB);
    else expect(r.bytesDownloaded).toBeUndefined();
    // Two versions of model.w (1 MiB before compression) and metadata; the 4 MiB of optimizer state stays behind.
    partialBytes = r.bytesReceived;
    expect(partialBytes).toBeGreaterThan(512 * KiB);
    expect(partialBytes).toBeLessThan(1200 * KiB);
    expect(promised(client)).toHaveLength(2);
    expect(client.json<{ ok: boolean }>(['verify', '--json']).ok).toBe(true);
    // The two commits are reached only from origin/main, a remote-tracking ref: stats counts them.
    const stats = client.json<{ partial: Record<string, number>; commits: number }>(['stats', '--json']);
    expect([stats.partial, stats.commits]).toEqual([{ origin: 2 }, 2]);
    const ls = client.json<{ tensors: { name: string }[] }[]>(['ls', 'origin/main', '--tensors', '--json']);
    expect(JSON.stringify(ls)).toContain('optimizer.v');
    // The filter is kept for the remote: a plain fetch and a pull leave the store as partial as it was.
    expect(remoteEntry(client).filter).toEqual(['model.*']);
    const again = client.json<{ bytesReceived: number; completed: number }>(['fetch', 'origin', '--json'], {
      env: env(),
    });
    expect([again.completed, promised(client).length]).toEqual([0, 2]);
    expect(again.bytesReceived).toBeLessThan(64 * KiB);
    const pulled = client.json<{ bytesReceived: number }>(['pull', 'origin', 'main', '--json'], { env: env() });
    expect(pulled.bytesReceived).toBeLessThan(64 * KiB);
    expect(promised(client)).toHaveLength(2);
  });

  it('checks out a fetched tensor byte-identical without the remote', async () => {
    const off = await tc.offline(src, up);
    setRemote(off);
    try {
      const want = tempDir('ckvc-partial-want-');
      src.ok(['checkout', 'main', '--tensor', 'model.*', '--to', want]);
      const got = tempDir('ckvc-partial-got-');
      client.ok(['checkout', 'origin/main', '--tensor', 'model.*', '--to', got], { env: off.env });
      expect([...snapshotTree(got).keys()]).toEqual(['model.safetensors']);
      expect(snapshotTree(got)).toEqual(snapshotTree(want));
    } finally {
      setRemote(up);
    }
  });

  it('without the remote, reading a left-out tensor fails with CKVC_NOT_FETCHED and changes nothing', async () => {
    const off = await tc.offline(src, up);
    setRemote(off);
    try {
      const before = snapshotStore(client.store);
      const r = client.run(['cat', 'origin/main:model.safetensors', '--tensor', 'optimizer.v'], { env: off.env });
      expect(r.code).toBe(23);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_NOT_FETCHED']);
      expect(r.stderr).toContain("remote 'origin'");
      expect(r.stderr).toContain("'ckvc fetch origin --no-filter'");
      const c = client.run(['checkout', 'origin/main', '--to', tempDir()], { env: off.env });
      expect(c.code).toBe(23);
      const after = snapshotStore(client.store);
      expect(diffSnapshots(before, after)).toEqual([]);
    } finally {
      setRemote(up);
    }
  });

  it('fetches a left-out tensor on demand, byte-identical', () => {
    const want = catBytes(src, ['main:model.safetensors', '--tensor', 'optimizer.m']);
    const cat = catWithNotes(client, ['origin/main:model.safetensors', '--tensor', 'optimizer.m'], env());
    const got = cat.stdout;
    expect(got.length).toBe(1024 * KiB);
    expect(got.equals(want)).toBe(true);
    expect(cat.stderr).toMatch(
      /^ckvc: note: cat --tensor: fetched 1 tensor\(s\) of commit [0-9a-f]{12} \(\d+ chunk\(s\), [\d.]+ [KM]iB/m,
    );
    // From S3, by ranges: the tensor's chunks and the step-1 chunks they are deltas on (which the scratch store
    // decodes them through), not the whole 5 MiB pack.
    const downloaded = /, ([\d.]+) (KiB|MiB) downloaded\)/.exec(cat.stderr);
    const inMiB = downloaded && Number(downloaded[1]) / (downloaded[2] === 'KiB' ? 1024 : 1);
    if (tc.name === 'S3' && inMiB) expect(inMiB).toBeLessThan(2.5);
    if (tc.name !== 'S3') expect(downloaded).toBeNull();
    expect(client.json<{ ok: boolean }>(['verify', '--json']).ok).toBe(true);
  });

  it('gc frees nothing because of a promise: data fetched on demand stays readable offline', async () => {
    client.ok(['gc', '--grace', '0']);
    const off = await tc.offline(src, up);
    setRemote(off);
    try {
      const want = catBytes(src, ['main:model.safetensors', '--tensor', 'optimizer.m']);
      const got = catBytes(client, ['origin/main:model.safetensors', '--tensor', 'optimizer.m'], off.env);
      expect(got.equals(want)).toBe(true);
      expect(client.json<{ ok: boolean }>(['verify', '--read-data', '--json']).ok).toBe(true);
    } finally {
      setRemote(up);
    }
  });

  it('refuses to pack or push what it left out', () => {
    client.ok(['branch', 'mine', 'origin/main']);
    const bundle = path.join(tempDir(), 'b.ckvb');
    const p = client.run(['pack', 'mine', '-o', bundle]);
    expect(errorCodes(p.stderr)).toEqual(['CKVC_NOT_FETCHED']);
    expect(p.code).toBe(23);
    expect(fs.existsSync(bundle)).toBe(false);
    const other = newStore('ckvc-partial-other-');
    client.ok(['remote', 'add', 'other', other.dir]);
    const r = client.run(['push', 'other', 'mine']);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_NOT_FETCHED']);
    expect(r.stderr).toContain("'ckvc fetch origin --no-filter'");
    expect(other.run(['log', 'mine']).code).not.toBe(0);
  });

  it('remote remove refuses while the remote holds left-out data; --force removes it', () => {
    const before = snapshotStore(client.store);
    const r = client.run(['remote', 'remove', 'origin']);
    expect(r.code).toBe(23);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_NOT_FETCHED']);
    expect(r.stderr).toContain("'ckvc fetch origin --no-filter'");
    expect(diffSnapshots(before, snapshotStore(client.store))).toEqual([]);
    client.ok(['remote', 'remove', 'origin', '--force']);
    expect(client.json<{ name: string }[]>(['remote', 'list', '--json']).map((x) => x.name)).not.toContain('origin');
    client.ok(['remote', 'add', 'origin', up.url, ...(up.addArgs ?? [])], { env: up.env });
  });

  it('fetch --no-filter fills the store in, drops the promises and the kept filter', () => {
    client.ok(['fetch', 'origin', '--filter', 'tensors:model.*'], { env: env() });
    expect(remoteEntry(client).filter).toEqual(['model.*']);
    const r = client.json<{ completed: number; bytesReceived: number }>(['fetch', 'origin', '--no-filter', '--json'], {
      env: env(),
    });
    expect(remoteEntry(client).filter).toBeUndefined();
    expect(r.completed).toBe(2);
    // The three optimizer tensors not fetched on demand: each about as big as both model.w versions together.
    expect(r.bytesReceived).toBeGreaterThan(2 * partialBytes);
    expect(promised(client)).toEqual([]);
    expect(client.json<{ partial: Record<string, number> }>(['stats', '--json']).partial).toEqual({});
    expect(client.json<{ ok: boolean }>(['verify', '--read-data', '--json']).ok).toBe(true);
    const want = tempDir();
    src.ok(['checkout', 'main', '--to', want]);
    const got = tempDir();
    client.ok(['checkout', 'origin/main', '--to', got]);
    expect([...snapshotTree(got).keys()]).toEqual(['model.safetensors']);
    expect(snapshotTree(got)).toEqual(snapshotTree(want));
    const other = newStore('ckvc-partial-other2-');
    client.ok(['remote', 'add', 'other2', other.dir]);
    client.ok(['push', 'other2', 'mine']);
    // Nothing is promised by origin any more: it may go without --force.
    client.ok(['remote', 'remove', 'origin']);
  });
});

describe('a folder remote that moved', () => {
  it("says so (22, no advice to make a store there); 'remote set' points the name elsewhere and keeps its promises", () => {
    const src = makeSource();
    const client = newStore('ckvc-partial-moved-');
    client.ok(['remote', 'add', 'origin', src.dir]);
    client.ok(['fetch', 'origin', '--filter', 'tensors:model.*']);
    const want = catBytes(src, ['main:model.safetensors', '--tensor', 'optimizer.m']);
    const moved = path.join(tempDir('ckvc-partial-moved-to-'), 'store');
    fs.renameSync(src.dir, moved);
    const f = client.run(['fetch', 'origin']);
    expect(f.code).toBe(22);
    expect(errorCodes(f.stderr)).toEqual(['CKVC_REMOTE']);
    expect(f.stderr).toContain('holds no ckvc store now');
    expect(f.stderr).not.toContain('ckvc init');
    const c = client.run(['cat', 'origin/main:model.safetensors', '--tensor', 'optimizer.m']);
    expect(c.code).toBe(23);
    expect(c.stderr).toContain("'ckvc remote set origin");
    // Taken apart and put back under the same name would drop what the partial fetch left there: set keeps it.
    const taken = client.run(['remote', 'add', 'origin', moved]);
    expect(taken.code).toBe(13);
    expect(taken.stderr).toContain("'ckvc remote set origin URL'");
    expect(client.json(['remote', 'set', 'origin', moved, '--json'])).toMatchObject({ name: 'origin', url: moved });
    expect(promised(client)).toHaveLength(2);
    const got = catBytes(client, ['origin/main:model.safetensors', '--tensor', 'optimizer.m']);
    expect(got.equals(want)).toBe(true);
    // Any command that fetches on demand says so (diff did it without a word).
    const d = client.run(['diff', 'origin/main~1', 'origin/main']);
    expect(d.code).toBe(0);
    expect(d.stderr).toMatch(
      /ckvc: note: diff: fetched \d+ tensor\(s\) of commit [0-9a-f]{12} .* from remote 'origin'/,
    );
    expect(errorCodes(client.run(['remote', 'set', 'nope', moved]).stderr)).toEqual(['CKVC_UNKNOWN_REMOTE']);
    expect(errorCodes(client.run(['remote', 'set', 'origin', '--single-writer']).stderr)).toEqual([
      'CKVC_BAD_ARGUMENT',
    ]);
    expect(errorCodes(client.run(['remote', 'set', 'origin']).stderr)).toEqual(['CKVC_USAGE']);
  });
});

describe('partial fetch: checkout straight from a remote', () => {
  // Here, not at each test's end: a failed expect would skip that and leave `ckvc serve` running after the run.
  afterEach(stopServers);

  it('checkout REMOTE/BRANCH --tensor GLOB fetches only those tensors, then checks them out', async () => {
    const src = makeSource();
    const { url } = await serve(src);
    const client = newStore('ckvc-partial-co-');
    client.ok(['remote', 'add', 'lab', url]);
    const got = tempDir();
    const r = client.json<{ fetched: { result: { bytesReceived: number; partial: number } } }>([
      'checkout',
      'lab/main',
      '--tensor',
      'model.*',
      '--to',
      got,
      '--json',
    ]);
    expect(r.fetched.result.partial).toBe(2);
    expect(r.fetched.result.bytesReceived).toBeLessThan(1400 * KiB);
    const want = tempDir();
    src.ok(['checkout', 'main', '--tensor', 'model.*', '--to', want]);
    expect([...snapshotTree(got).keys()]).toEqual(['model.safetensors']);
    expect(snapshotTree(got)).toEqual(snapshotTree(want));
    // The checkout's globs were for it alone: no filter is kept for lab.
    const kept = JSON.parse(fs.readFileSync(path.join(client.store, 'remotes.json'), 'utf8')).lab;
    expect(kept).toEqual({ url });
  });

  it('checkout REMOTE/NAME of a branch the remote lacks (a tag there, say) fetches nothing and says what it has', async () => {
    const src = makeSource();
    src.ok(['tag', 'v1']);
    const { url } = await serve(src);
    const client = newStore('ckvc-partial-co-none-');
    client.ok(['remote', 'add', 'lab', url]);
    const before = snapshotStore(client.store);
    for (const [rev, said] of [
      ['lab/v1', "'v1' is a tag there, and fetched tags keep their own names"],
      ['lab/nope~1', "remote 'lab' has no branch 'nope' (its branches: 'main')"],
    ]) {
      const r = client.run(['checkout', rev!, '--tensor', 'model.*', '--to', tempDir()]);
      expect(r.code, r.stderr).toBe(14);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_UNKNOWN_REVISION']);
      expect(r.stderr).toContain(said);
    }
    expect(diffSnapshots(before, snapshotStore(client.store))).toEqual([]);
  });

  it('a server that predates the filter refuses it, and nothing is fetched', async () => {
    const src = makeSource();
    const upstream = (await serve(src)).url;
    // What a server without partial fetch answers: the plan body's unknown field refused (PROTOCOL.md §3).
    const url = await proxy(upstream, async (req, body, res, pass) => {
      if (req.url === '/v1/plan' && 'filter' in JSON.parse(body.toString('utf8'))) {
        res.writeHead(400, { 'content-type': 'application/json' });
        const message = 'the plan request has an unknown field "filter"; it takes wants, haves';
        res.end(JSON.stringify({ error: { code: 'CKVC_BAD_BUNDLE', message, exit: 12, data: { field: 'filter' } } }));
        return;
      }
      const up = await pass();
      relay(req, res, up.status, up.body);
    });
    const client = newStore('ckvc-partial-old-');
    client.ok(['remote', 'add', 'old', url]);
    const before = snapshotStore(client.store);
    const r = await client.start(['fetch', 'old', '--filter', 'tensors:model.*']).done;
    expect(r.code).toBe(22);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toContain('does not know partial fetch');
    expect(diffSnapshots(before, snapshotStore(client.store))).toEqual([]);
  });

  it("a damaged promise record (a lone '!' for a filter) reads as promising nothing; verify stays clean", async () => {
    const src = makeSource();
    const client = newStore('ckvc-partial-damaged-');
    client.ok(['remote', 'add', 'lab', src.store]);
    client.ok(['fetch', 'lab', '--filter', 'tensors:model.*']);
    const records = promised(client);
    expect(records.length).toBeGreaterThan(0);
    for (const name of records) {
      const file = path.join(client.store, 'promised', name);
      const rec = JSON.parse(fs.readFileSync(file, 'utf8'));
      fs.writeFileSync(file, JSON.stringify({ ...rec, filters: [['!']] }));
    }
    const v = client.json<{ problems: unknown[] }>(['verify', '--read-data']);
    expect(v.problems).toEqual([]);
  });

  it('a plan that lists a partial commit it does not send is refused before any promise is recorded', async () => {
    const src = makeSource();
    const upstream = (await serve(src)).url;
    const stranger = 'ab'.repeat(32);
    // A remote planting a record for a commit that never comes: the record could later excuse that commit's
    // missing data when it arrived by other means (a bundle).
    const url = await proxy(upstream, async (req, body, res, pass) => {
      const up = await pass();
      let out = up.body;
      if (req.url === '/v1/plan' && 'filter' in JSON.parse(body.toString('utf8'))) {
        const plan = JSON.parse(up.body.toString('utf8'));
        out = Buffer.from(JSON.stringify({ ...plan, commits: [...plan.commits, stranger] }));
      }
      relay(req, res, up.status, out);
    });
    const client = newStore('ckvc-partial-plant-');
    client.ok(['remote', 'add', 'planter', url]);
    const before = snapshotStore(client.store);
    const r = await client.start(['fetch', 'planter', '--filter', 'tensors:model.*']).done;
    expect(r.code).toBe(22);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_REMOTE']);
    expect(r.stderr).toContain(`lists commit ${stranger.slice(0, 12)} as partial but does not send it`);
    expect(diffSnapshots(before, snapshotStore(client.store))).toEqual([]);
  });

  it('a plan request with a malformed filter is refused (400 CKVC_BAD_BUNDLE)', async () => {
    const src = makeSource();
    const { url } = await serve(src);
    const tip = fs.readFileSync(path.join(src.store, 'refs', 'heads', 'main'), 'utf8').trim();
    for (const filter of [{ tensors: [] }, { tensors: ['!'] }, { tensors: 'model.*' }, { globs: ['x'] }, ['x']]) {
      const res = await fetch(new URL('v1/plan', url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ wants: [tip], haves: [], filter }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CKVC_BAD_BUNDLE');
    }
    const ok = await fetch(new URL('v1/plan', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ wants: [tip], haves: [], filter: { tensors: ['model.*'] } }),
    });
    const plan = (await ok.json()) as { objects: string[]; commits: string[] };
    expect(plan.commits).toHaveLength(2);
  });

  it('fetch REMOTE BRANCH --no-filter completes the partial commits of that branch alone', () => {
    const src = makeSource(); // main: two commits
    const ckpt = path.join(src.dir, 'ckpt');
    fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(7));
    src.ok(['commit', ckpt, '-b', 'side', '-m', 'side']);
    const client = newStore('ckvc-partial-branch-');
    client.ok(['remote', 'add', 'origin', src.dir]);
    expect(client.json<{ partial: number }>(['fetch', 'origin', '--filter', 'tensors:model.*']).partial).toBe(3);
    const r = client.json<{ completed: number; refs: { name: string }[] }>(['fetch', 'origin', 'main', '--no-filter']);
    expect(r.completed).toBe(2);
    expect(promised(client)).toHaveLength(1); // side's commit: still partial, its data still on the remote
    expect(r.refs.map((u) => u.name)).toEqual(['refs/remotes/origin/main']);
    expect(client.json<{ ok: boolean }>(['verify', '--json']).ok).toBe(true);
  });

  it('a --filter glob that matches no tensor is fetched as asked, with a warning naming what the commits hold', () => {
    const src = makeSource();
    const client = newStore('ckvc-partial-typo-');
    client.ok(['remote', 'add', 'origin', src.dir]);
    const r = client.run(['fetch', 'origin', '--filter', 'tensors:modle.*']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      "warning (CKVC_PATH_NOT_FOUND): --filter tensors:modle.* matches no tensor of the 1 commit(s) the fetched refs name (they hold 'model.w'",
    );
    const ok = client.run(['fetch', 'origin', '--filter', 'tensors:model.*']);
    expect(ok.code).toBe(0);
    expect(ok.stderr).not.toContain('CKVC_PATH_NOT_FOUND');
    // Its stats count the data left out as logical bytes, and say that the ratios overstate for it.
    const stats = client.ok(['stats']).stdout;
    expect(stats).toMatch(/^partial: +2 commit\(s\) with tensor data left out/m);
    expect(stats).toContain('(the ratios above count that left-out data as logical bytes, so they overstate)');
    expect(stats).toMatch(/^deltas: +(none|\d+ chunk\(s\), )/m);
  });

  it('a bad --filter is a usage error', () => {
    const client = newStore();
    const r = client.run(['fetch', 'origin', '--filter', 'model.*']);
    expect(r.code).toBe(2);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_USAGE']);
  });
});
