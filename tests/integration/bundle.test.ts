// Bundles (spec/BUNDLE.md): `ckvc pack`, `ckvc verify FILE` (no store) and `ckvc pull FILE`. A bundle carries
// a branch's history byte for byte to another store; an incremental one (--since) carries only what the
// receiver lacks; prune records travel with it. A receiver trusts nothing: every damaged, truncated, padded,
// lying or incomplete bundle is refused with its exact code, and the receiving store is left exactly as it was
// (no quarantine left behind). Damaged bundles are built with src's own header encoder and a fresh trailer hash,
// so each carries only the defect it is meant to carry.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeBundleHeader,
  encodeBundleHeader,
  encodeBundlePreamble,
  type BundleHeader,
} from '../../src/core/store-format/bundle-format.js';
import { ckvcAsync, codesOf, describeRun, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { checkoutDiff, copyStore, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, hashTree, snapshotStoreExceptTmp, snapshotTree } from '../helpers/snapshots.js';
import { pool } from '../helpers/async-tasks.js';
import { randomBytes, randomFloat32, safetensorsBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

// ---------------------------------------------------------------------------------------------------------
// Test data: a checkpoint folder of a safetensors file with four 64 KiB F32 tensors, an opaque optimizer file
// and a small JSON file; each commit also snapshots a YAML config.

const ROWS = 64;
const COLS = 256;
const TENSOR_BYTES = ROWS * COLS * 4; // 64 KiB
const TENSORS = ['embed', 'layer1', 'layer2', 'head'] as const;

function writeCk(dir: string, seeds: [number, number, number, number], opt: number, step: number): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = Object.fromEntries(
    TENSORS.map((n, i) => [n, { dtype: 'F32', shape: [ROWS, COLS], bytes: randomFloat32(seeds[i]!, ROWS * COLS) }]),
  );
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors, { format: 'pt' }));
  fs.writeFileSync(path.join(dir, 'optimizer.bin'), randomBytes(opt, 48 * 1024));
  fs.writeFileSync(path.join(dir, 'trainer_state.json'), JSON.stringify({ step }));
  return hashTree(dir);
}

function writeConfig(file: string, lr: number): string {
  fs.writeFileSync(file, `model: tiny\nlr: ${lr}\nbatch: 32\n`);
  return file;
}

function quarantines(s: TestStore): string[] {
  return fs.readdirSync(path.join(s.store, 'tmp')).filter((n) => n.startsWith('quarantine-'));
}

/** Runs `ckvc verify FILE` with no store: cwd an empty folder, CKVC_DIR unset, a private TMPDIR for its quarantine. */
async function verifyFile(
  file: string,
  extra: string[] = ['--json'],
): Promise<{ r: RunResult; tmp: string; cwd: string }> {
  const cwd = tempDir('ckvc-nostore-');
  const tmp = tempDir('ckvc-vtmp-');
  const r = await ckvcAsync(['verify', file, ...extra], { cwd, env: { TMPDIR: tmp, CKVC_DIR: undefined } });
  return { r, tmp, cwd };
}

// ---------------------------------------------------------------------------------------------------------
// Bundle surgery, independent of src's reader: split a bundle into its parts, rebuild it with a fresh trailer
// hash, and rewrite its pack (FORMAT.md §4) with a fresh pack checksum.

const END = Buffer.from('CKVCBEND', 'latin1');

interface Parsed {
  headerLength: number;
  headerBytes: Buffer;
  header: BundleHeader;
  pack: Buffer;
  trailer: Buffer;
}

function parseBundle(b: Buffer): Parsed {
  const headerLength = b.readUInt32LE(12);
  const headerBytes = b.subarray(16, 16 + headerLength);
  const header = decodeBundleHeader(headerBytes, 'test');
  const pack = b.subarray(16 + headerLength, 16 + headerLength + header.packLength);
  const trailer = b.subarray(16 + headerLength + header.packLength);
  if (trailer.length !== 40) throw new Error(`unexpected bundle layout: trailer of ${trailer.length} bytes`);
  return { headerLength, headerBytes, header, pack, trailer };
}

function blake3(...parts: Buffer[]): Buffer {
  const h = new Blake3Hasher();
  for (const p of parts) h.update(p);
  return h.digestBuffer();
}

/** A bundle of this header (or raw header bytes) and pack, with a correct trailer. */
function buildBundle(header: BundleHeader | Buffer, pack: Buffer): Buffer {
  const hb = Buffer.isBuffer(header) ? header : encodeBundleHeader(header);
  const body = Buffer.concat([encodeBundlePreamble(hb.length), hb, pack]);
  return Buffer.concat([body, blake3(body), END]);
}

interface PackRecord {
  id: string;
  type: number; // 1 chunk, 2 tensor, 3 file, 4 tree, 5 commit, 6 tag
  codec: number;
  /** The 44-byte record header and the stored body. */
  head: Buffer;
  body: Buffer;
}

