// `ckvc watch` beside a trainer (issue 16): started before its folder exists, it waits for it; a settled pickle
// without its final STOP opcode, or a JSON file that does not parse, is not committed until it is finished.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../helpers/ckvc.js';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { newStore, type TestStore } from '../helpers/test-store.js';
import { sleep } from '../helpers/async-tasks.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

function start(s: TestStore, args: string[]) {
  const r = s.start(['watch', ...args, '--interval', '0.1', '--settle', '0.3']);
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
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    async waitFor(what: string, pred: () => boolean, ms = 30_000): Promise<void> {
      const end = Date.now() + ms;
      while (!pred()) {
        if (exited || Date.now() > end)
          throw new Error(`${exited ? 'exited' : 'timed out'} waiting for ${what}\n${stdout}\n${stderr}`);
        await sleep(20);
      }
    },
    stop(): Promise<RunResult> {
      r.child.kill('SIGINT');
      return r.done;
    },
  };
}

const pickle = (data: Buffer, finished = true) => {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(data.length);
  return Buffer.concat([Buffer.from([0x80, 0x03, 0x42]), len, data, Buffer.from(finished ? '.' : '')]);
};

describe('watch beside a trainer', () => {
  it('waits for its folder to appear, then commits what is written there', async () => {
    const s = newStore();
    const dir = path.join(s.dir, 'later', 'ckpt');
    const w = start(s, [dir, '-b', 'run']);
    await w.waitFor('the waiting notice', () => /does not exist yet; waiting/.test(w.stderr()));
    await sleep(300);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'step_10.pkl'), pickle(randomBytes(1, 5000)));
    await w.waitFor('the commit', () => /step_10\.pkl/.test(w.stdout()));
    expect((await w.stop()).code).toBe(0);
    expect(s.json<any[]>(['log', 'run']).map((c) => c.step)).toEqual([10]);
  });

  it('does not commit a pickle without STOP or a folder whose JSON does not parse, until they are finished', async () => {
    const s = newStore();
    const dir = path.join(s.dir, 'ckpt');
    fs.mkdirSync(dir);
    const pkl = path.join(dir, 'step_1.pkl');
    fs.writeFileSync(pkl, pickle(randomBytes(2, 5000), false));
    const agent = path.join(dir, 'agent-2');
    fs.mkdirSync(agent);
    fs.writeFileSync(path.join(agent, 'weights.bin'), randomBytes(3, 3000));
    fs.writeFileSync(path.join(agent, 'state.json'), '{"phase": "g2", "buffer": [1, 2');
    const w = start(s, [dir, '-b', 'run']);
    await w.waitFor('both reported unfinished', () => (w.stderr().match(/is not finished/g) ?? []).length >= 2);
    await sleep(800); // several more polls: still nothing committed
    expect(w.stdout()).toBe('');
    expect(w.stderr()).toMatch(
      /step_1\.pkl is not finished \(step_1\.pkl is a pickle that does not end with its STOP opcode\)/,
    );
    expect(w.stderr()).toMatch(/agent-2 is not finished \(state\.json is a JSON file that does not parse\)/);
    fs.appendFileSync(pkl, '.');
    fs.appendFileSync(path.join(agent, 'state.json'), ']}');
    await w.waitFor('both commits', () => w.stdout().trim().split('\n').filter(Boolean).length === 2);
    expect((await w.stop()).code).toBe(0);
    expect(s.json<any[]>(['log', 'run']).length).toBe(2);
  });
});
