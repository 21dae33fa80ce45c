// The worker thread that hashes and writes large checked-out files (src/store/off-thread-writer.ts): what it writes
// is what was put, in order, whatever the sizes (pieces, the ring wrapping around, files interleaved); its BLAKE3 is
// the whole content's; a chunk that does not match its ID, and a write that fails, fail the file.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ContentHasher, objectId } from '../../src/core/store-format/object-id.js';
import { OffThreadFailed, type FileOutput } from '../../src/store/file-output.js';
import { offThreadFileHash, offThreadOutput } from '../../src/store/off-thread-writer.js';
import { randomBytes } from '../helpers/data.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';

afterAll(cleanupTemp);

function open(name: string): { fd: number; file: string; out: FileOutput } {
  const file = path.join(tempDir('ckvc-otw-'), name);
  const fd = fs.openSync(file, 'w+');
  const out = offThreadOutput(fd);
  if (!out) throw new Error('no worker thread here');
  return { fd, file, out };
}

function b3(bytes: Buffer): string {
  const h = new ContentHasher();
  h.update(bytes);
  return h.digestHex();
}

describe('offThreadOutput', () => {
  it('writes every byte put, in order, and returns the whole content BLAKE3: small puts, pieces over 4 MiB, an empty put, 40 MiB through the 16 MiB ring', async () => {
    const { fd, file, out } = open('a.bin');
    const sizes = [8, 0, 256 * 1024, 3, 1024 * 1024 - 1, 9 * 1024 * 1024 + 5, 1, ...Array(120).fill(256 * 1024)];
    const parts = sizes.map((n, i) => randomBytes(100 + i, n));
    let released = 0;
    const written: number[] = [];
    for (const [i, p] of parts.entries()) {
      await out.put(p, {
        check: p.length > 0 && p.length <= 1024 * 1024 ? objectId('chunk', p) : undefined,
        release: () => released++,
        written: () => written.push(i),
      });
    }
    const all = Buffer.concat(parts);
    expect(all.length).toBeGreaterThan(40 * 1024 * 1024);
    expect(await out.finish()).toEqual({ b3: b3(all), size: all.length });
    fs.closeSync(fd);
    expect(fs.readFileSync(file).equals(all)).toBe(true);
    expect(released).toBe(parts.length);
    expect(written).toEqual(parts.map((_, i) => i));
  });

  it('calls written() only once the bytes are in the file', async () => {
    const { fd, out } = open('w.bin');
    const parts = Array.from({ length: 80 }, (_, i) => randomBytes(300 + i, 300_000));
    const problems: string[] = [];
    let offset = 0;
    for (const [i, p] of parts.entries()) {
      const at = offset;
      await out.put(p, {
        written: () => {
          const back = Buffer.alloc(p.length);
          fs.readSync(fd, back, 0, p.length, at);
          if (!back.equals(p)) problems.push(`part ${i} not in the file when written() was called`);
        },
      });
      offset += p.length;
    }
    await out.finish();
    fs.closeSync(fd);
    expect(problems).toEqual([]);
  });

  it('keeps two files written at once apart', async () => {
    const a = open('a.bin');
    const b = open('b.bin');
    const pa = Array.from({ length: 30 }, (_, i) => randomBytes(500 + i, 700_001));
    const pb = Array.from({ length: 30 }, (_, i) => randomBytes(600 + i, 500_003));
    await Promise.all([
      (async () => {
        for (const p of pa) await a.out.put(p, { check: objectId('chunk', p) });
      })(),
      (async () => {
        for (const p of pb) await b.out.put(p);
      })(),
    ]);
    const [ra, rb] = await Promise.all([a.out.finish(), b.out.finish()]);
    fs.closeSync(a.fd);
    fs.closeSync(b.fd);
    expect(ra).toEqual({ b3: b3(Buffer.concat(pa)), size: 30 * 700_001 });
    expect(rb).toEqual({ b3: b3(Buffer.concat(pb)), size: 30 * 500_003 });
    expect(fs.readFileSync(a.file).equals(Buffer.concat(pa))).toBe(true);
    expect(fs.readFileSync(b.file).equals(Buffer.concat(pb))).toBe(true);
  });

  it("an acknowledgement of one file's batch does not free another file's bytes put after it (review repro)", async () => {
    const a = open('a.bin');
    const b = open('b.bin');
    await a.out.put(Buffer.alloc(100, 1)); // a's batch pending
    const pb = Buffer.alloc(64 * 1024, 0x42);
    let early: string | undefined;
    await b.out.put(pb, {
      written: () => {
        const back = Buffer.alloc(pb.length);
        fs.readSync(b.fd, back, 0, pb.length, 0);
        early = back.equals(pb) ? 'in the file' : 'not in the file when written() was called';
      },
    });
    // b's next bytes stay in its pending batch (under 1 MiB), while a's batch is acknowledged.
    const one = Buffer.from([7]);
    for (let i = 0; i < 300_000; i++) await b.out.put(one, { check: objectId('chunk', one) });
    await new Promise((r) => setTimeout(r, 100));
    // a fills the ring: had the acknowledgement freed pb's place, a would overwrite it before b's batch is sent.
    const piece = Buffer.alloc(64 * 1024, 0xaa);
    for (let put = 100; put + piece.length < 16 * 1024 * 1024 - 300_100; put += piece.length) await a.out.put(piece);
    const rb = await b.out.finish();
    await a.out.finish();
    const got = Buffer.alloc(pb.length);
    fs.readSync(b.fd, got, 0, pb.length, 0);
    fs.closeSync(a.fd);
    fs.closeSync(b.fd);
    expect({ early, first: got.equals(pb), size: rb.size }).toEqual({
      early: 'in the file',
      first: true,
      size: pb.length + 300_000,
    });
  });

  it('two files putting at the same moment: a written() is called only once its bytes are in its file (second review repro)', async () => {
    const a = open('a.bin');
    const b = open('b.bin');
    const problems: string[] = [];
    const check = (fd: number, bytes: Buffer, name: string) => () => {
      const back = Buffer.alloc(bytes.length);
      fs.readSync(fd, back, 0, bytes.length, 0);
      if (!back.equals(bytes)) problems.push(`${name} not in its file when written() was called`);
    };
    const pa = Buffer.alloc(1000, 1);
    const pb = Buffer.alloc(2000, 2);
    await Promise.all([
      a.out.put(pa, { written: check(a.fd, pa, 'a') }),
      b.out.put(pb, { written: check(b.fd, pb, 'b') }),
    ]);
    await new Promise((r) => setTimeout(r, 200)); // a's batch is acknowledged; b's is still being filled
    await Promise.all([a.out.finish(), b.out.finish()]);
    fs.closeSync(a.fd);
    fs.closeSync(b.fd);
    expect(problems).toEqual([]);
  });

  it("calls an empty put's written() without waiting for a later file", async () => {
    const { fd, out } = open('empty.bin');
    await out.put(randomBytes(5, 1000));
    await out.finish();
    fs.closeSync(fd);
    const next = open('next.bin');
    let called = false;
    await next.out.put(Buffer.alloc(0), { written: () => (called = true) });
    expect(called).toBe(true);
    await next.out.finish();
    fs.closeSync(next.fd);
  });

  it.runIf(fs.existsSync('/dev/full'))(
    'stops taking bytes once a write has failed (a full disk is reported before the rest is read)',
    async () => {
      const fd = fs.openSync('/dev/full', 'w');
      const out = offThreadOutput(fd)!;
      const piece = randomBytes(6, 1024 * 1024);
      let accepted = 0;
      const stopped = await (async () => {
        for (let i = 0; i < 512; i++) {
          await out.put(piece);
          accepted++;
        }
      })().catch((e) => e);
      const err = await out.fail(stopped).catch((e) => e);
      fs.closeSync(fd);
      expect(stopped).toBeInstanceOf(OffThreadFailed);
      expect(accepted).toBeLessThan(64);
      expect(err).toMatchObject({ code: 'ENOSPC', syscall: 'write' });
    },
  );

  it('fails the file with OffThreadFailed when a chunk does not match its ID, at finish() and at fail()', async () => {
    for (const end of ['finish', 'fail'] as const) {
      const { fd, out } = open(`bad-${end}.bin`);
      const good = randomBytes(1, 200_000);
      const bad = randomBytes(2, 200_000);
      await out.put(good, { check: objectId('chunk', good) });
      await out.put(bad, { check: objectId('chunk', good) });
      await out.put(good, { check: objectId('chunk', good) });
      const err = await (end === 'finish' ? out.finish() : out.fail(new Error('the caller failed'))).catch((e) => e);
      fs.closeSync(fd);
      expect(err).toBeInstanceOf(OffThreadFailed);
    }
  });

  it("hands the caller's own error back from fail() when nothing went wrong off-thread", async () => {
    const { fd, out } = open('caller.bin');
    await out.put(randomBytes(3, 1000));
    const mine = new Error('mine');
    await expect(out.fail(mine)).rejects.toBe(mine);
    fs.closeSync(fd);
  });

  it('reports a write that fails as Node reports it (code, syscall), for the caller to word', async () => {
    const file = path.join(tempDir('ckvc-otw-'), 'ro.bin');
    fs.writeFileSync(file, '');
    const fd = fs.openSync(file, 'r');
    const out = offThreadOutput(fd)!;
    await out.put(randomBytes(4, 100_000));
    const err = await out.finish().catch((e) => e);
    fs.closeSync(fd);
    expect(err).toMatchObject({ code: 'EBADF', syscall: 'write' });
    expect(err).not.toBeInstanceOf(OffThreadFailed);
  });
});