function parsePack(p: Buffer): PackRecord[] {
  const footer = p.subarray(p.length - 56);
  if (footer.subarray(48).toString('latin1') !== 'CKVCPEND') throw new Error('not a pack');
  const tocOffset = Number(footer.readBigUInt64LE(0));
  const count = footer.readUInt32LE(8);
  const out: PackRecord[] = [];
  for (let i = 0; i < count; i++) {
    const e = p.subarray(tocOffset + 52 * i, tocOffset + 52 * (i + 1));
    const offset = Number(e.readBigUInt64LE(36));
    const stored = e.readUInt32LE(48);
    out.push({
      id: e.subarray(0, 32).toString('hex'),
      type: e[32]!,
      codec: e[33]!,
      head: Buffer.from(p.subarray(offset, offset + 44)),
      body: Buffer.from(p.subarray(offset + 44, offset + 44 + stored)),
    });
  }
  return out;
}

/** A pack of these records, with a TOC, footer and checksum computed afresh. */
function buildPack(recs: PackRecord[]): Buffer {
  const header = Buffer.alloc(16);
  header.write('CKVCPACK', 0, 'latin1');
  header.writeUInt32LE(2, 8);
  const parts: Buffer[] = [header];
  const toc: Buffer[] = [];
  let pos = 16;
  for (const r of recs) {
    const e = Buffer.alloc(52);
    r.head.copy(e, 0, 12, 44); // id
    e[32] = r.head[0]!;
    e[33] = r.head[1]!;
    e.writeBigUInt64LE(BigInt(pos), 36);
    e.writeUInt32LE(r.head.readUInt32LE(4), 44);
    e.writeUInt32LE(r.body.length, 48);
    toc.push(e);
    parts.push(r.head, r.body);
    pos += 44 + r.body.length;
  }
  const footer = Buffer.alloc(56);
  footer.writeBigUInt64LE(BigInt(pos), 0);
  footer.writeUInt32LE(recs.length, 8);
  footer.write('CKVCPEND', 48, 'latin1');
  const before = Buffer.concat([...parts, ...toc, footer.subarray(0, 16)]);
  blake3(before).copy(footer, 16);
  return Buffer.concat([...parts, ...toc, footer]);
}

/** The bundle with its pack replaced by `recs` (header's pack_length and objects follow unless overridden). */
function withRecords(p: Parsed, recs: PackRecord[], override: Partial<BundleHeader> = {}): Buffer {
  const pack = buildPack(recs);
  return buildBundle({ ...p.header, packLength: pack.length, objects: recs.length, ...override }, pack);
}

function flipBit(b: Buffer, at: number, mask = 0x01): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ mask;
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// The source store: main with 3 commits and an annotated tag on the second; then a 4th commit where only one
// tensor changed. The bundles are packed along the way.

let work: string;
let S: TestStore;
const C: { id: string; files: Map<string, string>; configHash: string; loss: number; step: number }[] = [];
let tagId: string;
let fullFile: string;
let fullPack: any;
let incFile: string;
let incPack: any;
let full4File: string;
let full4Pack: any;

async function commitCk(
  s: TestStore,
  i: number,
  seeds: [number, number, number, number],
  opt: number,
  lr: number,
  loss: number,
  step: number,
  branch = 'main',
) {
  const dir = path.join(work, `ck${i}-${s.dir.length}-${branch}`);
  const files = writeCk(dir, seeds, opt, step);
  const cfg = writeConfig(path.join(work, `cfg${i}.yaml`), lr);
  const r = await s.jsonAsync<{ id: string; configHash: string }>([
    'commit',
    dir,
    '-b',
    branch,
    '-m',
    `checkpoint ${i}\nsecond line`,
    '--config',
    cfg,
    '--metric',
    `loss=${loss}`,
    '--step',
    String(step),
  ]);
  return { id: r.id, files, configHash: r.configHash, loss, step };
}

beforeAll(async () => {
  work = tempDir('ckvc-bundle-work-');
  S = newStore('ckvc-bundle-src-');
  C.push(await commitCk(S, 1, [1, 2, 3, 4], 100, 0.1, 0.9, 100));
  C.push(await commitCk(S, 2, [1, 22, 3, 4], 101, 0.1, 0.7, 200));
  tagId = (await S.jsonAsync<{ id: string }>(['tag', 'v1', C[1]!.id, '-m', 'release one'])).id;
  C.push(await commitCk(S, 3, [1, 22, 33, 4], 102, 0.05, 0.5, 300));
  fullFile = path.join(work, 'full.bundle');
  fullPack = await S.jsonAsync(['pack', 'main', 'v1', '-o', fullFile]);
  // The 4th checkpoint: only `embed` changed (optimizer file and config as in the 3rd).
  C.push(await commitCk(S, 4, [11, 22, 33, 4], 102, 0.05, 0.4, 400));
  incFile = path.join(work, 'inc.bundle');
  full4File = path.join(work, 'full4.bundle');
  [incPack, full4Pack] = await Promise.all([
    S.jsonAsync(['pack', 'main', '-o', incFile, '--since', C[2]!.id]),
    S.jsonAsync(['pack', 'main', '-o', full4File]),
  ]);
}, 60_000);

