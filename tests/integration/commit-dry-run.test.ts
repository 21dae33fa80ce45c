// `ckvc commit --dry-run` through the CLI (issue 16): every input checked (paths, config parse, metrics, ref
// name), the config compared with the parent's, and what would be stored reported — with every store byte
// unchanged, and the new bytes it reports within 1% of what the real commit then stores.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore } from '../helpers/test-store.js';
import { diffSnapshots, packBytes, snapshotStore } from '../helpers/snapshots.js';
import { randomBytes, safetensorsBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

describe('commit --dry-run', () => {
  it('writes nothing, reports the config keys that differ from the parent, and predicts the new bytes', () => {
    const s = newStore();
    const work = tempDir('ckvc-dry-');
    const ck = path.join(work, 'ckpt');
    fs.mkdirSync(ck);
    const cfg = path.join(work, 'cfg.yaml');
    fs.writeFileSync(cfg, 'lr: 0.001\nlayers: 4\n');
    const shared = randomBytes(1, 1 << 20);
    const write = (seed: number) => {
      fs.writeFileSync(
        path.join(ck, 'model.safetensors'),
        safetensorsBytes({
          shared: { dtype: 'F32', shape: [shared.length / 4], bytes: shared },
          head: { dtype: 'F32', shape: [1 << 18], bytes: randomBytes(seed, 1 << 20) },
        }),
      );
      fs.writeFileSync(path.join(ck, 'state.pkl'), randomBytes(seed + 100, 700_000));
    };
    write(2);
    s.json(['commit', ck, '-b', 'run', '-m', 'first', '--config', cfg]);
    write(3);
    fs.writeFileSync(cfg, 'lr: 0.0003\nlayers: 4\nwarmup: 100\n');

    const before = snapshotStore(s.store);
    const dry = s.json([
      'commit',
      ck,
      '-b',
      'run',
      '-m',
      'second',
      '--config',
      cfg,
      '--metric',
      'loss=0.2',
      '--step',
      '7',
      '--dry-run',
    ]);
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    expect(dry).toMatchObject({
      dryRun: true,
      branch: 'run',
      newBranch: false,
      files: 2,
      tensors: 2,
      step: 7,
      metrics: { loss: 0.2 },
    });
    expect(dry.config.changes.map((c: any) => [c.path, c.kind])).toEqual([
      ['lr', 'changed'],
      ['warmup', 'added'],
    ]);
    const human = s.run(['commit', ck, '-b', 'run', '-m', 'second', '--config', cfg, '--dry-run']);
    expect(human.stdout).toMatch(/dry run: would commit 2 file\(s\), 2 tensor\(s\)/);
    expect(human.stdout).toMatch(/2 key\(s\) differ from the parent's: lr, warmup/);
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);

    const packsBefore = packBytes(s.store);
    const real = s.json([
      'commit',
      ck,
      '-b',
      'run',
      '-m',
      'second',
      '--config',
      cfg,
      '--metric',
      'loss=0.2',
      '--step',
      '7',
    ]);
    expect(real.newBytes).toBe(dry.newBytes);
    const stored = packBytes(s.store) - packsBefore;
    expect(Math.abs(stored - dry.newBytes) / stored).toBeLessThan(0.01);
    // The unchanged tensor is not new: a little over the changed tensor and the pickle.
    expect(dry.newBytes).toBeGreaterThan((1 << 20) + 700_000);
    expect(dry.newBytes).toBeLessThan((1 << 20) + 700_000 + 4096);
  });

  it('refuses what a commit would refuse, changing nothing', () => {
    const s = newStore();
    const work = tempDir('ckvc-dry-');
    fs.writeFileSync(path.join(work, 'w.bin'), 'x');
    fs.writeFileSync(path.join(work, 'bad.yaml'), 'a: [1,\n');
    const before = snapshotStore(s.store);
    const cases: [string[], string][] = [
      [['--metric', 'loss=abc'], 'CKVC_BAD_METRIC'],
      [['--config', path.join(work, 'bad.yaml')], 'CKVC_BAD_CONFIG'],
      [['-b', 'a b'], 'CKVC_BAD_REF_NAME'],
      [['--parent', 'nope'], 'CKVC_UNKNOWN_REVISION'],
    ];
    for (const [extra, code] of cases) {
      const r = s.run(['commit', path.join(work, 'w.bin'), '-m', 'x', '--dry-run', ...extra]);
      expect(errorCodes(r.stderr), extra.join(' ')).toEqual([code]);
    }
    const missing = s.run(['commit', path.join(work, 'nope.bin'), '-m', 'x', '--dry-run']);
    expect(missing.code).not.toBe(0);
    const fresh = s.json(['commit', path.join(work, 'w.bin'), '-m', 'x', '-b', 'new', '--dry-run']);
    expect(fresh).toMatchObject({ newBranch: true, parents: [] });
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });
});
