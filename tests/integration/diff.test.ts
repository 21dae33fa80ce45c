// `ckvc diff A B` through the CLI: the numeric figures of changed tensors checked against values computed by hand
// here (F32, F16, BF16, I32, U8, I64, non-finite elements, a zero norm, a 3-chunk tensor with one chunk changed),
// tensors added / removed / retyped / reshaped, --tensor globs, --stat, config key paths, metric deltas and files
// of a directory commit. A second store checks what diff reads: a corrupted chunk of an unchanged tensor (same
// ID) must not matter, --stat reads no tensor data at all, and pruned data is not read either.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { packFiles } from '../helpers/snapshots.js';
import { randomBytes, safetensorsBytes, type TensorSpec } from '../helpers/data.js';
import { npyBytes } from '../helpers/torch-zip.js';

afterAll(cleanupTemp);

const CHUNK = 256 * 1024;

// --- element encoders (little-endian) -----------------------------------------------------------------------

const f32 = (xs: number[]) => Buffer.from(new Float32Array(xs).buffer);
const u16 = (xs: number[]) => {
  const b = Buffer.alloc(xs.length * 2);
  xs.forEach((x, i) => {
    b.writeUInt16LE(x, i * 2);
  });
  return b;
};
const i32 = (xs: number[]) => Buffer.from(new Int32Array(xs).buffer);
const i64 = (xs: bigint[]) => Buffer.from(new BigInt64Array(xs).buffer);
const u8 = (xs: number[]) => Buffer.from(xs);

/** A tensor spec from raw bytes. */
const T = (dtype: string, shape: number[], bytes: Buffer): TensorSpec => ({ dtype, shape, bytes });

// The 3-chunk tensor: F32 [640, 256] = 655360 bytes = chunks of 256 KiB, 256 KiB, 128 KiB. Values are multiples
// of 0.5 so every square and every sum of squares is exact in float64: the expected norm is exact, not approximate.
const BIG_ROWS = 640;
const BIG_COLS = 256;
const BIG_N = BIG_ROWS * BIG_COLS;
const bigValue = (i: number) => ((i % 7) - 3) * 0.5;
const BIG_CHANGED_AT = CHUNK / 4 + 5; // an element of the second chunk
const BIG_OLD = bigValue(BIG_CHANGED_AT);
const BIG_NEW = BIG_OLD - 2.5;

function bigTensor(changed: boolean): Buffer {
  const a = new Float32Array(BIG_N);
  for (let i = 0; i < BIG_N; i++) a[i] = bigValue(i);
  if (changed) a[BIG_CHANGED_AT] = BIG_NEW;
  return Buffer.from(a.buffer);
}

// F16 bit patterns: 1.0 = 0x3c00, 2.0 = 0x4000, 2.5 = 0x4100, -0.5 = 0xb800, 0.5 = 0x3800.
// BF16 = upper half of the float32: 1 = 0x3f80, -2 = 0xc000, 2 = 0x4000, 3 = 0x4040, 3.5 = 0x4060.
const TWO62 = 2n ** 62n;

function modelA(): Record<string, TensorSpec> {
  return {
    w: T('F32', [4], f32([3, 4, 0, 1])),
    h16: T('F16', [4], u16([0x3c00, 0x4000, 0xb800, 0x0000])), // [1, 2, -0.5, 0]
    bf: T('BF16', [3], u16([0x3f80, 0xc000, 0x4040])), // [1, -2, 3]
    i32: T('I32', [4], i32([10, -5, 7, 100])),
    u8: T('U8', [2], u8([255, 0])),
    i64: T('I64', [2], i64([TWO62, 0n])),
    nf: T('F32', [4], f32([NaN, 1, Infinity, 2])),
    z: T('F32', [2], f32([0, 0])),
    frozen: T('F32', [64], f32(Array.from({ length: 64 }, (_, i) => i / 8))),
    gone: T('F32', [2], f32([1, 2])),
    dt: T('F32', [4], f32([1, 2, 3, 4])),
    sh: T('F32', [4], f32([1, 2, 3, 4])),
    flags: T('BOOL', [4], u8([1, 0, 1, 0])),
  };
}

