// `ckvc checkout REV --to DIR --tensor GLOB`: new safetensors files holding only the matching tensors, laid out
// as the reference writer lays them out, loadable by a reader that is not ours (numpy), each tensor byte-equal
// to `ckvc cat --tensor`; exclusion, --path, no match, refusal of pruned data, the overwrite rules and the
// config guard.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  type SafetensorsLayout,
} from '../../src/core/input-formats/safetensors.js';
import { BIN, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { readTree, sha256 } from '../helpers/snapshots.js';
import { randomBytes, tensorData, writeSafetensors, type TensorSpec } from '../helpers/data.js';

afterAll(cleanupTemp);

interface Run {
  code: number | null;
  out: Buffer;
  err: string;
}

/** Runs ckvc on store `st` without blocking, keeping stdout as bytes (cat writes binary). */
function run(st: TestStore, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--store', st.store], {
      env: { ...process.env, NO_COLOR: '1', CKVC_AUTHOR: 'test' },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out: Buffer.concat(out), err }));
  });
}

async function okJson(st: TestStore, args: string[]): Promise<any> {
  const r = await run(st, [...args, '--json']);
  if (r.code !== 0) throw new Error(`ckvc ${args.join(' ')}: exit ${r.code}\n${r.err}`);
  return JSON.parse(r.out.toString('utf8'));
}

/** The layout of a safetensors file, read with ckvc's own parser. */
function parseFile(file: string): { layout: SafetensorsLayout; bytes: Buffer } {
  const bytes = fs.readFileSync(file);
  const n = readSafetensorsHeaderLength(bytes.subarray(0, 8), bytes.length, file);
  return { layout: parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length, file), bytes };
}

const WIDTH: Record<string, number> = {
  BOOL: 1,
  I8: 1,
  U8: 1,
  F16: 2,
  BF16: 2,
  U16: 2,
  I32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
};

let s: TestStore;
let ck = '';
let cfg = '';
let c1 = '';
const model: Record<string, TensorSpec> = {};
const extra: Record<string, TensorSpec> = {};
/** What `--tensor 'model.*'` writes: its bytes, for the determinism and re-run checks. */
let modelOut = new Map<string, Buffer>();

// Deliberately not in the reference order, with optimizer state between the weights.
const MODEL_SPECS: [string, string, number[]][] = [
  ['model.embed', 'F32', [300, 512]], // 600 KiB: three chunks
  ['optimizer.exp_avg', 'F32', [64, 64]],
  ['model.head.bias', 'BF16', [7]],
  ['optimizer.step', 'I64', []],
  ['model.norm', 'F16', [5]],
  ['model.mask', 'BOOL', [3]],
  ['model.count', 'I64', [2]],
  ['model.empty', 'F32', [0]],
  ['model.q', 'I8', [3]],
  ['model.u', 'U16', [3]],
  ['model.d', 'F64', [2]],
  ['model.i32', 'I32', [3]],
];
// The reference writer's order: dtype from U64 down to BOOL, then name.
const MODEL_ORDER = [
  'model.count',
  'model.d',
  'model.embed',
  'model.empty',
  'model.i32',
  'model.head.bias',
  'model.norm',
  'model.u',
  'model.q',
  'model.mask',
];

beforeAll(() => {
  s = newStore();
  ck = tempDir('ckvc-ckt-');
  fs.mkdirSync(path.join(ck, 'sub'));
  MODEL_SPECS.forEach(([name, dtype, shape], i) => {
    model[name] = { dtype, shape, bytes: tensorData(10 + i, dtype, shape) };
  });
  writeSafetensors(path.join(ck, 'model.safetensors'), model, { format: 'pt', origin: 'unit' });
  extra['model.extra'] = { dtype: 'F64', shape: [4], bytes: tensorData(40, 'F64', [4]) };
  extra['optimizer.x'] = { dtype: 'F32', shape: [2], bytes: tensorData(41, 'F32', [2]) };
  writeSafetensors(path.join(ck, 'sub', 'extra.safetensors'), extra);
  fs.writeFileSync(path.join(ck, 'notes.txt'), randomBytes(3, 5000));
  cfg = path.join(tempDir('ckvc-ckt-cfg-'), 'cfg.yaml');
  fs.writeFileSync(cfg, 'lr: 0.1\nlayers: 4\n');
  c1 = commitId(s, [ck, '-m', 'one', '--config', cfg]);
});