describe('bundle round trip', () => {
  let R: TestStore;

  it('pack writes a branch and an annotated tag with everything they reach (JSON report); a bare commit, an unknown name, pull of a missing file are refused', async () => {
    expect(fullPack.file).toBe(fullFile);
    // Each ref with the commit it names; the annotated tag also with its message.
    expect(fullPack.refs).toEqual([
      { name: 'refs/heads/main', id: C[2]!.id, commit: C[2]!.id },
      { name: 'refs/tags/v1', id: tagId, commit: C[1]!.id, message: 'release one' },
    ]);
    expect(tagId).not.toBe(C[1]!.id); // annotated: a tag object, not the commit
    expect(fullPack.prerequisites).toEqual([]);
    expect(fullPack.commits).toBe(3);
    expect(fullPack.objects).toBeGreaterThan(10);
    expect(fullPack.bytes).toBe(fs.statSync(fullFile).size);
    // Written through a temp file renamed into place: nothing else next to it.
    expect(fs.readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const out = path.join(work, 'not-written.bundle');
    const [bare, unknown, pullMissing] = await Promise.all([
      S.runAsync(['pack', C[2]!.id, '-o', out]),
      S.runAsync(['pack', 'no-such-branch', '-o', out]),
      S.runAsync(['pull', out]),
    ]);
    expect(bare.code, describeRun(bare)).toBe(15);
    expect(codesOf(bare)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(unknown.code, describeRun(unknown)).toBe(14);
    expect(codesOf(unknown)).toEqual(['CKVC_UNKNOWN_REVISION']);
    expect(fs.existsSync(out)).toBe(false);
    expect(pullMissing.code, describeRun(pullMissing)).toBe(15);
    expect(codesOf(pullMissing)).toEqual(['CKVC_INPUT_NOT_FOUND']);
  });

  it('verify FILE works with no store: refs, commits with metrics and config hashes', async () => {
    const { r, tmp, cwd } = await verifyFile(fullFile);
    expect(r.code, describeRun(r)).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v.ok).toBe(true);
    expect(v.bytes).toBe(fs.statSync(fullFile).size);
    expect(v.objects).toBe(fullPack.objects);
    expect(v.prerequisites).toEqual([]);
    expect(v.refs).toEqual([
      { name: 'refs/heads/main', id: C[2]!.id, commit: C[2]!.id },
      { name: 'refs/tags/v1', id: tagId, commit: C[1]!.id, message: 'release one' },
    ]);
    expect(v.commits.map((c: any) => c.id).sort()).toEqual(
      C.slice(0, 3)
        .map((c) => c.id)
        .sort(),
    );
    for (const want of C.slice(0, 3)) {
      const got = v.commits.find((c: any) => c.id === want.id);
      expect(got.metrics).toEqual({ loss: want.loss });
      expect(got.configHash).toBe(want.configHash);
      expect(got.step).toBe(want.step);
    }
    expect(C[0]!.configHash).toBe(C[1]!.configHash);
    expect(C[2]!.configHash).not.toBe(C[1]!.configHash);
    expect(fs.readdirSync(tmp), 'verify left its quarantine behind').toEqual([]);
    expect(fs.readdirSync(cwd), 'verify FILE created something in the current folder').toEqual([]);
    const missing = await verifyFile(path.join(work, 'no-such.bundle'));
    expect(missing.r.code, describeRun(missing.r)).toBe(15);
    expect(codesOf(missing.r)).toEqual(['CKVC_INPUT_NOT_FOUND']);
  });

  it('verify FILE --markdown prints a table of refs with the metric and config', async () => {
    const { r } = await verifyFile(fullFile, ['--markdown']);
    expect(r.code, describeRun(r)).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.some((l) => /^\|\s*ref\s*\|/.test(l))).toBe(true);
    expect(lines.some((l) => /^\|\s*-+\s*\|/.test(l))).toBe(true);
    const main = lines.find((l) => /^\|\s*main\s*\|/.test(l));
    const v1 = lines.find((l) => /^\|\s*v1\s*\|/.test(l));
    expect(main, r.stdout).toBeDefined();
    expect(v1, r.stdout).toBeDefined();
    expect(main).toContain('loss=0.5');
    expect(main).toContain(C[2]!.id.slice(0, 12));
    expect(main).toContain(C[2]!.configHash.slice(0, 12));
    expect(v1).toContain('loss=0.7');
    expect(v1).toContain(C[1]!.id.slice(0, 12));
  });

  it('pull into a fresh store: refs arrive as bundle/<name>, every commit checks out byte-identical, verify clean', async () => {
    R = newStore('ckvc-bundle-recv-');
    const r = await R.jsonAsync(['pull', fullFile]);
    expect(r.refs.map((u: any) => [u.name, u.new]).sort()).toEqual([
      ['refs/heads/bundle/main', C[2]!.id],
      ['refs/tags/bundle/v1', tagId],
    ]);
    expect(r.newObjects).toBe(fullPack.objects);
    expect(R.ref('refs/heads/main')).toBeUndefined();
    expect(R.ref('refs/tags/v1')).toBeUndefined();
    expect(R.ref('refs/heads/bundle/main')).toBe(C[2]!.id);
    expect(R.ref('refs/tags/bundle/v1')).toBe(tagId);
    const log = await R.jsonAsync<{ id: string }[]>(['log', 'bundle/main']);
    expect(log.map((c) => c.id)).toEqual([C[2]!.id, C[1]!.id, C[0]!.id]);
    const diffs = await pool(C.slice(0, 3), 2, (c) => checkoutDiff(R, c.id, c.files));
    expect(diffs.flat()).toEqual([]);
    const [v, tag, best] = await Promise.all([
      R.verify(true),
      R.jsonAsync(['show', 'bundle/v1']),
      // The commits were made on main at the sender: they are bundle/main's own here.
      R.jsonAsync<{ id: string; candidates: number }>(['best', '--metric', 'loss', '-b', 'bundle/main']),
    ]);
    expect(v.r.code, describeRun(v.r)).toBe(0);
    expect(tag.id).toBe(C[1]!.id);
    expect(tag.metrics).toEqual({ loss: 0.7 });
    expect([best.id, best.candidates]).toEqual([C[2]!.id, 3]);
    expect(quarantines(R)).toEqual([]);
  });

  it('pulling the same bundle again moves no ref and adds no object', async () => {
    const before = snapshotStoreExceptTmp(R.store);
    const r = await R.jsonAsync(['pull', fullFile]);
    expect(
      r.refs.every((u: any) => u.skipped === 'unchanged'),
      JSON.stringify(r.refs),
    ).toBe(true);
    expect(r.newObjects).toBe(0);
    expect(R.ref('refs/heads/bundle/main')).toBe(C[2]!.id);
    // Only a duplicate pack may have been added; refs, reflogs and everything else are as they were.
    expect(
      diffSnapshots(before, snapshotStoreExceptTmp(R.store)).filter(
        (d) => !/^added packs\/[0-9a-f]{64}\.pack$/.test(d),
      ),
    ).toEqual([]);
    expect((await R.verify(false)).r.code).toBe(0);
  });

  it('pack --since: the prerequisite is the --since commit and the bundle is far smaller than a full one', async () => {
    expect(incPack.prerequisites).toEqual([C[2]!.id]);
    expect(incPack.commits).toBe(1);
    expect(incPack.refs).toEqual([{ name: 'refs/heads/main', id: C[3]!.id, commit: C[3]!.id }]);
    expect(full4Pack.prerequisites).toEqual([]);
    expect(full4Pack.commits).toBe(4);
    // One 64 KiB tensor changed: the incremental bundle carries about that, the full one every version of everything.
    expect(incPack.bytes).toBeLessThan(full4Pack.bytes / 3);
    expect(incPack.bytes).toBeLessThan(TENSOR_BYTES * 1.5);
    const { r } = await verifyFile(incFile);
    expect(r.code, describeRun(r)).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v.prerequisites).toEqual([C[2]!.id]);
    expect(v.commits.map((c: any) => c.id)).toEqual([C[3]!.id]);
    expect(v.fromPrerequisites).toBeGreaterThan(0);
  });

  it('pack --since a branch that is not an ancestor (sharing a tensor): the --since commit is a prerequisite and the bundle verifies', async () => {
    // Z: `side` and `main` are unrelated roots that share three of their four tensors.
    const Z = newStore('ckvc-bundle-since-');
    const side = await commitCk(Z, 6, [61, 62, 63, 64], 160, 0.1, 0.8, 1, 'side');
    const main = await commitCk(Z, 7, [61, 62, 63, 74], 160, 0.1, 0.7, 2, 'main');
    expect((await Z.jsonAsync<{ id: string }[]>(['log', 'main'])).map((c) => c.id)).toEqual([main.id]);
    const file = path.join(work, 'since-side.bundle');
    const pk = await Z.jsonAsync(['pack', 'main', '-o', file, '--since', 'side']);
    expect(pk.bytes).toBeLessThan(TENSOR_BYTES * 1.5); // the shared tensors were left out...
    expect(pk.prerequisites).toEqual([side.id]); // ...so the receiver must have `side`
    const [{ r }, E] = [await verifyFile(file), newStore('ckvc-bundle-since-recv-')];
    expect(r.code, `pack wrote a bundle its own verify refuses: ${describeRun(r)}`).toBe(0);
    const pr = await E.runAsync(['pull', file]);
    expect(pr.code, describeRun(pr)).toBe(14);
    expect(codesOf(pr)).toEqual(['CKVC_MISSING_PREREQUISITE']);
    expect(pr.stderr).toContain(side.id.slice(0, 12));
  });

  it('an incremental bundle into a store lacking its prerequisite: exit 14 naming it, store unchanged', async () => {
    // L has the history up to the 2nd commit (a bundle of a branch there), not the 3rd.
    await S.jsonAsync(['branch', 'old', C[1]!.id]);
    const oldFile = path.join(work, 'old.bundle');
    await S.jsonAsync(['pack', 'old', '-o', oldFile]);
    const L = newStore('ckvc-bundle-lack-');
    await L.jsonAsync(['pull', oldFile]);
    expect(L.ref('refs/heads/bundle/old')).toBe(C[1]!.id);
    const before = snapshotStoreExceptTmp(L.store);
    const j = await L.runAsync(['pull', incFile, '--json']);
    expect(j.code, describeRun(j)).toBe(14);
    expect(codesOf(j)).toEqual(['CKVC_MISSING_PREREQUISITE']);
    const err = JSON.parse(j.stderr.trim().split('\n').pop()!).error;
    expect(err.message).toContain(C[2]!.id.slice(0, 12));
    expect(JSON.stringify(err.data)).toContain(C[2]!.id);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(L.store))).toEqual([]);
    expect(quarantines(L)).toEqual([]);
  });

  it('a refused pull into a just-initialised store leaves it exactly as it was (not even locks/writers/)', async () => {
    const E = newStore('ckvc-bundle-empty-');
    const before = snapshotStoreExceptTmp(E.store);
    const r = await E.runAsync(['pull', incFile]);
    expect(r.code, describeRun(r)).toBe(14);
    expect(codesOf(r)).toEqual(['CKVC_MISSING_PREREQUISITE']);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(E.store))).toEqual([]);
    expect(quarantines(E)).toEqual([]);
  });

  it('an incremental bundle into a store that has its prerequisite: imported, byte-identical, verify clean', async () => {
    const r = await R.jsonAsync(['pull', incFile]);
    expect(r.refs).toEqual([expect.objectContaining({ name: 'refs/heads/bundle/main', old: C[2]!.id, new: C[3]!.id })]);
    expect(R.ref('refs/heads/bundle/main')).toBe(C[3]!.id);
    const log = await R.jsonAsync<{ id: string }[]>(['log', 'bundle/main']);
    expect(log.map((c) => c.id)).toEqual([...C].reverse().map((c) => c.id));
    const [d, v] = await Promise.all([checkoutDiff(R, C[3]!.id, C[3]!.files), R.verify(true)]);
    expect(d).toEqual([]);
    expect(v.r.code, describeRun(v.r)).toBe(0);
  });

  it('an older bundle pulled again is up to date: a ref already holding its commit and more is left as it is', async () => {
    const r = await R.jsonAsync(['pull', fullFile]);
    expect(r.refs.find((u: any) => u.name === 'refs/heads/bundle/main')).toMatchObject({
      old: C[3]!.id,
      new: C[2]!.id,
      skipped: 'behind',
    });
    expect(R.ref('refs/heads/bundle/main')).toBe(C[3]!.id);
    const text = await R.runAsync(['pull', fullFile]);
    expect(text.code, describeRun(text)).toBe(0);
    expect(text.stdout + text.stderr).toContain(`(already holds ${C[2]!.id.slice(0, 12)} and more)`);
    // --force is for refs that diverged: it does not rewind one that is ahead.
    const forced = await R.jsonAsync(['pull', fullFile, '--force']);
    expect(forced.refs.find((u: any) => u.name === 'refs/heads/bundle/main')).toMatchObject({ skipped: 'behind' });
    expect(R.ref('refs/heads/bundle/main')).toBe(C[3]!.id);
  });

  it('--update-refs moves main itself; a non-fast-forward is refused with 13 (store unchanged) unless --force', async () => {
    const U = newStore('ckvc-bundle-upd-');
    const D = newStore('ckvc-bundle-div-');
    const [a] = await Promise.all([
      U.jsonAsync(['pull', fullFile, '--update-refs']),
      D.jsonAsync(['pull', fullFile, '--update-refs']),
    ]);
    expect(a.refs.map((u: any) => u.name).sort()).toEqual(['refs/heads/main', 'refs/tags/v1']);
    expect(U.ref('refs/heads/main')).toBe(C[2]!.id);
    expect(U.ref('refs/tags/v1')).toBe(tagId);
    expect(U.ref('refs/heads/bundle/main')).toBeUndefined();
    const b = await U.jsonAsync(['pull', incFile, '--update-refs']);
    expect(b.refs).toEqual([
      expect.objectContaining({ name: 'refs/heads/main', old: C[2]!.id, new: C[3]!.id, forced: false }),
    ]);
    expect(U.ref('refs/heads/main')).toBe(C[3]!.id);

    // A diverged main: another site (D) took the 3rd commit and committed something else on top.
    const side = await commitCk(D, 5, [7, 22, 33, 4], 103, 0.05, 0.45, 400);
    const divFile = path.join(work, 'div.bundle');
    await D.jsonAsync(['pack', 'main', '-o', divFile]);

    // Into U's main and into the bundle/ namespace of R (bundle/main at the 4th commit): both refused.
    const before = snapshotStoreExceptTmp(U.store);
    const beforeR = snapshotStoreExceptTmp(R.store);
    const [r, rr] = await Promise.all([U.runAsync(['pull', divFile, '--update-refs']), R.runAsync(['pull', divFile])]);
    expect(r.code, describeRun(r)).toBe(13);
    expect(codesOf(r)).toEqual(['CKVC_NON_FAST_FORWARD']);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(U.store))).toEqual([]);
    expect(quarantines(U)).toEqual([]);
    expect(U.ref('refs/heads/main')).toBe(C[3]!.id);
    expect(rr.code, describeRun(rr)).toBe(13);
    expect(codesOf(rr)).toEqual(['CKVC_NON_FAST_FORWARD']);
    expect(diffSnapshots(beforeR, snapshotStoreExceptTmp(R.store))).toEqual([]);

    const f = await U.jsonAsync(['pull', divFile, '--update-refs', '--force']);
    expect(f.refs).toEqual([
      expect.objectContaining({ name: 'refs/heads/main', old: C[3]!.id, new: side.id, forced: true }),
    ]);
    expect(U.ref('refs/heads/main')).toBe(side.id);
    const [d, v] = await Promise.all([checkoutDiff(U, 'main', side.files), U.verify(true)]);
    expect(d).toEqual([]);
    expect(v.r.code, describeRun(v.r)).toBe(0);
  });

  it('pruned commits travel as prune records: verify FILE ok, and checkout of a pruned commit is 19 at the receiver too', async () => {
    const P = copyStore(S, 'ckvc-bundle-prune-');
    const pr = await P.jsonAsync(['prune', '--keep-last', '1', '-b', 'main']);
    const prunedIds = pr.pruned.map((c: any) => c.id).sort();
    expect(prunedIds).toContain(C[0]!.id);
    expect(prunedIds).not.toContain(C[3]!.id);
    const gc = await P.runAsync(['gc', '--grace', '0', '--json']);
    expect(gc.code, describeRun(gc)).toBe(0);

    const file = path.join(work, 'pruned.bundle');
    const pk = await P.jsonAsync(['pack', 'main', '-o', file]);
    expect(pk.commits).toBe(4);
    expect(pk.bytes).toBeLessThan(full4Pack.bytes);
    const { r } = await verifyFile(file);
    expect(r.code, describeRun(r)).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v.pruned.map((p: any) => p.commit).sort()).toEqual(prunedIds);
    expect(v.commits).toHaveLength(4);
    // The text and the release notes say so: a backup's reader must know which checkpoints are metadata only.
    const said = `${prunedIds.length} commit(s) were pruned before packing: the data their prune released is not in the bundle`;
    expect((await verifyFile(file, [])).r.stderr).toContain(said);
    expect((await verifyFile(file, ['--markdown'])).r.stdout).toContain(said);

    const F = newStore('ckvc-bundle-prune-recv-');
    await F.jsonAsync(['pull', file]);
    const co = await F.runAsync(['checkout', C[0]!.id, '--to', tempDir('ckvc-co-')]);
    expect(co.code, describeRun(co)).toBe(19);
    expect(codesOf(co)).toEqual(['CKVC_PRUNED']);
    // The kept commit is whole.
    const [d, fv] = await Promise.all([checkoutDiff(F, C[3]!.id, C[3]!.files), F.verify(true)]);
    expect(d).toEqual([]);
    expect(fv.r.code, describeRun(fv.r)).toBe(0);
  });

  it("an alias arrives as bundle/NAME: 'alias' lists it as received, and its bare name points there", async () => {
    const P = copyStore(S, 'ckvc-bundle-alias-');
    const a = await P.jsonAsync(['alias', 'best', '--track', 'loss', '--min', '-b', 'main']);
    // An alias ref naming an annotated tag (another implementation could write one): listed, peeled, not fatal.
    const t = await P.jsonAsync<{ id: string }>(['tag', 'note', a.id, '-m', 'an annotated tag']);
    fs.mkdirSync(path.join(P.store, 'refs', 'aliases'), { recursive: true });
    fs.writeFileSync(path.join(P.store, 'refs', 'aliases', 'tagged'), `${t.id}\n`);
    const file = path.join(work, 'alias.bundle');
    await P.jsonAsync(['pack', 'main', 'best', 'tagged', '-o', file]);
    const F = newStore('ckvc-bundle-alias-recv-');
    await F.jsonAsync(['pull', file]);
    expect(F.ref('refs/aliases/bundle/best')).toBe(a.id);
    const listed = await F.jsonAsync<any[]>(['alias']);
    const step = C.find((c) => c.id === a.id)!.step;
    expect(listed).toEqual([
      expect.objectContaining({ name: 'bundle/best', id: a.id, received: true }),
      expect.objectContaining({ name: 'bundle/tagged', id: t.id, received: true, step }),
    ]);
    expect(listed[0].track).toBeUndefined();
    await F.jsonAsync(['alias', '-d', 'bundle/tagged']);
    const text = await F.check(['alias']);
    expect(text.stdout).toMatch(new RegExp(`^bundle/best  ${a.id.slice(0, 12)}  received \\(pulled or fetched`));
    const bare = await F.check(['checkout', 'best', '--to', tempDir('ckvc-co-')]);
    expect(bare.code, describeRun(bare)).toBe(14);
    expect(bare.stderr).toContain("a bundle's alias 'best' was pulled as 'bundle/best'");
    expect(await checkoutDiff(F, 'bundle/best', C.find((c) => c.id === a.id)!.files)).toEqual([]);
    const del = await F.check(['alias', '-d', 'bundle/best']);
    expect(del.code, describeRun(del)).toBe(0);
    expect(await F.jsonAsync(['alias'])).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('malformed bundles are refused and change nothing', () => {
  /** Two receivers (so two cases run at once on this 2-core machine), each with a commit of its own. */
  const receivers: TestStore[] = [];
  const free: TestStore[] = [];
  const waiting: ((s: TestStore) => void)[] = [];
  let base: Buffer;
  let p: Parsed;
  let recs: PackRecord[];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) receivers.push(newStore(`ckvc-bundle-bad-recv${i}-`));
    await Promise.all(receivers.map((m, i) => commitCk(m, 90 + i, [91 + i, 92, 93, 94], 190, 0.3, 1.5, 10)));
    free.push(...receivers);
    base = fs.readFileSync(fullFile);
    p = parseBundle(base);
    recs = parsePack(p.pack);
  });

  async function withReceiver<T>(fn: (m: TestStore) => Promise<T>): Promise<T> {
    const m = free.pop() ?? (await new Promise<TestStore>((r) => waiting.push(r)));
    try {
      return await fn(m);
    } finally {
      const w = waiting.shift();
      if (w) w(m);
      else free.push(m);
    }
  }

  /** Names of every file and folder under `root` containing `evil`. */
  function evilPaths(root: string): string[] {
    return [...snapshotTree(root).keys()].filter((k) => k.includes('evil'));
  }

  /**
   * pull FILE refuses with `exit`/`code`, the store is unchanged and no quarantine is left; with `verify`,
   * verify FILE (no store) refuses the same way and leaves nothing in its temp folder.
   */
  async function refused(
    expectIt: typeof expect,
    name: string,
    bytes: Buffer,
    exit: number,
    code: string,
    verify: boolean,
  ): Promise<void> {
    const file = path.join(work, `bad-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)}.bundle`);
    fs.writeFileSync(file, bytes);
    await withReceiver(async (M) => {
      const before = snapshotStoreExceptTmp(M.store);
      const [pull, v] = await Promise.all([M.runAsync(['pull', file]), verify ? verifyFile(file) : undefined]);
      if (v) {
        expectIt(v.r.code, `verify FILE: ${describeRun(v.r)}`).toBe(exit);
        expectIt(codesOf(v.r), `verify FILE: ${v.r.stderr}`).toEqual([code]);
        expectIt(fs.readdirSync(v.tmp), 'verify FILE left a quarantine').toEqual([]);
      }
      expectIt(pull.code, `pull FILE: ${describeRun(pull)}`).toBe(exit);
      expectIt(codesOf(pull), `pull FILE: ${pull.stderr}`).toEqual([code]);
      expectIt(diffSnapshots(before, snapshotStoreExceptTmp(M.store))).toEqual([]);
      expectIt(quarantines(M)).toEqual([]);
      expectIt(evilPaths(M.dir)).toEqual([]);
    });
  }

  it('the surgery tools are exact: rebuilding header and pack reproduces the bundle; an unknown optional capability is ignored', async () => {
    expect(buildBundle(p.header, p.pack).equals(base)).toBe(true);
    expect(buildPack(recs).equals(p.pack)).toBe(true);
    expect(recs).toHaveLength(fullPack.objects);
    expect(new Set(recs.map((r) => r.type))).toEqual(new Set([1, 2, 3, 4, 5, 6]));
    const file = path.join(work, 'optional-cap.bundle');
    fs.writeFileSync(file, buildBundle({ ...p.header, optional: ['x-future-thing'] }, p.pack));
    const T = copyStore(receivers[0]!, 'ckvc-bundle-opt-');
    const [{ r }, pr] = await Promise.all([verifyFile(file), T.runAsync(['pull', file])]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(pr.code, describeRun(pr)).toBe(0);
    expect(T.ref('refs/heads/bundle/main')).toBe(C[2]!.id);
  });

  const dropFirstChunk = () => recs.filter((r) => r !== recs.find((x) => x.type === 1));
  const setU32 = (at: number, v: number) => {
    const b = Buffer.from(base);
    b.writeUInt32LE(v, at);
    return b;
  };

  // verify: also run `verify FILE` on it (a representative subset: each costs a process).
  const cases: { name: string; make: () => Buffer; exit?: number; code?: string; verify?: boolean }[] = [
    { name: 'truncated inside the preamble', make: () => base.subarray(0, 10) },
    { name: 'truncated inside the header', make: () => base.subarray(0, 16 + Math.floor(p.headerLength / 2)) },
    {
      name: 'truncated in the middle of the pack',
      make: () => base.subarray(0, 16 + p.headerLength + Math.floor(p.pack.length / 2)),
      verify: true,
    },
    { name: 'truncated inside the trailer', make: () => base.subarray(0, base.length - 20) },
    {
      name: 'one bit flipped in a ref ID in the header',
      make: () => flipBit(base, 16 + p.headerBytes.indexOf(Buffer.from(C[2]!.id, 'hex')) + 5),
      verify: true,
    },
    {
      name: 'one bit flipped in the middle of the pack',
      make: () => flipBit(base, 16 + p.headerLength + Math.floor(p.pack.length / 2), 0x10),
      verify: true,
    },
    { name: 'one bit flipped in the trailer hash', make: () => flipBit(base, base.length - 40 + 7) },
    {
      name: "its trailer replaced by another bundle's",
      make: () => Buffer.concat([base.subarray(0, base.length - 40), fs.readFileSync(incFile).subarray(-40)]),
      verify: true,
    },
    { name: 'one byte appended', make: () => Buffer.concat([base, Buffer.from([0])]) },
    { name: 'header_length 0xFFFFFFFF', make: () => setU32(12, 0xffffffff), verify: true },
    { name: 'header_length larger than the file', make: () => setU32(12, base.length) },
    {
      name: 'a newer format version in the preamble',
      exit: 18,
      code: 'CKVC_UNSUPPORTED_VERSION',
      make: () => setU32(8, 2),
    },
    {
      name: 'an unknown required capability',
      exit: 18,
      code: 'CKVC_UNSUPPORTED_VERSION',
      verify: true,
      make: () => buildBundle({ ...p.header, required: [...p.header.required, 'chunk:quantum-dedup'] }, p.pack),
    },
    {
      name: 'a ref named refs/heads/../evil',
      make: () => buildBundle({ ...p.header, refs: [{ name: 'refs/heads/../evil', id: C[2]!.id }] }, p.pack),
      verify: true,
    },
    {
      name: 'a ref outside heads, tags and aliases (refs/remotes/x/main)',
      make: () => buildBundle({ ...p.header, refs: [{ name: 'refs/remotes/x/main', id: C[2]!.id }] }, p.pack),
    },
    {
      name: 'the same ref listed twice',
      make: () =>
        buildBundle(
          {
            ...p.header,
            refs: [
              { name: 'refs/heads/main', id: C[2]!.id },
              { name: 'refs/heads/main', id: C[1]!.id },
            ],
          },
          p.pack,
        ),
    },
    {
      name: 'a pack that lacks the parent commit and has no prerequisites (stripped from an incremental bundle)',
      verify: true,
      make: () => {
        const q = parseBundle(fs.readFileSync(incFile));
        return buildBundle({ ...q.header, prerequisites: [] }, q.pack);
      },
    },
    {
      name: 'a pack that lacks one chunk its ref needs, with no prerequisites',
      make: () => withRecords(p, dropFirstChunk()),
      verify: true,
    },
    {
      name: 'a ref to an object that is nowhere',
      make: () =>
        buildBundle(
          { ...p.header, refs: [...p.header.refs, { name: 'refs/heads/ghost', id: 'ab'.repeat(32) }] },
          p.pack,
        ),
    },
    {
      name: 'a ref to a tree, not a commit',
      make: () =>
        buildBundle(
          { ...p.header, refs: [{ name: 'refs/heads/main', id: recs.find((r) => r.type === 4)!.id }] },
          p.pack,
        ),
    },
    {
      name: '`objects` one more than the pack holds',
      make: () => buildBundle({ ...p.header, objects: p.header.objects + 1 }, p.pack),
      verify: true,
    },
    {
      name: 'a pack byte changed with the trailer recomputed (only the pack checksum catches it)',
      make: () => buildBundle(p.header, flipBit(p.pack, Math.floor(p.pack.length / 2), 0x40)),
    },
    {
      name: 'a record body that does not match its ID, pack checksum and trailer recomputed',
      verify: true,
      make: () => {
        const victim = recs.find((r) => r.type === 1 && r.codec === 0) ?? recs.find((r) => r.type === 1)!;
        return withRecords(
          p,
          recs.map((r) => (r === victim ? { ...r, body: flipBit(r.body, Math.floor(r.body.length / 2)) } : r)),
        );
      },
    },
    {
      name: 'an object listed twice in the pack',
      make: () => withRecords(p, [...recs, recs.find((r) => r.type === 1)!]),
    },
  ];

  for (const c of cases) {
    it.concurrent(`refuses ${c.name}: exit ${c.exit ?? 12} ${c.code ?? 'CKVC_BAD_BUNDLE'}`, async ({
      expect: expectIt,
    }) => {
      await refused(expectIt, c.name, c.make(), c.exit ?? 12, c.code ?? 'CKVC_BAD_BUNDLE', Boolean(c.verify));
    });
  }

  it('a bundle lacking a chunk is accepted by a store that already has the chunk (closure counts the store)', async () => {
    const file = path.join(work, 'lacks-chunk-ok.bundle');
    fs.writeFileSync(file, withRecords(p, dropFirstChunk()));
    const T = copyStore(S, 'ckvc-bundle-hasit-');
    const r = await T.runAsync(['pull', file, '--json']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(T.ref('refs/heads/bundle/main')).toBe(C[2]!.id);
    expect(await checkoutDiff(T, 'bundle/main', C[2]!.files)).toEqual([]);
  });
});
