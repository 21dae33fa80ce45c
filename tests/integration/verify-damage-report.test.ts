// `ckvc verify` names what damage costs (spec/FORMAT.md §10): the commits that can no longer be checked out
// whole, the refs naming them and the files, so a user knows which checkpoints to restore from elsewhere. A chunk
// that later commits store as deltas against it takes those commits down with it; data released by prune does
// not count, and undamaged files are not named.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODECS } from '../../src/core/store-format/pack-format.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { errorCodes } from '../helpers/ckvc.js';
import { damageRecord, firstChunkRecord } from '../helpers/damage.js';
import { optimizerStepFloat32, randomBytes, safetensorsFromHeader, trainedFloat32 } from '../helpers/data.js';
import { flipByte } from '../helpers/snapshots.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

const ELEMENTS = 64 * 1024; // 256 KiB of F32: one chunk

function checkpoint(w: Buffer): Buffer {
  const header = { w: { dtype: 'F32', shape: [ELEMENTS], data_offsets: [0, w.length] } };
  return safetensorsFromHeader(header, w);
}

/** The record of `commit`'s first chunk of tensor `w` in model.safetensors: its pack file, offset and codec. */
const chunkRecordOfW = (s: TestStore, commit: string) => firstChunkRecord(s, commit, 'model.safetensors');

let template: TestStore;
let step1: string;
let step2: string;
let other: string;

beforeAll(() => {
  template = newStore('ckvc-damage-');
  const ckpt = path.join(template.dir, 'ckpt');
  fs.mkdirSync(ckpt);
  const w1 = trainedFloat32(1, ELEMENTS);
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(w1));
  fs.writeFileSync(path.join(ckpt, 'notes.bin'), randomBytes(2, 10_000));
  step1 = commitId(template, [ckpt, '-m', 'step 1']);
  template.ok(['tag', 'first', step1]);
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(optimizerStepFloat32(w1, 3)));
  step2 = commitId(template, [ckpt, '-m', 'step 2']);
  // Another branch whose checkpoint shares nothing with the damaged chunk.
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), checkpoint(trainedFloat32(4, ELEMENTS)));
  other = commitId(template, [ckpt, '-m', 'other', '-b', 'other']);
});

