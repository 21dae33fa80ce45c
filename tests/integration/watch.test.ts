// `ckvc watch` from the outside: the real CLI watches a folder that the test writes checkpoints into the way a
// training loop does (slowly, into temp names then renamed, as folders), and every commit is checked in the
// store: made once, only when complete, with the right metrics, byte-identical on checkout, never twice after
// a restart; and signals end the watcher without losing or tearing a commit.
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, errorCodes, type RunResult } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { diffSnapshots, snapshotStore, treeDifferences } from '../helpers/snapshots.js';
import { sleep } from '../helpers/async-tasks.js';
import { randomBytes, writeSafetensors } from '../helpers/data.js';

afterAll(cleanupTemp);

const MiB = 1024 * 1024;
/** Fast polling so the whole file runs in seconds; pauses in the writers below stay well under --settle. */
const FAST = ['--interval', '0.1', '--settle', '0.3'];

interface Watcher {
  child: ReturnType<TestStore['start']>['child'];
  done: Promise<RunResult>;
  stdout(): string;
  stderr(): string;
  /** The "ID NAME" lines printed so far. */
  commits(): { id: string; name: string }[];
  waitFor(what: string, pred: () => boolean, ms?: number): Promise<void>;
}

function startWatch(s: TestStore, args: string[]): Watcher {
  const r = s.start(['watch', ...args]);
  let stdout = '';
  let stderr = '';
  let exited = false;
  r.child.stdout!.on('data', (d: string) => {
    stdout += d;
  });
  r.child.stderr!.on('data', (d: string) => {
    stderr += d;
  });
  void r.done.then(() => {
    exited = true;
  });
  const commits = () =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [id, name] = l.split(' ');
        return { id: id!, name: name! };
      });
  return {
    child: r.child,
    done: r.done,
    stdout: () => stdout,
    stderr: () => stderr,
    commits,
    async waitFor(what, pred, ms = 20_000) {
      const end = Date.now() + ms;
      while (!pred()) {
        if (exited || Date.now() > end)
          throw new Error(
            `${exited ? 'watcher exited' : 'timed out'} waiting for ${what}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
          );
        await sleep(20);
      }
    },
  };
}

const watching = (w: Watcher) => w.waitFor('the watcher to start', () => /ckvc watch: watching/.test(w.stderr()));

async function stopWith(w: Watcher, signal: NodeJS.Signals): Promise<RunResult> {
  w.child.kill(signal);
  return w.done;
}

/** The branch's commits, oldest first. */
function history(s: TestStore, branch: string): any[] {
  return s.json<any[]>(['log', branch]).reverse();
}

function checkoutTo(s: TestStore, rev: string): string {
  const out = tempDir('ckvc-watch-out-');
  s.ok(['checkout', rev, '--to', out]);
  return out;
}

describe('ckvc watch', () => {
  it('commits a file written slowly in pieces once, only after it is complete, byte-identical on checkout', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    // Pauses of 100 ms between pieces, --settle 0.5 s: a margin for a busy machine.
    const w = startWatch(s, [dir, '-b', 'run', '--interval', '0.1', '--settle', '0.5']);
    await watching(w);
    const target = path.join(dir, 'step_1000.pt');
    const data = randomBytes(1, 2 * MiB);
    const pieces = 8;
    const piece = data.length / pieces;
    for (let i = 0; i < pieces; i++) {
      // Still being written: nothing may have been committed yet.
      expect(w.commits(), w.stderr()).toEqual([]);
      fs.appendFileSync(target, data.subarray(i * piece, (i + 1) * piece));
      await sleep(100);
    }
    await w.waitFor('the commit', () => w.commits().length === 1);
    await sleep(400); // more polls: it must not be committed again
    const r = await stopWith(w, 'SIGTERM');
    expect(r.code, describeRun(r)).toBe(0);
    expect(w.commits().map((c) => c.name)).toEqual(['step_1000.pt']);

    const log = history(s, 'run');
    expect(log).toHaveLength(1);
    expect(log[0].id).toBe(w.commits()[0]!.id);
    expect(log[0].step).toBe(1000);
    expect(log[0].message).toBe('watch: step_1000.pt');
    expect(log[0].labels['watch.source']).toBe('step_1000.pt');
    expect(log[0].labels['watch.signature']).toMatch(/^file:2097152:\d+$/);
    const out = checkoutTo(s, 'run');
    expect(fs.readFileSync(path.join(out, 'step_1000.pt')).equals(data)).toBe(true);
  });

  it('commits a folder checkpoint once it is renamed into place, with metrics.json from inside it', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    const w = startWatch(s, [dir, '-b', 'hf', ...FAST, '-m', 'hf step {step}']);
    await watching(w);
    // HF Trainer stages a checkpoint as tmp-checkpoint-N and renames it when complete.
    const staging = path.join(dir, 'tmp-checkpoint-500');
    fs.mkdirSync(path.join(staging, 'rng'), { recursive: true });
    writeSafetensors(
      path.join(staging, 'model.safetensors'),
      { w: { dtype: 'F32', shape: [128, 256] }, b: { dtype: 'F32', shape: [256] } },
      undefined,
      5,
    );
    fs.writeFileSync(path.join(staging, 'optimizer.pt'), randomBytes(6, 300_000));
    fs.writeFileSync(path.join(staging, 'rng', 'state.bin'), randomBytes(7, 1000));
    fs.writeFileSync(path.join(staging, 'metrics.json'), JSON.stringify({ eval_loss: 0.25, epoch: 1 }));
    await sleep(600); // past --settle: the staging folder is never a candidate
    expect(w.commits()).toEqual([]);
    const final = path.join(dir, 'checkpoint-500');
    fs.renameSync(staging, final);
    await w.waitFor('the commit', () => w.commits().length === 1);
    const r = await stopWith(w, 'SIGINT');
    expect(r.code, describeRun(r)).toBe(0);

    const [c] = history(s, 'hf');
    expect(c.labels['watch.source']).toBe('checkpoint-500');
    expect(c.labels['watch.signature']).toMatch(/^folder:4:\d+:\d+:[0-9a-f]{16}$/);
    expect(c).toMatchObject({ step: 500, epoch: 1, metrics: { eval_loss: 0.25 }, message: 'hf step 500' });
    expect(treeDifferences(final, checkoutTo(s, 'hf'))).toEqual([]);
  });

  it('takes only what --pattern names; by default leaves out hidden, temp and log names', () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    for (const n of ['step_1.pt', 'model.bin', 'step_2.pt.tmp', '.hidden', 'train.log', 'trainer_state.json'])
      fs.writeFileSync(path.join(dir, n), n);
    const p = s.run(['watch', dir, '-b', 'p', '--pattern', 'step_*', '--once', ...FAST]);
    expect(p.code, describeRun(p)).toBe(0);
    const names = (r: RunResult) =>
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[1])
        .sort();
    expect(names(p)).toEqual(['step_1.pt']);
    const d = s.run(['watch', dir, '-b', 'd', '--once', ...FAST]);
    expect(d.code, describeRun(d)).toBe(0);
    expect(names(d)).toEqual(['model.bin', 'step_1.pt']);
  });

  it('reads metrics from the matching line of a JSONL log and from sidecars, which win', () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    const logFile = path.join(tempDir('ckvc-watch-log-'), 'train.jsonl');
    // Training logs on past the checkpoint while it settles; the last line is still being written.
    fs.writeFileSync(
      logFile,
      `${[
        { step: 50, loss: 1.0 },
        { step: 100, loss: 0.5, lr: 0.01 },
        { step: 200, loss: 0.9, lr: 0.001 },
        { step: 250, loss: 0.2, epoch: 3 },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n')}\n{"step": 300, "lo`,
    );
    const at = (n: string, sec: number) => {
      fs.writeFileSync(path.join(dir, n), n);
      fs.utimesSync(path.join(dir, n), sec, sec); // training order
    };
    at('step_100.pt', 1000);
    at('step_200.pt', 2000);
    at('final.pt', 3000);
    fs.writeFileSync(
      path.join(dir, 'step_200.pt.metrics.json'),
      JSON.stringify({ loss: 0.1, eval: { score: 3 }, epoch: 2 }),
    );
    const r = s.run(['watch', dir, '-b', 'm', '--metrics-file', logFile, '--once', ...FAST]);
    expect(r.code, describeRun(r)).toBe(0);
    const log = history(s, 'm');
    expect(log.map((c) => c.labels['watch.source'])).toEqual(['step_100.pt', 'step_200.pt', 'final.pt']);
    expect(log[0]).toMatchObject({ step: 100, metrics: { loss: 0.5, lr: 0.01 } });
    expect(log[1]).toMatchObject({ step: 200, epoch: 2, metrics: { loss: 0.1, 'eval/score': 3, lr: 0.001 } });
    expect(log[2]).toMatchObject({ step: 250, epoch: 3, metrics: { loss: 0.2 } });
  });

  it('after a restart commits nothing twice, but what appeared meanwhile and what was rewritten in place', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    fs.writeFileSync(path.join(dir, 'step_1.pt'), randomBytes(11, 100_000));
    const w1 = startWatch(s, [dir, '-b', 'r', ...FAST]);
    await w1.waitFor('the first commit', () => w1.commits().length === 1);
    const r1 = await stopWith(w1, 'SIGTERM');
    expect(r1.code, describeRun(r1)).toBe(0);

    fs.writeFileSync(path.join(dir, 'step_2.pt'), randomBytes(12, 100_000)); // written while the watcher was down
    const w2 = startWatch(s, [dir, '-b', 'r', ...FAST]);
    await w2.waitFor('the second commit', () => w2.commits().length === 1);
    await sleep(400); // more polls: step_1.pt must not be committed again
    const r2 = await stopWith(w2, 'SIGTERM');
    expect(r2.code, describeRun(r2)).toBe(0);
    expect(w2.commits().map((c) => c.name)).toEqual(['step_2.pt']);
    expect(r2.stderr).toMatch(/2 checkpoint\(s\) there, 1 already committed/);

    const again = s.run(['watch', dir, '-b', 'r', '--once', ...FAST]);
    expect(again.code, describeRun(again)).toBe(0);
    expect(again.stdout).toBe('');

    // The same name with new contents is a new checkpoint.
    fs.writeFileSync(path.join(dir, 'step_1.pt'), randomBytes(13, 100_000));
    const rewritten = s.run(['watch', dir, '-b', 'r', '--once', ...FAST]);
    expect(rewritten.code, describeRun(rewritten)).toBe(0);
    expect(rewritten.stdout.trim().split(' ')[1]).toBe('step_1.pt');
    expect(history(s, 'r').map((c) => c.labels['watch.source'])).toEqual(['step_1.pt', 'step_2.pt', 'step_1.pt']);
  });

  describe('signals during a large commit', () => {
    // Incompressible and new to each store, so the commit takes long enough to be signalled mid-way.
    let big = '';
    beforeAll(() => {
      big = path.join(tempDir('ckvc-watch-big-'), 'big.pt');
      fs.writeFileSync(big, cryptoRandomBytes(96 * MiB));
    });

    it('SIGTERM lets the commit in progress land, then exits 0; the store verifies clean', async () => {
      const s = newStore();
      const dir = tempDir('ckvc-watch-');
      fs.linkSync(big, path.join(dir, 'big.pt'));
      const w = startWatch(s, [dir, '-b', 'big', ...FAST]);
      await w.waitFor('the commit to start', () => /committing big\.pt/.test(w.stderr()));
      const r = await stopWith(w, 'SIGTERM');
      expect(r.code, describeRun(r)).toBe(0);
      expect(r.stderr).toMatch(/SIGTERM: finishing the commit of big\.pt/);
      expect(w.commits().map((c) => c.name)).toEqual(['big.pt']);
      expect(s.json<any[]>(['log', 'big'])[0].id).toBe(w.commits()[0]!.id);
      // Every byte re-hashed: the commit that landed after the signal is whole.
      const v = s.run(['verify', '--read-data']);
      expect(v.code, describeRun(v)).toBe(0);
    });

    it('a second signal interrupts it: exit 130, nothing recorded, the store verifies clean', async () => {
      const s = newStore();
      const dir = tempDir('ckvc-watch-');
      fs.linkSync(big, path.join(dir, 'big.pt'));
      const w = startWatch(s, [dir, '-b', 'big', ...FAST]);
      await w.waitFor('the commit to start', () => /committing big\.pt/.test(w.stderr()));
      w.child.kill('SIGTERM');
      await w.waitFor('the first signal to be seen', () => /finishing the commit/.test(w.stderr()));
      const r = await stopWith(w, 'SIGTERM');
      expect(r.code, describeRun(r)).toBe(130);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_INTERRUPTED']);
      expect(r.stdout).toBe('');
      const log = s.run(['log', 'big']);
      expect(log.code, describeRun(log)).toBe(14); // the branch was never created
      const v = s.run(['verify']);
      expect(v.code, describeRun(v)).toBe(0);
    });
    it('a checkpoint that changes while being committed is tried again, not fatal', async () => {
      const s = newStore();
      const dir = tempDir('ckvc-watch-');
      const target = path.join(dir, 'big.pt');
      fs.copyFileSync(big, target);
      const w = startWatch(s, [dir, '-b', 'big', ...FAST]);
      await w.waitFor('the commit to start', () => /committing big\.pt/.test(w.stderr()));
      // Several appends: the first may land before the commit opens the file; a later one lands while it reads.
      for (let i = 0; i < 5; i++) {
        fs.appendFileSync(target, `the training job was not done yet (${i})\n`);
        await sleep(50);
      }
      await w.waitFor('the retried commit', () => w.commits().length === 1);
      const r = await stopWith(w, 'SIGTERM');
      expect(r.code, describeRun(r)).toBe(0);
      expect(r.stderr).toMatch(/big\.pt changed while being committed/);
      const log = history(s, 'big');
      expect(log).toHaveLength(1);
      expect(log[0].labels['watch.signature']).toMatch(new RegExp(`^file:${fs.statSync(target).size}:`));
    });
  });

  it('a second watcher of the same branch refuses at once (exit 11, naming the first); after the first stops, it runs', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    const first = startWatch(s, [dir, '-b', 'team/run', '--interval', '0.1', '--settle', '0.3']);
    await watching(first);
    const second = s.run(['watch', dir, '-b', 'team/run', '--once', '--settle', '0.1']);
    expect(second.code, describeRun(second)).toBe(11);
    expect(errorCodes(second.stderr)).toEqual(['CKVC_LOCKED']);
    expect(second.stderr).toMatch(
      new RegExp(`branch 'team/run' is already being watched by process ${first.child.pid}`),
    );
    const other = s.run(['watch', dir, '-b', 'other', '--once', '--settle', '0.1']);
    expect(other.code, `another branch is not locked: ${describeRun(other)}`).toBe(0);
    expect((await stopWith(first, 'SIGINT')).code).toBe(0);
    const again = s.run(['watch', dir, '-b', 'team/run', '--once', '--settle', '0.1']);
    expect(again.code, describeRun(again)).toBe(0);
  });

  it('a watcher killed with SIGKILL leaves a stale lock that the next watcher breaks', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    const first = startWatch(s, [dir, '-b', 'run', '--interval', '0.1', '--settle', '0.3']);
    await watching(first);
    first.child.kill('SIGKILL');
    await first.done;
    const again = s.run(['watch', dir, '-b', 'run', '--once', '--settle', '0.1']);
    expect(again.code, describeRun(again)).toBe(0);
  });

  it('SIGINT between commits exits 0 at once', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    const w = startWatch(s, [dir, '-b', 'idle', '--interval', '5', '--settle', '5']);
    await watching(w);
    const t0 = Date.now();
    const r = await stopWith(w, 'SIGINT');
    expect(r.code, describeRun(r)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000); // not a poll interval later
    expect(r.stderr).toMatch(/SIGINT: stopping/);
    expect(r.stderr).toMatch(/stopped; 0 checkpoint\(s\) committed/);
  });

  it('--once commits what is complete and reports what is still being written', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    fs.writeFileSync(path.join(dir, 'done.pt'), randomBytes(21, 50_000));
    const growing = path.join(dir, 'growing.pt');
    fs.writeFileSync(growing, 'x');
    const writer = setInterval(() => fs.appendFileSync(growing, randomBytes(22, 1000)), 40);
    try {
      const w = startWatch(s, [dir, '-b', 'once', '--once', '--interval', '0.1', '--settle', '0.6']);
      const r = await w.done;
      expect(r.code, describeRun(r)).toBe(0);
      expect(w.commits().map((c) => c.name)).toEqual(['done.pt']);
      expect(r.stderr).toMatch(/growing\.pt is still changing; not committed/);
    } finally {
      clearInterval(writer);
    }
  });

  it('a checkpoint torch.save left truncated is skipped with its reason; the watch goes on and commits the next', async () => {
    const s = newStore();
    const dir = tempDir('ckvc-watch-');
    // A zip's first bytes without the rest: what a trainer killed in the middle of torch.save leaves behind.
    fs.writeFileSync(
      path.join(dir, 'step_500.pt'),
      Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), randomBytes(23, 4000)]),
    );
    fs.writeFileSync(path.join(dir, 'step_600.pt'), randomBytes(24, 8000).subarray(1)); // not a zip: opaque
    const w = startWatch(s, [dir, '-b', 'broken', '--once', '--interval', '0.1', '--settle', '0.2']);
    const r = await w.done;
    expect(r.code, describeRun(r)).toBe(0);
    expect(w.commits().map((c) => c.name)).toEqual(['step_600.pt']);
    expect(r.stderr).toMatch(/step_500\.pt[^\n]*CKVC_BAD_TENSOR_FILE|CKVC_BAD_TENSOR_FILE[^\n]*step_500\.pt/);
  });

  it('refuses a folder that does not exist or is a file, a pattern with a /, or no branch, changing nothing', () => {
    const s = newStore();
    const before = snapshotStore(s.store);
    const missing = s.run(['watch', path.join(s.dir, 'nope'), '-b', 'x', '--once']);
    expect(missing.code, describeRun(missing)).toBe(15);
    expect(errorCodes(missing.stderr)).toEqual(['CKVC_INPUT_NOT_FOUND']);
    expect(missing.stderr).toMatch(/does not exist/);
    const file = path.join(s.dir, 'a.pt');
    fs.writeFileSync(file, 'x');
    const notDir = s.run(['watch', file, '-b', 'x', '--once']);
    expect(notDir.code, describeRun(notDir)).toBe(15);
    expect(errorCodes(notDir.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(notDir.stderr).toMatch(/is a file, not a folder/);
    const badPattern = s.run(['watch', s.dir, '-b', 'x', '--pattern', 'sub/step_*', '--once']);
    expect(badPattern.code, describeRun(badPattern)).toBe(15);
    expect(errorCodes(badPattern.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    const noBranch = s.run(['watch', s.dir, '--once']);
    expect(noBranch.code, describeRun(noBranch)).toBe(2);
    expect(diffSnapshots(before, snapshotStore(s.store))).toEqual([]);
  });
});
