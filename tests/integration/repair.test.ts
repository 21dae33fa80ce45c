// `ckvc repair --from SOURCE...` (spec/FORMAT.md §10.1): a damaged store made whole again from a remote or a
// bundle that holds its lost objects. Each case damages a copy of one template the way a bad disk does (bytes
// flipped in a record, a pack cut short, a table of contents garbled, a pack file gone) and checks what repair
// leaves: every commit checks out byte-identical, `verify --read-data` is clean, the damaged file is kept in
// damaged/, the refs are as they were, and what no source holds is named (CKVC_NOT_REPAIRED).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLANE_XOR } from '../../src/core/store-format/codec/plane-codec.js';
import {
  CODECS,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  TOC_ENTRY_BYTES,
} from '../../src/core/store-format/pack-format.js';
import { codesOf, describeRun } from '../helpers/ckvc.js';
import { damageRecord, firstChunkRecord, planesOf, recordOf } from '../helpers/damage.js';
import { diffSnapshots, flipByte, hashTree, snapshotStore, snapshotTree } from '../helpers/snapshots.js';
import { checkoutsDiffer, makeRepairTemplate, refFiles } from '../helpers/repair-template.js';
import { randomBytes } from '../helpers/data.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { checkoutDiff, commitId, copyStore, newStore, type TestStore } from '../helpers/test-store.js';

afterAll(cleanupTemp);

let template: TestStore;
let backup: TestStore;
let files: Map<string, Map<string, string>>;
let step1: string;
let step2: string;
let other: string;

beforeAll(() => {
  ({ template, backup, files, step1, step2, other } = makeRepairTemplate('ckvc-repair'));
});

/** Asserts what a repaired store must be: whole, verified, byte-identical, refs untouched. */
async function expectWhole(s: TestStore, refsBefore: Map<string, string>): Promise<void> {
  expect(await checkoutsDiffer(s, files)).toEqual([]);
  const v = await s.verify(true);
  expect(v.r.code, describeRun(v.r)).toBe(0);
  expect(v.report.damaged).toEqual([]);
  expect(diffSnapshots(refsBefore, refFiles(s))).toEqual([]);
}

