// Retention for every format through the CLI (issue 16): prune releases whole files (a pickle branch kept to its
// last 5 frees the others after gc), --files narrows it, records written before whole-file release keep their
// meaning, checkout of released data fails clearly and verify stays clean; reflog expiry frees a deleted branch;
// --keep-within at its boundary and --all-branches; and what prune and gc say when they free nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { sha256 } from '../helpers/snapshots.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

/** A valid pickle (protocol 3) of one bytes object: PROTO 3, BINBYTES len, data, STOP. */
function pickleOf(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(data.length);
  return Buffer.concat([Buffer.from([0x80, 0x03, 0x42]), len, data, Buffer.from('.')]);
}

const PKL = 200_000;

/** A branch `run` of `n` commits, each with its own pickle (incompressible) and one unchanged notes file. */
function pickleBranch(s: TestStore, n: number, branch = 'run', seed = 1): { ids: string[]; sums: string[] } {
  const work = tempDir('ckvc-ret-work-');
  const ids: string[] = [];
  const sums: string[] = [];
  fs.writeFileSync(path.join(work, 'cfg.yaml'), 'lr: 0.001\n');
  for (let i = 0; i < n; i++) {
    const ck = path.join(work, 'ckpt');
    fs.mkdirSync(ck, { recursive: true });
    const bytes = pickleOf(randomBytes(seed * 1000 + i, PKL));
    fs.writeFileSync(path.join(ck, 'state.pkl'), bytes);
    sums.push(sha256(bytes));
    ids.push(
      s.json([
        'commit',
        ck,
        '-b',
        branch,
        '-m',
        `step ${i}`,
        '--step',
        String(i),
        '--metric',
        `loss=${1 / (i + 1)}`,
        '--config',
        path.join(work, 'cfg.yaml'),
      ]).id,
    );
  }
  return { ids, sums };
}