function modelB(): Record<string, TensorSpec> {
  return {
    w: T('F32', [4], f32([3, 0, 0, 2])),
    h16: T('F16', [4], u16([0x3c00, 0x4100, 0x3800, 0x0000])), // [1, 2.5, 0.5, 0]
    bf: T('BF16', [3], u16([0x3f80, 0x4000, 0x4060])), // [1, 2, 3.5]
    i32: T('I32', [4], i32([10, 5, 7, 97])),
    u8: T('U8', [2], u8([0, 0])),
    i64: T('I64', [2], i64([TWO62 + 1n, 0n])),
    nf: T('F32', [4], f32([NaN, 2, 1, 2])),
    z: T('F32', [2], f32([1, 0])),
    frozen: T('F32', [64], f32(Array.from({ length: 64 }, (_, i) => i / 8))),
    dt: T('I32', [4], f32([1, 2, 3, 4])), // same bytes, other dtype
    sh: T('F32', [2, 2], f32([1, 2, 3, 4])), // same bytes, other shape
    flags: T('BOOL', [4], u8([0, 0, 1, 0])),
    fresh: T('F32', [3], f32([1, 1, 1])),
  };
}

const CFG_A = `# run config A
lr: 0.1
dropout: 0.1
layers: [64, 64, 32]
optimizer:
  name: adam
  betas: [0.9, 0.999]
"odd.key": 1
`;
const CFG_B = `lr: 0.05
layers: [64, 64]
optimizer:
  name: adam
  betas: [0.9, 0.95]
  eps: 1.0e-8
"odd.key": 2
`;

