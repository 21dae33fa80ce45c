// Commit then checkout must give back every file byte for byte: safetensors of many dtypes and edge shapes,
// opaque binaries of edge sizes, nested folders, and real PyTorch/NumPy files. Also --path selection and the
// rules for files already present at the destination.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { readTree, sha256, snapshotTree, treeDifferences } from '../helpers/snapshots.js';
import { randomBytes, tensorData, writeSafetensors } from '../helpers/data.js';
import { FIXTURES } from '../helpers/fixtures.js';

afterAll(cleanupTemp);

/** A checkpoint-like folder: safetensors with every edge we care about, opaque files, nesting. */
function makeSource(dir: string): void {
  fs.mkdirSync(path.join(dir, 'nested', 'a', 'b'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'optim'), { recursive: true });
  writeSafetensors(
    path.join(dir, 'model.safetensors'),
    {
      'embed.weight': { dtype: 'F32', shape: [300, 257] }, // 308,400 bytes: more than one 256 KiB chunk, ragged tail
      'layer.0.weight': { dtype: 'F16', shape: [17, 5] },
      'layer.0.bias': { dtype: 'BF16', shape: [8, 8] },
      positions: { dtype: 'I64', shape: [10] },
      empty: { dtype: 'F32', shape: [0, 4] },
      scale: { dtype: 'F32', shape: [] },
      flags: { dtype: 'BOOL', shape: [3], bytes: Buffer.from([1, 0, 1]) },
      'lm_head.weight': { dtype: 'F32', shape: [64, 33] },
    },
    { format: 'pt', note: 'ünïcödé metadata' },
  );
  // A safetensors file with nothing but metadata and an empty one with no tensors at all.
  writeSafetensors(path.join(dir, 'nested', 'no_tensors.safetensors'), {}, { only: 'metadata' });
  writeSafetensors(path.join(dir, 'nested', 'a', 'zero.safetensors'), { z: { dtype: 'F64', shape: [0] } });
  fs.writeFileSync(path.join(dir, 'empty.bin'), Buffer.alloc(0));
  fs.writeFileSync(path.join(dir, 'one.bin'), Buffer.from([0x7f]));
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(42, 3 * 1024 * 1024));
  fs.writeFileSync(path.join(dir, 'nested', 'a', 'b', 'deep.txt'), 'deep file\n');
  fs.writeFileSync(path.join(dir, 'nested', 'state.json'), JSON.stringify({ step: 10, best: 0.5 }));
  // Compressible data (zeros and a repeated pattern) so the compressing codecs round-trip too.
  fs.writeFileSync(path.join(dir, 'optim', 'zeros.bin'), Buffer.alloc(700 * 1024));
  fs.writeFileSync(path.join(dir, 'optim', 'pattern.bin'), Buffer.from('0123456789abcdef'.repeat(40_000)));
  writeSafetensors(path.join(dir, 'optim', 'state.safetensors'), {
    exp_avg: { dtype: 'F32', shape: [1024, 100] },
    exp_avg_sq: { dtype: 'F32', shape: [1024, 100], bytes: Buffer.alloc(409_600) },
    step: { dtype: 'I64', shape: [] },
  });
}

