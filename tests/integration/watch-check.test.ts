// `ckvc watch --check CMD` (issue 16): CMD runs on each settled checkpoint before it is committed, with the
// checkpoint's path as its last argument and in $CKVC_CHECKPOINT; a non-zero exit skips the checkpoint (its status
// and first stderr line are reported) until it changes. CMD is split into words, never handed to a shell.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorCodes } from '../helpers/ckvc.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { newStore } from '../helpers/test-store.js';
import { sleep } from '../helpers/async-tasks.js';

afterAll(cleanupTemp);

// Accepts a checkpoint whose content starts with "good"; the path arrives both as $1 and as $CKVC_CHECKPOINT.
const CHECK =
  `sh -c '[ "$1" = "$CKVC_CHECKPOINT" ] || exit 9; ` +
  `grep -q ^good "$1" || { echo; echo "no good: $1" >&2; exit 3; }' check`;

describe('watch --check', () => {
  it('commits what the check accepts and skips what it refuses, naming its status and first stderr line', () => {
    const s = newStore();
    const dir = path.join(s.dir, 'ckpt');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'step_1.bin'), 'good one');
    // A name a shell would act on: it reaches the check as one argument, never as shell text.
    const odd = 'step_2 $(touch pwned); x.bin';
    fs.writeFileSync(path.join(dir, odd), 'bad one');
    const r = s.run(['watch', dir, '-b', 'run', '--once', '--settle', '0.2', '--interval', '0.05', '--check', CHECK]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step_1\.bin/);
    expect(r.stdout).not.toMatch(/step_2/);
    const refusal = `check ${JSON.stringify(CHECK)} exited with status 3: no good: ${path.join(dir, odd)}`;
    expect(r.stderr).toContain(`skipping ${odd}: ${refusal}`);
    expect(r.stderr).not.toMatch(/still changing/);
    expect(fs.existsSync(path.join(dir, 'pwned'))).toBe(false);
    expect(s.json<any[]>(['log', 'run']).map((c) => c.step)).toEqual([1]);
  });

  it('does not check a refused checkpoint again until it changes, then commits it', async () => {
    const s = newStore();
    const dir = path.join(s.dir, 'ckpt');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'step_5.bin');
    fs.writeFileSync(file, 'bad');
    const w = s.start(['watch', dir, '-b', 'run', '--settle', '0.2', '--interval', '0.05', '--check', CHECK]);
    let stderr = '';
    w.child.stderr!.on('data', (d: string) => {
      stderr += d;
    });
    const until = async (pred: () => boolean) => {
      for (const end = Date.now() + 20_000; !pred(); ) {
        if (Date.now() > end) throw new Error(`timed out:\n${stderr}`);
        await sleep(20);
      }
    };
    await until(() => /skipping step_5\.bin/.test(stderr));
    await sleep(600);
    expect(stderr.match(/skipping step_5\.bin/g)).toHaveLength(1);
    fs.writeFileSync(file, 'good now');
    await until(() => /\[run [0-9a-f]+\] step_5\.bin/.test(stderr));
    w.child.kill('SIGINT');
    expect((await w.done).code).toBe(0);
    expect(s.json<any[]>(['log', 'run']).map((c) => c.step)).toEqual([5]);
  });

  it('a stop ends a running check at once: nothing committed, exit 0', async () => {
    const s = newStore();
    const dir = path.join(s.dir, 'ckpt');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'step_1.bin'), 'good');
    const started = path.join(s.dir, 'check-started');
    const w = s.start([
      'watch',
      dir,
      '-b',
      'run',
      '--settle',
      '0.2',
      '--interval',
      '0.05',
      '--check',
      `sh -c 'touch "$0"; sleep 60' ${started}`,
    ]);
    for (const end = Date.now() + 20_000; !fs.existsSync(started); ) {
      if (Date.now() > end) throw new Error('the check never started');
      await sleep(20);
    }
    const t0 = Date.now();
    w.child.kill('SIGINT');
    const r = await w.done;
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.stderr).toMatch(/0 checkpoint\(s\) committed/);
    expect(s.run(['log', 'run']).code).not.toBe(0);
  });

  it('ends the watch when the check cannot be run at all, and refuses an empty or badly quoted one at start', () => {
    const s = newStore();
    const dir = path.join(s.dir, 'ckpt');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'step_1.bin'), 'good');
    const missing = s.run(['watch', dir, '-b', 'run', '--once', '--settle', '0', '--check', 'no-such-program-ckvc x']);
    expect(missing.code).toBe(15);
    expect(errorCodes(missing.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    expect(missing.stderr).toMatch(/cannot run "no-such-program-ckvc": ENOENT/);
    for (const bad of ['  ', `python 'eval.py`]) {
      const r = s.run(['watch', dir, '-b', 'run', '--once', '--check', bad]);
      expect(r.code).toBe(15);
      expect(errorCodes(r.stderr)).toEqual(['CKVC_BAD_ARGUMENT']);
    }
    expect(s.run(['log', 'run']).code).not.toBe(0);
  });
});
