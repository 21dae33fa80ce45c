// Pickled NumPy state through the real CLI (spec/ARCHIVES.md §4): the pickles Python wrote at protocols 2-5
// (tests/fixtures/numpy_state_*.pkl) commit with their arrays as tensors and check out byte-identical; a
// plain-pickle .pt is read the same way; protocol 2 and a truncated pickle stay opaque; `checkout --tensor`,
// `diff` and delta coding see the arrays.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { FIXTURES } from '../helpers/fixtures.js';

afterAll(cleanupTemp);

type Tensor = { name: string; dtype: string; shape: number[]; order?: string };
type Listed = { files: { path: string; format: string; tensors: Tensor[] }[] };
type Arrays = Record<string, [string, number[], string]>;
const MANIFEST = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'MANIFEST.json'), 'utf8')) as Record<
  string,
  { sha256: string; arrays?: Arrays }
>;
const PICKLES = Object.keys(MANIFEST).filter((f) => f.startsWith('numpy_state_'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** Arrays of at least 1 KiB are cut (spec/ARCHIVES.md §4): in these fixtures all but bias, rng and zero_d. */
const CUT = ['params/dense/kernel', 'params/head/kernel', 'opt_state/0/mu', 'opt_state/0/nu', 'fortran', 'counts'];

describe('pickled NumPy state', () => {
  let s: TestStore;
  let src: string;
  let rev: string;

  beforeAll(() => {
    s = newStore();
    src = path.join(s.dir, 'ckpt');
    fs.mkdirSync(src);
    for (const f of PICKLES) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, f));
    fs.copyFileSync(path.join(FIXTURES, 'numpy_state_p4.pkl'), path.join(src, 'state.pt'));
    rev = s.json<{ id: string }>(['commit', src, '-m', 'pickles']).id;
  });

  it('lists each array of 1 KiB or more under its keys and indices; protocol 2 and a cut pickle stay opaque', () => {
    const ls = s.json<Listed>(['ls', rev, '--tensors']);
    for (const f of [...PICKLES, 'state.pt']) {
      const file = ls.files.find((x) => x.path === f)!;
      const arrays = MANIFEST[f === 'state.pt' ? 'numpy_state_p4.pkl' : f]!.arrays;
      if (!arrays) {
        expect([f, file.format, file.tensors]).toEqual([f, 'opaque', []]);
        continue;
      }
      expect(file.format).toBe('pickle');
      expect(file.tensors.map((t) => t.name).sort()).toEqual([...CUT].sort());
      for (const t of file.tensors) {
        expect([t.name, t.dtype, t.shape]).toEqual([t.name, arrays[t.name]![0], arrays[t.name]![1]]);
      }
      expect(file.tensors.find((t) => t.name === 'fortran')!.order).toBe('F');
    }
  });

  it('checks out every pickle byte for byte', () => {
    const out = tempDir();
    s.ok(['checkout', rev, '--to', out]);
    for (const f of PICKLES) expect([f, sha(fs.readFileSync(path.join(out, f)))]).toEqual([f, MANIFEST[f]!.sha256]);
  });

  it('checkout --tensor gives the arrays as safetensors with their exact bytes', () => {
    const out = tempDir();
    s.ok([
      'checkout',
      rev,
      '--to',
      out,
      '--path',
      'numpy_state_p5.pkl',
      '--tensor',
      'params/**',
      '--tensor',
      'opt_state/**',
    ]);
    const st = fs.readFileSync(path.join(out, 'numpy_state_p5.safetensors'));
    const n = Number(st.readBigUInt64LE(0));
    type Entry = { dtype: string; data_offsets: [number, number] };
    const header = JSON.parse(st.subarray(8, 8 + n).toString('utf8')) as Record<string, Entry>;
    const arrays = MANIFEST['numpy_state_p5.pkl']!.arrays!;
    for (const name of ['params/dense/kernel', 'params/head/kernel', 'opt_state/0/mu', 'opt_state/0/nu']) {
      const [a, b] = header[name]!.data_offsets;
      const got = [name, header[name]!.dtype, sha(st.subarray(8 + n + a, 8 + n + b))];
      expect(got).toEqual([name, arrays[name]![0], arrays[name]![2]]);
    }
  });

  // Delta coding of arrays is the tensors' (delta-coding.test.ts): these 2 KiB arrays are under the 4 KiB from
  // which chunks are plane-coded and offered a base (FORMAT.md §4.3), so they are stored whole, one frame each.
  it('a changed array shows in diff and checks out byte-identical; a 2 KiB array is stored whole, not as a delta', () => {
    const b = fs.readFileSync(path.join(src, 'state.pt'));
    const changed = Buffer.from(b);
    const mu = MANIFEST['numpy_state_p4.pkl']!.arrays!['opt_state/0/mu']!;
    // Find the array's bytes by their content hash: slide over the pickle (it is small).
    let at = -1;
    for (let i = 0; i + 2048 <= b.length && at < 0; i++) if (sha(b.subarray(i, i + 2048)) === mu[2]) at = i;
    expect(at).toBeGreaterThan(0);
    for (let i = at; i < at + 2048; i += 4) changed.writeFloatLE(changed.readFloatLE(i) * 1.001, i);
    fs.writeFileSync(path.join(src, 'state.pt'), changed);
    const next = s.json<{ id: string }>(['commit', src, '-m', 'one step']).id;
    const d = s.json<{ tensors: { changed: { file: string; name: string }[] } }>(['diff', rev, next]);
    expect(d.tensors.changed.map((t) => `${t.file}:${t.name}`)).toEqual(['state.pt:opt_state/0/mu']);
    expect(s.json<{ deltas: { chunks: number } }>(['stats']).deltas.chunks).toBe(0);
    const out = tempDir();
    s.ok(['checkout', next, '--to', out, '--path', 'state.pt']);
    expect(fs.readFileSync(path.join(out, 'state.pt')).equals(changed)).toBe(true);
  });
});
