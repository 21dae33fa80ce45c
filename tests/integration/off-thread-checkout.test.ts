// Checkouts of files of 128 MiB or more hash and write on a worker thread (src/store/off-thread-writer.ts). What a
// user sees must not change: the same bytes, and for a damaged store the same error a small file gets (the file is
// written again with every check on the main thread, which names the damaged object), with nothing left behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writtenOffThread } from '../../src/store/off-thread-writer.js';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { randomBytes, randomFloat32, writeSafetensors } from '../helpers/data.js';
import { flipByte, packFiles, readTree } from '../helpers/snapshots.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

const MIB = 1024 * 1024;

interface Large {
  s: TestStore;
  src: string;
  id: string;
  /** The big tensor's bytes (random, so its chunks are stored as they are). */
  w: Buffer;
}
let template: Large | undefined;

/**
 * A commit of a safetensors file with a 132 MiB tensor (random I32) and a small one, its twin under another name
 * (the twin's chunks are read back from the first file written), and a small file.
 */
function largeStore(): Large {
  if (!template) {
    const s = newStore();
    const src = tempDir('ckvc-otc-src-');
    const w = randomBytes(71, 132 * MIB);
    writeSafetensors(path.join(src, 'model.safetensors'), {
      w: { dtype: 'I32', shape: [33 * MIB], bytes: w },
      b: { dtype: 'F32', shape: [1000], bytes: randomFloat32(73, 1000) },
    });
    fs.copyFileSync(path.join(src, 'model.safetensors'), path.join(src, 'twin.safetensors'));
    fs.writeFileSync(path.join(src, 'small.json'), '{"step": 1}\n');
    const id = commitId(s, [src, '-m', 'large']);
    template = { s, src, id, w };
  }
  return { ...template, s: copyStore(template.s) };
}

/** Flips a byte of the big tensor's data in the store's pack. */
function damageTensor(l: Large): void {
  const [pack] = packFiles(l.s.store);
  const at = fs.readFileSync(pack!).indexOf(l.w.subarray(100 * MIB, 100 * MIB + 64));
  expect(at, "the tensor's random bytes are stored as they are").toBeGreaterThan(0);
  flipByte(pack!, at + 10);
}

describe('checkout of large files (hashed and written on a worker thread)', () => {
  it('writes every file byte-identical, twins included', () => {
    const { s, src, id } = largeStore();
    expect(writtenOffThread(fs.statSync(path.join(src, 'model.safetensors')).size)).toBe(true);
    const out = tempDir('ckvc-otc-out-');
    const r = s.run(['checkout', id, '--to', out]);
    expect(r.code, describeRun(r)).toBe(0);
    const want = readTree(src);
    const got = readTree(out);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect(got.get(name)?.equals(bytes), name).toBe(true);
    // Again: every file identical, nothing written, the worker started for nothing. The command still exits.
    const again = s.run(['checkout', id, '--to', out], { timeoutMs: 20_000 });
    expect({ code: again.code, signal: again.signal }, describeRun(again)).toEqual({ code: 0, signal: null });
    expect(again.stdout + again.stderr).toContain('0 file(s) written (0 B), 3 already identical');
  });

  it('a damaged chunk: the error a small file gets (CKVC_CORRUPT_OBJECT naming the object), exit 12, no file or temp file left, an older file kept', () => {
    const l = largeStore();
    damageTensor(l);
    const out = tempDir('ckvc-otc-out-');
    fs.writeFileSync(path.join(out, 'model.safetensors'), 'previous version');
    const r = l.s.run(['checkout', l.id, '--to', out, '--force']);
    expect({ exit: r.code, codes: errorCodes(r.stderr) }, describeRun(r)).toEqual({
      exit: 12,
      codes: ['CKVC_CORRUPT_OBJECT'],
    });
    expect(r.stderr).toMatch(/object [0-9a-f]{16} in pack [0-9a-f]{16}: content does not match its hash/);
    // model.safetensors is the first file written: the checkout stops there.
    expect([...readTree(out).keys()]).toEqual(['model.safetensors']);
    expect(fs.readFileSync(path.join(out, 'model.safetensors'), 'utf8')).toBe('previous version');
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('checkout --tensor of a large tensor: byte-identical; with a damaged chunk it fails the same way (each chunk checked off-thread)', () => {
    const l = largeStore();
    const ok = tempDir('ckvc-otc-out-');
    const good = l.s.run(['checkout', l.id, '--tensor', 'w', '--to', ok]);
    expect(good.code, describeRun(good)).toBe(0);
    const written = fs.readdirSync(ok);
    expect(written.length).toBe(2); // model.safetensors and twin.safetensors, each with w alone
    for (const f of written) expect(fs.readFileSync(path.join(ok, f)).subarray(-l.w.length).equals(l.w), f).toBe(true);

    damageTensor(l);
    const out = tempDir('ckvc-otc-out-');
    const r = l.s.run(['checkout', l.id, '--tensor', 'w', '--to', out]);
    expect({ exit: r.code, codes: errorCodes(r.stderr), files: fs.readdirSync(out) }, describeRun(r)).toEqual({
      exit: 12,
      codes: ['CKVC_CORRUPT_OBJECT'],
      files: [],
    });
  });
});