describe('roundtrip: commit then checkout is byte-identical', () => {
  let s: TestStore;
  let src: string;
  let id: string;

  beforeAll(() => {
    s = newStore();
    src = tempDir('ckvc-src-');
    makeSource(src);
    id = commitId(s, [src, '-m', 'everything']);
  });

  it('checks out a whole directory commit byte for byte', () => {
    const out = path.join(tempDir('ckvc-out-'), 'restored');
    const r = s.json(['checkout', id, '--to', out]);
    expect(r.commit).toBe(id);
    expect(treeDifferences(src, out)).toEqual([]);
    expect(r.written.length).toBe(readTree(src).size);
    expect(r.unchanged).toEqual([]);
  });

  it('records safetensors files as tensors and other files as opaque (show --json)', () => {
    const show = s.json(['show', id]);
    const byPath = new Map<string, { format: string; tensors: number; size: number }>(
      show.files.map((f: any) => [f.path, f]),
    );
    expect(byPath.get('model.safetensors')).toMatchObject({
      format: 'safetensors',
      tensors: 8,
      size: fs.statSync(path.join(src, 'model.safetensors')).size,
    });
    expect(byPath.get('nested/no_tensors.safetensors')).toMatchObject({ format: 'safetensors', tensors: 0 });
    expect(byPath.get('nested/a/zero.safetensors')).toMatchObject({ format: 'safetensors', tensors: 1 });
    expect(byPath.get('big.bin')).toMatchObject({ format: 'opaque', size: 3 * 1024 * 1024 });
    expect(byPath.get('empty.bin')).toMatchObject({ size: 0 });
    expect(byPath.get('nested/a/b/deep.txt')).toBeDefined();
    expect(show.files.length).toBe(readTree(src).size);
  });

  it('checks out by branch name, HEAD and short prefix to the same bytes', () => {
    for (const rev of ['main', 'HEAD', id.slice(0, 8)]) {
      const out = tempDir('ckvc-out-');
      s.ok(['checkout', rev, '--to', out]);
      expect(treeDifferences(src, out), rev).toEqual([]);
    }
  });

  it('commits several files as root entries by basename', () => {
    const ids = commitId(s, [
      path.join(src, 'model.safetensors'),
      path.join(src, 'one.bin'),
      path.join(src, 'nested', 'a'),
      '-m',
      'files',
      '-b',
      'files',
    ]);
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', ids, '--to', out]);
    expect([...readTree(out).keys()].sort()).toEqual([
      'a/b/deep.txt',
      'a/zero.safetensors',
      'model.safetensors',
      'one.bin',
    ]);
    expect(
      fs.readFileSync(path.join(out, 'model.safetensors')).equals(fs.readFileSync(path.join(src, 'model.safetensors'))),
    ).toBe(true);
    expect(fs.readFileSync(path.join(out, 'a', 'b', 'deep.txt'), 'utf8')).toBe('deep file\n');
  });

  it('commits a single file and a single empty file', () => {
    for (const name of ['one.bin', 'empty.bin', 'big.bin']) {
      const c = commitId(s, [path.join(src, name), '-m', name, '-b', 'single']);
      const out = tempDir('ckvc-out-');
      s.ok(['checkout', c, '--to', out]);
      expect([...readTree(out).keys()]).toEqual([name]);
      expect(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(src, name)))).toBe(true);
    }
  });

  it('round-trips the real PyTorch and NumPy fixtures (copied to a temp folder)', () => {
    const copy = path.join(tempDir('ckvc-fix-'), 'fixtures');
    fs.cpSync(FIXTURES, copy, { recursive: true });
    for (const f of fs.readdirSync(copy)) fs.chmodSync(path.join(copy, f), 0o644);
    const manifest = JSON.parse(fs.readFileSync(path.join(copy, 'MANIFEST.json'), 'utf8')) as Record<
      string,
      { bytes: number; sha256: string }
    >;
    expect(Object.keys(manifest).length).toBeGreaterThan(5);
    const c = commitId(s, [copy, '-m', 'fixtures', '-b', 'fixtures']);
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', c, '--to', out]);
    expect(treeDifferences(copy, out)).toEqual([]);
    for (const [name, m] of Object.entries(manifest)) {
      const b = fs.readFileSync(path.join(out, name));
      expect(b.length, name).toBe(m.bytes);
      expect(sha256(b), name).toBe(m.sha256);
    }
  });

  it('round-trips a safetensors file with every common dtype', () => {
    const dir = tempDir('ckvc-dt-');
    const tensors: Record<string, { dtype: string; shape: number[] }> = {};
    for (const dtype of [
      'F64',
      'F32',
      'F16',
      'BF16',
      'I64',
      'I32',
      'I16',
      'I8',
      'U8',
      'BOOL',
      'U16',
      'U32',
      'U64',
      'F8_E4M3',
      'F8_E5M2',
    ]) {
      tensors[`t_${dtype}`] = { dtype, shape: [3, 7] };
    }
    const file = path.join(dir, 'dtypes.safetensors');
    writeSafetensors(
      file,
      Object.fromEntries(
        Object.entries(tensors).map(([k, t], i) => [
          k,
          { ...t, bytes: t.dtype === 'BOOL' ? Buffer.alloc(21, 1) : tensorData(i, t.dtype, t.shape) },
        ]),
      ),
    );
    const c = commitId(s, [file, '-m', 'dtypes', '-b', 'dtypes']);
    expect(s.json(['show', c]).files[0]).toMatchObject({ format: 'safetensors', tensors: 15 });
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', c, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'dtypes.safetensors')).equals(fs.readFileSync(file))).toBe(true);
  });

  it('plain commit prints just the new commit ID on stdout', () => {
    const r = s.ok(['commit', path.join(src, 'one.bin'), '-m', 'plain', '-b', 'plain']);
    expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(s.json(['show', 'plain']).id).toBe(r.stdout.trim());
  });

  it('round-trips unusual file names (spaces, unicode, newline, leading dash)', () => {
    const dir = tempDir('ckvc-names-');
    const names = ['with space.bin', 'ünïcödé.bin', 'new\nline.bin', '-dash.bin', '#hash', 'x'.repeat(200)];
    names.forEach((n, i) => {
      fs.writeFileSync(path.join(dir, n), randomBytes(i, 100 + i));
    });
    const c = commitId(s, [dir, '-m', 'names', '-b', 'names']);
    const out = tempDir('ckvc-out-');
    s.ok(['checkout', c, '--to', out]);
    expect(treeDifferences(dir, out)).toEqual([]);
  });

  it('a committed folder holding the store does not take the store in', () => {
    const s2 = newStore();
    fs.writeFileSync(path.join(s2.dir, 'ckpt.bin'), randomBytes(5, 1000));
    const c = commitId(s2, [s2.dir, '-m', 'with store inside']);
    expect(s2.json(['show', c]).files.map((f: any) => f.path)).toEqual(['ckpt.bin']);
  });

  describe('--path selects a subset', () => {
    it('a folder of the commit', () => {
      const out = tempDir('ckvc-out-');
      const r = s.json(['checkout', id, '--to', out, '--path', 'nested/a']);
      expect([...readTree(out).keys()].sort()).toEqual(['nested/a/b/deep.txt', 'nested/a/zero.safetensors']);
      expect(r.written.map((w: any) => w.path).sort()).toEqual(['nested/a/b/deep.txt', 'nested/a/zero.safetensors']);
      expect(fs.readFileSync(path.join(out, 'nested', 'a', 'b', 'deep.txt'), 'utf8')).toBe('deep file\n');
    });

    it('several files, repeatable', () => {
      const out = tempDir('ckvc-out-');
      s.ok(['checkout', id, '--to', out, '--path', 'model.safetensors', '--path', 'nested/state.json']);
      expect([...readTree(out).keys()].sort()).toEqual(['model.safetensors', 'nested/state.json']);
      expect(
        fs
          .readFileSync(path.join(out, 'model.safetensors'))
          .equals(fs.readFileSync(path.join(src, 'model.safetensors'))),
      ).toBe(true);
    });

    it('a path prefix that is not a whole component does not match', () => {
      const out = tempDir('ckvc-out-');
      const r = s.run(['checkout', id, '--to', out, '--path', 'nest']);
      expect(r.code, describeRun(r)).toBe(14);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_PATH_NOT_FOUND']);
    });

    it('a path not in the commit exits 14 (CKVC_PATH_NOT_FOUND) and writes nothing', () => {
      const out = path.join(tempDir('ckvc-out-'), 'dest');
      const r = s.run(['checkout', id, '--to', out, '--path', 'model.safetensors', '--path', 'no/such/file']);
      expect(r.code, describeRun(r)).toBe(14);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_PATH_NOT_FOUND']);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(fs.existsSync(out) ? readTree(out).size : 0).toBe(0);
    });
  });

  describe('existing files at the destination', () => {
    it('refuses to overwrite a different file (exit 17), writing nothing; --force replaces; identical files are skipped', () => {
      const out = tempDir('ckvc-out-');
      s.ok(['checkout', id, '--to', out]);
      const target = path.join(out, 'nested', 'state.json');
      fs.writeFileSync(target, 'locally edited\n');
      // Also remove another file: a refused checkout must not re-create it either ("writes nothing").
      fs.rmSync(path.join(out, 'one.bin'));
      const before = snapshotTree(out);

      const refused = s.run(['checkout', id, '--to', out]);
      expect(refused.code, describeRun(refused)).toBe(17);
      expect(errorCodes(refused.stderr)).toEqual(['CKVC_WOULD_OVERWRITE']);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(fs.readFileSync(target, 'utf8')).toBe('locally edited\n');
      expect(snapshotTree(out)).toEqual(before);

      const forced = s.json(['checkout', id, '--to', out, '--force']);
      expect(forced.written.map((w: any) => w.path).sort()).toEqual(['nested/state.json', 'one.bin']);
      expect(forced.unchanged.length).toBe(readTree(src).size - 2);
      expect(treeDifferences(src, out)).toEqual([]);
    });

    it('skips identical existing files without rewriting them', () => {
      const out = tempDir('ckvc-out-');
      s.ok(['checkout', id, '--to', out]);
      const big = path.join(out, 'big.bin');
      const inoBefore = fs.statSync(big).ino;
      const again = s.json(['checkout', id, '--to', out]);
      expect(again.written).toEqual([]);
      expect(again.unchanged.length).toBe(readTree(src).size);
      expect(fs.statSync(big).ino).toBe(inoBefore);
      expect(treeDifferences(src, out)).toEqual([]);
    });

    it('refuses when a directory stands where a file goes, or a file where a directory goes', () => {
      const out = tempDir('ckvc-out-');
      fs.mkdirSync(path.join(out, 'one.bin'));
      const r1 = s.run(['checkout', id, '--to', out]);
      expect(r1.code, describeRun(r1)).toBe(17);
      expect(errorCodes(r1.stderr)).toEqual(['CKVC_WOULD_OVERWRITE']);
      expect([...readTree(out).keys()]).toEqual([]);

      const out2 = tempDir('ckvc-out-');
      fs.writeFileSync(path.join(out2, 'nested'), 'a file, not a folder');
      const r2 = s.run(['checkout', id, '--to', out2]);
      expect(r2.code, describeRun(r2)).toBe(17);
      expect(errorCodes(r2.stderr)).toEqual(['CKVC_WOULD_OVERWRITE']);
      expect([...readTree(out2).keys()]).toEqual(['nested']);
    });

    it('leaves no temporary files behind after a checkout', () => {
      const out = tempDir('ckvc-out-');
      s.ok(['checkout', id, '--to', out]);
      const names = [...readTree(out).keys()];
      expect(names.filter((n) => /\.tmp$|ckvc-/.test(n))).toEqual([]);
    });
  });
});
