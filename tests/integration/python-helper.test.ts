// The Python helper (python/ckvc) and the Python examples, run against the real CLI: its unittest suite
// (python/tests), examples/python_training.py end to end, and examples/pytorch_snippet.py compiled always and
// run where torch is installed. python3 (>= 3.8) is required: without it these tests fail, they do not skip; and
// the unittest suite must report no skipped test at all.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BIN, REPO_ROOT } from '../helpers/ckvc.js';

const PYTHON = process.env.CKVC_TEST_PYTHON ?? 'python3'; // another interpreter for a local check, e.g. a venv with torch
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-py-it-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The environment of every Python run: the CLI of this checkout, no store or cache from the caller. */
function pyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CKVC_CLI: `${quote(process.execPath)} ${quote(BIN)}`,
    CKVC_AUTHOR: 'test',
    NO_COLOR: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONPYCACHEPREFIX: path.join(scratch, 'pycache'), // py_compile writes here, not beside the sources
    PYTHONUNBUFFERED: '1',
  };
  delete env.CKVC_DIR;
  delete env.CKVC_CACHE;
  delete env.PYTHONPATH;
  return env;
}

interface PyRun {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs python3 ARGS in the repository root without blocking (the runs below overlap). */
function python(args: string[], timeoutMs = 120_000): Promise<PyRun> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { cwd: REPO_ROOT, env: pyEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new Error(
              `${PYTHON} is needed to test the Python helper (python/ckvc) but was not found on PATH; install Python 3.8 or newer`,
            )
          : e,
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const show = (r: PyRun) =>
  `exit ${r.code} after ${r.seconds.toFixed(1)} s\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** Whether `import torch` works (decided once, at collection: a missing python3 counts as no torch here and
 * fails the tests that need python3 anyway). */
const hasTorch =
  spawnSync(PYTHON, ['-c', 'import torch'], { env: pyEnv(), stdio: 'ignore', timeout: 60_000 }).status === 0;

describe.concurrent('Python helper and examples', () => {
  test('python3 is installed and new enough (3.8+)', async () => {
    const r = await python(['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']);
    expect(r.code, show(r)).toBe(0);
    const [major, minor] = r.stdout.trim().split('.').map(Number);
    expect(major === 3 && minor! >= 8, `python3 is ${r.stdout.trim()}; the helper needs 3.8 or newer`).toBe(true);
  });

  test('unittest suite of python/ckvc passes against the real CLI', async () => {
    // ~55 s alone (plus the run API's tests and README loop, python/tests/test_runs.py); the generous limit is for
    // a loaded machine, where it runs beside the example below.
    const r = await python(['-m', 'unittest', 'discover', '-s', 'python/tests', '-v'], 400_000);
    const ran = /^Ran (\d+) tests? in ([\d.]+)s$/m.exec(r.stderr);
    console.log(
      `python unittest: ${ran ? `Ran ${ran[1]} tests in ${ran[2]} s` : 'no "Ran N tests" line'}, exit ${r.code}`,
    );
    expect(r.code, show(r)).toBe(0);
    expect(ran, show(r)).not.toBeNull();
    expect(Number(ran![1])).toBeGreaterThanOrEqual(26);
    // Every feature these tests cover exists and nothing they need is optional, so a skip can only hide a
    // regression: "OK (skipped=1)" or "OK (expected failures=1)" fails here, naming the tests.
    const skipped = r.stderr.split('\n').filter((l) => /\.\.\. (skipped|expected failure|unexpected success)/.test(l));
    expect(skipped, show(r)).toEqual([]);
    expect(r.stderr, show(r)).toMatch(/^OK$/m);
  }, 430_000);

  test('examples/python_training.py trains, commits, finds the best and reloads it', async () => {
    const r = await python([path.join('examples', 'python_training.py')]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout, show(r)).toMatch(/^6 checkpoints on linear-sgd$/m);
    expect(r.stdout, show(r)).toMatch(
      /^best by eval\/loss: step \d+ eval\/loss=[\d.e-]+ commit [0-9a-f]{12} \(among 6\)$/m,
    );
    expect(r.stdout, show(r)).toMatch(/^reloaded best checkpoint step \d+: eval\/loss=[\d.]+, weights identical$/m);
    expect(r.stdout, show(r)).toMatch(/^latest model only: model\.safetensors$/m);
  }, 150_000);

  test('examples/pytorch_snippet.py compiles', async () => {
    const r = await python(['-m', 'py_compile', path.join('examples', 'pytorch_snippet.py')]);
    expect(r.code, show(r)).toBe(0);
  });

  test.runIf(hasTorch)(
    'examples/pytorch_snippet.py runs (torch is installed)',
    async () => {
      const r = await python([path.join('examples', 'pytorch_snippet.py')], 240_000);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout, show(r)).toMatch(/^loaded best checkpoint step \d+ /m);
      expect(r.stdout, show(r)).toMatch(/^warm start: \d+ model tensors loaded/m);
    },
    300_000,
  );
});