describe('verify names the checkpoints damage costs', () => {
  it('a damaged chunk: the commits that hold it, and those whose deltas need it, with their refs and files', async () => {
    const s = copyStore(template, 'ckvc-damage-case-');
    expect((await chunkRecordOfW(s, step2)).entry.codec, 'step 2 stores w as a delta').toBe(CODECS.xorPlanes);
    const { file, entry } = await chunkRecordOfW(s, step1);
    damageRecord(file, entry);

    const r = s.run(['verify', '--read-data', '--json']);
    expect(r.code).toBe(12);
    const report = JSON.parse(r.stdout);
    const byCommit = new Map(report.damaged.map((d: { commit: string }) => [d.commit, d]));
    expect(byCommit.get(step1)).toEqual({ commit: step1, refs: ['tags/first'], paths: ['model.safetensors'] });
    expect(byCommit.get(step2)).toEqual({ commit: step2, refs: ['main'], paths: ['model.safetensors'] });
    expect(byCommit.has(other)).toBe(false);
    expect(report.damaged).toHaveLength(2);
    // What it says is what a checkout finds.
    for (const c of [step1, step2]) {
      const out = s.run(['checkout', c, '--to', path.join(s.dir, `out-${c}`)]);
      expect(errorCodes(out.stderr), out.stderr).toEqual(['CKVC_CORRUPT_OBJECT']);
    }
    s.ok(['checkout', other, '--to', path.join(s.dir, 'out-other')]);
    s.ok(['checkout', step1, '--to', path.join(s.dir, 'notes'), '--path', 'notes.bin']);

    const text = s.run(['verify', '--read-data']);
    expect(text.stdout).toContain('damaged: 2 commit(s) can no longer be checked out whole:');
    expect(text.stdout).toContain(`  ${step2.slice(0, 12)} (main): model.safetensors`);
    expect(text.stdout).toContain(`  ${step1.slice(0, 12)} (tags/first): model.safetensors`);
    expect(text.stdout).not.toContain("run 'ckvc verify --read-data'");
  });

  it('data a prune released is not called lost', async () => {
    const s = copyStore(template, 'ckvc-damage-pruned-');
    s.ok(['prune', '--keep-last', '1', '--tensors', 'w', '--include-tagged']);
    const { file, entry } = await chunkRecordOfW(s, step1);
    damageRecord(file, entry);
    const report = JSON.parse(s.run(['verify', '--read-data', '--json']).stdout);
    // step 1's w is released, but step 2 still needs its bytes as the base of its delta.
    expect(report.damaged.map((d: { commit: string }) => d.commit)).toEqual([step2]);
    expect(report.ok).toBe(false);
  });

  /** The commits `verify --read-data` lists as damaged, and those whose checkout fails: the same, or it misleads. */
  function listedAndFailing(s: TestStore): { listed: string[]; failing: string[] } {
    const report = JSON.parse(s.run(['verify', '--read-data', '--json']).stdout);
    const failing = [step1, step2, other].filter(
      (c) => s.run(['checkout', c, '--to', path.join(s.dir, `co-${c}-${Math.random()}`)]).code !== 0,
    );
    return { listed: report.damaged.map((d: { commit: string }) => d.commit).sort(), failing: failing.sort() };
  }

  it('a record header or a pack cut short (no object named in a problem): its objects are read to find what is lost', async () => {
    const s = copyStore(template, 'ckvc-damage-header-');
    const { file, entry } = await chunkRecordOfW(s, step2);
    flipByte(file, entry.offset + 12 + 5); // inside the record header's ID
    const header = listedAndFailing(s);
    expect(header.listed).toEqual([step2]);
    expect(header.failing).toEqual(header.listed);

    const t = copyStore(template, 'ckvc-damage-cut-');
    const w2 = await chunkRecordOfW(t, step2);
    fs.truncateSync(w2.file, w2.entry.offset + 20);
    const cut = listedAndFailing(t);
    expect(cut.listed).toContain(step2);
    expect(cut.failing).toEqual(cut.listed);
  });

  it('a pack cut short where the only reach of a chunk is as a delta base (its own data pruned)', async () => {
    const s = copyStore(template, 'ckvc-damage-base-only-');
    s.ok(['prune', '--keep-last', '1', '--tensors', 'w', '--include-tagged']);
    const w1 = await chunkRecordOfW(s, step1);
    fs.truncateSync(w1.file, w1.entry.offset + 20);
    for (const args of [
      ['verify', '--read-data', '--json'],
      ['verify', '--json'],
    ]) {
      const listed = JSON.parse(s.run(args).stdout).damaged.map((d: { commit: string }) => d.commit);
      expect(listed, args.join(' ')).toContain(step2);
    }
    expect(errorCodes(s.run(['checkout', step2, '--to', path.join(s.dir, 'co')]).stderr)).toEqual([
      'CKVC_CORRUPT_PACK',
    ]);
  });

  it('an annotated tag lists its commit under its name; a damaged tag object is named as such', async () => {
    const s = copyStore(template, 'ckvc-damage-tag-');
    s.ok(['tag', 'annotated', step1, '-m', 'the first step']);
    const { file, entry } = await chunkRecordOfW(s, step1);
    damageRecord(file, entry);
    const first = JSON.parse(s.run(['verify', '--read-data', '--json']).stdout).damaged.find(
      (d: { commit: string }) => d.commit === step1,
    );
    expect(first.refs.sort()).toEqual(['tags/annotated', 'tags/first']);

    const t = copyStore(template, 'ckvc-damage-tag-object-');
    t.ok(['tag', 'annotated', step1, '-m', 'the first step']);
    const tag = fs.readFileSync(path.join(t.store, 'refs', 'tags', 'annotated'), 'utf8').trim();
    expect(tag).not.toBe(step1); // the ref names the tag object
    const store = await ObjectStore.open(t.store);
    const [loc] = await store.locate([tag]);
    await store.close();
    damageRecord(path.join(t.store, 'packs', `${loc!.packId}.pack`), loc!.entry);
    const report = JSON.parse(t.run(['verify', '--read-data', '--json']).stdout);
    expect(report.damaged).toContainEqual({ commit: tag, refs: ['tags/annotated'], paths: [], unreadable: 'tag' });
    // The tag still exists: tagging the name again says so, and how to remove it.
    const again = t.run(['tag', 'annotated', '-m', 'again']);
    expect(errorCodes(again.stderr)).toEqual(['CKVC_REF_CONFLICT']);
    expect(again.stderr).toContain(`(at tag object ${tag.slice(0, 12)}, which cannot be read)`);
  });

  it('pack refuses to write a bundle from a damaged record, and leaves no file', async () => {
    const s = copyStore(template, 'ckvc-damage-pack-');
    const { file, entry } = await chunkRecordOfW(s, step1);
    damageRecord(file, entry);
    const out = path.join(s.dir, 'bundles');
    fs.mkdirSync(out);
    const r = s.run(['pack', 'main', '-o', path.join(out, 'main.ckvb')]);
    expect(r.code, r.stderr).toBe(12);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_CORRUPT_OBJECT']);
    expect(fs.readdirSync(out)).toEqual([]);
    // The branch whose data is intact still packs.
    s.ok(['pack', 'other', '-o', path.join(out, 'other.ckvb')]);
    s.ok(['verify', path.join(out, 'other.ckvb')]);
  });

  it('a clean store reports nothing damaged', () => {
    const report = JSON.parse(template.ok(['verify', '--read-data', '--json']).stdout);
    expect(report.damaged).toEqual([]);
  });
});