describe('checkout --tensor', () => {
  it('writes each file with a match as a valid safetensors file holding only the matching tensors', async () => {
    const out = path.join(tempDir('ckvc-ckt-out-'), 'out');
    const r = await okJson(s, ['checkout', c1, '--to', out, '--tensor', 'model.*']);
    expect(r.tensorFiles.map((f: any) => [f.path, f.source, f.written, f.tensors])).toEqual([
      ['model.safetensors', 'model.safetensors', true, MODEL_ORDER],
      ['sub/extra.safetensors', 'sub/extra.safetensors', true, ['model.extra']],
    ]);
    expect(r.written.map((w: any) => [w.path, w.source, w.tensors])).toEqual([
      ['model.safetensors', 'model.safetensors', 10],
      ['sub/extra.safetensors', 'sub/extra.safetensors', 1],
    ]);
    modelOut = readTree(out);
    expect([...modelOut.keys()].sort()).toEqual(['model.safetensors', 'sub/extra.safetensors']); // no notes.txt, no temp files
    expect(r.written[0].bytes).toBe(modelOut.get('model.safetensors')!.length);

    const { layout, bytes } = parseFile(path.join(out, 'model.safetensors'));
    expect(layout.tensors.map((t) => t.name)).toEqual(MODEL_ORDER);
    expect(layout.metadata).toEqual({
      format: 'pt',
      origin: 'unit',
      'ckvc.commit': c1,
      'ckvc.source': 'model.safetensors',
    });
    expect(layout.headerLength % 8).toBe(0);
    expect(bytes.subarray(8, layout.dataStart).toString('latin1')).toMatch(/^\{"__metadata__":\{.*\}\}( {0,7})$/);
    for (const t of layout.tensors) {
      const spec = model[t.name]!;
      expect([t.dtype, t.shape], t.name).toEqual([spec.dtype, spec.shape]);
      expect(t.begin % WIDTH[t.dtype]!, `${t.name} aligned`).toBe(0);
      expect(bytes.subarray(t.begin, t.end).equals(spec.bytes!), `${t.name} bytes`).toBe(true);
    }
    // Against `ckvc cat --tensor` too (a process each, so a sample: several chunks, a scalar-like, zero bytes).
    const sample = ['model.embed', 'model.count', 'model.empty'];
    const cats = await Promise.all(sample.map((name) => run(s, ['cat', `${c1}:model.safetensors`, '--tensor', name])));
    sample.forEach((name, i) => {
      const t = layout.tensors.find((x) => x.name === name)!;
      expect(cats[i]!.code, cats[i]!.err).toBe(0);
      expect(bytes.subarray(t.begin, t.end).equals(cats[i]!.out), `${name} = ckvc cat --tensor`).toBe(true);
    });

    const sub = parseFile(path.join(out, 'sub', 'extra.safetensors')).layout;
    expect(sub.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([['model.extra', 'F64', [4]]]);
    expect(sub.metadata).toEqual({ format: 'pt', 'ckvc.commit': c1, 'ckvc.source': 'sub/extra.safetensors' });
  });

  const numpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!numpy)('loads with a pure-numpy safetensors reader (not ours)', () => {
    const out = tempDir('ckvc-ckt-np-');
    for (const [k, v] of modelOut) {
      fs.mkdirSync(path.dirname(path.join(out, k)), { recursive: true });
      fs.writeFileSync(path.join(out, k), v);
    }
    const script = path.join(out, 'read.py');
    fs.writeFileSync(
      script,
      [
        'import hashlib, json, struct, sys',
        'import numpy as np',
        "DT = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'BF16': '<u2', 'I64': '<i8', 'I32': '<i4', 'I16': '<i2', 'I8': 'i1',",
        "      'U8': 'u1', 'U16': '<u2', 'U32': '<u4', 'U64': '<u8', 'BOOL': '?'}",
        'raw = open(sys.argv[1], "rb").read()',
        'n, = struct.unpack("<Q", raw[:8])',
        'assert n % 8 == 0',
        'header = json.loads(raw[8:8 + n].decode("utf-8"))',
        'meta = header.pop("__metadata__", None)',
        'data = raw[8 + n:]',
        'out, end = {}, 0',
        'for name, info in header.items():',
        '    b, e = info["data_offsets"]',
        '    dt = np.dtype(DT[info["dtype"]])',
        '    assert (8 + n + b) % dt.itemsize == 0, name',
        '    arr = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"])',
        '    s = float(arr.astype(np.float64).sum()) if info["dtype"] in ("F16", "F32", "F64") else None',
        '    out[name] = {"shape": list(arr.shape), "sha256": hashlib.sha256(arr.tobytes()).hexdigest(), "sum": s}',
        '    end = max(end, e)',
        'assert end == len(data), (end, len(data))',
        'print(json.dumps({"metadata": meta, "tensors": out}))',
      ].join('\n'),
    );
    const py = spawnSync('python3', [script, path.join(out, 'model.safetensors')], { encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    const got = JSON.parse(py.stdout);
    expect(got.metadata['ckvc.commit']).toBe(c1);
    expect(Object.keys(got.tensors).sort()).toEqual([...MODEL_ORDER].sort());
    for (const name of MODEL_ORDER) {
      const spec = model[name]!;
      expect(got.tensors[name].shape, name).toEqual(spec.shape);
      expect(got.tensors[name].sha256, name).toBe(sha256(spec.bytes!));
    }
    // numpy reads the same numbers, not just the same bytes
    const embed = model['model.embed']!.bytes!;
    let sum = 0;
    for (let i = 0; i < embed.length; i += 4) sum += embed.readFloatLE(i);
    expect(got.tensors['model.embed'].sum).toBeCloseTo(sum, 6);
  });

  it('exclusion: "*" with "!optimizer.*" in either order, or the exclude alone, writes the same bytes', async () => {
    const base = tempDir('ckvc-ckt-ex-');
    const variants = [['*', '!optimizer.*'], ['!optimizer.*', '*'], ['!optimizer.*']];
    const runs = await Promise.all(
      variants.map((globs, i) =>
        run(s, ['checkout', c1, '--to', path.join(base, String(i)), ...globs.flatMap((g) => ['--tensor', g])]),
      ),
    );
    runs.forEach((r, i) => {
      expect(r.code, r.err).toBe(0);
      const tree = readTree(path.join(base, String(i)));
      expect([...tree.keys()].sort()).toEqual([...modelOut.keys()].sort());
      for (const [k, v] of tree) expect(v.equals(modelOut.get(k)!), `${variants[i]!.join(' ')}: ${k}`).toBe(true);
    });
  });

  it('FILE:NAME globs pick by file; plain globs never match the file name; exact names work', async () => {
    const base = tempDir('ckvc-ckt-q-');
    const [q, exact] = await Promise.all([
      okJson(s, ['checkout', c1, '--to', path.join(base, 'q'), '--tensor', 'sub/extra.safetensors:*']),
      okJson(s, ['checkout', c1, '--to', path.join(base, 'e'), '--tensor', 'model.embed', '--tensor', 'model.d']),
    ]);
    expect(q.tensorFiles.map((f: any) => [f.path, f.tensors])).toEqual([
      ['sub/extra.safetensors', ['model.extra', 'optimizer.x']],
    ]);
    expect(exact.tensorFiles.map((f: any) => [f.path, f.tensors])).toEqual([
      ['model.safetensors', ['model.d', 'model.embed']],
    ]);
    const { layout, bytes } = parseFile(path.join(base, 'q', 'sub', 'extra.safetensors'));
    for (const t of layout.tensors)
      expect(bytes.subarray(t.begin, t.end).equals(extra[t.name]!.bytes!), t.name).toBe(true);
  });

  it('--path narrows the files first; no match at all exits 14 and writes nothing; "!" alone or no glob is refused', async () => {
    const base = tempDir('ckvc-ckt-p-');
    const [sub, none, opaque, bang, bare] = await Promise.all([
      okJson(s, ['checkout', c1, '--to', path.join(base, 'sub'), '--path', 'sub', '--tensor', 'model.*']),
      run(s, ['checkout', c1, '--to', path.join(base, 'none'), '--tensor', 'nope.*', '--tensor', '!**']),
      run(s, ['checkout', c1, '--to', path.join(base, 'opaque'), '--path', 'notes.txt', '--tensor', '*']),
      run(s, ['checkout', c1, '--to', path.join(base, 'bang'), '--tensor', '!']),
      run(s, ['checkout', c1, '--to', path.join(base, 'bare'), '--tensor']), // not a full checkout
    ]);
    expect(sub.tensorFiles.map((f: any) => f.path)).toEqual(['sub/extra.safetensors']);
    expect(
      readTree(path.join(base, 'sub')).get('sub/extra.safetensors')!.equals(modelOut.get('sub/extra.safetensors')!),
    ).toBe(true);
    for (const r of [none, opaque]) {
      expect([r.code, errorCodes(r.err)], r.err).toEqual([14, ['CKVC_PATH_NOT_FOUND']]);
      expect(r.err).toContain(`ckvc ls ${c1.slice(0, 12)} --tensors`);
    }
    expect([bang.code, errorCodes(bang.err)]).toEqual([15, ['CKVC_BAD_ARGUMENT']]);
    expect([bare.code, errorCodes(bare.err)]).toEqual([2, ['CKVC_USAGE']]);
    expect(fs.readdirSync(base).sort()).toEqual(['sub']);
  });

  it('a second run is "already identical"; a changed byte is refused without --force and repaired with it', async () => {
    const out = tempDir('ckvc-ckt-re-');
    for (const [k, v] of modelOut) {
      fs.mkdirSync(path.dirname(path.join(out, k)), { recursive: true });
      fs.writeFileSync(path.join(out, k), v);
    }
    const again = await run(s, ['checkout', c1, '--to', out, '--tensor', 'model.*']);
    expect(again.code, again.err).toBe(0);
    expect(again.out.toString()).toMatch(
      /^model\.safetensors {2}10 tensor\(s\) {2}.* {2}from model\.safetensors {2}\(already identical\)$/m,
    );
    expect(again.err).toMatch(/0 file\(s\) written \(0 B\), 2 already identical/);

    const file = path.join(out, 'model.safetensors');
    const damaged = Buffer.from(modelOut.get('model.safetensors')!);
    damaged[damaged.length - 1000]! ^= 1; // inside model.embed's data: same size, same header
    fs.writeFileSync(file, damaged);
    const refused = await run(s, ['checkout', c1, '--to', out, '--tensor', 'model.*']);
    expect([refused.code, errorCodes(refused.err)], refused.err).toEqual([17, ['CKVC_WOULD_OVERWRITE']]);
    expect(fs.readFileSync(file).equals(damaged)).toBe(true);
    const forced = await okJson(s, ['checkout', c1, '--to', out, '--tensor', 'model.*', '--force']);
    expect([forced.written.map((w: any) => w.path), forced.unchanged]).toEqual([
      ['model.safetensors'],
      ['sub/extra.safetensors'],
    ]);
    expect(fs.readFileSync(file).equals(modelOut.get('model.safetensors')!)).toBe(true);
  });

  it('keeps the config guard: another config exits 20 unless --allow-config-mismatch', async () => {
    const base = tempDir('ckvc-ckt-cfg-');
    const other = path.join(base, 'other.yaml');
    fs.writeFileSync(other, 'lr: 0.2\nlayers: 4\n');
    const [refused, allowed, same] = await Promise.all([
      run(s, ['checkout', c1, '--to', path.join(base, 'a'), '--tensor', 'model.*', '--config', other]),
      okJson(s, [
        'checkout',
        c1,
        '--to',
        path.join(base, 'b'),
        '--tensor',
        'model.*',
        '--config',
        other,
        '--allow-config-mismatch',
      ]),
      okJson(s, [
        'checkout',
        c1,
        '--to',
        path.join(base, 'c'),
        '--tensor',
        'model.*',
        '--config',
        cfg,
        '--path',
        'sub',
      ]),
    ]);
    expect([refused.code, errorCodes(refused.err)]).toEqual([20, ['CKVC_CONFIG_MISMATCH']]);
    expect(fs.existsSync(path.join(base, 'a'))).toBe(false);
    expect(allowed.configMismatch.changes.map((c: any) => c.path)).toEqual(['lr']);
    expect(allowed.written.length).toBe(2);
    expect(same.configMismatch).toBeUndefined();
    expect(same.written.length).toBe(1);
  });

  // Last: prune changes the store for everything after it.
  it('a selected pruned tensor exits 19 naming it; pruned tensors left out of the selection do not matter', async () => {
    fs.writeFileSync(path.join(ck, 'notes.txt'), randomBytes(4, 5000));
    commitId(s, [ck, '-m', 'two']);
    const pr = await run(s, ['prune', '--keep-last', '1', '--tensors', 'optimizer*']);
    expect(pr.code, pr.err).toBe(0);
    const base = tempDir('ckvc-ckt-pr-');
    const [all, kept] = await Promise.all([
      run(s, ['checkout', c1, '--to', path.join(base, 'all'), '--tensor', '*']),
      run(s, ['checkout', c1, '--to', path.join(base, 'kept'), '--tensor', '!optimizer*']),
    ]);
    expect([all.code, errorCodes(all.err)], all.err).toEqual([19, ['CKVC_PRUNED']]);
    expect(all.err).toMatch(/'optimizer\.(exp_avg|step|x)'/);
    expect(fs.existsSync(path.join(base, 'all'))).toBe(false);
    expect(kept.code, kept.err).toBe(0);
    const tree = readTree(path.join(base, 'kept'));
    for (const [k, v] of modelOut) expect(tree.get(k)?.equals(v), k).toBe(true);
  });
});

// NumPy ingest (another change) makes tensors of .npy arrays; column-major ones cannot go into safetensors.
// A .pt tensor with a dtype safetensors lacks (torch:ComplexDouble) needs torch to write, so it is not
// covered here; the refusal path is the same (unit tests cover the reasons).
describe('checkout --tensor with .npy sources', () => {
  function npy(descr: string, shape: number[], fortran: boolean, data: Buffer): Buffer {
    let h = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
    h += `${' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64)}\n`;
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(h.length, 8);
    return Buffer.concat([pre, Buffer.from(h, 'latin1'), data]);
  }

  let t: TestStore;
  let c = '';
  const w = tensorData(50, 'F32', [2, 3]);
  beforeAll(async () => {
    t = newStore();
    const dir = tempDir('ckvc-ckt-npy-');
    fs.writeFileSync(path.join(dir, 'w.npy'), npy('<f4', [2, 3], false, w));
    fs.writeFileSync(path.join(dir, 'f.npy'), npy('<f4', [2, 3], true, tensorData(51, 'F32', [2, 3])));
    writeSafetensors(path.join(dir, 'w.safetensors'), { a: { dtype: 'F32', shape: [1] } });
    c = commitId(t, [dir, '-m', 'npy']);
  });

  it('writes a C-order array, refuses a column-major one (exit 15, nothing written) and two sources for one name', async () => {
    const listed = await okJson(t, ['ls', c, '--tensors']);
    expect(listed.files.find((f: any) => f.path === 'w.npy')?.tensorCount, '.npy arrays are tensors').toBe(1);
    const base = tempDir('ckvc-ckt-npyo-');
    const [good, fortran, clash] = await Promise.all([
      okJson(t, ['checkout', c, '--to', path.join(base, 'good'), '--path', 'w.npy', '--tensor', '*']),
      run(t, ['checkout', c, '--to', path.join(base, 'fortran'), '--tensor', '*']),
      run(t, [
        'checkout',
        c,
        '--to',
        path.join(base, 'clash'),
        '--path',
        'w.npy',
        '--path',
        'w.safetensors',
        '--tensor',
        '*',
      ]),
    ]);
    expect(good.tensorFiles.map((f: any) => [f.path, f.source])).toEqual([['w.safetensors', 'w.npy']]);
    const { layout, bytes } = parseFile(path.join(base, 'good', 'w.safetensors'));
    expect(layout.tensors.map((x) => [x.dtype, x.shape])).toEqual([['F32', [2, 3]]]);
    expect(bytes.subarray(layout.tensors[0]!.begin).equals(w)).toBe(true);
    expect([fortran.code, errorCodes(fortran.err)], fortran.err).toEqual([15, ['CKVC_BAD_ARGUMENT']]);
    expect(fortran.err).toMatch(/f\.npy.*column-major/);
    expect([clash.code, errorCodes(clash.err)], clash.err).toEqual([15, ['CKVC_BAD_ARGUMENT']]);
    expect(clash.err).toMatch(/w\.npy and w\.safetensors|w\.safetensors and w\.npy/);
    expect(fs.readdirSync(base).sort()).toEqual(['good']);
  });
});