describe('repair mends a damaged store from another copy', () => {
  it('a damaged chunk that a later delta needs: salvaged, set aside, fetched again; every commit byte-identical', async () => {
    const s = copyStore(template, 'ckvc-repair-chunk-');
    const refs = refFiles(s);
    const { file, entry } = await firstChunkRecord(s, step1, 'model.safetensors');
    damageRecord(file, entry);
    // fetch does not mend it: the store indexes the object already, so nothing is asked for.
    s.ok(['fetch', 'backup']);
    expect((await s.verify(true)).r.code).toBe(12);

    const deltaPack = (await firstChunkRecord(s, step2, 'model.safetensors')).file;
    const r = s.json(['repair', '--from', 'backup']);
    expect(r).toMatchObject({ dryRun: false, whole: true, unrepaired: 0, damaged: [], otherProblems: 0 });
    // step 2's chunk, a delta on the damaged one, no longer decodes, but its own bytes may be sound: its pack is
    // not called damaged, and only the base is lost.
    expect(r.salvaged).toMatchObject({ packs: 1, dropped: 1 });
    expect(r.salvaged.kept).toBeGreaterThan(0);
    expect(r.sources.map((x: { source: string }) => x.source)).toEqual([
      "remote 'backup'",
      'the damaged packs kept in damaged/',
    ]);
    expect(fs.readdirSync(path.join(s.store, 'damaged'))).toEqual([path.basename(file)]);
    expect(fs.readdirSync(path.join(s.store, 'damaged'))).not.toContain(path.basename(deltaPack));
    expect(fs.existsSync(file)).toBe(false);
    await expectWhole(s, refs);
    const text = s.ok(['verify']);
    expect(text.stderr).toContain('damaged/ of the store holds 1 damaged pack(s) that ckvc repair set aside');
    // Run again: nothing left to do, nothing changes.
    const before = snapshotStore(s.store);
    const again = s.ok(['repair', '--from', 'backup']);
    expect(again.stderr).toContain('no damaged or missing objects found; nothing to repair');
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });

  it('--dry-run changes nothing and says what each source holds and what the damage costs', async () => {
    const s = copyStore(template, 'ckvc-repair-dry-');
    const { file, entry } = await firstChunkRecord(s, step1, 'model.safetensors');
    damageRecord(file, entry);
    // Every file, the index's too: a dry run takes no lock and opens nothing for writing.
    const before = snapshotTree(s.store);
    const r = s.json(['repair', '--from', 'partial', '--from', 'backup', '--dry-run']);
    expect(r).toMatchObject({ dryRun: true, whole: false, unrepaired: 0 });
    expect(r.sources.map((x: { source: string; held: number }) => [x.source, x.held])).toEqual([
      ["remote 'partial'", 0],
      ["remote 'backup'", 2],
    ]);
    expect(r.damaged.map((d: { commit: string }) => d.commit).sort()).toEqual([step1, step2].sort());
    const text = s.ok(['repair', '--from', 'backup', '--dry-run']);
    expect(text.stdout).toContain(`  ${step2.slice(0, 12)} (main, backup/main): model.safetensors`);
    expect(text.stderr).toContain('dry run: nothing was changed');
    expect(diffSnapshots(before, snapshotTree(s.store))).toEqual([]);
  });

  it('a pack cut short: the records before the cut are kept, the rest fetched level by level', async () => {
    const s = copyStore(template, 'ckvc-repair-cut-');
    const refs = refFiles(s);
    // step 2's pack holds its chunk, tensor, recipes, tree and commit: cut inside its first record.
    const { file } = await firstChunkRecord(s, step2, 'model.safetensors');
    expect((await recordOf(s, step2)).file).toBe(file);
    fs.truncateSync(file, PACK_HEADER_BYTES + 20);
    const r = s.json(['repair', '--from', 'backup']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(r.salvaged.packs).toBe(1);
    // The commit comes first; its tree, recipes, tensor and chunk only once what names them is back.
    expect(r.sources[0].restored).toBeGreaterThanOrEqual(4);
    await expectWhole(s, refs);
  });

  it('a garbled table of contents loses nothing: every record is found by its header, no source needed', async () => {
    const s = copyStore(template, 'ckvc-repair-toc-');
    const refs = refFiles(s);
    const { file } = await recordOf(s, step2);
    const size = fs.statSync(file).size;
    // The first TOC entry's ID and offset, and the footer's count: neither the TOC nor a footer check holds.
    const toc = fs.readFileSync(file).readBigUInt64LE(size - PACK_FOOTER_BYTES);
    for (const at of [Number(toc) + 3, Number(toc) + 40, size - PACK_FOOTER_BYTES + 8]) flipByte(file, at);
    expect(TOC_ENTRY_BYTES).toBe(52);
    const damagedBytes = fs.readFileSync(file);
    const empty = newStore('ckvc-repair-empty-');
    s.ok(['remote', 'add', 'empty', empty.dir]);
    const r = s.json(['repair', '--from', 'empty']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(r.salvaged).toMatchObject({ packs: 1, dropped: 0 });
    expect(r.sources[0]).toMatchObject({ restored: 0 });
    // Its sound rewrite is what the pack was before the damage, name and all: the damaged bytes are kept apart.
    expect(fs.readFileSync(path.join(s.store, 'damaged', path.basename(file))).equals(damagedBytes)).toBe(true);
    expect(fs.readFileSync(file).equals(damagedBytes)).toBe(false);
    await expectWhole(s, refs);
  });

  it('a pack file gone: its objects are missing, and fetched', async () => {
    const s = copyStore(template, 'ckvc-repair-gone-');
    const refs = refFiles(s);
    fs.rmSync((await recordOf(s, other)).file);
    const r = s.json(['repair', '--from', 'backup']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(r.salvaged.packs).toBe(0);
    expect(fs.existsSync(path.join(s.store, 'damaged'))).toBe(false);
    await expectWhole(s, refs);
  });

  it('from a bundle file and a remote, asked in order: each supplies what the ones before lacked', async () => {
    const s = copyStore(template, 'ckvc-repair-bundle-');
    const refs = refFiles(s);
    const bundle = path.join(s.dir, 'other.ckvb');
    s.ok(['pack', 'other', '-o', bundle]);
    damageRecord(...spread(await firstChunkRecord(s, step1, 'model.safetensors')));
    damageRecord(...spread(await firstChunkRecord(s, other, 'model.safetensors')));
    const r = s.json(['repair', '--from', bundle, '--from', 'backup']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(r.sources.slice(0, 2).map((x: { source: string; held: number }) => [x.source, x.held])).toEqual([
      [`bundle ${bundle}`, 1],
      ["remote 'backup'", 2],
    ]);
    await expectWhole(s, refs);
  });

  it('what no source holds: CKVC_NOT_REPAIRED (12) names the commits; a later repair from one that has it mends it', async () => {
    const s = copyStore(template, 'ckvc-repair-none-');
    const refs = refFiles(s);
    damageRecord(...spread(await firstChunkRecord(s, step1, 'model.safetensors')));
    const r = s.run(['repair', '--from', 'partial']);
    expect(r.code, describeRun(r)).toBe(12);
    expect(codesOf(r)).toEqual(['CKVC_NOT_REPAIRED']);
    expect(r.stdout).toContain(`  ${step2.slice(0, 12)} (main, backup/main): model.safetensors`);
    expect(r.stdout).toContain(`  ${step1.slice(0, 12)} (tags/first): model.safetensors`);
    expect(r.stderr).toContain('2 lost object(s) were held by no source given');
    // The damaged copy is set aside; verify now calls the chunk missing, and names the same commits.
    const v = await s.verify(true);
    expect(v.r.code).toBe(12);
    expect(v.report.problems.map((p: { code: string }) => p.code)).toContain('CKVC_MISSING_OBJECT');
    expect(v.report.damaged.map((d: { commit: string }) => d.commit).sort()).toEqual([step1, step2].sort());
    // Other branches were never touched.
    expect(await checkoutDiff(s, other, files.get(other)!)).toEqual([]);
    s.ok(['repair', '--from', 'backup']);
    await expectWhole(s, refs);
  });

  it('a base damaged in a plane its delta does not XOR: the delta, which still reads, is stored decoded, not lost', async () => {
    const s = copyStore(template, 'ckvc-repair-plane-');
    const refs = refFiles(s);
    const base = await firstChunkRecord(s, step1, 'model.safetensors');
    const delta = await firstChunkRecord(s, step2, 'model.safetensors');
    expect(delta.entry.codec).toBe(CODECS.xorPlanes);
    const whole = planesOf(delta).planes.findIndex((p) => !(p.mode & PLANE_XOR));
    expect(whole, 'the delta stores a plane whole').toBeGreaterThanOrEqual(0);
    const b = planesOf(base);
    flipByte(base.file, b.body + b.planes[whole]!.offset + 5);
    expect(await checkoutDiff(s, step2, files.get(step2)!)).toEqual([]);

    // The partial remote lacks step 1's chunk: it stays lost, and step 2 must still check out.
    const r = s.run(['repair', '--from', 'partial', '--json']);
    expect(r.code, describeRun(r)).toBe(12);
    const report = JSON.parse(r.stdout);
    expect(report.salvaged).toMatchObject({ dropped: 1, rewritten: 1 });
    expect(report.damaged.map((d: { commit: string }) => d.commit)).toEqual([step1]);
    expect(await checkoutDiff(s, step2, files.get(step2)!)).toEqual([]);
    expect(await checkoutDiff(s, other, files.get(other)!)).toEqual([]);
    s.ok(['repair', '--from', 'backup']);
    await expectWhole(s, refs);
  });

  it('a source that is behind (it holds the base, not the newer commits): the deltas on it stay and read again', async () => {
    const s = copyStore(template, 'ckvc-repair-behind-');
    const refs = refFiles(s);
    addRemoteBehind(s);
    // The base of step 2's delta damaged through every plane: the delta no longer decodes, yet its own bytes are
    // sound, and step 2 is in no source.
    damageRecord(...spread(await firstChunkRecord(s, step1, 'model.safetensors')));
    const deltaPack = (await firstChunkRecord(s, step2, 'model.safetensors')).file;
    const r = s.json(['repair', '--from', 'behind']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(r.salvaged).toMatchObject({ packs: 1, dropped: 1 });
    // Only the base was lost and fetched: the delta (kept, or stored decoded) reads again.
    expect(r.sources[0]).toMatchObject({ held: 1, restored: 1 });
    expect(fs.readdirSync(path.join(s.store, 'damaged'))).not.toContain(path.basename(deltaPack));
    await expectWhole(s, refs);
  });

  it('base and delta in one damaged pack, the source behind: the delta is read again from damaged/ once the base is back', async () => {
    const s = copyStore(template, 'ckvc-repair-same-pack-');
    addRemoteBehind(s);
    // Small packs merged into one: step 1's base and step 2's delta share a pack.
    const dir = path.join(s.dir, 'merge');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.bin'), randomBytes(21, 2000));
    s.ok(['commit', dir, '-m', 'merge', '-b', 'merge'], { env: { CKVC_AUTO_SMALL_PACKS: '2' } });
    const refs = refFiles(s);
    const base = await firstChunkRecord(s, step1, 'model.safetensors');
    expect((await firstChunkRecord(s, step2, 'model.safetensors')).file).toBe(base.file);
    damageRecord(base.file, base.entry);
    const r = s.json(['repair', '--from', 'behind']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    const aside = r.sources.find((x: { source: string }) => x.source === 'the damaged packs kept in damaged/');
    expect(aside.restored).toBeGreaterThanOrEqual(1);
    await expectWhole(s, refs);
  });

  it('a delta damaged itself over a damaged base: never copied unverified, so a full source mends it for good', async () => {
    const s = copyStore(template, 'ckvc-repair-both-');
    const refs = refFiles(s);
    addRemoteBehind(s);
    damageRecord(...spread(await firstChunkRecord(s, step1, 'model.safetensors')));
    damageRecord(...spread(await firstChunkRecord(s, step2, 'model.safetensors')));
    const r = s.run(['repair', '--from', 'behind', '--json']);
    expect(r.code, describeRun(r)).toBe(12);
    expect(JSON.parse(r.stdout).damaged.map((d: { commit: string }) => d.commit)).toEqual([step2]);
    // What stays in packs/ is sound: verify finds the delta missing, not a damaged copy passed off as sound.
    const v = await s.verify(true);
    expect(v.report.problems.map((p: { code: string }) => p.code)).not.toContain('CKVC_CORRUPT_OBJECT');
    s.ok(['repair', '--from', 'backup']);
    s.ok(['index', 'rebuild']); // whichever copy a rebuild picks is sound
    await expectWhole(s, refs);
  });

  it('a commit whose record is damaged comes back from the index, which caches commit bodies: nothing lost', async () => {
    const s = copyStore(template, 'ckvc-repair-commit-');
    const refs = refFiles(s);
    damageRecord(...spread(await recordOf(s, step2)));
    const r = s.json(['repair', '--from', 'partial']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(r.salvaged).toMatchObject({ packs: 1, dropped: 0 });
    expect(r.sources[0]).toMatchObject({ asked: 0, restored: 0 });
    await expectWhole(s, refs);
  });

  it('a source that fails is asked nothing more, and the next one is asked instead', async () => {
    const s = copyStore(template, 'ckvc-repair-failing-');
    const refs = refFiles(s);
    const bad = copyStore(backup, 'ckvc-repair-bad-backup-');
    damageRecord(...spread(await firstChunkRecord(bad, step1, 'model.safetensors')));
    s.ok(['remote', 'add', 'bad', bad.dir]);
    damageRecord(...spread(await firstChunkRecord(s, step1, 'model.safetensors')));
    const r = s.run(['repair', '--from', 'bad', '--from', 'backup']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toContain("ckvc: warning (CKVC_BAD_BUNDLE): remote 'bad' failed, so it was asked nothing more");
    expect(r.stderr).toContain('the store is whole again');
    await expectWhole(s, refs);
  });

  it('a long chain of lost commits: each comes back with one request, without a walk of everything each', async () => {
    const s = newStore('ckvc-repair-chain-');
    const b = newStore('ckvc-repair-chain-backup-');
    const dir = path.join(s.dir, 'ck');
    fs.mkdirSync(dir);
    const want = new Map<string, Map<string, string>>();
    let tip = '';
    for (let k = 0; k < 70; k++) {
      fs.writeFileSync(path.join(dir, 'step.json'), JSON.stringify({ step: k }));
      tip = commitId(s, [dir, '-m', `step ${k}`]);
      if (k % 10 === 0) want.set(tip, hashTree(dir));
    }
    s.ok(['remote', 'add', 'backup', b.dir]);
    s.ok(['push', 'backup', 'main']);
    const keep = (await recordOf(s, tip)).file;
    for (const f of fs.readdirSync(path.join(s.store, 'packs'))) {
      const p = path.join(s.store, 'packs', f);
      if (p !== keep) fs.rmSync(p);
    }
    const refs = refFiles(s);
    const r = s.json(['repair', '--from', 'backup']);
    expect(r).toMatchObject({ whole: true, unrepaired: 0 });
    expect(await checkoutsDiffer(s, want)).toEqual([]);
    expect((await s.verify(true)).r.code).toBe(0);
    expect(diffSnapshots(refs, refFiles(s))).toEqual([]);
  });

  it('a commit only the reflog keeps (its branch deleted) is mended too; what no source holds of it is only counted', async () => {
    const s = copyStore(template, 'ckvc-repair-reflog-');
    const dir = path.join(s.dir, 'exp');
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'model.safetensors'),
      fs.readFileSync(path.join(s.dir, 'ckpt', 'model.safetensors')),
    );
    fs.writeFileSync(path.join(dir, 'extra.bin'), randomBytes(9, 50_000));
    const exp = commitId(s, [dir, '-m', 'experiment', '-b', 'exp']);
    const want = hashTree(dir);
    const bundle = path.join(s.dir, 'exp.ckvb');
    s.ok(['pack', 'exp', '-o', bundle]);
    s.ok(['checkout', 'main', '--to', path.join(s.dir, 'co-main')]);
    s.ok(['branch', '-d', 'exp']);
    const refs = refFiles(s);
    damageRecord(...spread(await firstChunkRecord(s, exp, 'extra.bin')));
    // No source holds it: the refs' history is whole, the reflog's loss only counted.
    const first = s.json(['repair', '--from', 'backup']);
    expect(first).toMatchObject({ whole: true, reflogUnrepaired: 1 });
    const second = s.json(['repair', '--from', bundle]);
    expect(second).toMatchObject({ whole: true, reflogUnrepaired: 0 });
    expect(second.sources[0].restored).toBeGreaterThan(0);
    expect(await checkoutDiff(s, exp, want)).toEqual([]);
    await expectWhole(s, refs);
  });

  it('a source that cannot be opened (a junk bundle, a remote whose folder is gone) is skipped for the next', async () => {
    const s = copyStore(template, 'ckvc-repair-unopened-');
    const refs = refFiles(s);
    const junk = path.join(s.dir, 'junk.ckvb');
    fs.writeFileSync(junk, randomBytes(3, 5000));
    s.ok(['remote', 'add', 'gone', path.join(s.dir, 'no-such-store')]);
    damageRecord(...spread(await firstChunkRecord(s, other, 'model.safetensors')));
    const dry = s.run(['repair', '--from', junk, '--from', 'gone', '--dry-run']);
    expect(dry.code, describeRun(dry)).toBe(12);
    expect(codesOf(dry).at(-1)).toBe('CKVC_NOT_REPAIRED');
    expect(dry.stderr).toContain('a repair would leave 1 lost object(s) that no source given holds');
    const r = s.run(['repair', '--from', junk, '--from', 'gone', '--from', 'backup']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toContain(`ckvc: warning (CKVC_BAD_BUNDLE): bundle ${junk} failed, so it was asked nothing more`);
    expect(r.stderr).toContain("ckvc: warning (CKVC_REMOTE): remote 'gone' failed, so it was asked nothing more");
    await expectWhole(s, refs);
  });

  it('a branch whose tip no source holds: listed with a warning, moved back with branch -f, the reflog kept', async () => {
    const s = copyStore(template, 'ckvc-repair-lost-tip-');
    const dir = path.join(s.dir, 'next');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.bin'), randomBytes(11, 3000));
    const tip = commitId(s, [dir, '-m', 'never pushed']);
    fs.rmSync((await recordOf(s, tip)).file);
    const r = s.run(['repair', '--from', 'backup']);
    expect(r.code, describeRun(r)).toBe(12);
    expect(r.stdout).toContain(`  ${tip.slice(0, 12)} (main): its commit cannot be read`);
    expect(r.stderr).toContain("'ckvc reflog main' lists where it was, 'ckvc branch -f NAME ID' moves a branch");
    const list = s.ok(['branch']);
    expect(list.stderr).toContain(`warning: branch 'main' points at ${tip.slice(0, 12)}, which cannot be read`);
    expect(list.stderr).toContain("'ckvc reflog main' lists the ref's earlier values");
    expect(list.stdout).toContain('other');
    const moved = s.ok(['branch', '-f', 'main', step2]);
    expect(moved.stderr).toContain(`moved branch main to ${step2.slice(0, 12)} (was ${tip.slice(0, 12)}`);
    expect(s.ref('refs/heads/main')).toBe(step2);
    const log = s.json<{ new: string; old: string }[]>(['reflog', 'main']);
    expect(log[0]).toMatchObject({ new: step2, old: tip });
    expect((await s.verify(true)).r.code).toBe(0);
  });

  it('a commit whose pack merge fails on damage says to repair, not that the next commit tries again', async () => {
    const s = copyStore(template, 'ckvc-repair-merge-');
    fs.rmSync((await firstChunkRecord(s, step1, 'model.safetensors')).file);
    const dir = path.join(s.dir, 'more');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.bin'), randomBytes(31, 2000));
    const r = s.run(['commit', dir, '-m', 'more', '-b', 'more'], { env: { CKVC_AUTO_SMALL_PACKS: '1' } });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toContain('committed, but merging small packs failed');
    expect(r.stderr).toContain(
      "the store is damaged: 'ckvc verify --read-data' says what it costs, 'ckvc repair --from REMOTE' mends it",
    );
    s.ok(['repair', '--from', 'backup']);
    const again = s.run(['commit', dir, '-m', 'again', '-b', 'more'], { env: { CKVC_AUTO_SMALL_PACKS: '1' } });
    expect(again.stderr).not.toContain('merging small packs failed');
  });

  it('a healthy store: nothing to repair, nothing changes; an unknown source is refused, nothing changed', async () => {
    const s = copyStore(template, 'ckvc-repair-healthy-');
    const before = snapshotStore(s.store);
    const r = s.ok(['repair', '--from', 'backup']);
    expect(r.stderr).toContain('no damaged or missing objects found; nothing to repair (the store was left as it was)');
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);

    // A typo is refused on a healthy store too, before anything is read.
    const typo = s.run(['repair', '--from', 'bakup']);
    expect(typo.code, describeRun(typo)).toBe(14);
    const folder = s.run(['repair', '--from', s.dir]);
    expect(folder.code).toBe(14);
    expect(folder.stderr).toContain(`${s.dir} is a folder, and --from takes a bundle file or a remote's name`);
    damageRecord(...spread(await firstChunkRecord(s, step1, 'model.safetensors')));
    const damaged = snapshotStore(s.store);
    const unknown = s.run(['repair', '--from', 'bakup']);
    expect(unknown.code, describeRun(unknown)).toBe(14);
    expect(codesOf(unknown)).toEqual(['CKVC_UNKNOWN_REMOTE']);
    expect(unknown.stderr).toContain('remotes: backup, partial');
    expect(diffSnapshots(damaged, snapshotStore(s.store))).toEqual([]);
    const missing = s.run(['repair']);
    expect(missing.code).toBe(2);
    expect(codesOf(missing)).toEqual(['CKVC_USAGE']);
    expect(missing.stderr).toContain("missing required option(s): --from; see 'ckvc repair --help'");
  });
});

/** Adds remote `behind` to `s`: a store holding only tag `first` (step 1), as a backup made before step 2. */
function addRemoteBehind(s: TestStore): void {
  const behind = newStore('ckvc-repair-behind-remote-');
  s.ok(['remote', 'add', 'behind', behind.dir]);
  s.ok(['push', 'behind', 'first']);
}

function spread(r: { file: string; entry: { offset: number; storedLength: number } }) {
  return [r.file, r.entry] as const;
}
