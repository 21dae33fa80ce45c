// The three tools the real-data benchmark compares, behind one interface: check whether the tool is
// installed, create an empty repository, store one checkpoint folder (one process per checkpoint, as a
// training loop would), and restore the last checkpoint. Every tool keeps its own caches inside its run folder,
// so nothing outside the benchmark's work dir is touched; stored bytes count the repository folder alone.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './measure.mjs';

const INSTALL = 'apt-get update && apt-get install -y borgbackup restic time';

function version(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

/**
 * ckvc keeps each command's compiled code between runs (bin/compiled-code-cache.cjs), here in `work`, as borg's
 * caches are kept in its run folders. prepare() runs the benchmark's own init, ingest and restore once on a scratch
 * store: the build just made has nothing compiled yet, and a command's first run pays for that (~25 ms, reported by
 * `npm run bench:startup`) as borg's and restic's installs do not (Debian installs borg's Python compiled).
 */
export function ckvcTool(repoRoot, work) {
  const bin = path.join(repoRoot, 'bin/ckvc');
  const env = { CKVC_AUTHOR: 'bench', NO_COLOR: '1', CKVC_CACHE: path.join(work, 'ckvc-cache') };
  const tool = {
    name: 'ckvc',
    check() {
      if (!fs.existsSync(path.join(repoRoot, 'dist/cli/main.js')))
        return { ok: false, why: 'dist/ is missing: run `npm run build` first' };
      return { ok: true, version: `ckvc ${version(bin, ['--version']) ?? '?'}` };
    },
    async prepare() {
      // Made here: ckvc makes its cache's folders only inside one of the user's, and `work` may not exist yet.
      fs.mkdirSync(env.CKVC_CACHE, { recursive: true, mode: 0o700 });
      const dir = path.join(work, 'ckvc-warm-up');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(path.join(dir, 'live'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'live', 'weights.bin'), Buffer.alloc(1 << 20, 1));
      await tool.init(dir);
      await tool.ingest(dir, path.join(dir, 'live'), { scenario: 'warm-up', step: 1 });
      await tool.restore(dir, path.join(dir, 'out'), { scenario: 'warm-up' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
    store: (dir) => path.join(dir, '.ckvc'),
    init: (dir) => run(bin, ['init', dir], { env }),
    ingest: (dir, live, { scenario, step }) =>
      run(
        bin,
        [
          'commit',
          live,
          '-b',
          scenario,
          '-m',
          `step-${step}`,
          '--step',
          String(step),
          '--store',
          path.join(dir, '.ckvc'),
        ],
        { env },
      ),
    async restore(dir, to, { scenario }) {
      const r = await run(bin, ['checkout', scenario, '--to', to, '--store', path.join(dir, '.ckvc')], { env });
      return { ...r, files: to };
    },
  };
  return tool;
}

export function borgTool() {
  const envFor = (dir) => ({
    BORG_BASE_DIR: path.join(dir, 'home'), // borg's files and chunks caches live here, not in ~/.cache
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    BORG_PASSPHRASE: '',
  });
  return {
    name: 'borg',
    check() {
      const v = version('borg', ['--version']);
      return v ? { ok: true, version: v } : { ok: false, why: `borg is not installed (Debian: ${INSTALL})` };
    },
    store: (dir) => path.join(dir, 'repo'),
    init: (dir) => run('borg', ['init', '--encryption=none', path.join(dir, 'repo')], { env: envFor(dir) }),
    ingest: (dir, live, { n }) =>
      run(
        'borg',
        ['create', '--compression', 'zstd,3', `${path.join(dir, 'repo')}::ckpt-${String(n).padStart(2, '0')}`, '.'],
        { cwd: live, env: envFor(dir) },
      ),
    async restore(dir, to, { n }) {
      fs.mkdirSync(to, { recursive: true });
      const r = await run('borg', ['extract', `${path.join(dir, 'repo')}::ckpt-${String(n).padStart(2, '0')}`], {
        cwd: to,
        env: envFor(dir),
      });
      return { ...r, files: to };
    },
  };
}

export function resticTool() {
  const envFor = (dir) => ({ RESTIC_PASSWORD: 'ckvc-bench', RESTIC_CACHE_DIR: path.join(dir, 'cache') });
  return {
    name: 'restic',
    check() {
      const v = version('restic', ['version'])?.replace(/ compiled with.*/, '');
      return v ? { ok: true, version: v } : { ok: false, why: `restic is not installed (Debian: ${INSTALL})` };
    },
    store: (dir) => path.join(dir, 'repo'),
    // Format version 2 is the one with compression (zstd, "auto" level).
    init: (dir) =>
      run('restic', ['-r', path.join(dir, 'repo'), 'init', '--repository-version', '2'], { env: envFor(dir) }),
    ingest: (dir, live) =>
      run('restic', ['-r', path.join(dir, 'repo'), 'backup', '--quiet', '--host', 'bench', '.'], {
        cwd: live,
        env: envFor(dir),
      }),
    async restore(dir, to, { live }) {
      const r = await run('restic', ['-r', path.join(dir, 'repo'), 'restore', 'latest', '--target', to], {
        env: envFor(dir),
      });
      // Backing up "." restores at the target's top here (restic 0.14); other versions record LIVE's absolute path.
      const nested = path.join(to, live);
      return { ...r, files: fs.existsSync(nested) ? nested : to };
    },
  };
}
