// The remotes `npm run bench` pushes to and fetches from (issue 14 Performance): a store folder, `ckvc serve` over
// loopback HTTP, SSH to the test suite's own sshd (tests/helpers/sshd.ts, compiled here with esbuild) and S3
// (s3rver through tests/helpers/s3-server-main.mjs). A transport whose server cannot start is skipped with the
// reason, never faked.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Starts the remotes. Each is `{name, url, env, addArgs, stop}` with a fresh empty store (or prefix) behind it;
 * `skipped` lists `{name, reason}`.
 */
export async function startRemotes(repo, work) {
  const cli = path.join(repo, 'bin/ckvc');
  const init = (dir) => {
    const r = spawnSync(process.execPath, [cli, 'init', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ckvc init ${dir} failed: ${r.stderr}`);
    return path.join(dir, '.ckvc');
  };
  const remotes = [];
  const skipped = [];
  remotes.push({ name: 'folder', url: init(path.join(work, 'remote-folder')), env: {}, addArgs: [], stop: () => {} });
  remotes.push(await startHttp(cli, init(path.join(work, 'remote-http')), work));
  for (const [name, start] of [
    ['SSH', () => startSsh(repo, cli, init(path.join(work, 'remote-ssh')), work)],
    ['S3', () => startS3(repo, work)],
  ]) {
    try {
      remotes.push(await start());
    } catch (e) {
      skipped.push({ name, reason: String(e.message ?? e).split('\n')[0] });
    }
  }
  return { remotes, skipped };
}

async function startHttp(cli, store, work) {
  const tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, 'bench-token\n');
  const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--token-file', tokenFile, '--store', store], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve) =>
    server.stdout.once('data', (d) => resolve(String(d).trim().split('\n')[0])),
  );
  return { name: 'HTTP', url, env: { CKVC_TOKEN: 'bench-token' }, addArgs: [], stop: () => server.kill('SIGTERM') };
}

async function startSsh(repo, cli, store, work) {
  if (!fs.existsSync('/usr/sbin/sshd')) throw new Error('no /usr/sbin/sshd (Debian: apt-get install openssh-server)');
  const { build } = await import('esbuild');
  const helper = path.join(work, 'sshd-helper.mjs');
  await build({
    entryPoints: [path.join(repo, 'tests/helpers/sshd.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: helper,
    logLevel: 'silent',
  });
  const sshd = await (await import(helper)).startSshd();
  return {
    name: 'SSH',
    url: sshd.url(store),
    env: sshd.env,
    // The far side runs this checkout's CLI, as the tests do.
    addArgs: ['--remote-ckvc', `${process.execPath} ${cli}`],
    stop: () => sshd.stop(),
  };
}

async function startS3(repo, work) {
  const dir = path.join(work, 's3');
  fs.mkdirSync(dir);
  const child = spawn(process.execPath, [path.join(repo, 'tests/helpers/s3-server-main.mjs'), dir, 'ckvc-bench'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const endpoint = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 15 s: ${err}`)), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      resolve(JSON.parse(out.slice(0, out.indexOf('\n'))).endpoint);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}): ${err}`));
    });
  });
  const env = {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: endpoint,
    AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  // s3rver ignores conditional writes: only --single-writer pushes there (spec/S3.md §5).
  return {
    name: 'S3',
    url: 's3://ckvc-bench/run',
    env,
    addArgs: ['--single-writer'],
    stop: () => child.kill('SIGTERM'),
  };
}
