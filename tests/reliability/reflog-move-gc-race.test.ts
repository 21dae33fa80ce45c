// gc against a new branch that moves a deleted branch's reflog aside (spec/FORMAT.md §6.3): gc lists logs/, the
// new branch renames logs/refs/heads/phase/ to phase~MS, gc then reads the folder it listed, gone now. Before the
// fix gc skipped a folder that had gone and freed the commit only that reflog named. The windows are widened by
// preloaded delays (tests/helpers/slow-readdir-preload.cjs): gc's, after it lists logs/refs/heads; the branch's,
// after its rename and before its own log stands at the old name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { newStore } from '../helpers/test-store.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

const PRELOAD = path.resolve(__dirname, '../helpers/slow-readdir-preload.cjs');

describe('gc and a reflog moved aside at the same time', () => {
  it('gc reads the moved log and keeps the commit only it names (gc --expire-reflog never)', async () => {
    const s = newStore('ckvc-reflog-race-');
    const data = tempDir('ckvc-reflog-race-data-');
    const f = path.join(data, 'f.bin');
    fs.writeFileSync(f, randomBytes(1, 3000));
    s.ok(['commit', f, '-m', 'base']);
    fs.writeFileSync(f, randomBytes(2, 3000));
    const lost = s.json<{ id: string }>(['commit', f, '-m', 'only on phase/a', '-b', 'phase/a']).id;
    s.ok(['branch', '-d', 'phase/a']);
    const gc = s.runAsync(['gc', '--grace', '0', '--expire-reflog', 'never', '--json'], {
      env: {
        NODE_OPTIONS: `--require ${PRELOAD}`,
        CKVC_TEST_SLOW_READDIR_SUFFIX: path.join('logs', 'refs', 'heads'),
        CKVC_TEST_SLOW_READDIR_NTH: '2', // the reflog scan of gc's roots (the first is its leftovers scan)
        CKVC_TEST_SLOW_READDIR_MS: '2000',
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    const branch = s.runAsync(['branch', 'phase'], {
      env: {
        NODE_OPTIONS: `--require ${PRELOAD}`,
        CKVC_TEST_SLOW_RENAME_TO: 'phase~\\d+$',
        CKVC_TEST_SLOW_RENAME_MS: '3000',
      },
    });
    const [g, b] = await Promise.all([gc, branch]);
    expect(g.code, describeRun(g)).toBe(0);
    expect(b.code, describeRun(b)).toBe(0);
    expect(fs.readdirSync(path.join(s.store, 'logs', 'refs', 'heads')).some((n) => /^phase~\d+$/.test(n))).toBe(true);
    const out = tempDir('ckvc-reflog-race-out-');
    const co = s.run(['checkout', lost, '--to', out]);
    expect(co.code, describeRun(co)).toBe(0);
    expect(fs.readFileSync(path.join(out, 'f.bin'))).toEqual(randomBytes(2, 3000));
  }, 60_000);
});