describe('offThreadFileHash', () => {
  it("hashes a file's first bytes as the main thread would, and reports a missing file as Node does", async () => {
    const file = path.join(tempDir('ckvc-otw-'), 'f.bin');
    const bytes = randomBytes(9, 9 * 1024 * 1024 + 17);
    fs.writeFileSync(file, bytes);
    const [whole, part, none] = await Promise.all([
      offThreadFileHash(file, bytes.length),
      offThreadFileHash(file, 5_000_001),
      offThreadFileHash(file, 0),
    ]);
    expect([whole, part, none]).toEqual([b3(bytes), b3(bytes.subarray(0, 5_000_001)), b3(Buffer.alloc(0))]);
    await expect(offThreadFileHash(`${file}.gone`, 10)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stops reading when its caller gives up (signal), so that a failed verify can exit at once', async () => {
    const file = path.join(tempDir('ckvc-otw-'), 'long.bin');
    fs.writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 3));
    const stop = new AbortController();
    const queued = Array.from({ length: 20 }, () => offThreadFileHash(file, 64 * 1024 * 1024, stop.signal)!);
    for (const q of queued) q.catch(() => {});
    stop.abort();
    const settled = await Promise.allSettled(queued);
    expect(
      settled.filter((r) => r.status === 'rejected' && r.reason instanceof OffThreadFailed).length,
    ).toBeGreaterThan(15);
  });
});

