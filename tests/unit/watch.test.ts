// The pure decisions behind `ckvc watch`: which names are checkpoints, what step a name carries, which log line
// describes a checkpoint, and when a checkpoint counts as complete.
import { describe, expect, it } from 'vitest';
import { metricsFromObject, parseMetricsJson, pickJsonlLine } from '../../src/api/watch/metrics-parse.js';
import {
  candidateRules,
  isCandidate,
  isTempName,
  stepFromName,
  trainingOrder,
  watchMessage,
} from '../../src/api/watch/candidate-names.js';
import { SettleTracker } from '../../src/api/watch/settle-rule.js';

describe('candidate names', () => {
  it('never takes hidden, temp, sidecar or metrics names', () => {
    const rules = candidateRules(['*'], ['train.jsonl']);
    for (const n of [
      '.hidden',
      '.tmp123',
      'step_1.pt.tmp',
      'step_1.pt.tmp.4711',
      'model.part',
      'x.partial',
      'x~',
      'tmp-checkpoint-500',
      'tmp_x',
      'step_1.pt.metrics.json',
      'train.jsonl',
    ]) {
      expect(isCandidate(n, { symlink: false }, rules), n).toBe(false);
    }
    expect(isTempName('template.pt')).toBe(false);
    expect(isTempName('step_1.pt')).toBe(false);
  });

  it('by default takes files and folders but not logs or symlinks; a pattern decides otherwise', () => {
    const def = candidateRules([]);
    expect(isCandidate('step_1000.pt', { symlink: false }, def)).toBe(true);
    expect(isCandidate('checkpoint-500', { symlink: false }, def)).toBe(true);
    expect(isCandidate('model.bin', { symlink: false }, def)).toBe(true);
    expect(isCandidate('last.ckpt', { symlink: false }, def)).toBe(true);
    for (const n of [
      'train.log',
      'events.jsonl',
      'trainer_state.json',
      'metrics.csv',
      'config.yaml',
      'zero_to_fp32.py',
      'events.out.tfevents.1700000000.host',
      'runs',
      'lightning_logs',
      'wandb',
      'latest',
    ]) {
      expect(isCandidate(n, { symlink: false }, def), n).toBe(false);
    }
    expect(isCandidate('latest', { symlink: true }, def)).toBe(false);
    const pat = candidateRules(['step_*.pt', 'latest']);
    expect(isCandidate('step_1000.pt', { symlink: false }, pat)).toBe(true);
    expect(isCandidate('checkpoint-500', { symlink: false }, pat)).toBe(false);
    expect(isCandidate('latest', { symlink: true }, pat)).toBe(true);
  });
});

describe('stepFromName', () => {
  it.each([
    ['step_1000.pt', 1000],
    ['checkpoint-500', 500],
    ['model_1000.h5', 1000],
    ['epoch=3-step=1000.ckpt', 1000],
    ['step1000_epoch3.pt', 1000],
    ['global_step1200', 1200],
    ['ckpt.tar.gz', undefined],
    ['final.safetensors', undefined],
    ['laststep5', 5],
    ['step_99999999999999999999.pt', undefined],
  ])('%s -> %s', (name, step) => {
    expect(stepFromName(name)).toBe(step);
  });
});

describe('messages and order', () => {
  it('fills {name} and {step}', () => {
    expect(watchMessage('watch: {name}', { name: 'a.pt' })).toBe('watch: a.pt');
    expect(watchMessage('step {step} ({name}) {other}', { name: 'a.pt', step: 7 })).toBe('step 7 (a.pt) {other}');
    expect(watchMessage('step {step}', { name: 'a.pt' })).toBe('step ');
  });
  it('orders by mtime, then by name with numbers compared as numbers', () => {
    const xs = [
      { name: 'checkpoint-1000', newestMtimeMs: 5 },
      { name: 'checkpoint-500', newestMtimeMs: 5 },
      { name: 'a', newestMtimeMs: 1 },
    ];
    expect(xs.sort(trainingOrder).map((x) => x.name)).toEqual(['a', 'checkpoint-500', 'checkpoint-1000']);
  });
});

