// Metrics a training loop produces, through the CLI (issue 16): `commit --metrics-file FILE[:KEY]` from a JSON
// object or the last line of a JSONL log (Python's NaN token included); a NaN or infinite loss is recorded, shown
// and written to --json as text, and skipped by `best` and moving aliases.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStore } from '../helpers/snapshots.js';

afterAll(cleanupTemp);

describe('metrics', () => {
  it("--metrics-file reads a JSON object, a JSONL log's last line and one KEY; bad files change nothing", () => {
    const s = newStore();
    const work = tempDir('ckvc-met-');
    fs.writeFileSync(path.join(work, 'w.bin'), 'weights');
    const obj = path.join(work, 'results.json');
    fs.writeFileSync(obj, JSON.stringify({ step: 40, epoch: 2, loss: 0.5, eval: { score: 0.9, acc: 0.8 }, run: 'x' }));
    const a = s.json(['commit', path.join(work, 'w.bin'), '-b', 'm', '-m', 'a', '--metrics-file', obj]).id;
    expect(s.json(['show', a])).toMatchObject({
      step: 40,
      epoch: 2,
      metrics: { loss: 0.5, 'eval/score': 0.9, 'eval/acc': 0.8 },
    });
    const b = s.json([
      'commit',
      path.join(work, 'w.bin'),
      '-b',
      'm',
      '-m',
      'b',
      '--metrics-file',
      `${obj}:eval`,
      '--metric',
      'acc=0.7',
    ]).id;
    expect(s.json(['show', b]).metrics).toEqual({ score: 0.9, acc: 0.7 });

    const log = path.join(work, 'train.jsonl');
    fs.writeFileSync(log, '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": NaN, "lr": 0.1}\n{"step": 3, "lo');
    const c = s.json(['commit', path.join(work, 'w.bin'), '-b', 'm', '-m', 'c', '--metrics-file', log]);
    const shown = s.json(['show', c.id]);
    expect(shown.step).toBe(2);
    expect(shown.metrics).toEqual({ loss: 'NaN', lr: 0.1 });
    expect(s.ok(['show', c.id]).stdout).toMatch(/loss=NaN/);

    const before = snapshotStore(s.store);
    fs.writeFileSync(path.join(work, 'bad.json'), '{"loss": ');
    for (const spec of [path.join(work, 'bad.json'), `${obj}:nope`, path.join(work, 'missing.json')]) {
      const r = s.run(['commit', path.join(work, 'w.bin'), '-b', 'm', '-m', 'x', '--metrics-file', spec]);
      expect(r.code).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_METRIC']);
    }
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });

  it('a metric given twice is refused (it kept the last value without a word); nothing is committed', () => {
    const s = newStore();
    const before = snapshotStore(s.store);
    const f = path.join(tempDir('ckvc-metric-twice-'), 'x.bin');
    fs.writeFileSync(f, 'x');
    const r = s.run(['commit', f, '-m', 'twice', '--metric', 'loss=0.3', '--metric', 'loss=0.2']);
    expect(r.code, describeRun(r)).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_METRIC']);
    expect(r.stderr).toContain('metric "loss" is given twice (0.3 and 0.2)');
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });

  it('a NaN or infinite metric is committed and skipped by best and aliases', () => {
    const s = newStore();
    const work = tempDir('ckvc-met-');
    fs.writeFileSync(path.join(work, 'w.bin'), 'weights');
    const commit = (metric: string) =>
      s.json(['commit', path.join(work, 'w.bin'), '-b', 'm', '-m', metric, '--metric', metric]).id;
    s.ok(['alias', 'low', '--track', 'loss', '-b', 'm']);
    const nan = commit('loss=nan');
    expect(s.json(['show', nan]).metrics.loss).toBe('NaN');
    expect(s.run(['best', '--metric', 'loss', '-b', 'm']).code).not.toBe(0);
    const good = commit('loss=0.4');
    const inf = commit('loss=-inf');
    expect(s.json(['show', inf]).metrics.loss).toBe('-Infinity');
    expect(commit('loss=Infinity')).toHaveLength(64);
    expect(s.json(['best', '--metric', 'loss', '-b', 'm']).id).toBe(good);
    expect(s.json(['show', 'low']).id).toBe(good);
    const bad = s.run(['commit', path.join(work, 'w.bin'), '-b', 'm', '-m', 'x', '--metric', 'loss=abc']);
    expect(errorCodes(bad.stderr)).toEqual(['CKVC_BAD_METRIC']);
  });
});