describe('ckvc diff: figures and structure', () => {
  let s: TestStore;
  let A = '';
  let B = '';
  let full: any;

  const changed = (name: string) => {
    const t = full.tensors.changed.find((x: any) => x.name === name);
    if (!t)
      throw new Error(
        `tensor ${name} is not among the changed: ${JSON.stringify(full.tensors.changed.map((x: any) => x.name))}`,
      );
    return t;
  };

  beforeAll(() => {
    s = newStore('ckvc-diff-');
    const work = tempDir('ckvc-diff-in-');
    const a = path.join(work, 'a');
    const b = path.join(work, 'b');
    fs.mkdirSync(path.join(a, 'sub'), { recursive: true });
    fs.mkdirSync(path.join(b, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(a, 'model.safetensors'), safetensorsBytes(modelA()));
    fs.writeFileSync(path.join(b, 'model.safetensors'), safetensorsBytes(modelB()));
    fs.writeFileSync(
      path.join(a, 'big.safetensors'),
      safetensorsBytes({ big: T('F32', [BIG_ROWS, BIG_COLS], bigTensor(false)) }),
    );
    fs.writeFileSync(
      path.join(b, 'big.safetensors'),
      safetensorsBytes({ big: T('F32', [BIG_ROWS, BIG_COLS], bigTensor(true)) }),
    );
    fs.writeFileSync(path.join(a, 'removed.bin'), randomBytes(1, 3000));
    fs.writeFileSync(path.join(b, 'added.bin'), randomBytes(2, 2000));
    fs.writeFileSync(path.join(a, 'sub', 'changed.bin'), randomBytes(3, 1000));
    fs.writeFileSync(path.join(b, 'sub', 'changed.bin'), randomBytes(4, 1200));
    fs.writeFileSync(path.join(a, 'same.bin'), randomBytes(5, 700));
    fs.writeFileSync(path.join(b, 'same.bin'), randomBytes(5, 700));
    fs.writeFileSync(path.join(work, 'a.yaml'), CFG_A);
    fs.writeFileSync(path.join(work, 'b.yaml'), CFG_B);
    A = commitId(s, [
      a,
      '-m',
      'A',
      '--config',
      path.join(work, 'a.yaml'),
      '--step',
      '100',
      '--metric',
      'loss=2',
      '--metric',
      'acc=0.5',
      '--metric',
      'zero=0',
      '--metric',
      'same=3',
    ]);
    B = commitId(s, [
      b,
      '-m',
      'B',
      '--config',
      path.join(work, 'b.yaml'),
      '--step',
      '200',
      '--metric',
      'loss=1.5',
      '--metric',
      'f1=1',
      '--metric',
      'zero=1',
      '--metric',
      'same=3',
    ]);
    full = s.json(['diff', A, B]);
  });

  it('names both sides', () => {
    expect(full.a).toMatchObject({ id: A, message: 'A', step: 100 });
    expect(full.b).toMatchObject({ id: B, message: 'B', step: 200 });
  });

  it('F32 [3,4,0,1] -> [3,0,0,2]: ||a-b|| = sqrt(17), ||a|| = sqrt(26), max 4, 2 of 4 elements changed', () => {
    const t = changed('w');
    expect(t).toMatchObject({
      file: 'model.safetensors',
      dtypeA: 'F32',
      dtypeB: 'F32',
      shapeA: [4],
      shapeB: [4],
      chunks: 1,
      changedChunks: 1,
      chunkFraction: 1,
    });
    expect(t.note).toBeUndefined();
    expect(t.delta).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: Math.sqrt(17),
      l2A: Math.sqrt(26),
      relative: Math.sqrt(17) / Math.sqrt(26),
      maxAbsDiff: 4,
      nonFinite: 0,
    });
  });

  it('F16 [1,2,-0.5,0] -> [1,2.5,0.5,0] and BF16 [1,-2,3] -> [1,2,3.5] are decoded as half floats', () => {
    expect(changed('h16').delta).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: Math.sqrt(1.25),
      l2A: Math.sqrt(5.25),
      relative: Math.sqrt(1.25) / Math.sqrt(5.25),
      maxAbsDiff: 1,
      nonFinite: 0,
    });
    expect(changed('bf').delta).toEqual({
      elements: 3,
      changedElements: 2,
      l2Diff: Math.sqrt(16.25),
      l2A: Math.sqrt(14),
      relative: Math.sqrt(16.25) / Math.sqrt(14),
      maxAbsDiff: 4,
      nonFinite: 0,
    });
  });

  it('integers: I32 signed, U8 unsigned (255 -> 0 is a change of 255), I64 +1 next to 2^62 still counts as 1', () => {
    expect(changed('i32').delta).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: Math.sqrt(109),
      l2A: Math.sqrt(10174),
      relative: Math.sqrt(109) / Math.sqrt(10174),
      maxAbsDiff: 10,
      nonFinite: 0,
    });
    expect(changed('u8').delta).toEqual({
      elements: 2,
      changedElements: 1,
      l2Diff: 255,
      l2A: 255,
      relative: 1,
      maxAbsDiff: 255,
      nonFinite: 0,
    });
    const d = changed('i64').delta;
    expect(d).toMatchObject({ elements: 2, changedElements: 1, l2Diff: 1, maxAbsDiff: 1, nonFinite: 0 });
    expect(d.l2A).toBe(2 ** 62);
  });

  it('NaN and Inf elements are counted as non-finite and left out of the sums; a zero ||a|| gives relative null', () => {
    // [NaN, 1, Inf, 2] -> [NaN, 2, 1, 2]: elements 1 and 2 changed; 0 and 2 non-finite; only element 1 in ||a-b||.
    expect(changed('nf').delta).toEqual({
      elements: 4,
      changedElements: 2,
      l2Diff: 1,
      l2A: Math.sqrt(5),
      relative: 1 / Math.sqrt(5),
      maxAbsDiff: 1,
      nonFinite: 2,
    });
    expect(changed('z').delta).toEqual({
      elements: 2,
      changedElements: 1,
      l2Diff: 1,
      l2A: 0,
      relative: null,
      maxAbsDiff: 1,
      nonFinite: 0,
    });
  });

  it('a 3-chunk tensor with one element changed: 1 of 3 chunks changed, figures over the whole tensor', () => {
    const t = changed('big');
    expect(t).toMatchObject({
      file: 'big.safetensors',
      chunks: 3,
      changedChunks: 1,
      bytesA: BIG_N * 4,
      bytesB: BIG_N * 4,
    });
    expect(t.chunkFraction).toBeCloseTo(1 / 3, 12);
    let a2 = 0;
    for (let i = 0; i < BIG_N; i++) a2 += bigValue(i) ** 2;
    expect(t.delta).toEqual({
      elements: BIG_N,
      changedElements: 1,
      l2Diff: 2.5,
      l2A: Math.sqrt(a2),
      relative: 2.5 / Math.sqrt(a2),
      maxAbsDiff: 2.5,
      nonFinite: 0,
    });
  });

  it('tensors added, removed, retyped, reshaped and non-numeric: listed, with a note and no figures', () => {
    expect(full.tensors.added).toEqual([
      { file: 'model.safetensors', name: 'fresh', dtype: 'F32', shape: [3], bytes: 12 },
    ]);
    expect(full.tensors.removed).toEqual([
      { file: 'model.safetensors', name: 'gone', dtype: 'F32', shape: [2], bytes: 8 },
    ]);
    const dt = changed('dt');
    expect(dt).toMatchObject({ dtypeA: 'F32', dtypeB: 'I32', shapeA: [4], shapeB: [4] });
    expect(dt.note).toMatch(/dtype/);
    expect(dt.delta).toBeUndefined();
    const sh = changed('sh');
    expect(sh).toMatchObject({ dtypeA: 'F32', dtypeB: 'F32', shapeA: [4], shapeB: [2, 2] });
    expect(sh.note).toMatch(/shape/);
    expect(sh.delta).toBeUndefined();
    const fl = changed('flags');
    expect(fl.note).toMatch(/BOOL/);
    expect(fl.delta).toBeUndefined();
  });

  it('a tensor with the same ID on both sides is counted unchanged, not listed', () => {
    expect(full.tensors.changed.map((t: any) => t.name).sort()).toEqual([
      'bf',
      'big',
      'dt',
      'flags',
      'h16',
      'i32',
      'i64',
      'nf',
      'sh',
      'u8',
      'w',
      'z',
    ]);
    expect(full.tensors.unchanged).toBe(1); // frozen
    expect(JSON.stringify(full.tensors)).not.toContain('"frozen"');
  });

  it('--tensor GLOB limits the tensors compared (bare names and FILE:NAME), repeatable', () => {
    const one = s.json(['diff', A, B, '--tensor', 'w']);
    expect(one.tensors.changed.map((t: any) => t.name)).toEqual(['w']);
    expect(one.tensors).toMatchObject({ added: [], removed: [], unchanged: 0 });
    const glob = s.json(['diff', A, B, '--tensor', 'f*']);
    expect(glob.tensors.changed.map((t: any) => t.name)).toEqual(['flags']);
    expect(glob.tensors.added.map((t: any) => t.name)).toEqual(['fresh']);
    expect(glob.tensors.unchanged).toBe(1); // frozen
    const qualified = s.json(['diff', A, B, '--tensor', 'big.safetensors:*', '--tensor', 'gon?']);
    expect(qualified.tensors.changed.map((t: any) => t.name)).toEqual(['big']);
    expect(qualified.tensors.removed.map((t: any) => t.name)).toEqual(['gone']);
    expect(qualified.tensors.changed[0].delta.l2Diff).toBe(2.5);
    // A glob that matches nothing on either side is a typo more often than not: refused, as checkout --tensor does.
    const none = s.run(['diff', A, B, '--tensor', 'nomatch*']);
    expect(none.code, describeRun(none)).toBe(14);
    expect(errorCodes(none.stderr)).toEqual(['CKVC_PATH_NOT_FOUND']);
    expect(none.stderr).toContain('matches --tensor "nomatch*"');
  });

  it('--stat prints one line per file and a summary; its --json has chunk counts but no figures', () => {
    const r = s.ok(['diff', A, B, '--stat']);
    const lines = r.stdout.trimEnd().split('\n');
    const fileLine = (p: string) => lines.find((l) => l.trim().startsWith(`${p} `) || l.trim().startsWith(`${p}|`));
    expect(fileLine('model.safetensors')).toMatch(/\|\s*11 tensor\(s\) changed, 1 added, 1 removed/);
    expect(fileLine('big.safetensors')).toMatch(/\|\s*1 tensor\(s\) changed, 0 added, 0 removed/);
    expect(fileLine('sub/changed.bin')).toMatch(/\|\s*changed/);
    expect(fileLine('added.bin')).toMatch(/\|\s*added/);
    expect(fileLine('removed.bin')).toMatch(/\|\s*removed/);
    expect(fileLine('same.bin')).toBeUndefined();
    const summary = lines[lines.length - 1]!;
    expect(summary).toMatch(/3 file\(s\) changed, 1 added, 1 removed, 1 unchanged/);
    expect(summary).toMatch(/12 tensor\(s\) changed \(\d+\/14 chunks\), 1 added, 1 removed, 1 unchanged/);
    expect(r.stdout).not.toMatch(/\|\|a-b\|\|/);
    const stat = s.json(['diff', A, B, '--stat']);
    expect(stat.tensors.changed.length).toBe(full.tensors.changed.length);
    for (const t of stat.tensors.changed) expect(t.delta, t.name).toBeUndefined();
    expect(stat.tensors.changed.find((t: any) => t.name === 'big')).toMatchObject({ chunks: 3, changedChunks: 1 });
  });

  it('config: key paths added, removed and changed, with old and new values', () => {
    expect(full.config.same).toBe(false);
    expect(full.config.a).toMatch(/^[0-9a-f]{64}$/);
    expect(full.config.b).toMatch(/^[0-9a-f]{64}$/);
    expect(full.config.a).not.toBe(full.config.b);
    const byPath = [...full.config.changes].sort((x: any, y: any) => (x.path < y.path ? -1 : 1));
    expect(byPath).toEqual([
      { path: '["odd.key"]', kind: 'changed', old: 1, new: 2 },
      { path: 'dropout', kind: 'removed', old: 0.1 },
      { path: 'layers[2]', kind: 'removed', old: 32 },
      { path: 'lr', kind: 'changed', old: 0.1, new: 0.05 },
      { path: 'optimizer.betas[1]', kind: 'changed', old: 0.999, new: 0.95 },
      { path: 'optimizer.eps', kind: 'added', new: 1e-8 },
    ]);
  });

  it('metrics: delta and percent of |old|; null percent from 0; keys on one side only have no delta', () => {
    const m = Object.fromEntries(full.metrics.map((r: any) => [r.key, r]));
    expect(Object.keys(m).sort()).toEqual(['acc', 'f1', 'loss', 'same', 'zero']);
    expect(m.loss).toEqual({ key: 'loss', old: 2, new: 1.5, delta: -0.5, percent: -25 });
    expect(m.same).toEqual({ key: 'same', old: 3, new: 3, delta: 0, percent: 0 });
    expect(m.zero).toEqual({ key: 'zero', old: 0, new: 1, delta: 1, percent: null });
    expect(m.acc).toEqual({ key: 'acc', old: 0.5 });
    expect(m.f1).toEqual({ key: 'f1', new: 1 });
  });

  it('files of a directory commit: added, removed, changed (with tensor counts), unchanged', () => {
    expect(full.files.added.map((f: any) => f.path)).toEqual(['added.bin']);
    expect(full.files.added[0].sizeB).toBe(2000);
    expect(full.files.removed.map((f: any) => f.path)).toEqual(['removed.bin']);
    expect(full.files.removed[0].sizeA).toBe(3000);
    expect(full.files.changed.map((f: any) => f.path).sort()).toEqual([
      'big.safetensors',
      'model.safetensors',
      'sub/changed.bin',
    ]);
    expect(full.files.changed.find((f: any) => f.path === 'sub/changed.bin')).toMatchObject({
      sizeA: 1000,
      sizeB: 1200,
    });
    expect(full.files.changed.find((f: any) => f.path === 'model.safetensors')).toMatchObject({
      tensorsAdded: 1,
      tensorsRemoved: 1,
      tensorsChanged: 11,
    });
    expect(full.files.unchanged).toBe(1); // same.bin
  });

  it('the text report shows the figures and the changes', () => {
    const r = s.ok(['diff', A, B]);
    expect(r.stdout).toMatch(/model\.safetensors:w\s.*chunks 1\/1.*\|\|a-b\|\|=4\.12311/);
    expect(r.stdout).toMatch(/big\.safetensors:big\s.*chunks 1\/3/);
    expect(r.stdout).toMatch(/~ lr: 0\.1 -> 0\.05/);
    expect(r.stdout).toMatch(/:nf\s.*NaN\/inf in 2 element\(s\), left out of: {2}\|\|a-b\|\|=1 /);
    expect(r.stdout).toMatch(/loss\s+2 -> 1\.5\s+\(-0\.5, -25\.00%\)/);
  });

  it('a commit against itself: nothing changed; unknown revisions exit 14', () => {
    const same = s.json(['diff', B, 'HEAD']);
    expect(same.config).toMatchObject({ same: true, changes: [] });
    expect(same.files).toEqual({ added: [], removed: [], changed: [], unchanged: 5 });
    expect(same.tensors).toMatchObject({ added: [], removed: [], changed: [] });
    expect(same.tensors.unchanged).toBe(14);
    expect(same.metrics.every((m: any) => m.delta === 0)).toBe(true);
    const r = s.run(['diff', A, 'nosuchbranch']);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_UNKNOWN_REVISION']);
  });
});

