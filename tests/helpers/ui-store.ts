// The store the page tests look at, made through the Node API (fast: one process, no CLI start-up per commit),
// and real `ckvc ui` processes serving it on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initStore, openStore } from '../../dist/api/index.js';
import { BIN, cliEnv } from './ckvc.js';
import { trainedFloat32, writeSafetensors } from './data.js';
import { tempDir } from './temp-dirs.js';

/** A commit message that is markup: the page must show it as these characters. */
export const HOSTILE_MESSAGE =
  '<img src=x onerror="window.__ckvcXss=1"><b>bold</b> & <script>window.__ckvcXss=2</script>';

export interface UiStore {
  dir: string;
  store: string;
  /** Commits per branch carrying `loss`, oldest first. */
  ids: Record<string, string[]>;
}

function checkpoint(dir: string, name: string, seed: number, shapeB = 16): string {
  const file = path.join(dir, name);
  writeSafetensors(file, {
    'embed.weight': { dtype: 'F32', shape: [64, 16], bytes: trainedFloat32(1, 64 * 16) },
    'proj.weight': { dtype: 'F32', shape: [16, 16], bytes: trainedFloat32(seed, 16 * 16) },
    'proj.bias': { dtype: 'F32', shape: [shapeB], bytes: trainedFloat32(seed + 7, shapeB) },
  });
  return file;
}

/**
 * main: 6 commits (steps 100..600, lr 0.1); lowlr: 4 commits warm-started from main's 3rd (lr 0.01, a new
 * config key); hostile: one commit whose message, label and run name are markup, with a metric named toString.
 * Every commit records loss.
 */
export async function makeUiStore(): Promise<UiStore> {
  const dir = tempDir('ckvc-ui-'); // removed by cleanupTemp() in the test file's afterAll
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  await initStore(dir);
  const s = await openStore(dir);
  const ids: Record<string, string[]> = { main: [], lowlr: [], hostile: [] };
  const config = (text: string) => {
    fs.writeFileSync(path.join(work, 'config.yaml'), text);
    return path.join(work, 'config.yaml');
  };
  try {
    for (let i = 1; i <= 6; i++) {
      const r = await s.commit({
        paths: [checkpoint(work, 'model.safetensors', 10 + i)],
        message: `main step ${i * 100}`,
        branch: 'main',
        metrics: { loss: 2 / i, acc: 0.5 + i / 20 },
        step: i * 100,
        config: config('lr: 0.1\nlayers: 2\n'),
        author: 'test',
        cwd: work,
      });
      ids.main!.push(r.id);
    }
    for (let i = 1; i <= 4; i++) {
      const r = await s.commit({
        paths: [checkpoint(work, 'model.safetensors', 40 + i)],
        message: `lowlr step ${300 + i * 100}`,
        branch: 'lowlr',
        parents: i === 1 ? [ids.main![2]!] : [],
        metrics: { loss: 0.6 - i / 20, acc: 0.7 + i / 50 },
        step: 300 + i * 100,
        config: config('lr: 0.01\nlayers: 2\nwarmup: 50\n'),
        author: 'test',
        cwd: work,
      });
      ids.lowlr!.push(r.id);
    }
    const r = await s.commit({
      paths: [checkpoint(work, 'model.safetensors', 99, 8)],
      message: HOSTILE_MESSAGE,
      branch: 'hostile',
      // A metric named like an Object method: a page that reads it from a plain object finds the method.
      metrics: { loss: 3, toString: 9 },
      step: 50,
      run: '<i>run</i>',
      labels: { '<k>': '<v onclick=x>' },
      author: 'test',
      cwd: work,
    });
    ids.hostile!.push(r.id);
    await s.createTag('best-main', ids.main![5]);
  } finally {
    await s.close();
  }
  return { dir, store: path.join(dir, '.ckvc'), ids };
}

const children: ChildProcess[] = [];

export function stopUiServers(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Starts `ckvc ui --port 0 ARGS` (or another command given as args[0]) and resolves with the URL it prints. */
export async function startUi(
  store: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<string> {
  const cmd = args[0] === 'serve' ? args : ['ui', ...args];
  const child = spawn(process.execPath, [BIN, ...cmd, '--port', '0', '--store', store], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`ckvc ${cmd[0]} printed no URL within 15 s: ${err}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.slice(0, out.indexOf('\n')).trim());
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ckvc ${cmd[0]} exited ${code}: ${err}`));
    });
  });
}