describe('text output of metrics and history', () => {
  it('one number format (6 significant digits, --json exact), the step once in --oneline, pruned commits marked', () => {
    const s = newStore();
    const work = tempDir('ckvc-met-');
    fs.writeFileSync(path.join(work, 'w.bin'), 'weights');
    const a = s.json([
      'commit',
      path.join(work, 'w.bin'),
      '-b',
      'm',
      '-m',
      'step 100',
      '--step',
      '100',
      '--metric',
      'loss=0.123456789',
      '--metric',
      'n=3',
    ]).id;
    fs.writeFileSync(path.join(work, 'w.bin'), 'weights 2');
    s.json(['commit', path.join(work, 'w.bin'), '-b', 'm', '-m', 'later', '--step', '200', '--metric', 'loss=1e-9']);
    expect(s.json(['show', a]).metrics.loss).toBe(0.123456789);
    expect(s.ok(['show', a]).stdout).toMatch(/loss=0\.123457 n=3/);
    s.ok(['prune', '--keep-last', '1', '-b', 'm']);
    const lines = s.ok(['log', 'm', '--oneline']).stdout.trim().split('\n');
    expect(lines[0]).toMatch(/loss=1e-9 +step=200 later/);
    expect(lines[1]).toMatch(/loss=0\.123457 n=3 +step 100 \[pruned\]$/);
    expect(lines[1]).not.toMatch(/step=100/);
    expect(s.ok(['log', 'm', '--metric', 'loss']).stdout).toMatch(/0\.123457/);
    expect(s.ok(['show', a]).stdout).toMatch(/Pruned: +the data of every file released/);
  });
});

describe('metric and config keys named like Object members', () => {
  it('log --metric toString shows - where a commit lacks it; a metrics-file field or config key __proto__ is refused (15)', () => {
    const s = newStore();
    const work = tempDir('ckvc-met-proto-');
    const w = path.join(work, 'w.bin');
    fs.writeFileSync(w, 'weights');
    s.json(['commit', w, '-b', 'm', '-m', 'plain', '--metric', 'loss=1']);
    fs.writeFileSync(w, 'weights 2');
    s.json(['commit', w, '-b', 'm', '-m', 'named', '--metric', 'toString=2']);
    const rows = s.ok(['log', 'm', '--oneline', '--metric', 'toString', '--metric', 'valueOf']).stdout.trim();
    expect(rows).not.toMatch(/native code|object Object/);
    expect(rows.split('\n').map((l) => l.split(/\s+/).slice(1, 3))).toEqual([
      ['toString', 'valueOf'],
      ['2', '-'],
      ['-', '-'],
    ]);

    const before = snapshotStore(s.store);
    const m = path.join(work, 'm.json');
    fs.writeFileSync(m, '{"eval": {"__proto__": 0.5, "score": 2}}');
    const r = s.run(['commit', w, '-b', 'm', '-m', 'x', '--metrics-file', `${m}:eval`]);
    expect(r.code).toBe(15);
    expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_METRIC']);
    for (const config of ['{"lr": 1, "__proto__": "a"}', '{"lr": 1, "opt": {"__proto__": {"x": 1}}}']) {
      const c = path.join(work, 'c.json');
      fs.writeFileSync(c, config);
      const cr = s.run(['commit', w, '-b', 'm', '-m', 'x', '--config', c]);
      expect(cr.code, cr.stderr).toBe(15);
      expect(errorCodes(cr.stderr)).toEqual(['CKVC_BAD_CONFIG']);
      expect(cr.stderr).toMatch(/__proto__/);
    }
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
    // Keys named like other Object members are ordinary keys, hashed like any other.
    const [c1, c2] = [path.join(work, 'c1.json'), path.join(work, 'c2.json')];
    fs.writeFileSync(c1, '{"lr": 1}');
    fs.writeFileSync(c2, '{"lr": 1, "constructor": 2}');
    const d = s.run(['config', 'diff', c1, c2]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/constructor/);
  });
});
