// PyTorch zip checkpoints, .npy and .npz through the real CLI (spec/ARCHIVES.md): the real files in
// tests/fixtures commit with the names, dtypes and shapes MANIFEST.json lists and check out byte-identical;
// tensors dedup across commits and across formats; every hostile archive tests/helpers/torch-zip.ts can build is
// refused with exit 15 / CKVC_BAD_TENSOR_FILE naming the file and entry, with the store left byte-identical.
// Needs dist/ (npx tsc -p tsconfig.json). Uses python3 + numpy to cross-check arrays when present, and
// torch.save when torch is importable (otherwise that test is reported as skipped).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckvcBytes, errorCodes, REPO_ROOT, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, sha256, snapshotStore } from '../helpers/snapshots.js';
import { randomBytes, randomFloat32, safetensorsBytes } from '../helpers/data.js';
import { FIXTURES } from '../helpers/fixtures.js';
import {
  buildZip,
  crc32,
  npyBytes,
  npzZip,
  pickleBytes,
  torchStateDict,
  torchZip,
  zeroBombStream,
  type BuiltZip,
  type StateTensor,
} from '../helpers/torch-zip.js';

afterAll(cleanupTemp);

const KiB = 1024;
const MiB = 1024 * KiB;
const MANIFEST = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'MANIFEST.json'), 'utf8')) as Record<string, any>;
const CHECKPOINTS = Object.keys(MANIFEST); // every fixture file with an entry in the manifest
const TORCH_DTYPE: Record<string, string> = {
  'torch.float32': 'F32',
  'torch.float16': 'F16',
  'torch.bfloat16': 'BF16',
  'torch.int64': 'I64',
};

/** The interpreter for the torch test: CKVC_TEST_PYTHON (e.g. a venv with torch), else python3. */
const TORCH_PYTHON = process.env.CKVC_TEST_PYTHON ?? 'python3';
const python = (mod: string, exe = 'python3') =>
  spawnSync(exe, ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;
const hasNumpy = python('numpy');
const hasTorch = python('torch', TORCH_PYTHON);

/** Runs python code with argv; returns stdout (throws with stderr on failure). */
function py(code: string, args: string[] = [], exe = 'python3'): string {
  const r = spawnSync(exe, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 16 * MiB });
  if (r.status !== 0) throw new Error(`${exe} failed: ${r.stderr}`);
  return r.stdout;
}

/** np.load of each file: {file: {array: [dtype.str, shape, sha256 of the array's memory-order bytes]}}. */
function numpyView(files: string[]): Record<string, Record<string, [string, number[], string]>> {
  return JSON.parse(
    py(
      `
import sys, json, hashlib, numpy as np
out = {}
for f in sys.argv[1:]:
    z = np.load(f, allow_pickle=False)
    arrays = {k: z[k] for k in z.files} if hasattr(z, 'files') else {'': z}
    out[f] = {k: [a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes(order='A')).hexdigest()] for k, a in arrays.items()}
print(json.dumps(out))
`,
      files,
    ),
  );
}

function f32(count: number, seed: number): Buffer {
  return randomFloat32(seed, count);
}

/** One store for the whole file (every test names its commits by ID): a `ckvc init` costs a process start. */
let shared: TestStore | undefined;
const store = (): TestStore => (shared ??= newStore());

/** Runs ckvc against `s`, reporting the child's peak RSS too (tests/reliability/fuzz-rss-preload.mjs). */
const PRELOAD = pathToFileURL(path.join(REPO_ROOT, 'tests', 'reliability', 'fuzz-rss-preload.mjs')).href;

async function runMeasured(s: TestStore, args: string[]): Promise<RunResult & { maxRssMiB?: number }> {
  const rssFile = path.join(tempDir('ckvc-rss-'), 'rss');
  const r = await s.start(args, { env: { NODE_OPTIONS: `--import ${PRELOAD}`, CKVC_FUZZ_RSS_OUT: rssFile } }).done;
  const kib = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) : undefined;
  return { ...r, ...(kib ? { maxRssMiB: kib / 1024 } : {}) };
}

