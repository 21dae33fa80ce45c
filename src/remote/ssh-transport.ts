// A remote reached with the system ssh (spec/PROTOCOL.md §5): ssh runs `ckvc serve --stdio PATH` on the far side
// and its pipes carry one HTTP/1.1 connection, so the client is HttpTransport itself (same requests, checks,
// retries and quarantine as over TCP). What is SSH's own is here: starting ssh, and turning its failures
// (unreachable, refused login, no ckvc there) into errors that say which and what to do.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { CkvcError } from '../core/errors.js';
import { HttpTransport, type HttpCarrier } from './http-transport.js';
import { DEFAULT_REMOTE_CKVC, sshCommand, type SshCommand } from './ssh-command.js';
import { parseSshUrl } from './ssh-url.js';
import { pipeConnection } from './stdio-server.js';

/** The end of ssh's stderr kept for messages. */
const STDERR_KEPT = 8 * 1024;
/** How long a failed or closed connection waits for ssh to exit before it is killed. */
const EXIT_WAIT_MS = 5000;
/** What ssh says (exit 255) when the login, not the network, failed. */
const LOGIN_REFUSED = /permission denied|authentication fail|too many authentication|host key verification failed/i;

interface SshExit {
  code: number | null;
  signal: string | null;
  spawnError?: NodeJS.ErrnoException;
}

/** An agent whose only connection is the ssh child's pipes, kept open between requests. */
class PipeAgent extends http.Agent {
  constructor(private readonly connection: Duplex) {
    super({ keepAlive: true, maxSockets: 1 });
  }

  override createConnection(): Duplex {
    return this.connection;
  }
  override keepSocketAlive(): boolean {
    // Between requests the connection is idle by design: the request's stall timeout ends with it.
    (this.connection as Duplex & { setTimeout(ms: number): unknown }).setTimeout(0);
    return true;
  }
  override reuseSocket(): void {}
}

class SshCarrier implements HttpCarrier {
  readonly agent: PipeAgent;
  private stderr = '';
  private readonly exited: Promise<SshExit>;

  constructor(
    private readonly url: string,
    private readonly cmd: SshCommand,
    private readonly child: ChildProcess,
  ) {
    const connection = pipeConnection(child.stdout!, child.stdin!);
    connection.on('error', () => {}); // reported through the request that was using it
    this.agent = new PipeAgent(connection);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-STDERR_KEPT);
    });
    this.exited = new Promise((resolve) => {
      child.once('error', (e) => resolve({ code: null, signal: null, spawnError: e as NodeJS.ErrnoException }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
  }

  private async exitOrKill(): Promise<SshExit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_WAIT_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async failure(e: Error): Promise<CkvcError> {
    if (e instanceof CkvcError) {
      // The request gave up on a silent connection (stall-timeout.ts): ssh and the far side may be fine but
      // hung, so nothing is waited for.
      this.child.kill('SIGKILL');
      return e;
    }
    const end = await this.exitOrKill();
    const said = this.said();
    const data = { url: this.url, command: [this.cmd.file, ...this.cmd.args], exit: end.code, stderr: said };
    const url = this.url;
    if (end.spawnError) {
      const why = end.spawnError.code ?? end.spawnError.message;
      return new CkvcError(
        'CKVC_REMOTE',
        `cannot run ${JSON.stringify(this.cmd.file)} to reach ${url}: ${why}; ` +
          'install the OpenSSH client or set CKVC_SSH',
        data,
      );
    }
    if (end.code === 255 && LOGIN_REFUSED.test(said)) {
      return new CkvcError(
        'CKVC_UNAUTHORIZED',
        `ssh refused the login to ${url}: ${said}; check the user, keys ` +
          'and known_hosts (CKVC_SSH can name other ssh options)',
        data,
      );
    }
    if (end.code === 255) {
      return new CkvcError('CKVC_REMOTE', `cannot reach ${url} with ssh: ${said || 'ssh exited with 255'}`, data);
    }
    if (end.code === 126 || end.code === 127) {
      return new CkvcError(
        'CKVC_REMOTE',
        `the far side of ${url} could not run '${this.cmd.remoteCommand}': ` +
          `${said || `exit ${end.code}`}; is ckvc installed there? Add the remote again with --remote-ckvc CMD ` +
          '(e.g. --remote-ckvc /opt/ckvc/bin/ckvc)',
        data,
      );
    }
    const why =
      end.code === null
        ? `ssh ended by ${end.signal ?? 'an error'}`
        : `'${this.cmd.remoteCommand}' exited with status ${end.code}`;
    const detail = said ? `: ${said}` : `; ${e.message}`;
    return new CkvcError('CKVC_REMOTE', `the connection to ${url} ended (${why}${detail})`, data);
  }

  /** The end of ssh's stderr, printable and short: it is shown to the user and comes from the network. */
  private said(): string {
    // eslint-disable-next-line no-control-regex
    // ssh ends its lines with CR LF: a CR is a line end, not a stray character to show as '?'.
    const printable = this.stderr.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?');
    return printable.trim().split('\n').slice(-6).join('\n').trim();
  }

  /** Ends the connection: the far `serve --stdio` sees its stdin end and exits, and so does ssh. */
  async close(): Promise<void> {
    this.child.stdin!.end();
    await this.exitOrKill();
    this.agent.destroy();
  }
}

export interface SshRemote {
  url: string;
  remoteCkvc?: string;
}

export async function openSshTransport(remote: SshRemote, who: string): Promise<HttpTransport> {
  const cmd = sshCommand(parseSshUrl(remote.url), remote.remoteCkvc ?? DEFAULT_REMOTE_CKVC);
  // stdin, stdout: the connection; stderr: ssh's (and the far side's) messages, kept for errors.
  const child = spawn(cmd.file, cmd.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.on('error', () => {}); // EPIPE when ssh is gone: reported by failure()
  return new HttpTransport(remote.url, undefined, who, new SshCarrier(remote.url, cmd, child));
}
