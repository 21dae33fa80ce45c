// JSON weight snapshots through the real CLI (spec/JSON.md): the json.dumps documents Python wrote into
// spec/vectors/json-render.json (default and compact separators, indent + sort_keys, int64, non-finite,
// huge/tiny floats, empty and ragged lists, unicode keys) commit with the arrays the spec cuts and check out
// byte-identical; `cat`, `ls --tensors`, `diff`, `checkout --tensor` and `prune --tensors` see the arrays; a
// changed snapshot is delta-coded against its parent; text ckvc does not cut stays verbatim, never refused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonFloatRepr } from '../../src/core/input-formats/python-float-repr.js';
import { errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { treeDifferences } from '../helpers/snapshots.js';
import { loadVector } from '../unit/vectors.js';

afterAll(cleanupTemp);

interface DocVector {
  name: string;
  text: string;
  arrays: { name: string; dtype: string; shape: number[] }[];
}
const { documents } = loadVector<{ documents: DocVector[] }>('json-render.json');
const fileName = (d: DocVector) => `${d.name.replace(/[^a-z0-9]+/gi, '-')}.json`;

/** A snapshot as json.dump writes one: metadata, then weights as nested lists (Python's repr per number). */
function snapshot(step: number, w: Float64Array, rows: number): string {
  const cols = w.length / rows;
  const row = (r: number) => `[${Array.from(w.subarray(r * cols, (r + 1) * cols), pythonFloatRepr).join(', ')}]`;
  const list = Array.from({ length: rows }, (_, r) => row(r)).join(', ');
  const meta = `"agent_class": "MLPPolicy", "step": ${step}, "metrics": {"loss": ${pythonFloatRepr(1 / step)}}`;
  return `{${meta}, "weights": {"fc1.weight": [${list}]}}`;
}

function trained(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.fround(Math.sin(i * 12.9898) * 0.1);
  return w;
}

describe('JSON snapshots written by Python', () => {
  let s: TestStore;
  let src: string;
  let rev: string;

  beforeAll(() => {
    s = newStore();
    src = path.join(s.dir, 'snap');
    fs.mkdirSync(src);
    for (const d of documents) fs.writeFileSync(path.join(src, fileName(d)), d.text);
    fs.writeFileSync(path.join(src, 'broken.json'), documents[0]!.text.slice(0, 5000));
    fs.writeFileSync(path.join(src, 'empty.json'), '');
    rev = s.json<{ id: string }>(['commit', src, '-m', 'snapshots']).id;
  });

  it('lists the arrays the spec cuts, with their dtypes and shapes', () => {
    type Tensor = { name: string; dtype: string; shape: number[] };
    const ls = s.json<{ files: { path: string; format: string; tensors: Tensor[] }[] }>(['ls', rev, '--tensors']);
    for (const d of documents) {
      const f = ls.files.find((x) => x.path === fileName(d))!;
      const root = fileName(d).replace(/\.json$/, '');
      const named = (a: { name: string }) => (a.name === 'root' ? root : a.name);
      const expected = d.arrays.map((a) => ({ name: named(a), dtype: a.dtype, shape: a.shape }));
      const listed = f.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
      expect({ doc: d.name, tensors: listed }).toEqual({ doc: d.name, tensors: expected });
      expect(f.format).toBe(d.arrays.length ? 'json' : 'opaque');
    }
    expect(ls.files.find((x) => x.path === 'broken.json')!.format).toBe('opaque');
  });

  it('checks out every file byte for byte, and cat gives the same bytes', () => {
    const out = tempDir();
    s.ok(['checkout', rev, '--to', out]);
    expect(treeDifferences(src, out)).toEqual([]);
    const compact = documents.find((d) => d.name === 'compact separators')!;
    expect(s.ok(['cat', `${rev}:${fileName(compact)}`]).stdout).toBe(compact.text);
  });

  it('checkout --tensor writes the numbers as a safetensors F64 tensor', () => {
    const d = documents.find((x) => x.name === 'default separators')!;
    const out = tempDir();
    s.ok(['checkout', rev, '--to', out, '--path', fileName(d), '--tensor', 'weights/fc1.weight']);
    const st = fs.readFileSync(path.join(out, fileName(d).replace(/\.json$/, '.safetensors')));
    const headerLength = Number(st.readBigUInt64LE(0));
    const header = JSON.parse(st.subarray(8, 8 + headerLength).toString('utf8'));
    expect(header['weights/fc1.weight']).toMatchObject({ dtype: 'F64', shape: [16, 20] });
    const values = (JSON.parse(d.text).weights['fc1.weight'] as number[][]).flat();
    const [begin, end] = header['weights/fc1.weight'].data_offsets as [number, number];
    const data = st.subarray(8 + headerLength + begin, 8 + headerLength + end);
    expect(Array.from({ length: values.length }, (_, i) => data.readDoubleLE(8 * i))).toEqual(values);
  });
});

describe('a series of JSON snapshots', () => {
  let s: TestStore;
  let dir: string;
  const ids: string[] = [];
  const texts: string[] = [];

  beforeAll(() => {
    s = newStore();
    dir = path.join(s.dir, 'run');
    fs.mkdirSync(dir);
    const w = trained(256 * 160); // 320 KiB of F64: two tensor chunks
    for (let step = 1; step <= 3; step++) {
      if (step > 1) for (let i = 0; i < w.length; i += 3) w[i] = Math.fround(w[i]! * (1 + 1e-3 * step));
      texts.push(snapshot(step, w, 256));
      fs.writeFileSync(path.join(dir, 'agent.json'), texts.at(-1)!);
      ids.push(s.json<{ id: string }>(['commit', dir, '-m', `step ${step}`]).id);
    }
  });

  it('delta-codes each changed snapshot against its parent and checks every one out exactly', () => {
    const st = s.json<{ deltas: { chunks: number; rawBytes: number; storedBytes: number } }>(['stats']);
    expect(st.deltas.chunks).toBeGreaterThanOrEqual(4);
    expect(st.deltas.storedBytes).toBeLessThan(st.deltas.rawBytes / 2);
    ids.forEach((id, i) => {
      expect(s.ok(['cat', `${id}:agent.json`]).stdout).toBe(texts[i]);
    });
  });

  it('diff shows the per-array change', () => {
    type Changed = { name: string; delta: { relative: number; changedElements: number } };
    const d = s.json<{ tensors: { changed: Changed[] } }>(['diff', ids[0]!, ids[1]!]);
    expect(d.tensors.changed.map((t) => t.name)).toEqual(['weights/fc1.weight']);
    expect(d.tensors.changed[0]!.delta.changedElements).toBeGreaterThan(10000);
    expect(d.tensors.changed[0]!.delta.relative).toBeGreaterThan(0);
  });

  it('prune --tensors releases the array; checking out the file is then refused, the rest stays readable', () => {
    s.ok(['prune', '--keep-last', '1', '--tensors', 'weights/*']);
    const r = s.run(['cat', `${ids[0]}:agent.json`]);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_PRUNED']);
    expect(s.ok(['cat', `${ids[2]}:agent.json`]).stdout).toBe(texts[2]);
  });
});

describe('store version 3 (FORMAT.md §1, §11): JSON render parts need it', () => {
  const version = (store: string) => JSON.parse(fs.readFileSync(path.join(store, 'config.json'), 'utf8')).version;
  const w = trained(256 * 4);

  it('a store moves from 2 to 3 with its first JSON render part, on commit and on receiving one', () => {
    const s = newStore();
    const dir = path.join(s.dir, 'run');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.json'), '{"hidden": [64, 64]}'); // nothing cut: stays at 2
    s.ok(['commit', dir, '-m', 'plain']);
    expect(version(s.store)).toBe(2);
    fs.writeFileSync(path.join(dir, 'agent.json'), snapshot(1, w, 4));
    const { id } = s.json<{ id: string }>(['commit', dir, '-m', 'snapshot']);
    expect(version(s.store)).toBe(3);

    const bundle = path.join(tempDir(), 'run.ckvcb');
    s.ok(['pack', 'main', '-o', bundle]);
    const r = newStore();
    expect(version(r.store)).toBe(2);
    r.ok(['pull', bundle]);
    expect(version(r.store)).toBe(3);
    expect(r.ok(['cat', `${id}:agent.json`]).stdout).toBe(snapshot(1, w, 4));
  });

  it('a reader refuses a store newer than it reads with "upgrade ckvc", as one reading up to 2 refuses a 3', () => {
    const s = newStore();
    const dir = path.join(s.dir, 'run');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'agent.json'), snapshot(1, w, 4));
    s.ok(['commit', dir, '-m', 'snapshot']);
    const cfgFile = path.join(s.store, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    expect(cfg.version).toBe(3);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, version: 4 })); // the same check an older ckvc makes of 3
    const r = s.run(['cat', 'main:agent.json']);
    expect(r.code).toBe(18);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_UNSUPPORTED_VERSION']);
    expect(r.stderr).toMatch(/format version 4; this ckvc reads up to 3: upgrade ckvc/);
  });
});