describe('metrics', () => {
  it('takes numbers (nested as a/b), step and epoch; ignores the rest', () => {
    const m = metricsFromObject({
      loss: 0.3,
      eval: { acc: 0.9, name: 'x' },
      step: 100,
      epoch: 1.5,
      run: 'r1',
      ok: true,
      list: [1],
      'bad name': 1,
    });
    expect(m).toEqual({ metrics: { loss: 0.3, 'eval/acc': 0.9 }, step: 100, epoch: 1.5, skipped: ['bad name'] });
    expect(metricsFromObject({ global_step: 7 }).step).toBe(7);
    expect(metricsFromObject({ step: 1.5 }).step).toBeUndefined();
    expect(metricsFromObject(JSON.parse('{"__proto__": 1, "a": 2}')).metrics).toEqual({ a: 2 });
  });

  it('refuses a metrics file that is not one JSON object', () => {
    expect(() => parseMetricsJson('[1]', 'm.json')).toThrow(/not a JSON object/);
    expect(() => parseMetricsJson('{"a":', 'm.json')).toThrow(/not valid JSON/);
    expect(parseMetricsJson('{"a": 1}', 'm.json').metrics).toEqual({ a: 1 });
  });

  it('picks the last complete JSONL line not past the checkpoint step', () => {
    const log = '{"step": 50, "loss": 1}\n{"step": 100, "loss": 0.5}\n{"step": 150, "loss": 0.4}\n{"step": 200, "lo';
    expect(pickJsonlLine(log, { fromFileStart: true })?.metrics).toEqual({ loss: 0.4 });
    expect(pickJsonlLine(log, { fromFileStart: true, atOrBeforeStep: 120 })?.metrics).toEqual({ loss: 0.5 });
    expect(pickJsonlLine(log, { fromFileStart: true, atOrBeforeStep: 10 })).toBeUndefined();
    // A tail that starts mid-file: its first line may be cut, so it is not used.
    expect(pickJsonlLine('"loss": 9}\n', { fromFileStart: false })).toBeUndefined();
    expect(pickJsonlLine('{"loss": 9}\n', { fromFileStart: true })?.metrics).toEqual({ loss: 9 });
    expect(pickJsonlLine('\n\n', { fromFileStart: true })).toBeUndefined();
  });
});

describe('SettleTracker', () => {
  it('is complete after the settle time unchanged and at least two polls', () => {
    const t = new SettleTracker(1000);
    t.observe('a', 's1', 0);
    expect(t.isSettled('a', 5000)).toBe(false); // one poll only
    t.observe('a', 's1', 500);
    expect(t.isSettled('a', 500)).toBe(false);
    t.observe('a', 's1', 1000);
    expect(t.isSettled('a', 1000)).toBe(true);
  });

  it('restarts the clock when the signature changes, on restart(), and for names that went away', () => {
    const t = new SettleTracker(1000);
    t.observe('a', 's1', 0);
    t.observe('a', 's2', 900);
    t.observe('a', 's2', 1500);
    expect(t.isSettled('a', 1500)).toBe(false);
    expect(t.isSettled('a', 1900)).toBe(true);
    t.restart('a', 2000);
    t.observe('a', 's2', 2500);
    expect(t.isSettled('a', 2500)).toBe(false);
    expect(t.isSettled('a', 3000)).toBe(true);
    t.keepOnly(new Set());
    expect(t.names()).toEqual([]);
    expect(t.isSettled('a', 10_000)).toBe(false);
  });

  it('with settle 0 trusts a single poll', () => {
    const t = new SettleTracker(0);
    t.observe('a', 's1', 0);
    expect(t.isSettled('a', 0)).toBe(true);
  });
});
