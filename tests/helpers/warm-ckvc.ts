// Commands a test needs done or checked, not watched as processes (setup commits, verify after a kill, check out
// and compare, ls...), run in one `ckvc helper-server` per test worker instead of a process each. The server runs
// the CLI's own run(argv) and answers exactly what `ckvc ARGV` in a process answers (spec/HELPER.md: exit code,
// stdout, stderr; the environment a request names; the store opened and closed by each command), so the outcome
// means the same; it only skips a Node start-up (~0.25 s of CPU, most of the suite's time). Commands whose
// process is what a test is about (killed, signalled, timed, run side by side, faults injected) keep spawning
// bin/ckvc through ./ckvc.ts.
//
// The server belongs to a worker thread, so that a blocking call (`ckvcWarmSync`) can wait for its reply with
// Atomics.wait while the thread reads the server's output.
import * as os from 'node:os';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { BIN, ckvcAsync, cliEnv, type RunOptions, type RunResult } from './ckvc.js';

interface Reply {
  id: number | null;
  code?: number;
  stdout?: string;
  stderr?: string;
  refused?: { reason: string; message: string };
  error?: { code: string; message: string };
  /** Set by the thread when the server ended before replying. */
  ended?: string;
}

// Plain JavaScript: the thread runs it as it is (no TypeScript transform there). Up to MAX_SERVERS servers, each
// running one command at a time: a request goes to an idle one (started when none is idle and there is room),
// else to the least busy, so that checks a test runs side by side still overlap.
const MAX_SERVERS = 3;
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const servers = [];
const answer = (p, reply) => {
  p.port.postMessage(reply);
  if (p.flag) { Atomics.store(p.flag, 0, 1); Atomics.notify(p.flag, 0); }
};
function startServer() {
  const child = spawn(process.execPath, [workerData.bin, 'helper-server'], { env: workerData.env, stdio: ['pipe', 'pipe', 'ignore'] });
  const server = { child, pending: new Map(), buffered: '', ended: undefined };
  child.stdout.setEncoding('utf8').on('data', (d) => {
    server.buffered += d;
    for (let nl = server.buffered.indexOf('\\n'); nl !== -1; nl = server.buffered.indexOf('\\n')) {
      const line = server.buffered.slice(0, nl);
      server.buffered = server.buffered.slice(nl + 1);
      const reply = JSON.parse(line);
      const p = server.pending.get(reply.id);
      if (!p) throw new Error('helper-server replied to no request: ' + line);
      server.pending.delete(reply.id);
      answer(p, reply);
    }
  });
  child.on('close', (code, signal) => {
    server.ended = 'ckvc helper-server ended (exit ' + code + ', signal ' + signal + ')';
    for (const [id, p] of server.pending) answer(p, { id, ended: server.ended });
    server.pending.clear();
  });
  servers.push(server);
  return server;
}
parentPort.on('message', (m) => {
  const live = servers.filter((s) => !s.ended);
  let server = live.find((s) => s.pending.size === 0);
  if (!server && live.length < workerData.max) server = startServer();
  server ??= live.sort((a, b) => a.pending.size - b.pending.size)[0];
  server.pending.set(m.id, m);
  server.child.stdin.write(JSON.stringify({ id: m.id, argv: m.argv, cwd: m.cwd, env: m.env }) + '\\n');
});
`;

let thread: Worker | undefined;
let nextId = 1;

function request(args: string[], opts: RunOptions, port: MessagePort, flag?: Int32Array): number {
  if (!thread) {
    thread = new Worker(THREAD, { eval: true, workerData: { bin: BIN, env: cliEnv(), max: MAX_SERVERS } });
    // Neither the thread nor its server may keep a finished test worker alive.
    thread.unref();
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(cliEnv(opts.env))) if (v !== undefined) env[k] = v;
  const id = nextId++;
  thread.postMessage({ id, argv: args, cwd: opts.cwd ?? os.tmpdir(), env, port, flag }, [port]);
  return id;
}

function result(args: string[], reply: Reply, t0: number): RunResult | undefined {
  if (reply.refused) return undefined; // cat, CKVC_FAULT: the caller runs a process
  if (reply.ended || reply.error || reply.code === undefined)
    throw new Error(`ckvc ${args.join(' ')} in the helper-server: ${JSON.stringify(reply)}`);
  return {
    code: reply.code,
    signal: null,
    stdout: reply.stdout ?? '',
    stderr: reply.stderr ?? '',
    ms: Date.now() - t0,
  };
}

/** Runs `ckvc ARGS...` in the worker's helper-server, awaited. */
export async function ckvcWarm(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = Date.now();
  const { port1, port2 } = new MessageChannel();
  const reply = new Promise<Reply>((resolve) => port1.once('message', resolve));
  request(args, opts, port2);
  let r: RunResult | undefined;
  try {
    r = result(args, await reply, t0);
  } finally {
    port1.close();
  }
  return r ?? ckvcAsync(args, opts);
}

/** Runs `ckvc ARGS...` in the worker's helper-server, blocking until it answers. */
export function ckvcWarmSync(args: string[], opts: RunOptions, fallback: () => RunResult): RunResult {
  const t0 = Date.now();
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  request(args, opts, port2, flag);
  const limit = opts.timeoutMs === 0 ? undefined : (opts.timeoutMs ?? 120_000);
  if (Atomics.wait(flag, 0, 0, limit) === 'timed-out') {
    port1.close();
    throw new Error(`ckvc ${args.join(' ')} in the helper-server: no reply after ${limit} ms`);
  }
  const reply = receiveMessageOnPort(port1)?.message as Reply;
  port1.close();
  return result(args, reply, t0) ?? fallback();
}