describe('the worker thread and the process', () => {
  // Run as a module file, as the CLI's bundle is a file: an `-e` script exited even while the worker held the
  // process (so the first version of this test passed while every checkout that started the worker hung).
  function exits(body: string): { status: number | null; signal: string | null; stdout: string; stderr: string } {
    const dir = tempDir('ckvc-otw-');
    const script = path.join(dir, 'run.mjs');
    const module = pathToFileURL(path.resolve('dist/store/off-thread-writer.js')).href;
    fs.writeFileSync(
      script,
      `import * as fs from 'node:fs';\nimport * as w from ${JSON.stringify(module)};\n${body}\n`,
    );
    const r = spawnSync(process.execPath, [script], { cwd: dir, timeout: 20_000, encoding: 'utf8' });
    return { status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr };
  }

  it.each([
    {
      what: 'a process that only started the worker exits (a checkout that writes no large file)',
      body: "w.startOffThreadWriter();\nconsole.log('done');",
    },
    {
      what: 'an output left unfinished (a bug) does not keep the process from exiting',
      body: "const out = w.offThreadOutput(fs.openSync('left.bin', 'w'));\nawait out.put(Buffer.alloc(3 << 20, 7));\nconsole.log('done');",
    },
    {
      what: 'a process that hashed a file on the worker exits',
      body: "fs.writeFileSync('f.bin', Buffer.alloc(5 << 20, 1));\nawait w.offThreadFileHash('f.bin', 5 << 20);\nconsole.log('done');",
    },
  ])('$what', ({ body }) => {
    const r = exits(body);
    expect({ status: r.status, signal: r.signal, stdout: r.stdout }, r.stderr).toEqual({
      status: 0,
      signal: null,
      stdout: 'done',
    });
  });
});