describe('ckvc diff of checkpoints saved under a new name each step', () => {
  it('pairs step_1000 with step_2000 (same format, shared tensor names) and compares their tensors; not when ambiguous', () => {
    const s = newStore();
    const model = (w: number[]) => ({ w: T('F32', [4], f32(w)), b: T('F32', [2], f32([1, 1])) });
    const dir = (files: Record<string, Buffer>) => {
      const d = tempDir('ckvc-diff-steps-');
      for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(d, name), bytes);
      return d;
    };
    const a = commitId(s, [dir({ 'step_1000.safetensors': safetensorsBytes(model([3, 4, 0, 1])) }), '-m', 'a']);
    const b = commitId(s, [dir({ 'step_2000.safetensors': safetensorsBytes(model([3, 0, 0, 2])) }), '-m', 'b']);
    const d = s.json(['diff', a, b]);
    expect(d.files).toEqual({
      added: [],
      removed: [],
      changed: [
        {
          path: 'step_2000.safetensors',
          renamedFrom: 'step_1000.safetensors',
          format: 'safetensors',
          sizeA: expect.any(Number),
          sizeB: expect.any(Number),
          tensorsAdded: 0,
          tensorsRemoved: 0,
          tensorsChanged: 1,
        },
      ],
      unchanged: 0,
    });
    expect(d.tensors.unchanged).toBe(1); // b
    expect(d.tensors.changed).toHaveLength(1);
    expect(d.tensors.changed[0]).toMatchObject({ file: 'step_2000.safetensors', fileA: 'step_1000.safetensors' });
    expect(d.tensors.changed[0].delta.l2Diff).toBeCloseTo(Math.sqrt(17), 6);
    // Selected by either name; the text report says what it was called.
    expect(s.json(['diff', a, b, '--tensor', 'step_1000.safetensors:w']).tensors.changed).toHaveLength(1);
    expect(s.ok(['diff', a, b]).stdout).toMatch(/~ step_2000\.safetensors .*\(was step_1000\.safetensors\)/);
    // Two new files that both share names with the one removed: no guess, both added and the old one removed.
    const c = commitId(s, [
      dir({
        'step_3000.safetensors': safetensorsBytes(model([1, 2, 3, 4])),
        'ema_3000.safetensors': safetensorsBytes(model([1, 2, 3, 5])),
      }),
      '-m',
      'c',
    ]);
    const e = s.json(['diff', b, c]);
    expect(e.files.changed).toEqual([]);
    expect(e.files.added.map((f: any) => f.path)).toEqual(['ema_3000.safetensors', 'step_3000.safetensors']);
    expect(e.files.removed.map((f: any) => f.path)).toEqual(['step_2000.safetensors']);
    // A folder that keeps the last two steps: step_2000 is in both, so step_1000 -> step_3000 is no rename.
    const keepA = commitId(s, [
      dir({
        'step_1000.safetensors': safetensorsBytes(model([1, 2, 3, 4])),
        'step_2000.safetensors': safetensorsBytes(model([1, 2, 3, 5])),
      }),
      '-m',
      'keep a',
    ]);
    const keepB = commitId(s, [
      dir({
        'step_2000.safetensors': safetensorsBytes(model([1, 2, 3, 5])),
        'step_3000.safetensors': safetensorsBytes(model([1, 2, 3, 6])),
      }),
      '-m',
      'keep b',
    ]);
    const k = s.json(['diff', keepA, keepB]);
    expect(k.files.changed).toEqual([]);
    expect([k.files.added[0].path, k.files.removed[0].path]).toEqual([
      'step_3000.safetensors',
      'step_1000.safetensors',
    ]);
    // What to do there: name the two files, REV:PATH on both sides.
    const named = s.json(['diff', `${keepA}:step_2000.safetensors`, `${keepB}:step_3000.safetensors`]);
    expect(named.files).toMatchObject({ added: [], removed: [], unchanged: 0 });
    expect(named.files.changed.map((f: any) => [f.path, f.renamedFrom])).toEqual([
      ['step_3000.safetensors', 'step_2000.safetensors'],
    ]);
    expect(named.tensors.changed.map((t: any) => t.name)).toEqual(['w']);
    expect(named.tensors.changed[0].delta.l2Diff).toBeCloseTo(1, 6); // [1,2,3,5] -> [1,2,3,6]
    const oneSided = s.run(['diff', `${keepA}:step_2000.safetensors`, keepB]);
    expect(oneSided.code).toBe(15);
    expect(oneSided.stderr).toContain('give REV:PATH on both sides');
    const missing = s.run(['diff', `${keepA}:nosuch.safetensors`, `${keepB}:step_3000.safetensors`]);
    expect(errorCodes(missing.stderr)).toEqual(['CKVC_PATH_NOT_FOUND']);
    // Two files that share only a name, with another dtype and shape (np.savez calls every array arr_0).
    const one = commitId(s, [
      dir({ 'embeddings.safetensors': safetensorsBytes({ arr_0: T('F32', [2], f32([1, 2])) }) }),
      '-m',
      'e',
    ]);
    const other = commitId(s, [
      dir({ 'labels.safetensors': safetensorsBytes({ arr_0: T('I32', [3], i32([1, 2, 3])) }) }),
      '-m',
      'l',
    ]);
    const l = s.json(['diff', one, other]);
    expect(l.files.changed).toEqual([]);
    expect(l.files.added.map((f: any) => f.path)).toEqual(['labels.safetensors']);
    // np.save's files name their one tensor after the file: step_200.npy and step_300.npy pair all the same.
    const npy = (w: number[]) => npyBytes({ descr: '<f4', shape: [4], data: f32(w) });
    const n1 = commitId(s, [dir({ 'step_200.npy': npy([3, 4, 0, 1]) }), '-m', 'n1']);
    const n2 = commitId(s, [dir({ 'step_300.npy': npy([3, 0, 0, 2]) }), '-m', 'n2']);
    const n = s.json(['diff', n1, n2]);
    expect(n.files.changed.map((f: any) => [f.path, f.renamedFrom])).toEqual([['step_300.npy', 'step_200.npy']]);
    expect(n.tensors.changed).toHaveLength(1);
    expect(n.tensors.changed[0]).toMatchObject({ name: 'step_300', nameA: 'step_200', fileA: 'step_200.npy' });
    expect(n.tensors.changed[0].delta.l2Diff).toBeCloseTo(Math.sqrt(17), 6);
  });
});