/** Runs async tasks `width` at a time. */
async function pool<T, R>(items: T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** `cat` with binary stdout. */
function catBytes(s: TestStore, args: string[]): { code: number | null; out: Buffer; err: string } {
  const r = ckvcBytes([...args, '--store', s.store]);
  return { code: r.code, out: r.stdout, err: r.stderr.toString('utf8') };
}

/** The bytes of a stored zip entry, located by hand from its local header at `headerOffset`. */
function storedEntryBytes(zipBytes: Buffer, headerOffset: number, size: number): Buffer {
  const dataOffset =
    headerOffset + 30 + zipBytes.readUInt16LE(headerOffset + 26) + zipBytes.readUInt16LE(headerOffset + 28);
  return zipBytes.subarray(dataOffset, dataOffset + size);
}

// ---------------------------------------------------------------------------------------------------------

describe('the real fixtures', () => {
  let s: TestStore;
  let src: string;
  let out: string;
  let commit: { id: string; files: number; tensors: number };
  let listed: { files: { path: string; format: string; size: number; tensorCount: number; tensors: any[] }[] };

  beforeAll(() => {
    s = store();
    src = tempDir('ckvc-fixtures-');
    for (const f of CHECKPOINTS) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, f));
    // the other names torch.save output goes by, matched case-insensitively
    fs.copyFileSync(path.join(FIXTURES, 'torch_state_dict.pt'), path.join(src, 'pytorch_model.bin'));
    fs.copyFileSync(path.join(FIXTURES, 'torch_training_checkpoint.pt'), path.join(src, 'LAST.CKPT'));
    // a checkpoint renamed to another extension is plain bytes
    fs.copyFileSync(path.join(FIXTURES, 'torch_state_dict.pt'), path.join(src, 'renamed.dat'));
    commit = s.json(['commit', src, '-m', 'fixtures']);
    listed = s.json(['ls', commit.id, '--tensors']);
    out = tempDir('ckvc-fixtures-out-');
    s.ok(['checkout', commit.id, '--to', out]);
  });

  const file = (p: string) => {
    const f = listed.files.find((x) => x.path === p);
    if (!f) throw new Error(`${p} not listed: ${listed.files.map((x) => x.path).join(', ')}`);
    return f;
  };
  const tensors = (p: string) =>
    file(p).tensors.map((t: any) => [t.name, t.dtype, t.shape, ...(t.order ? [t.order] : [])]);

  it('torch_state_dict.pt lists the tensors of MANIFEST.json with their dtypes and shapes; the view is no part of its own', () => {
    const m = MANIFEST['torch_state_dict.pt'].tensors as Record<string, { dtype: string; shape: number[] }>;
    const expected = Object.entries(m)
      .filter(([n]) => n !== 'view_of_weight')
      .map(([n, t]) => [n, TORCH_DTYPE[t.dtype], t.shape]);
    const byName = (a: unknown[][]) => [...a].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    expect(file('torch_state_dict.pt').format).toBe('pytorch');
    expect(byName(tensors('torch_state_dict.pt'))).toEqual(byName(expected));
    // in file (storage key) order
    expect(tensors('torch_state_dict.pt').map((t: unknown[]) => t[0])).toEqual([
      'layer.weight',
      'layer.bias',
      'half',
      'bf16',
      'steps',
    ]);
    expect(tensors('torch_state_dict.pt')[0]).toEqual(['layer.weight', 'F32', [64, 32]]);
    // byte sizes of the parts are the storages' zip entries
    expect(file('torch_state_dict.pt').tensors.map((t: any) => t.bytes)).toEqual([8192, 256, 512, 128, 80]);
    expect(tensors('pytorch_model.bin')).toEqual(tensors('torch_state_dict.pt'));
  });

  it('the training checkpoints: model, optimizer state and rng bytes by name; .CKPT is read too', () => {
    const names = [
      'model.weight',
      'model.bias',
      'optimizer.state.0.step',
      'optimizer.state.0.exp_avg',
      'optimizer.state.0.exp_avg_sq',
      'optimizer.state.1.step',
      'optimizer.state.1.exp_avg',
      'optimizer.state.1.exp_avg_sq',
      'rng',
    ];
    for (const p of ['torch_training_checkpoint.pt', 'torch_training_checkpoint_step2.pt', 'LAST.CKPT']) {
      expect(file(p).format, p).toBe('pytorch');
      expect(
        file(p).tensors.map((t: any) => t.name),
        p,
      ).toEqual(names);
    }
    expect(tensors('torch_training_checkpoint.pt')[8]).toEqual(['rng', 'U8', [5056]]);
  });

  it('NumPy files: dtypes and shapes as MANIFEST.json says; Fortran order marked; object arrays hold no tensor', () => {
    expect(tensors('numpy_v1_float32.npy')).toEqual([
      ['numpy_v1_float32', 'F32', MANIFEST['numpy_v1_float32.npy'].shape],
    ]);
    expect(tensors('numpy_v2_header.npy')).toEqual([['numpy_v2_header', 'F64', [3]]]);
    expect(tensors('numpy_fortran_order.npy')).toEqual([['numpy_fortran_order', 'F32', [100, 7], 'F']]);
    expect([file('numpy_object_dtype.npy').format, file('numpy_object_dtype.npy').tensorCount]).toEqual(['npy', 0]);
    expect(tensors('numpy_stored.npz')).toEqual([
      ['weights', 'F32', [100, 7]],
      ['bias', 'F64', [7]],
      ['idx', 'I64', [5]],
    ]);
    // np.savez_compressed: the members stay deflated in the store; their arrays are listed, marked deflated.
    expect(file('numpy_deflated.npz').format).toBe('npz');
    expect(file('numpy_deflated.npz').tensors.map((t: any) => [t.name, t.dtype, t.shape, t.bytes, t.deflated])).toEqual(
      [
        ['weights', 'F32', [100, 7], 2800, true],
        ['bias', 'F64', [7], 56, true],
      ],
    );
  });

  it('commit counts the tensors ls lists, deflated members included', () => {
    const listedCount = listed.files.reduce((n: number, f: any) => n + f.tensorCount, 0);
    expect(listed.files.find((f: any) => f.path === 'numpy_deflated.npz')!.tensorCount).toBe(2);
    expect(commit.tensors).toBe(listedCount);
  });

  it('cat --tensor of an array stored deflated inside an .npz is refused with what to do instead', () => {
    const r = catBytes(s, ['cat', `${commit.id}:numpy_deflated.npz`, '--tensor', 'weights']);
    expect(r.code, r.err).toBe(15);
    expect(r.err).toMatch(/stored deflated inside the archive.*load it with numpy \[CKVC_BAD_ARGUMENT\]/);
    expect(r.out.length).toBe(0);
  });

  it('torch_legacy_format.pt (pre-zip) and a checkpoint renamed .dat are opaque', () => {
    expect([file('torch_legacy_format.pt').format, file('torch_legacy_format.pt').tensorCount]).toEqual(['opaque', 0]);
    expect(file('renamed.dat').format).toBe('opaque');
  });

  it("checkout is byte-identical to MANIFEST.json's sha256 for every fixture, and verify --read-data is clean", () => {
    for (const f of CHECKPOINTS) {
      const b = fs.readFileSync(path.join(out, f));
      expect([f, b.length, sha256(b)]).toEqual([f, MANIFEST[f].bytes, MANIFEST[f].sha256]);
    }
    for (const f of ['pytorch_model.bin', 'LAST.CKPT', 'renamed.dat'])
      expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(src, f))), f).toBe(true);
    const v = s.json(['verify', '--read-data']);
    expect([v.ok, v.problems]).toEqual([true, []]);
    // distinct file objects: the .bin and .CKPT copies are the same recipes as their originals; renamed.dat is not
    expect(v.checked.files).toBe(CHECKPOINTS.length + 1);
  });

  it("cat REV:torch_state_dict.pt --tensor layer.weight is the storage's bytes", () => {
    const pt = fs.readFileSync(path.join(FIXTURES, 'torch_state_dict.pt'));
    const [, , size, headerOffset] = MANIFEST['torch_state_dict.pt'].zip_entries[1] as [string, number, number, number];
    const r = catBytes(s, ['cat', `${commit.id}:torch_state_dict.pt`, '--tensor', 'layer.weight']);
    expect(r.code, r.err).toBe(0);
    expect(r.out.equals(storedEntryBytes(pt, headerOffset, size))).toBe(true);
    const bf16 = catBytes(s, ['cat', `${commit.id}:torch_state_dict.pt`, '--tensor', 'bf16']);
    expect(bf16.out.length).toBe(128);
  });

  it.skipIf(!hasNumpy)(
    'diff of the same array saved row-major, then column-major, says the layout changed and gives no figures',
    () => {
      const dir = tempDir('ckvc-order-');
      const f = path.join(dir, 'x.npy');
      const s = store();
      py('import numpy as np, sys; np.save(sys.argv[1], np.arange(12, dtype="f4").reshape(3, 4))', [f]);
      const c = s.json(['commit', f, '-m', 'row-major', '-b', 'order']);
      py('import numpy as np, sys; np.save(sys.argv[1], np.asfortranarray(np.arange(12, dtype="f4").reshape(3, 4)))', [
        f,
      ]);
      const fo = s.json(['commit', f, '-m', 'column-major', '-b', 'order']);
      const d = s.json(['diff', c.id, fo.id]);
      expect(d.tensors.changed.map((t: any) => [t.name, t.note, t.delta])).toEqual([
        ['x', 'layout changed: row-major -> column-major', undefined],
      ]);
    },
  );

  it.skipIf(!hasNumpy)("np.load of the checked-out .npy/.npz files equals the originals' arrays", () => {
    const names = CHECKPOINTS.filter((f) => /\.np[yz]$/.test(f) && f !== 'numpy_object_dtype.npy');
    const a = numpyView(names.map((f) => path.join(FIXTURES, f)));
    const b = numpyView(names.map((f) => path.join(out, f)));
    for (const f of names) expect(b[path.join(out, f)], f).toEqual(a[path.join(FIXTURES, f)]);
    expect(Object.keys(a[path.join(FIXTURES, 'numpy_stored.npz')]!)).toEqual(['weights', 'bias', 'idx']);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('dedup, diff and cat on built checkpoints', () => {
  let s: TestStore;
  let work: string;
  const LAYER = 512 * 512; // 1 MiB of F32 per layer
  const layers = (seeds: number[]): [string, StateTensor][] => [
    ...seeds.map((seed, i): [string, StateTensor] => [
      `layers.${i}.weight`,
      { dtype: 'F32', shape: [512, 512], data: f32(LAYER, seed) },
    ]),
    ['head.bias', { dtype: 'F32', shape: [512], data: f32(512, 99) }],
    ['step', { dtype: 'I64', shape: [], data: Buffer.alloc(8, 1) }],
  ];
  let c1 = '';
  let c2 = '';
  let changed: Buffer;
  let lastBuilt = '';

  beforeAll(() => {
    s = store();
    work = tempDir('ckvc-built-');
  });

  it('a 4 MiB .pt where one 1 MiB tensor changes: the second commit stores about that tensor, not the file', () => {
    fs.mkdirSync(path.join(work, 'pt'));
    const file = path.join(work, 'pt', 'model.pt');
    const first = torchStateDict(layers([1, 2, 3, 4]), { prefix: 'model' });
    fs.writeFileSync(file, first.bytes);
    const r1 = s.json(['commit', path.join(work, 'pt'), '-m', 'step 1']);
    expect(r1.newBytes).toBeGreaterThan(4 * LAYER * 4);
    expect(r1.tensors).toBe(6);
    c1 = r1.id;
    const second = torchStateDict(layers([1, 2, 33, 4]), { prefix: 'model' });
    const e2 = second.entries.find((e) => e.name === 'model/data/2')!;
    changed = Buffer.from(second.bytes.subarray(e2.dataOffset, e2.dataEnd));
    expect(changed.equals(f32(LAYER, 33))).toBe(true);
    expect(second.bytes.length).toBe(first.bytes.length);
    fs.writeFileSync(file, second.bytes);
    const r2 = s.json(['commit', path.join(work, 'pt'), '-m', 'step 2']);
    c2 = r2.id;
    expect(r2.newBytes).toBeGreaterThanOrEqual(LAYER * 4);
    expect(r2.newBytes).toBeLessThan(LAYER * 4 + 64 * KiB);
    expect(r2.newBytes).toBeLessThan(first.bytes.length / 3);
  });

  it('diff between the two commits names the changed tensor, with norms', () => {
    const d = s.json(['diff', c1, c2]);
    expect(d.files.changed.map((f: any) => [f.path, f.format, f.tensorsChanged])).toEqual([['model.pt', 'pytorch', 1]]);
    expect(d.tensors.changed).toHaveLength(1);
    const t = d.tensors.changed[0];
    expect([t.file, t.name, t.dtypeA, t.shapeB]).toEqual(['model.pt', 'layers.2.weight', 'F32', [512, 512]]);
    expect(t.delta.l2Diff).toBeGreaterThan(0);
    expect(t.delta.l2A).toBeGreaterThan(0);
    expect(t.delta.maxAbsDiff).toBeGreaterThan(0);
    expect(d.tensors.added).toEqual([]);
  });

  it("cat REV:model.pt --tensor NAME streams the storage's bytes", () => {
    const r = catBytes(s, ['cat', `${c2}:model.pt`, '--tensor', 'layers.2.weight']);
    expect(r.code, r.err).toBe(0);
    expect(r.out.equals(changed)).toBe(true);
  });

  it('the same tensor in a .safetensors, a stored .npz and a .pt is stored once', () => {
    const dir = path.join(work, 'x');
    fs.mkdirSync(dir);
    const shared = f32(256 * 256, 7); // 256 KiB
    fs.writeFileSync(
      path.join(dir, 'a.safetensors'),
      safetensorsBytes({ emb: { dtype: 'F32', shape: [256, 256], bytes: shared } }),
    );
    const r1 = s.json(['commit', dir, '-m', 'safetensors']);
    expect(r1.newBytes).toBeGreaterThanOrEqual(shared.length);
    fs.writeFileSync(
      path.join(dir, 'b.npz'),
      npzZip([{ name: 'emb.npy', data: npyBytes({ descr: '<f4', shape: [256, 256], data: shared }) }]).bytes,
    );
    const r2 = s.json(['commit', dir, '-m', '+npz']);
    expect(r2.newBytes).toBeLessThan(4 * KiB);
    fs.writeFileSync(
      path.join(dir, 'c.pt'),
      torchStateDict({ emb: { dtype: 'F32', shape: [256, 256], data: shared } }, { prefix: 'c' }).bytes,
    );
    const r3 = s.json(['commit', dir, '-m', '+pt']);
    expect(r3.newBytes).toBeLessThan(4 * KiB);
    const ls = s.json(['ls', r3.id, '--tensors']);
    expect(ls.files.map((f: any) => [f.path, f.format, f.tensors.map((t: any) => [t.name, t.dtype, t.shape])])).toEqual(
      [
        ['a.safetensors', 'safetensors', [['emb', 'F32', [256, 256]]]],
        ['b.npz', 'npz', [['emb', 'F32', [256, 256]]]],
        ['c.pt', 'pytorch', [['emb', 'F32', [256, 256]]]],
      ],
    );
  });

  it('a deflated .npz: re-committed unchanged adds nothing; changing one member stores about that member only', () => {
    const dir = path.join(work, 'x'); // beside the files of the test above, which stay unchanged
    const big = npyBytes({ descr: '<f4', shape: [128, 512], data: f32(128 * 512, 11) }); // 256 KiB
    const small = (seed: number) => npyBytes({ descr: '<f8', shape: [2048], data: randomBytes(seed, 2048 * 8) }); // 16 KiB, incompressible
    const z1 = npzZip([
      { name: 'big.npy', data: big, deflated: true },
      { name: 'small.npy', data: small(1), deflated: true },
    ]);
    fs.writeFileSync(path.join(dir, 'arrays.npz'), z1.bytes);
    const r1 = s.json(['commit', dir, '-m', 'npz']);
    const bigCompressed = z1.entries[0]!.dataEnd - z1.entries[0]!.dataOffset;
    expect(r1.newBytes).toBeGreaterThanOrEqual(bigCompressed);
    // the same bytes under another name, in a commit of their own
    fs.renameSync(path.join(dir, 'arrays.npz'), path.join(dir, 'renamed.npz'));
    expect(s.json(['commit', dir, '-m', 'same npz']).newBytes).toBe(0);
    const z2 = npzZip([
      { name: 'big.npy', data: big, deflated: true },
      { name: 'small.npy', data: small(2), deflated: true },
    ]);
    fs.writeFileSync(path.join(dir, 'renamed.npz'), z2.bytes);
    const r3 = s.json(['commit', dir, '-m', 'small changed']);
    lastBuilt = r3.id;
    const smallCompressed = z2.entries[1]!.dataEnd - z2.entries[1]!.dataOffset;
    expect(r3.newBytes).toBeGreaterThanOrEqual(smallCompressed);
    expect(r3.newBytes).toBeLessThan(smallCompressed + 8 * KiB);
    expect(r3.newBytes).toBeLessThan(bigCompressed / 4);
  });

  it('everything checks out byte-identical; numpy reads the checked-out arrays as written', () => {
    const out = tempDir('ckvc-built-out-');
    s.ok(['checkout', lastBuilt, '--to', out]);
    expect(fs.readdirSync(out).sort()).toEqual(['a.safetensors', 'b.npz', 'c.pt', 'renamed.npz']);
    for (const f of fs.readdirSync(out))
      expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(work, 'x', f))), f).toBe(true);
    if (!hasNumpy) return;
    const v = numpyView([path.join(out, 'b.npz'), path.join(out, 'renamed.npz')]);
    expect(v[path.join(out, 'b.npz')]).toEqual({ emb: ['<f4', [256, 256], sha256(f32(256 * 256, 7))] });
    expect(v[path.join(out, 'renamed.npz')]!.big).toEqual(['<f4', [128, 512], sha256(f32(128 * 512, 11))]);
    expect(v[path.join(out, 'renamed.npz')]!.small).toEqual(['<f8', [2048], sha256(randomBytes(2, 2048 * 8))]);
  });

  it.skipIf(!hasNumpy)("numpy agrees the builder's .npy versions 1-3, Fortran order and Zip64 .npz are valid", () => {
    const dir = tempDir('ckvc-np-');
    const data = f32(6 * 4, 5);
    const files: Record<string, Buffer> = {
      'v1.npy': npyBytes({ descr: '<f4', shape: [6, 4], data }),
      'v2.npy': npyBytes({ descr: '<f4', shape: [6, 4], data, version: 2 }),
      'v3.npy': npyBytes({ descr: '<f4', shape: [6, 4], data, version: 3 }),
      'f.npy': npyBytes({ descr: '<f4', shape: [4, 6], data, fortran: true }),
      'z64.npz': npzZip(
        [
          { name: 'a.npy', data: npyBytes({ descr: '<f4', shape: [6, 4], data }), deflated: true },
          { name: 'b.npy', data: npyBytes({ descr: '<f4', shape: [24], data }) },
        ],
        { zip64: 'force' },
      ).bytes,
    };
    for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), b);
    const v = numpyView(Object.keys(files).map((n) => path.join(dir, n)));
    const h = sha256(data);
    expect(Object.values(v)).toEqual([
      { '': ['<f4', [6, 4], h] },
      { '': ['<f4', [6, 4], h] },
      { '': ['<f4', [6, 4], h] },
      { '': ['<f4', [4, 6], h] },
      { a: ['<f4', [6, 4], h], b: ['<f4', [24], h] },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------

const q = (entryName: string) => JSON.stringify(entryName);
/** An .npz member named in a refusal: quoted as zip refusals do, or as `w:` / `w.npy:` as array refusals do. */
const NPZ_MEMBER_W = /"w\.npy"|(^|\s)w(\.npy)?:/;

interface Hostile {
  file: string;
  bytes: Buffer | (() => Buffer);
  /** What the refusal's reason must say. */
  reason: RegExp;
  /** The entry the message must name (JSON-quoted in zip refusals), if the rule is about one entry. */
  entry?: string | RegExp;
}

/** A small valid state dict, and the same with lies patched in. */
function pt(patch: Parameters<typeof torchStateDict>[1] = {}): BuiltZip {
  return torchStateDict(
    { w: { dtype: 'F32', shape: [16, 8], data: f32(128, 1) }, b: { dtype: 'F32', shape: [8], data: f32(8, 2) } },
    { prefix: 'archive', ...patch },
  );
}

const ARR = npyBytes({ descr: '<f4', shape: [64, 64], data: f32(64 * 64, 3) });
const npzDeflated = (patch: Parameters<typeof npzZip>[0][0]['patch']) =>
  npzZip([
    { name: 'ok.npy', data: ARR },
    { name: 'w.npy', data: ARR, deflated: true, patch },
  ]).bytes;

/** An .npz whose 5 MiB deflated member (incompressible, so about 5 MiB compressed) has a damaged block header. */
function corruptLargeMember(): Buffer {
  const data = npyBytes({ descr: '|u1', shape: [5 * MiB], data: randomBytes(77, 5 * MiB) });
  const bad = zlib.deflateRawSync(data, { level: 1 });
  bad.fill(0xff, 1_000_000, 1_100_000);
  return npzZip([{ name: 'w.npy', data, deflated: true, patch: { compressed: bad } }]).bytes;
}

/** A deflate stream that inflates to an .npy header for `mib` MiB of F32 zeros, then the zeros (never allocated). */
function zeroArrayStream(mib: number): { stream: Buffer; size: number; crc: number } {
  const header = npyBytes({ descr: '<f4', shape: [mib * 256 * 1024], data: Buffer.alloc(0) });
  const head = zlib.deflateRawSync(header, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const zeros = zeroBombStream(mib);
  let crc = crc32(header);
  const mibZeros = Buffer.alloc(MiB);
  for (let i = 0; i < mib; i++) crc = zlib.crc32(mibZeros, crc) >>> 0;
  return { stream: Buffer.concat([head, zeros]), size: header.length + mib * MiB, crc };
}

const HOSTILE: Hostile[] = [
  {
    file: 'traversal.pt',
    bytes: () =>
      pt({
        extraEntries: [
          { name: 'archive/data/../../../../tmp/ckvc-evil', data: Buffer.from('x'), align: 64, descriptor: true },
        ],
      }).bytes,
    reason: /path traversal/,
    entry: q('archive/data/../../../../tmp/ckvc-evil'),
  },
  {
    file: 'backslash.pth',
    bytes: () => pt({ extraEntries: [{ name: 'archive\\..\\evil', data: Buffer.from('x') }] }).bytes,
    reason: /backslash/,
    entry: q('archive\\..\\evil'),
  },
  {
    file: 'duplicate.pt',
    bytes: () =>
      pt({ extraEntries: [{ name: 'archive/data/0', data: f32(128, 9), align: 64, descriptor: true }] }).bytes,
    reason: /appears twice/,
    entry: q('archive/data/0'),
  },
  {
    file: 'encrypted.pt',
    bytes: () => pt({ patch: { 'data/1': { flags: 0x0001 } } }).bytes,
    reason: /is encrypted/,
    entry: q('archive/data/1'),
  },
  {
    file: 'stored-sizes.pt',
    bytes: () => pt({ patch: { 'data/0': { size: 513 } } }).bytes,
    reason: /declares 512 bytes stored but 513/,
    entry: q('archive/data/0'),
  },
  {
    file: 'overlap.pt',
    bytes: () => pt({ patch: { 'data/0': { size: 640, compressedSize: 640 } } }).bytes,
    reason: /overlaps the entry before it/,
    entry: q('archive/data/1'),
  },
  {
    file: 'local-name.pt',
    bytes: () => pt({ patch: { 'data/1': { localName: 'archive/data/7' } } }).bytes,
    reason: /another name in its local header/,
    entry: q('archive/data/1'),
  },
  {
    file: 'past-end.pt',
    bytes: () => pt({ patch: { version: { compressedSize: 4000, size: 4000 } } }).bytes,
    reason: /runs past the end of the file|runs into the central directory/,
    entry: q('archive/version'),
  },
  {
    file: 'after-end.pt',
    bytes: () => Buffer.concat([pt().bytes, Buffer.from('appended')]),
    reason: /no end of central directory record/,
  },
  {
    file: 'truncated.pt',
    bytes: () => pt().bytes.subarray(0, pt().bytes.length - 30),
    reason: /no end of central directory record/,
  },
  {
    file: 'npz-larger.npz',
    bytes: () => npzDeflated({ size: ARR.length + 100 }),
    reason: /inflates to 16512 bytes, not the 16612 it declares/,
    entry: q('w.npy'),
  },
  {
    file: 'npz-smaller.npz',
    bytes: () => npzDeflated({ size: ARR.length - 100 }),
    reason: /inflates to more than the 16412 bytes it declares/,
    entry: q('w.npy'),
  },
  {
    file: 'npz-crc.npz',
    bytes: () => npzDeflated({ crc: crc32(ARR) ^ 0x80 }),
    reason: /fails its CRC-32 check/,
    entry: q('w.npy'),
  },
  {
    file: 'npz-junk.npz',
    bytes: () => npzDeflated({ compressed: Buffer.concat([zlib.deflateRawSync(ARR), Buffer.from('tail')]) }),
    reason: /ends before its \d+ compressed bytes do/,
    entry: q('w.npy'),
  },
  {
    file: 'npz-ratio.npz',
    bytes: () => npzDeflated({ compressed: zlib.deflateRawSync(Buffer.alloc(MiB)), size: 64 * 1024 ** 3, zip64: true }),
    reason: /claims 68719476736 bytes from \d+ \(more than deflate can produce\)/,
    entry: q('w.npy'),
  },
  // inflates to 1 GiB from about 1 MiB (within 1032:1), declares 1,000 bytes: inflation must stop at once
  {
    file: 'npz-bomb.npz',
    bytes: () =>
      npzZip([
        {
          name: 'w.npy',
          data: Buffer.alloc(0),
          deflated: true,
          patch: { compressed: zeroBombStream(1024), size: 1000 },
        },
      ]).bytes,
    reason: /inflates to more than the 1000 bytes it declares/,
    entry: q('w.npy'),
  },
  // 16 GiB + 1 from 16 MiB of zeros (within 1032:1): refused by the cap before a byte is inflated
  {
    file: 'npz-cap.npz',
    bytes: () =>
      npzZip([
        {
          name: 'w.npy',
          data: Buffer.alloc(0),
          deflated: true,
          patch: {
            compressed: Buffer.alloc(Math.ceil((16 * 1024 ** 3 + 1) / 1032)),
            size: 16 * 1024 ** 3 + 1,
            zip64: true,
          },
        },
      ]).bytes,
    reason: /declares 17179869185 bytes \(the cap is 17179869184\)/,
    entry: q('w.npy'),
  },
  // a member that does not inflate, longer than one 4 MiB read of checkDeflatedEntry (see the unit test of that name)
  {
    file: 'npz-corrupt-5mib.npz',
    bytes: () => corruptLargeMember(),
    reason: /"w\.npy" does not inflate/,
    entry: q('w.npy'),
  },
  {
    file: 'npz-stored-bad-npy.npz',
    bytes: () =>
      npzZip([{ name: 'w.npy', data: Buffer.from('\x93NUMPY\x01\x00\x10\x00{"descr": 1}   \n', 'latin1') }]).bytes,
    reason: /would not parse|keys are not exactly/,
    entry: NPZ_MEMBER_W,
  },
  {
    file: 'npz-deflated-not-npy.npz',
    bytes: () =>
      npzZip([{ name: 'w.npy', data: Buffer.from('this member is not an npy array at all'), deflated: true }]).bytes,
    reason: /magic/,
    entry: NPZ_MEMBER_W,
  },
  {
    file: 'npz-short-data.npz',
    bytes: () => npzZip([{ name: 'w.npy', data: ARR.subarray(0, ARR.length - 4) }]).bytes,
    reason: /needs 16384 bytes of data, the file holds 16380/,
    entry: 'w: shape',
  },
  {
    file: 'big-header.npy',
    bytes: () =>
      npyBytes({
        descr: '<f4',
        shape: [1],
        data: Buffer.alloc(4),
        version: 2,
        dictText: `{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }${' '.repeat(10_000)}`,
      }),
    reason: /declares a 1\d{4}-byte header \(numpy's cap is 10000\)/,
  },
  {
    file: 'short.npy',
    bytes: () => npyBytes({ descr: '<f8', shape: [10, 10], data: Buffer.alloc(799) }),
    reason: /needs 800 bytes of data, the file holds 799/,
  },
];

describe('hostile archives: exit 15, CKVC_BAD_TENSOR_FILE naming the file and entry, the store untouched', () => {
  let s: TestStore;
  let dir: string;
  let results: Map<string, RunResult & { maxRssMiB?: number }>;
  let before: Map<string, string>;

  beforeAll(async () => {
    s = store(); // with the commits of the tests above when the whole file runs: "untouched" covers packs and refs
    dir = tempDir('ckvc-hostile-');
    for (const h of HOSTILE) {
      fs.mkdirSync(path.join(dir, h.file));
      fs.writeFileSync(path.join(dir, h.file, h.file), typeof h.bytes === 'function' ? h.bytes() : h.bytes);
    }
    before = snapshotStore(s.store);
    const runs = await pool(HOSTILE, 4, (h) =>
      runMeasured(s, ['commit', path.join(dir, h.file), '-m', h.file, '--json']),
    );
    results = new Map(HOSTILE.map((h, i) => [h.file, runs[i]!]));
  });

  for (const h of HOSTILE) {
    it(`${h.file}: ${h.reason.source.slice(0, 60)}`, () => {
      const r = results.get(h.file)!;
      expect(r.code, r.stderr).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_TENSOR_FILE']);
      const err = JSON.parse(r.stderr.trim().split('\n').pop()!).error as {
        message: string;
        data: { path: string; format: string; reason: string };
      };
      expect(err.data.path).toBe(path.join(dir, h.file, h.file));
      expect(err.data.reason).toMatch(h.reason);
      expect(err.message).toContain(h.file);
      expect(err.message).toMatch(/nothing was committed/);
      if (typeof h.entry === 'string') expect(err.data.reason, 'the reason names the entry').toContain(h.entry);
      else if (h.entry) expect(err.data.reason, 'the reason names the entry').toMatch(h.entry);
      expect(r.stdout).toBe('');
    });
  }

  it('the store is byte-identical after all of them', () => {
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    expect(fs.existsSync('/tmp/ckvc-evil')).toBe(false);
  });

  it('a 64 GiB claim and a 1 GiB stream declaring 1,000 bytes are refused without allocating what they claim', () => {
    const bomb = results.get('npz-bomb.npz')!;
    const ratio = results.get('npz-ratio.npz')!;
    // a ckvc commit peaks around 75 MiB
    expect(bomb.maxRssMiB ?? 0, 'bomb: child peak RSS (MiB)').toBeLessThan(150);
    expect(ratio.maxRssMiB ?? 0, 'ratio: child peak RSS (MiB)').toBeLessThan(150);
    expect(results.get('npz-cap.npz')!.maxRssMiB ?? 0, 'cap: child peak RSS (MiB)').toBeLessThan(150);
  });

  // ARCHIVES.md §2: the 16 GiB cap on a deflated entry's declared size holds in every zip the directory reader
  // reads, not only for the .npz members that are inflated.
  it('a deflated entry declaring more than 16 GiB is refused in a .pt as well (ARCHIVES.md §2)', async () => {
    const capDir = path.join(dir, 'cap-pt');
    fs.mkdirSync(capDir);
    const claim = 16 * 1024 ** 3 + 1;
    const compressed = Buffer.alloc(Math.ceil(claim / 1032));
    fs.writeFileSync(
      path.join(capDir, 'cap.pt'),
      pt({
        extraEntries: [
          {
            name: 'archive/extra.bin',
            data: Buffer.alloc(0),
            method: 'deflated',
            compressed,
            size: claim,
            zip64: true,
          },
        ],
      }).bytes,
    );
    const snap = snapshotStore(s.store);
    const r = await runMeasured(s, ['commit', capDir, '-m', 'cap', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_TENSOR_FILE']);
    expect(diffSnapshots(snap, snapshotStore(s.store))).toEqual([]);
  });

  it('a .pt cut short says a save may be in progress when it was written within the minute, else that it is damaged', () => {
    const cutDir = path.join(dir, 'cut-pt');
    fs.mkdirSync(cutDir);
    const file = path.join(cutDir, 'ckpt.pt');
    const whole = fs.readFileSync(path.join(FIXTURES, 'torch_training_checkpoint.pt'));
    fs.writeFileSync(file, whole.subarray(0, whole.length >> 1)); // as torch.save leaves it halfway
    const snap = snapshotStore(s.store);
    const fresh = s.run(['commit', cutDir, '-m', 'cut']);
    expect(fresh.code, fresh.stderr).toBe(15);
    expect(errorCodes(fresh.stderr)).toEqual(['CKVC_BAD_TENSOR_FILE']);
    expect(fresh.stderr).toMatch(/last written (just now|\d+ s ago): if a program is still saving it, commit again/);
    // A time ahead of this clock (skew, a network file system) counts as just written.
    const ahead = new Date(Date.now() + 3600_000);
    fs.utimesSync(file, ahead, ahead);
    expect(s.run(['commit', cutDir, '-m', 'cut']).stderr).toContain('It was last written just now:');
    const hourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(file, hourAgo, hourAgo);
    const old = s.run(['commit', cutDir, '-m', 'cut']);
    expect(errorCodes(old.stderr)).toEqual(['CKVC_BAD_TENSOR_FILE']);
    expect(old.stderr).toContain('If the file is damaged, re-save it');
    expect(old.stderr).not.toContain('still saving');
    expect(diffSnapshots(snap, snapshotStore(s.store))).toEqual([]);
  });

  it('a 128 MiB array deflated to 128 KiB is checked as a stream: committed, verbatim, memory far below 128 MiB', async () => {
    const okDir = path.join(dir, 'zeros');
    fs.mkdirSync(okDir);
    const z = zeroArrayStream(128);
    const bytes = npzZip([
      {
        name: 'zeros.npy',
        data: Buffer.alloc(0),
        deflated: true,
        patch: { compressed: z.stream, size: z.size, crc: z.crc },
      },
    ]).bytes;
    fs.writeFileSync(path.join(okDir, 'zeros.npz'), bytes);
    const r = await runMeasured(s, ['commit', okDir, '-m', 'zeros', '--json']);
    expect(r.code, r.stderr).toBe(0);
    // a ckvc commit peaks around 75 MiB; keeping the inflated array would add 128 MiB
    expect(r.maxRssMiB ?? 0, 'child peak RSS (MiB)').toBeLessThan(150);
    const listed = s.json(['ls', JSON.parse(r.stdout).id, '--tensors']);
    expect(listed.files.map((f: any) => [f.path, f.format, f.size, f.tensorCount])).toEqual([
      ['zeros.npz', 'npz', bytes.length, 1],
    ]); // the array, listed as deflated
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('zips that are not (readable) torch checkpoints', () => {
  let s: TestStore;
  let dir: string;
  let commit: any;
  let listed: any;
  let stderr = '';
  const files: Record<string, Buffer> = {};

  beforeAll(() => {
    s = store();
    dir = tempDir('ckvc-odd-');
    // a plain zip named .pt (no <prefix>/data.pkl): opaque
    files['no-pickle.pt'] = buildZip([
      { name: 'readme.txt', data: Buffer.from('just a zip') },
      { name: 'weights/0', data: f32(64, 1) },
    ]).bytes;
    // two data.pkl under two prefixes: not exactly one, so opaque
    files['two-pickles.pt'] = buildZip([
      { name: 'a/data.pkl', data: pickleBytes({ dict: [] }) },
      { name: 'b/data.pkl', data: pickleBytes({ dict: [] }) },
    ]).bytes;
    // a data.pkl with an opcode the reader does not know: still cut at its storages, named data/<key>
    files['unknown-opcode.pt'] = torchZip(
      Buffer.from([0x80, 0x02, 0x7d, 0xff, 0x2e]),
      [
        { key: '0', data: f32(32, 1) },
        { key: '1', data: Buffer.alloc(10, 7) },
      ],
      { prefix: 'u' },
    ).bytes;
    // a deflated data.pkl (torch never writes one): names not read, storages still parts
    const good = torchStateDict(
      { w: { dtype: 'F32', shape: [4, 4], data: f32(16, 4) } },
      { prefix: 'd', deflatePickle: true },
    );
    files['deflated-pickle.pt'] = good.bytes;
    // a data.pkl whose APPENDS holds 300,000 items (a hostile but readable stream): committed either way
    const appends = Buffer.concat([
      Buffer.from([0x80, 0x02, 0x5d, 0x28]),
      Buffer.alloc(300_000, 0x4e),
      Buffer.from([0x65, 0x2e]),
    ]);
    files['big-appends.pt'] = torchZip(appends, [{ key: '0', data: f32(16, 5) }], { prefix: 'p' }).bytes;
    // torch 2.x records (byteorder, .data/serialization_id) and forced Zip64 structures
    files['torch2-zip64.pt'] = torchStateDict(
      {
        w: { dtype: 'BF16', shape: [8], data: randomBytes(3, 16) },
        s: { dtype: 'I32', shape: [], data: Buffer.from([1, 0, 0, 0]) },
      },
      { prefix: 't', torch2Records: true, zip64: 'force' },
    ).bytes;
    // an empty zip named .npz
    files['empty.npz'] = buildZip([]).bytes;
    // an .npz member under another compression method (12, bzip2): kept verbatim, no tensor; the stored one is cut
    files['bzip2-member.npz'] = npzZip([
      {
        name: 'b.npy',
        data: npyBytes({ descr: '<f4', shape: [4], data: f32(4, 8) }),
        patch: { methodNumber: 12, compressed: Buffer.from('BZh9 not really') },
      },
      { name: 's.npy', data: npyBytes({ descr: '<i2', shape: [3], data: Buffer.from([1, 0, 2, 0, 3, 0]) }) },
    ]).bytes;
    for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), b);
    const r = s.run(['commit', dir, '-m', 'odd', '--json']);
    if (r.code !== 0) throw new Error(`commit failed: ${r.code} ${r.stderr}`);
    commit = JSON.parse(r.stdout);
    stderr = r.stderr;
    listed = s.json(['ls', commit.id, '--tensors']);
  });

  const file = (p: string) => listed.files.find((f: any) => f.path === p);

  it('a zip named .pt without exactly one <prefix>/data.pkl is opaque; odd .npz files commit', () => {
    expect([file('no-pickle.pt').format, file('no-pickle.pt').tensorCount]).toEqual(['opaque', 0]);
    expect(file('two-pickles.pt').format).toBe('opaque');
    expect([file('empty.npz').format, file('empty.npz').tensorCount]).toEqual(['npz', 0]);
    expect(file('bzip2-member.npz').tensors.map((t: any) => [t.name, t.dtype, t.shape])).toEqual([['s', 'I16', [3]]]);
    // A torch.save that failed part way leaves such a zip: said, since the commit would otherwise be silent.
    for (const f of ['no-pickle.pt', 'two-pickles.pt'])
      expect(stderr).toContain(`${f} is a zip named like a PyTorch checkpoint but has no single <name>/data.pkl`);
  });

  it('an unreadable data.pkl still commits: storages named data/<key>, dtype torch:unknown, and a warning saying why', () => {
    expect(file('unknown-opcode.pt').format).toBe('pytorch');
    expect(file('unknown-opcode.pt').tensors.map((t: any) => [t.name, t.dtype, t.shape])).toEqual([
      ['data/0', 'torch:unknown', [128]],
      ['data/1', 'torch:unknown', [10]],
    ]);
    expect(file('deflated-pickle.pt').tensors.map((t: any) => [t.name, t.dtype, t.shape])).toEqual([
      ['data/0', 'torch:unknown', [64]],
    ]);
    expect(stderr).toMatch(
      /unknown-opcode\.pt: tensor names not read \(data\.pkl: opcode 0xff at byte 3 is not one ckvc reads\)/,
    );
    expect(stderr).toMatch(/deflated-pickle\.pt: tensor names not read \(data\.pkl is compressed\)/);
    expect(commit.warnings.length).toBeGreaterThanOrEqual(2);
  });

  it('a 300,000-item APPENDS in data.pkl commits (names read, or not read with a warning)', () => {
    expect(file('big-appends.pt').format).toBe('pytorch');
    expect(file('big-appends.pt').tensors.map((t: any) => t.name)).toEqual(['data/0']);
  });

  it('torch 2.x records and forced Zip64 structures: names, dtypes, scalars', () => {
    expect(file('torch2-zip64.pt').tensors.map((t: any) => [t.name, t.dtype, t.shape, t.bytes])).toEqual([
      ['w', 'BF16', [8], 16],
      ['s', 'I32', [], 4],
    ]);
  });

  it('all of them check out byte-identical', () => {
    const out = tempDir('ckvc-odd-out-');
    s.ok(['checkout', commit.id, '--to', out]);
    for (const [n, b] of Object.entries(files)) expect(fs.readFileSync(path.join(out, n)).equals(b), n).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('torch.save itself', () => {
  const title = 'a state dict written by torch.save in python3 commits with its names and round-trips';
  it.skipIf(!hasTorch)(hasTorch ? title : `${title} (skipped: python3 cannot import torch)`, () => {
    const dir = tempDir('ckvc-torch-');
    py(
      `
import sys, torch
torch.manual_seed(0)
sd = {'enc.weight': torch.randn(32, 16), 'enc.bias': torch.zeros(32, dtype=torch.float16), 'steps': torch.arange(5), 'view': None}
sd['view'] = sd['enc.weight'][:4]
torch.save(sd, sys.argv[1])
`,
      [path.join(dir, 'saved.pt')],
      TORCH_PYTHON,
    );
    const s = store();
    const c = s.json(['commit', dir, '-m', 'torch.save']);
    const ls = s.json(['ls', c.id, '--tensors']);
    expect(ls.files[0].format).toBe('pytorch');
    expect(ls.files[0].tensors.map((t: any) => [t.name, t.dtype, t.shape])).toEqual([
      ['enc.weight', 'F32', [32, 16]],
      ['enc.bias', 'F16', [32]],
      ['steps', 'I64', [5]],
    ]);
    const out = tempDir('ckvc-torch-out-');
    s.ok(['checkout', c.id, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'saved.pt')).equals(fs.readFileSync(path.join(dir, 'saved.pt')))).toBe(true);
    const check = py(
      `
import sys, torch
a = torch.load(sys.argv[1]); b = torch.load(sys.argv[2])
print(all(torch.equal(a[k], b[k]) for k in a))
`,
      [path.join(dir, 'saved.pt'), path.join(out, 'saved.pt')],
      TORCH_PYTHON,
    );
    expect(check.trim()).toBe('True');
  });
});