describe('prune releases whole files', () => {
  it('a pickle branch pruned to its last 5 frees the others after gc; released files refuse checkout', () => {
    const s = newStore();
    const { ids, sums } = pickleBranch(s, 8);
    const r = s.json(['prune', '--keep-last', '5', '-b', 'run']);
    expect(r.pruned.map((p: any) => p.id)).toEqual(ids.slice(0, 3).reverse());
    expect(r.releasedBytes).toBeGreaterThan(3 * PKL * 0.99);
    const g = s.json(['gc', '--grace', '0']);
    expect(g.bytesFreed).toBeGreaterThan(3 * PKL * 0.99);
    expect(g.bytesFreed).toBeLessThan(3 * PKL * 1.2);

    const out = tempDir('ckvc-ret-out-');
    const refused = s.run(['checkout', ids[0]!, '--to', path.join(out, 'a')]);
    expect(refused.code).toBe(19);
    expect(errorCodes(refused.stderr)).toEqual(['CKVC_PRUNED']);
    expect(refused.stderr).toContain('state.pkl');
    expect(refused.stderr).toContain('the whole file');
    expect(s.run(['cat', `${ids[1]}:state.pkl`]).code).toBe(19);
    for (let i = 3; i < 8; i++) {
      s.ok(['checkout', ids[i]!, '--to', path.join(out, `k${i}`)]);
      expect(sha256(fs.readFileSync(path.join(out, `k${i}`, 'state.pkl')))).toBe(sums[i]);
    }
    // Commits, configs, metrics and the file list stay; verify does not call released data missing.
    expect(s.ok(['log', 'run', '--oneline']).stdout.trim().split('\n')).toHaveLength(8);
    const shown = s.json(['show', ids[0]!]);
    expect(shown.metrics.loss).toBe(1);
    expect(s.ok(['config', 'show', ids[0]!]).stdout).toBe('lr: 0.001\n');
    expect(s.json(['ls', ids[0]!]).files.map((f: any) => f.path)).toEqual(['state.pkl']);
    expect(s.run(['verify', '--read-data']).code).toBe(0);
  });

  it('--files narrows to matching paths; a record without "files" keeps its old meaning (tensor data only)', () => {
    const s = newStore();
    const work = tempDir('ckvc-ret-files-');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      fs.writeFileSync(path.join(work, 'opt.pkl'), pickleOf(randomBytes(50 + i, PKL)));
      fs.writeFileSync(path.join(work, 'notes.bin'), randomBytes(70 + i, PKL));
      ids.push(s.json(['commit', work, '-b', 'b', '-m', `c${i}`]).id);
    }
    const r = s.json(['prune', '--keep-last', '1', '-b', 'b', '--files', '*.pkl']);
    expect(r.files).toEqual(['*.pkl']);
    // notes.bin of the pruned commit is outside --files: kept by the glob, not "shared with commits that keep it".
    expect(r.notSelectedObjects).toBeGreaterThan(0);
    expect(r.notSelectedBytes).toBeGreaterThan(PKL * 0.99);
    expect(r.stillNeededObjects).toBe(0);
    expect(s.json(['gc', '--grace', '0']).bytesFreed).toBeGreaterThan(PKL * 0.99);
    const out = tempDir('ckvc-ret-out-');
    s.ok(['checkout', ids[0]!, '--to', out, '--path', 'notes.bin']);
    expect(fs.readFileSync(path.join(out, 'notes.bin')).equals(randomBytes(70, PKL))).toBe(true);
    const refused = s.run(['checkout', ids[0]!, '--to', path.join(out, 'x'), '--path', 'opt.pkl']);
    expect(refused.code).toBe(19);

    // A record as versions before whole-file release wrote it: opaque files are not released.
    const t = newStore();
    fs.writeFileSync(path.join(work, 'opt.pkl'), pickleOf(randomBytes(90, PKL)));
    const old = t.json(['commit', work, '-b', 'b', '-m', 'old']).id;
    fs.writeFileSync(path.join(work, 'opt.pkl'), pickleOf(randomBytes(91, PKL)));
    t.json(['commit', work, '-b', 'b', '-m', 'new']);
    fs.mkdirSync(path.join(t.store, 'pruned'), { recursive: true });
    fs.writeFileSync(
      path.join(t.store, 'pruned', `${old}.json`),
      `${JSON.stringify({ commit: old, time: 1, tensors: null })}\n`,
    );
    expect(t.json(['gc', '--grace', '0']).bytesFreed).toBe(0);
    t.ok(['checkout', old, '--to', path.join(out, 'old')]);
    expect(t.run(['verify', '--read-data']).code).toBe(0);
  });

  it('a prune record that does not parse releases nothing: gc frees nothing for it, and verify names it', () => {
    const t = newStore();
    const work = tempDir('ckvc-ret-garbage-');
    fs.writeFileSync(path.join(work, 'opt.pkl'), pickleOf(randomBytes(92, PKL)));
    const old = t.json(['commit', work, '-b', 'b', '-m', 'old']).id;
    fs.writeFileSync(path.join(work, 'opt.pkl'), pickleOf(randomBytes(93, PKL)));
    t.json(['commit', work, '-b', 'b', '-m', 'new']);
    // A record of one optimizer glob, damaged on disk: read as "everything", gc would free the whole commit.
    fs.mkdirSync(path.join(t.store, 'pruned'), { recursive: true });
    fs.writeFileSync(path.join(t.store, 'pruned', `${old}.json`), `{"commit": "${old.slice(0, 20)}`);
    expect(t.json(['gc', '--grace', '0']).bytesFreed).toBe(0);
    const v = t.run(['verify', '--read-data', '--json']);
    expect(v.code).toBe(12);
    const problems = JSON.parse(v.stdout).problems;
    expect(problems.map((p: { code: string }) => p.code)).toEqual(['CKVC_CORRUPT_OBJECT']);
    expect(problems[0].message).toContain(`prune record pruned/${old}.json does not parse`);
    const out = tempDir('ckvc-ret-garbage-out-');
    t.ok(['checkout', old, '--to', out]);
    expect(fs.readFileSync(path.join(out, 'opt.pkl')).equals(pickleOf(randomBytes(92, PKL)))).toBe(true);
    t.ok(['prune', '--keep-last', '1', '-b', 'b']); // written anew, whole
    t.ok(['verify']);
  });

  it('says what will not be freed and why, and gc says when the grace period kept everything', () => {
    const s = newStore();
    const work = tempDir('ckvc-ret-same-');
    fs.writeFileSync(path.join(work, 'same.pkl'), pickleOf(randomBytes(5, PKL)));
    s.ok(['commit', work, '-b', 'b', '-m', 'one']);
    s.ok(['commit', work, '-b', 'b', '-m', 'two']);
    const r = s.run(['prune', '--keep-last', '1', '-b', 'b']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/will free|released \d/);
    expect(r.stderr).toContain('frees nothing');
    expect(r.stderr).toMatch(/not freed: .* shared with commits that keep them/);

    const { ids } = pickleBranch(s, 3, 'c', 7);
    expect(ids.length).toBe(3);
    const p = s.run(['prune', '--keep-last', '1', '-b', 'c']);
    expect(p.stderr).toMatch(/will free \d/);
    const g = s.run(['gc']);
    expect(g.code).toBe(0);
    expect(g.stderr).toContain('the grace period kept everything');
    expect(g.stderr).toContain("'ckvc gc --grace 0'");
  });
});

