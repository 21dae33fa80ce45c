// What travels besides objects (spec/BUNDLE.md §2, §4, §5; PROTOCOL.md §4): config labels ride with the commits
// whose configs they label, in `pack` bundles and in the bundles of push and fetch; annotated tags' messages are
// tag objects and travel as such. `pack` and `verify FILE` show each ref's commit, tag message and config label.
// A received label never replaces a local one (kept, with a warning), and a bundle whose labels break the rules
// is refused whole with the store left as it was.
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
import { errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStoreExceptTmp } from '../helpers/snapshots.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

let S: TestStore;
let work: string;
let bundle: string;
let c1: string;
let c2: string;
let tagId: string;
const cfg: Record<'A' | 'B' | 'OTHER', string> = { A: '', B: '', OTHER: '' };

function configOf(s: TestStore, rev: string): string {
  return s.json<{ config: { hash: string } }>(['show', rev]).config.hash;
}

function labelOf(s: TestStore, rev: string): string | undefined {
  return s.json<{ label?: string }>(['config', 'show', rev]).label;
}

/** The bundle's bytes with its header replaced (`change` edits the decoded header) and a fresh trailer. */
function withHeader(file: string, change: (h: BundleHeader) => BundleHeader): string {
  const b = fs.readFileSync(file);
  const headerLength = b.readUInt32LE(12);
  const header = decodeBundleHeader(b.subarray(16, 16 + headerLength), 'test');
  const pack = b.subarray(16 + headerLength, 16 + headerLength + header.packLength);
  const hb = encodeBundleHeader(change(header));
  const body = Buffer.concat([encodeBundlePreamble(hb.length), hb, pack]);
  const h = new Blake3Hasher();
  h.update(body);
  const out = path.join(work, `edited-${fs.readdirSync(work).length}.bundle`);
  fs.writeFileSync(out, Buffer.concat([body, h.digestBuffer(), Buffer.from('CKVCBEND', 'latin1')]));
  return out;
}

beforeAll(() => {
  S = newStore('ckvc-meta-src-');
  work = tempDir('ckvc-meta-work-');
  const file = path.join(S.dir, 'model.bin');
  const config = path.join(S.dir, 'config.yaml');
  const commit = (seed: number, lr: number, branch: string) => {
    fs.writeFileSync(file, randomBytes(seed, 4096));
    fs.writeFileSync(config, `lr: ${lr}\n`);
    return commitId(S, [file, '-b', branch, '-m', `checkpoint ${seed}`, '--config', config]);
  };
  c1 = commit(1, 0.1, 'main');
  c2 = commit(2, 0.01, 'main');
  commit(3, 0.5, 'other');
  cfg.A = configOf(S, c1);
  cfg.B = configOf(S, c2);
  cfg.OTHER = configOf(S, 'other');
  S.ok(['config', 'label', cfg.A, 'baseline | lr 0.1']);
  S.ok(['config', 'label', cfg.B, 'fine-tune']);
  S.ok(['config', 'label', cfg.OTHER, 'not on main']);
  tagId = S.json<{ id: string }>(['tag', 'v1', c1, '-m', 'release one\nchosen by hand']).id;
  bundle = path.join(work, 'main.bundle');
  S.ok(['pack', 'main', 'v1', '-o', bundle]);
}, 60_000);

describe('pack and verify FILE', () => {
  it("pack names the commit each ref names and carries the labels of its commits' configs only", () => {
    const again = path.join(work, 'again.bundle');
    const r = S.json<any>(['pack', 'main', 'v1', '-o', again]);
    expect(r.refs).toEqual([
      { name: 'refs/heads/main', id: c2, commit: c2 },
      { name: 'refs/tags/v1', id: tagId, commit: c1, message: 'release one\nchosen by hand' },
    ]);
    const labels = [
      { config: cfg.A, text: 'baseline | lr 0.1' },
      { config: cfg.B, text: 'fine-tune' },
    ];
    expect(r.labels).toEqual(labels.sort((a, b) => (a.config < b.config ? -1 : 1)));
    const text = S.ok(['pack', 'main', 'v1', '-o', path.join(work, 'text.bundle')]);
    expect(text.stdout).toBe(
      `refs/heads/main  ${c2.slice(0, 12)}\n` +
        `refs/tags/v1  ${c1.slice(0, 12)}  (tag ${tagId.slice(0, 12)}: release one)\n`,
    );
    expect(text.stderr).toContain('2 config label(s)');
  });

  it('verify FILE shows labels and the tag message in text, --json and --markdown', () => {
    const cwd = tempDir('ckvc-meta-nostore-');
    const v = S.json<any>(['verify', bundle], { cwd });
    expect(v.refs[1]).toEqual({ name: 'refs/tags/v1', id: tagId, commit: c1, message: 'release one\nchosen by hand' });
    expect(new Map(v.labels.map((l: any) => [l.config, l.text]))).toEqual(
      new Map([
        [cfg.A, 'baseline | lr 0.1'],
        [cfg.B, 'fine-tune'],
      ]),
    );
    const text = S.ok(['verify', bundle], { cwd }).stdout.split('\n');
    expect(text[0]).toContain(`config ${cfg.B.slice(0, 12)} (fine-tune)`);
    expect(text[1]).toContain(`config ${cfg.A.slice(0, 12)} (baseline | lr 0.1)`);
    expect(text[1]).toMatch(/\[tag: release one\]$/);
    const md = S.ok(['verify', bundle, '--markdown'], { cwd })
      .stdout.split('\n')
      .filter((l) => l.startsWith('|'));
    expect(md[0]).toBe('| ref | commit | step | metrics | config | message | tag message |');
    expect(md[2]).toBe(
      `| main | \`${c2.slice(0, 12)}\` |  |  | \`${cfg.B.slice(0, 12)}\` fine-tune | checkpoint 2 |  |`,
    );
    expect(md[3]).toBe(
      `| v1 | \`${c1.slice(0, 12)}\` |  |  | \`${cfg.A.slice(0, 12)}\` baseline \\| lr 0.1 | ` +
        'checkpoint 1 | release one |',
    );
  });

  it('a local label no reader would take (a control character) stays home; the bundle stays readable', () => {
    const T = newStore('ckvc-meta-ctl-');
    const file = path.join(T.dir, 'w.bin');
    const config = path.join(T.dir, 'c.yaml');
    fs.writeFileSync(file, randomBytes(9, 1024));
    fs.writeFileSync(config, 'lr: 3\n');
    const c = commitId(T, [file, '-b', 'main', '-m', 'x', '--config', config]);
    T.ok(['config', 'label', configOf(T, c), 'red \x1b[31m']);
    const out = path.join(work, 'ctl.bundle');
    expect(T.json<any>(['pack', 'main', '-o', out]).labels).toEqual([]);
    expect(T.json<any>(['verify', out]).labels).toEqual([]);
  });
});

