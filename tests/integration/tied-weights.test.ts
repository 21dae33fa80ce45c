// Tied weights (spec/FORMAT.md §5.3, ARCHIVES.md §2.1): a model whose output head is its token embedding saves one
// storage under two names. Both names are recorded, so `ls`, `cat --tensor`, `checkout --tensor` and `diff
// --tensor` take the tensor by either; records (prune, fetch filters) go by its own name, as older versions read
// them, and prune refuses globs that take one name without the other.
// The file is tests/fixtures/torch_tied_weights.pt, written by torch.save (make-torch-tied.py).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensorsHeader, readSafetensorsHeaderLength } from '../../src/core/input-formats/safetensors.js';
import { ckvcBytes, errorCodes } from '../helpers/ckvc.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { safetensorsFromHeader } from '../helpers/data.js';
import { sha256, snapshotStore } from '../helpers/snapshots.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

const FIXTURE = fs.readFileSync(path.join(FIXTURES, 'torch_tied_weights.pt'));

function catTensor(s: TestStore, spec: string, name: string): Buffer {
  const r = ckvcBytes(['cat', spec, '--tensor', name, '--store', s.store]);
  if (r.code !== 0) throw new Error(`cat ${spec} --tensor ${name}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** The entries of a safetensors file, each with its bytes. */
function safetensorsEntries(file: string): Map<string, { shape: number[]; bytes: Buffer }> {
  const b = fs.readFileSync(file);
  const n = readSafetensorsHeaderLength(b.subarray(0, 8), b.length, file);
  const layout = parseSafetensorsHeader(b.subarray(8, 8 + n), b.length, file);
  return new Map(layout.tensors.map((t) => [t.name, { shape: t.shape, bytes: b.subarray(t.begin, t.end) }]));
}

let template: TestStore;
let first: string;
let second: string;
/** model.wte.weight's bytes in the first and the second commit. */
let wte1: Buffer;
let wte2: Buffer;

beforeAll(() => {
  template = newStore('ckvc-tied-');
  const ckpt = path.join(template.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  fs.writeFileSync(path.join(ckpt, 'ckpt.pt'), FIXTURE);
  first = commitId(template, [ckpt, '-b', 'main', '-m', 'one']);
  wte1 = catTensor(template, 'main:ckpt.pt', 'model.wte.weight');
  // An optimizer step that moves the embedding: one of its floats changes in place, in the file's stored bytes.
  const changed = Buffer.from(FIXTURE);
  const at = changed.indexOf(wte1);
  expect(at).toBeGreaterThan(0);
  changed.writeFloatLE(changed.readFloatLE(at + 8) + 1, at + 8);
  fs.writeFileSync(path.join(ckpt, 'ckpt.pt'), changed);
  // A safetensors twin holding the embedding under its own name: the same tensor object as the .pt's.
  wte2 = changed.subarray(at, at + wte1.length);
  const header = { 'wte.weight': { dtype: 'F32', shape: [40, 8], data_offsets: [0, wte2.length] } };
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), safetensorsFromHeader(header, wte2));
  second = commitId(template, [ckpt, '-b', 'main', '-m', 'two']);
});

describe('tied weights', () => {
  it('ls lists each tied name beside the name it is tied to; a view of another shape gets no name', () => {
    const r = template.json(['ls', first, '--tensors']);
    const file = r.files.find((f: { path: string }) => f.path === 'ckpt.pt');
    const byName = new Map(file.tensors.map((t: { name: string }) => [t.name, t]));
    expect(byName.get('model.lm_head.weight')).toEqual({
      name: 'model.lm_head.weight',
      dtype: 'F32',
      shape: [40, 8],
      bytes: 1280,
      tiedTo: 'model.wte.weight',
    });
    expect(byName.get('ema.lm_head.weight')).toMatchObject({ tiedTo: 'ema.wte.weight' });
    expect(byName.get('model.wte.weight')).not.toHaveProperty('tiedTo');
    expect([...byName.keys()].some((n) => String(n).startsWith('flat'))).toBe(false);
    // The stored tensors are counted, and their tied names beside them.
    expect(file.tensorCount).toBe(4);
    expect(file.tiedNames).toBe(2);
    expect(template.ok(['ls', first]).stdout).toContain('ckpt.pt  4.34 KiB  pytorch  4 tensors (+2 tied names)');
    expect(template.ok(['ls', first, '--tensors']).stdout).toContain(
      'model.lm_head.weight  F32  [40, 8]  1.25 KiB  (tied to model.wte.weight)',
    );
  });

  it('a checkout is byte-identical, and cat --tensor gives the same bytes under either name', () => {
    const to = path.join(template.dir, 'whole');
    template.ok(['checkout', first, '--to', to]);
    expect(sha256(fs.readFileSync(path.join(to, 'ckpt.pt')))).toBe(sha256(FIXTURE));
    expect(catTensor(template, `${first}:ckpt.pt`, 'model.lm_head.weight').equals(wte1)).toBe(true);
    expect(catTensor(template, 'main:ckpt.pt', 'model.lm_head.weight').equals(wte2)).toBe(true);
  });

  it('checkout --tensor writes a tied name as an entry of its own, and an exclusion leaves one name out', () => {
    const head = path.join(template.dir, 'head');
    template.ok(['checkout', first, '--to', head, '--tensor', 'model.lm_head.weight']);
    const only = safetensorsEntries(path.join(head, 'ckpt.safetensors'));
    expect([...only.keys()]).toEqual(['model.lm_head.weight']);
    expect(only.get('model.lm_head.weight')!.bytes.equals(wte1)).toBe(true);

    const model = path.join(template.dir, 'model');
    template.ok(['checkout', first, '--to', model, '--tensor', 'model.*', '--tensor', '!model.wte.weight']);
    const entries = safetensorsEntries(path.join(model, 'ckpt.safetensors'));
    expect([...entries.keys()].sort()).toEqual(['model.lm_head.weight', 'model.ln.bias', 'model.ln.weight']);

    const both = path.join(template.dir, 'both');
    template.ok(['checkout', first, '--to', both, '--tensor', 'model.wte.weight', '--tensor', 'model.lm_head.*']);
    const pair = safetensorsEntries(path.join(both, 'ckpt.safetensors'));
    expect(pair.get('model.wte.weight')!.bytes.equals(wte1)).toBe(true);
    expect(pair.get('model.lm_head.weight')!.bytes.equals(wte1)).toBe(true);
  });

  it('diff --tensor finds a tied name changed', () => {
    const r = template.json(['diff', first, second, '--tensor', 'model.lm_head.weight']);
    expect(r.tensors.changed.map((t: { name: string }) => t.name)).toEqual(['model.lm_head.weight']);
    expect(r.tensors.changed[0].delta.changedElements).toBe(1);
  });

  it('prune refuses globs that take one tied name without the other, and releases both when given both', () => {
    const s = copyStore(template, 'ckvc-tied-prune-');
    const before = snapshotStore(s.store);
    for (const glob of ['model.lm_head.weight', 'model.wte.*']) {
      const r = s.run(['prune', '--tensors', glob, '--keep-last', '1']);
      expect(r.code).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
      expect(r.stderr).toContain('tied names of one stored tensor');
      expect(snapshotStore(s.store)).toEqual(before);
    }
    s.ok(['prune', '--tensors', 'model.lm_head.weight', '--tensors', 'model.wte.weight', '--keep-last', '1']);
    const listed = s.json(['ls', first, 'ckpt.pt', '--tensors']).files[0].tensors;
    const pruned = listed.filter((t: { pruned?: boolean }) => t.pruned).map((t: { name: string }) => t.name);
    expect(pruned.sort()).toEqual(['model.lm_head.weight', 'model.wte.weight']);
    const r = s.run(['checkout', first, '--to', path.join(s.dir, 'out'), '--tensor', 'model.lm_head.weight']);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_PRUNED']);
    s.ok(['gc', '--grace', '0']);
    s.ok(['verify', '--read-data']);
  });

  it("a prune record an older ckvc wrote for a tied name alone releases nothing: records go by the part's own name", () => {
    // What `ckvc prune --tensors 'model.lm_head.*'` of a version that predates tied names writes: it matched
    // nothing there, so it released nothing there, and must not here (gc would delete what that version keeps).
    const s = copyStore(template, 'ckvc-tied-old-record-');
    fs.mkdirSync(path.join(s.store, 'pruned'), { recursive: true });
    const record = { commit: first, time: Date.now() - 3_600_000, tensors: ['model.lm_head.*'] };
    fs.writeFileSync(path.join(s.store, 'pruned', `${first}.json`), JSON.stringify(record));
    const listed = s.json(['ls', first, 'ckpt.pt', '--tensors']).files[0].tensors;
    expect(listed.filter((t: { pruned?: boolean }) => t.pruned)).toEqual([]);
    s.ok(['gc', '--grace', '0']);
    s.ok(['verify', '--read-data']);
    expect(catTensor(s, `${first}:ckpt.pt`, 'model.wte.weight').equals(wte1)).toBe(true);
  });

  it('a fetch filter goes by the own name: by a tied name alone it warns, and the data comes when needed', () => {
    const src = copyStore(template, 'ckvc-tied-src-');
    const client = newStore('ckvc-tied-client-');
    client.ok(['remote', 'add', 'origin', src.dir]);
    const f = client.ok(['fetch', 'origin', '--filter', 'tensors:model.lm_head.weight']);
    expect(f.stderr).toContain("--filter takes 'model.lm_head.weight' of ckpt.pt only by its tied name");
    // The filter is kept for later fetches and a new one replaces it: the advice repeats it.
    expect(f.stderr).toContain(
      "to fetch it now, run: ckvc fetch 'origin' --filter 'tensors:model.lm_head.weight' --filter 'tensors:model.wte.weight'",
    );
    client.ok(['branch', 'local', 'origin/main']);
    client.ok(['verify']);
    const to = path.join(client.dir, 'out');
    const c = client.ok(['checkout', 'local', '--to', to, '--tensor', 'model.lm_head.weight']);
    expect(c.stderr).toContain('where a partial fetch had left them');
    expect(safetensorsEntries(path.join(to, 'ckpt.safetensors')).get('model.lm_head.weight')!.bytes.equals(wte2)).toBe(
      true,
    );

    const other = newStore('ckvc-tied-client-own-');
    other.ok(['remote', 'add', 'origin', src.dir]);
    expect(other.ok(['fetch', 'origin', '--filter', 'tensors:model.wte.weight']).stderr).not.toContain('tied');
    other.ok(['branch', 'local', 'origin/main']);
    fs.renameSync(src.dir, `${src.dir}-gone`); // what follows must not need the remote
    other.ok(['checkout', 'local', '--to', path.join(other.dir, 'out'), '--tensor', 'model.lm_head.weight']);
  });

  it('a tensor twin files share is fetched on demand under the name of the file asked for', () => {
    // ckpt.pt is listed before model.safetensors: the tensor is first met under the .pt's name, which
    // --tensor does not select here. It must still be found missing, and fetched, for model.safetensors.
    const src = copyStore(template, 'ckvc-tied-twin-');
    const client = newStore('ckvc-tied-twin-client-');
    client.ok(['remote', 'add', 'origin', src.dir]);
    client.ok(['fetch', 'origin', '--filter', 'tensors:model.ln.*']);
    client.ok(['branch', 'local', 'origin/main']);
    const to = path.join(client.dir, 'out');
    const r = client.ok(['checkout', 'local', '--to', to, '--tensor', 'wte.weight']);
    expect(r.stderr).toContain('where a partial fetch had left them');
    expect(safetensorsEntries(path.join(to, 'model.safetensors')).get('wte.weight')!.bytes.equals(wte2)).toBe(true);
  });
});
