// A running `ckvc helper-server` (spec/HELPER.md) for tests: send request lines, read reply lines in order.
import { type Running, startCkvc } from './ckvc.js';

export interface Reply {
  id: number | null;
  code?: number;
  stdout?: string;
  stderr?: string;
  refused?: { reason: string; ran?: boolean; message: string };
  error?: { code: string; message: string; exit: number; data?: Record<string, unknown> };
  /** The structured checkout's `checkout --json` object. */
  result?: Record<string, unknown> & { commit: string; to: string; written: { path: string }[]; unchanged: string[] };
}

/** A running helper-server and a way to send it lines and read its replies in order. */
export class Server {
  readonly running: Running;
  private buffered = '';
  private waiting: Array<(line: string) => void> = [];
  private lines: string[] = [];

  constructor(env: Record<string, string> = {}) {
    // A server lives as long as its tests: no time limit.
    this.running = startCkvc(['helper-server'], { env, timeoutMs: 0 });
    this.running.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buffered += d;
      for (let nl = this.buffered.indexOf('\n'); nl !== -1; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }

  send(line: string): void {
    this.running.child.stdin!.write(`${line}\n`);
  }

  next(): Promise<Reply> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line) as Reply);
    return new Promise((resolve) => this.waiting.push((l) => resolve(JSON.parse(l) as Reply)));
  }

  async request(
    id: number,
    argv: string[],
    extra: { cwd?: string; env?: Record<string, string> } = {},
  ): Promise<Reply> {
    this.send(JSON.stringify({ id, argv, ...extra }));
    return this.next();
  }

  /** A structured checkout request (spec/HELPER.md §1.1). */
  async checkout(
    id: number,
    checkout: Record<string, unknown>,
    extra: { cwd?: string; env?: Record<string, string> } = {},
  ): Promise<Reply> {
    this.send(JSON.stringify({ id, checkout, ...extra }));
    return this.next();
  }

  /** Ends stdin and waits for the exit. */
  async end(): Promise<number | null> {
    this.running.child.stdin!.end();
    return (await this.running.done).code;
  }
}

/** The environment a spawned ckvc gets from tests/helpers/ckvc.ts, as a request's `env`. */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'CKVC_DIR') env[k] = v;
  return { ...env, CKVC_AUTHOR: 'test', NO_COLOR: '1', ...extra };
}