describe('receiving labels', () => {
  it('pull FILE takes labels where none exist and keeps a different local one, with a warning', () => {
    const R = newStore('ckvc-meta-recv-');
    expect(R.json<any>(['pull', bundle]).warnings).toEqual([]);
    expect(labelOf(R, 'bundle/main')).toBe('fine-tune');
    expect(labelOf(R, c1)).toBe('baseline | lr 0.1');
    expect(R.json<any>(['show', 'bundle/v1']).tags).toEqual([
      expect.objectContaining({ name: 'bundle/v1', message: 'release one\nchosen by hand' }),
    ]);

    const Q = newStore('ckvc-meta-keep-');
    Q.ok(['config', 'label', cfg.B, 'mine']);
    const r = Q.run(['pull', bundle]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `ckvc: warning (CKVC_WOULD_OVERWRITE): kept the local label of config ${cfg.B.slice(0, 12)} ("mine")`,
    );
    expect(labelOf(Q, c2)).toBe('mine');
    expect(labelOf(Q, c1)).toBe('baseline | lr 0.1');
    // Pulled again: nothing to take, the same warning, nothing changed.
    const before = snapshotStoreExceptTmp(Q.store);
    const again = Q.json<any>(['pull', bundle]);
    expect(again.warnings).toEqual([
      { config: cfg.B, code: 'CKVC_WOULD_OVERWRITE', message: expect.stringContaining('"fine-tune"') },
    ]);
    expect(diffSnapshots(before, snapshotStoreExceptTmp(Q.store))).toEqual([]);
  });

  it('a bundle of an older writer (no labels key) reads as before', () => {
    const old = withHeader(bundle, (h) => ({ ...h, labels: undefined }));
    expect(S.json<any>(['verify', old]).labels).toEqual([]);
    const R = newStore('ckvc-meta-old-');
    R.ok(['pull', old]);
    expect(labelOf(R, 'bundle/main')).toBeUndefined();
  });

  it('a label for a config no commit of the bundle uses, or with a control character, refuses the bundle whole', () => {
    const R = newStore('ckvc-meta-bad-');
    R.ok(['config', 'label', cfg.OTHER, 'here first']);
    const before = snapshotStoreExceptTmp(R.store);
    const stranger = withHeader(bundle, (h) => ({
      ...h,
      labels: [...h.labels!, { config: '11'.repeat(32), text: 'elsewhere' }],
    }));
    const control = withHeader(bundle, (h) => ({
      ...h,
      labels: h.labels!.map((l) => ({ ...l, text: `${l.text}\x1b[2J` })),
    }));
    for (const file of [stranger, control]) {
      for (const r of [R.run(['pull', file]), R.run(['verify', file])]) {
        expect(r.code, r.stderr).toBe(12);
        expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_BUNDLE']);
      }
    }
    expect(R.run(['pull', stranger]).stderr).toContain('which no commit in it uses');
    expect(diffSnapshots(before, snapshotStoreExceptTmp(R.store))).toEqual([]);
    expect(fs.readdirSync(path.join(R.store, 'tmp')).filter((n) => n.startsWith('quarantine-'))).toEqual([]);
  });
});

describe('push and fetch through a folder remote', () => {
  it('labels and annotated tags travel both ways; a fetch keeps a local label and warns', () => {
    const remote = newStore('ckvc-meta-remote-');
    S.ok(['remote', 'add', 'shared', remote.store]);
    S.ok(['push', 'shared', 'main', 'v1']);
    expect(labelOf(remote, 'main')).toBe('fine-tune');
    expect(labelOf(remote, c1)).toBe('baseline | lr 0.1');
    // `other` was not pushed: its label stays home too.
    const stored = JSON.parse(fs.readFileSync(path.join(remote.store, 'config-labels.json'), 'utf8'));
    expect(Object.keys(stored).sort()).toEqual([cfg.A, cfg.B].sort());

    const F = newStore('ckvc-meta-fetch-');
    F.ok(['config', 'label', cfg.A, 'ours']);
    F.ok(['remote', 'add', 'shared', remote.store]);
    const f = F.json<any>(['fetch', 'shared']);
    expect(f.warnings).toEqual([
      { config: cfg.A, code: 'CKVC_WOULD_OVERWRITE', message: expect.stringContaining('"ours"') },
    ]);
    expect(labelOf(F, c1)).toBe('ours');
    expect(labelOf(F, 'shared/main')).toBe('fine-tune');
    expect(F.json<any>(['show', 'v1']).tags).toEqual([
      expect.objectContaining({ name: 'v1', message: 'release one\nchosen by hand' }),
    ]);
  });
});
