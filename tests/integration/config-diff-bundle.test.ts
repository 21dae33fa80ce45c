// `ckvc config diff` with `FILE#REV` on either side (issue 16): the config snapshot of a commit inside a bundle,
// compared with a live config file or a store revision before the archive is published. The bundle is verified
// whole (a damaged one is refused with exit 12) and nothing of it is imported: the store stays byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { commitId, newStore, type TestStore } from '../helpers/test-store.js';
import { snapshotStore } from '../helpers/snapshots.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

let src: TestStore;
let dst: TestStore;
let bundle: string;
let incremental: string;
let cfgLive: string;
let g1: string;
let g2: string;
let g3: string;

beforeAll(() => {
  src = newStore();
  const w = (name: string, text: string) => {
    const p = path.join(src.dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const cfg1 = w('cfg1.yaml', 'lr: 0.001\nmodel:\n  layers: 4\n');
  const cfg2 = w('cfg2.yaml', 'lr: 0.002\nmodel:\n  layers: 4\nwarmup: 100\n');
  cfgLive = w('cfg.yaml', 'lr: 0.003\nmodel:\n  layers: 4\nwarmup: 100\n');
  const ckpt = path.join(src.dir, 'model.bin');
  fs.writeFileSync(ckpt, randomBytes(1, 4096));
  g1 = commitId(src, [ckpt, '-b', 'phase-g2', '-m', 'g1', '--config', cfg1]);
  fs.writeFileSync(ckpt, randomBytes(2, 4096));
  g2 = commitId(src, [ckpt, '-b', 'phase-g2', '-m', 'g2', '--config', cfg2]);
  src.ok(['tag', 'v1', g1]);
  fs.writeFileSync(ckpt, randomBytes(3, 4096));
  // Same config as g2: an incremental bundle from g2 leaves its snapshot to the prerequisites.
  g3 = commitId(src, [ckpt, '-b', 'phase-g2', '-m', 'g3', '--config', cfg2]);
  bundle = path.join(src.dir, 'g2.ckvb');
  src.ok(['pack', 'phase-g2', 'v1', '-o', bundle]);
  incremental = path.join(src.dir, 'g3.ckvb');
  src.ok(['pack', 'phase-g2', '-o', incremental, '--since', g2]);
  dst = newStore();
  dst.ok(['commit', ckpt, '-b', 'live', '-m', 'live', '--config', cfgLive]);
});

describe('config diff FILE#REV', () => {
  it('compares a bundle commit with a config file and with a store revision, importing nothing', () => {
    const before = snapshotStore(dst.store);
    const vsFile = dst.json<any>(['config', 'diff', `${bundle}#phase-g2`, cfgLive]);
    expect(vsFile.a).toMatchObject({ bundle, commit: g3 });
    expect(vsFile.b).toMatchObject({ file: cfgLive });
    expect(vsFile.changes).toEqual([{ path: 'lr', kind: 'changed', old: 0.002, new: 0.003 }]);
    const vsRev = dst.json<any>(['config', 'diff', 'live', `${bundle}#v1`]);
    expect(vsRev.b).toMatchObject({ bundle, commit: g1 });
    expect(vsRev.changes.map((c: any) => c.path).sort()).toEqual(['lr', 'warmup']);
    const text = dst.ok(['config', 'diff', `${bundle}#${g1.slice(0, 8)}`, `${bundle}#refs/heads/phase-g2`]).stdout;
    expect(text).toContain(`${bundle}#${g1.slice(0, 12)}`);
    expect(text).toMatch(/~ lr: 0\.001 -> 0\.002/);
    expect(text).toMatch(/\+ warmup: 100/);
    expect(dst.json<any>(['config', 'diff', `${bundle}#phase-g2`, `${bundle}#${g2}`]).same).toBe(true);
    expect(snapshotStore(dst.store)).toEqual(before);
    expect(fs.readdirSync(path.join(dst.store, 'tmp')).filter((n) => n.startsWith('quarantine'))).toEqual([]);
  });

  it('refuses a damaged bundle (12), an unknown revision (14) and an empty one (15), changing nothing', () => {
    const damaged = path.join(dst.dir, 'damaged.ckvb');
    const b = fs.readFileSync(bundle);
    b[Math.floor(b.length / 2)]! ^= 0xff;
    fs.writeFileSync(damaged, b);
    const before = snapshotStore(dst.store);
    const cases: [string, number, string][] = [
      [`${damaged}#phase-g2`, 12, 'CKVC_BAD_BUNDLE'],
      [`${bundle}#no-such-branch`, 14, 'CKVC_UNKNOWN_REVISION'],
      [`${bundle}#`, 15, 'CKVC_BAD_ARGUMENT'],
    ];
    for (const [side, exit, code] of cases) {
      const r = dst.run(['config', 'diff', side, cfgLive]);
      expect(r.code, describeRun(r)).toBe(exit);
      expect(errorCodes(r.stderr)).toEqual([code]);
    }
    expect(dst.run(['config', 'diff', `${bundle}#no-such-branch`, cfgLive]).stderr).toMatch(/its refs: phase-g2, v1/);
    expect(snapshotStore(dst.store)).toEqual(before);
  });

  it('reads a snapshot an incremental bundle left to its prerequisites from the store that has them', () => {
    const ok = src.json<any>(['config', 'diff', `${incremental}#phase-g2`, g2]);
    expect(ok).toMatchObject({ same: true, a: { bundle: incremental, commit: g3 } });
    const r = dst.run(['config', 'diff', `${incremental}#phase-g2`, cfgLive]);
    expect(r.code, describeRun(r)).toBe(14);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_MISSING_PREREQUISITE']);
  });
});