// --- what diff reads -------------------------------------------------------------------------------------------

/** Flips one byte in the middle of the first pack holding `needle` (stored raw: random bytes do not compress). */
function corruptInPacks(store: string, needle: Buffer): string {
  for (const p of packFiles(store)) {
    const b = fs.readFileSync(p);
    const at = b.indexOf(needle);
    if (at < 0) continue;
    const fd = fs.openSync(p, 'r+');
    try {
      const pos = at + Math.floor(needle.length / 2);
      fs.writeSync(fd, Buffer.from([b[pos]! ^ 0xff]), 0, 1, pos);
    } finally {
      fs.closeSync(fd);
    }
    return p;
  }
  throw new Error('the bytes to corrupt are in no pack (stored compressed?)');
}

describe('ckvc diff of the same bytes cut by other rules', () => {
  it('is no change: the file is unchanged and no tensor reads as added, removed or changed', () => {
    // Another tensor chunk size cuts the same file into other tensor objects, as an older ckvc's recipe lacks
    // the tied names a newer one records: the bytes, not the recipe, say whether the file changed.
    const st = newStore('ckvc-diff-recut-');
    const dir = tempDir('ckvc-diff-recut-data-');
    fs.writeFileSync(
      path.join(dir, 'model.safetensors'),
      safetensorsBytes({ w: { dtype: 'F32', shape: [256, 1024] }, b: { dtype: 'F32', shape: [16] } }),
    );
    const a = commitId(st, [dir, '-m', 'first cut']);
    const configFile = path.join(st.store, 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    fs.writeFileSync(configFile, JSON.stringify({ ...config, tensorChunkSize: 131072 }));
    const b = commitId(st, [dir, '-m', 'second cut', '--reread']);
    const r = st.json(['diff', a, b]);
    expect(r.files).toMatchObject({ added: [], removed: [], changed: [], unchanged: 1 });
    expect(r.tensors).toMatchObject({ added: [], removed: [], changed: [] });
  });
});

describe('ckvc diff reads only the tensor data it needs', () => {
  it('same-ID tensors are not read; --stat reads no tensor data; pruned data is not read', () => {
    const s = newStore('ckvc-diff-read-');
    const work = tempDir('ckvc-diff-read-in-');
    const frozen = randomBytes(77, 8192);
    const movingA = randomBytes(78, 8192);
    const movingB = randomBytes(79, 8192);
    const ck = (name: string, moving: Buffer) => {
      const f = path.join(work, name, 'model.safetensors');
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, safetensorsBytes({ frozen: T('U8', [8192], frozen), moving: T('U8', [8192], moving) }));
      return path.dirname(f);
    };
    const A = commitId(s, [ck('a', movingA), '-m', 'A']);
    const B = commitId(s, [ck('b', movingB), '-m', 'B']);
    commitId(s, [ck('c', randomBytes(80, 8192)), '-m', 'C']);

    // Damage the only copy of the unchanged tensor's data: diff never reads it.
    corruptInPacks(s.store, frozen.subarray(1000, 1100));
    const v = s.run(['verify', '--read-data']);
    expect(v.code, `the corruption is real: ${describeRun(v)}`).toBe(12);
    const d = s.json(['diff', A, B]);
    expect(d.tensors.unchanged).toBe(1);
    expect(d.tensors.changed.map((t: any) => t.name)).toEqual(['moving']);
    expect(d.tensors.changed[0].delta).toMatchObject({ elements: 8192 });

    // Damage B's changed tensor: the full diff must read it and fail; --stat reads no tensor data and works.
    corruptInPacks(s.store, movingB.subarray(2000, 2100));
    const bad = s.run(['diff', A, B, '--json']);
    expect(bad.code, describeRun(bad)).toBe(12);
    expect(errorCodes(bad.stderr)).toContain('CKVC_CORRUPT_OBJECT');
    const stat = s.json(['diff', A, B, '--stat']);
    expect(stat.tensors.changed).toHaveLength(1);
    expect(stat.tensors.changed[0]).toMatchObject({ name: 'moving', chunks: 1, changedChunks: 1 });
    expect(stat.tensors.changed[0].delta).toBeUndefined();

    // Once A and B are pruned, diff says so instead of reading their (here damaged) data.
    s.ok(['prune', '--keep-last', '1']);
    const pruned = s.json(['diff', A, B]);
    expect(pruned.tensors.changed[0].delta).toBeUndefined();
    expect(pruned.tensors.changed[0].note).toMatch(/prune/);
  });
});
