// A real OpenSSH server for the SSH remote tests: /usr/sbin/sshd as the current user on 127.0.0.1 on a free port,
// with its own config, a generated host key and client key, and an ssh client config (CKVC_SSH) that trusts only
// that host key and logs in only with that client key, never asking anything (BatchMode).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN } from './ckvc.js';
import { tempDir } from './temp-dirs.js';

export const SSHD = '/usr/sbin/sshd';
/** A host name the client config maps to the server (for scp-like addresses, which carry no port). */
export const HOST_ALIAS = 'ckvc-test-sshd';

export interface Sshd {
  port: number;
  /** CKVC_SSH for a client that logs in. */
  env: Record<string, string>;
  /** CKVC_SSH for a client whose key the server does not accept. */
  wrongKeyEnv: Record<string, string>;
  /** `--remote-ckvc` naming this checkout's CLI (the far side's PATH need not have ckvc). */
  remoteCkvc: string;
  /** ssh://127.0.0.1:PORT/ABSOLUTE-PATH */
  url(absPath: string): string;
  stop(): Promise<void>;
}

function keygen(file: string): void {
  const args = ['-q', '-t', 'ed25519', '-N', '', '-C', 'ckvc-test', '-f', file];
  const r = spawnSync('ssh-keygen', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log()}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on ${port}: ${log()}`);
}

function clientConfig(dir: string, port: number, key: string): string {
  const file = path.join(dir, `ssh_config_${path.basename(key)}`);
  fs.writeFileSync(
    file,
    [
      `Host ${HOST_ALIAS}`,
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      'Host *',
      `  User ${os.userInfo().username}`,
      `  IdentityFile ${key}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  UserKnownHostsFile ${path.join(dir, 'known_hosts')}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 5',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  return file;
}

export async function startSshd(): Promise<Sshd> {
  // The privilege-separation folder sshd insists on when it runs as root.
  if (process.getuid?.() === 0 && !fs.existsSync('/run/sshd')) {
    fs.mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  }
  const dir = tempDir('ckvc-sshd-');
  for (const k of ['host_key', 'client_key', 'wrong_key']) keygen(path.join(dir, k));
  fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const hostKey = fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8');
  fs.writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}`);
  fs.writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${os.userInfo().username}`,
      // bash run by sshd reads ~/.bashrc unless SHLVL says it is nested: the tester's start-up files (a pyenv or
      // nvm init here costs 1-2 s per login) are kept out of every connection the tests and bench make.
      'SetEnv SHLVL=1',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    log += d;
  });
  await waitForPort(port, child, () => log);
  const sshWith = (key: string) => ({ CKVC_SSH: `ssh -F ${clientConfig(dir, port, path.join(dir, key))}` });
  return {
    port,
    env: sshWith('client_key'),
    wrongKeyEnv: sshWith('wrong_key'),
    remoteCkvc: `${process.execPath} ${BIN}`,
    url: (absPath) => `ssh://127.0.0.1:${port}${absPath}`,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