describe('reflog expiry', () => {
  it('a deleted branch is freed once its reflog lines expire (--expire-reflog 0), not before', () => {
    const s = newStore();
    pickleBranch(s, 1, 'main', 3);
    pickleBranch(s, 2, 'tmp', 4);
    s.ok(['branch', '-d', 'tmp']);
    const kept = s.json(['gc', '--grace', '0']);
    expect(kept.bytesFreed).toBe(0);
    expect(kept.reflogLinesExpired).toBe(0);
    const dry = s.json(['gc', '--grace', '0', '--expire-reflog', '0', '--dry-run']);
    expect(dry.bytesFreed).toBeGreaterThan(2 * PKL * 0.99);
    const g = s.json(['gc', '--grace', '0', '--expire-reflog', '0']);
    expect(g.reflogLinesExpired).toBe(dry.reflogLinesExpired);
    expect(g.bytesFreed).toBe(dry.bytesFreed);
    expect(g.bytesFreed).toBeGreaterThan(2 * PKL * 0.99);
    // main's own reflog names only reachable commits: it stays whole.
    expect(s.ok(['reflog', 'main']).stdout.trim().split('\n')).toHaveLength(1);
    expect(s.run(['verify', '--read-data']).code).toBe(0);
    s.ok(['branch', 'tmp', 'main']); // no stray folder or lock blocks the name
    const bad = s.run(['gc', '--expire-reflog', 'soon']);
    expect(bad.code).toBe(15);
    expect(errorCodes(bad.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
  });
});

describe('keep-within and all-branches', () => {
  it('keeps a commit exactly at the boundary and prunes it 1 ms inside', async () => {
    const s = newStore();
    const { ids } = pickleBranch(s, 2, 'w', 11);
    await new Promise((r) => setTimeout(r, 30));
    const last = pickleBranch(s, 1, 'w', 12).ids[0]!;
    const times = Object.fromEntries([...ids, last].map((id) => [id, s.json(['show', id]).time as number]));
    const gap = times[last]! - times[ids[1]!]!;
    const at = s.json(['prune', '--keep-within', `${gap}ms`, '-b', 'w', '--dry-run']);
    expect(at.pruned.map((p: any) => p.id)).toEqual([ids[0]]);
    expect(at.kept.find((k: any) => k.id === ids[1]).reasons).toEqual([`within ${gap}ms of the newest`]);
    const inside = s.json(['prune', '--keep-within', `${gap - 1}ms`, '-b', 'w', '--dry-run']);
    expect(inside.pruned.map((p: any) => p.id)).toEqual([ids[1], ids[0]]);
    expect(s.json(['prune', '--keep-within', '30d', '-b', 'w', '--dry-run']).pruned).toEqual([]);
    const none = s.run(['prune', '-b', 'w']);
    expect(none.code).toBe(15);
    expect(errorCodes(none.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
  });

  it('--all-branches applies one policy to every branch', () => {
    const s = newStore();
    const a = pickleBranch(s, 3, 'a', 21).ids;
    const b = pickleBranch(s, 3, 'b', 22).ids;
    const r = s.json(['prune', '--keep-last', '1', '--all-branches']);
    expect(r.branches.sort()).toEqual(['a', 'b']);
    expect(r.pruned.map((p: any) => p.id).sort()).toEqual([a[0], a[1], b[0], b[1]].sort());
    expect(s.json(['gc', '--grace', '0']).bytesFreed).toBeGreaterThan(4 * PKL * 0.99);
  });
});
