// `ckvc helper-server` (spec/HELPER.md): one long-lived process answering the Python helper's commands, so a
// call costs a command's work and not a Node start-up (~150 ms). Each request runs the CLI's own run(argv) in
// this process with stdout and stderr captured: every command keeps exactly one implementation.
import { CkvcError } from '../core/errors.js';
import { loadApi } from './context.js';
import {
  parseCheckoutRequest,
  runCheckoutRequest,
  type CheckoutMemory,
  type CheckoutRequest,
} from './helper-checkout.js';

/** A request line longer than this is answered with an error and skipped (an argv is kilobytes). */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Output above this is not sent back (the reply says so and the helper runs the command in a process). Tests
 * lower it with CKVC_TEST_HELPER_OUTPUT_CAP, read when the server starts, to reach that path with small output. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
let outputCap = MAX_OUTPUT_BYTES;
/** Commands that stream without end, take over the terminal, read stdin, or write bytes rather than text. */
const REFUSED_COMMANDS = new Set(['watch', 'serve', 'ui', 'cat', 'helper-server']);

type Run = (argv: string[]) => Promise<number>;
type Write = typeof process.stdout.write;
type Reply = Record<string, unknown>;

/** A command line (`argv`) or the structured checkout of helper-checkout.ts (`checkout`): exactly one. */
interface Request {
  id: number;
  argv?: string[];
  checkout?: CheckoutRequest;
  cwd?: string;
  env?: Record<string, string>;
}

/** Output one request produced, up to MAX_OUTPUT_BYTES across both streams. */
class Capture {
  readonly stdout: Buffer[] = [];
  readonly stderr: Buffer[] = [];
  size = 0;
  overflow = false;

  add(into: Buffer[], chunk: string | Uint8Array, encoding: BufferEncoding): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : Buffer.from(chunk);
    this.size += buf.length;
    if (this.size > outputCap) this.overflow = true;
    else into.push(buf);
  }
}

/** Replaces `stream.write` for the server's lifetime: inside a request the bytes go to the capture; outside one
 * (a command's late timer) they go to `outside`, so that nothing a command writes can break the reply framing. */
function redirect(
  stream: NodeJS.WriteStream,
  pick: (c: Capture) => Buffer[],
  current: () => Capture | undefined,
  outside: (b: string | Uint8Array) => void,
): void {
  stream.write = ((chunk: string | Uint8Array, encOrCb?: unknown, cb?: unknown): boolean => {
    const capture = current();
    const encoding = typeof encOrCb === 'string' ? (encOrCb as BufferEncoding) : 'utf8';
    if (capture) capture.add(pick(capture), chunk, encoding);
    else outside(chunk);
    const done = typeof encOrCb === 'function' ? encOrCb : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  }) as Write;
}

function parseRequest(line: string): Request {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      `helper-server request is not JSON (${(e as Error).message}); send one ` +
        'object per line: {"id":N,"argv":[...],"cwd":"...","env":{...}}',
      {},
    );
  }
  const r = value as Partial<Request> | null;
  const isStrings = (a: unknown): boolean => Array.isArray(a) && a.every((s) => typeof s === 'string');
  const envOk =
    r?.env === undefined ||
    (typeof r.env === 'object' &&
      r.env !== null &&
      !Array.isArray(r.env) &&
      Object.values(r.env).every((v) => typeof v === 'string'));
  const oneOf = r?.argv !== undefined ? isStrings(r.argv) && r.checkout === undefined : r?.checkout !== undefined;
  if (
    typeof r !== 'object' ||
    r === null ||
    !Number.isSafeInteger(r.id) ||
    !oneOf ||
    (r.cwd !== undefined && typeof r.cwd !== 'string') ||
    !envOk
  ) {
    throw new CkvcError(
      'CKVC_BAD_ARGUMENT',
      'helper-server request must be {"id": integer, "argv": [string...] or ' +
        '"checkout": {...}, "cwd"?: string, "env"?: {string: string}}',
      {},
    );
  }
  if (r.checkout !== undefined) r.checkout = parseCheckoutRequest(r.checkout);
  return r as Request;
}

/** The command word: the first argument that is not an option (`--store X` takes the next one as its value). */
function commandOf(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--store') i++;
    else if (!argv[i]!.startsWith('-')) return argv[i];
  }
  return undefined;
}

function refusal(req: Request): string | undefined {
  const command = req.argv ? commandOf(req.argv) : undefined;
  if (command !== undefined && REFUSED_COMMANDS.has(command)) {
    return `\`ckvc ${command}\` streams, reads stdin or writes bytes: run it in its own process`;
  }
  const env = req.env ?? process.env;
  if (env.CKVC_FAULT) return 'CKVC_FAULT counts its steps per process: run the command in its own process';
  return undefined;
}

/** Sets process.env to exactly `env` and returns how to put the previous one back. Only the variables that
 * differ are touched (each write to process.env is a setenv call; usually none differ). */
function swapEnv(env: Record<string, string> | undefined): () => void {
  if (!env) return () => undefined;
  const changed = new Map<string, string | undefined>();
  for (const k of Object.keys(process.env)) {
    if (!Object.hasOwn(env, k)) {
      changed.set(k, process.env[k]);
      delete process.env[k];
    }
  }
  for (const [k, v] of Object.entries(env)) {
    if (process.env[k] !== v) {
      changed.set(k, process.env[k]);
      process.env[k] = v;
    }
  }
  return () => {
    for (const [k, v] of changed) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Runs a request's command line, or its structured checkout (whose errors are replies, as run() prints them). */
async function perform(
  run: Run,
  req: Request,
  memory: () => Promise<CheckoutMemory>,
): Promise<{ code: number; reply?: Reply }> {
  if (req.argv) return { code: await run(req.argv) };
  try {
    return { code: 0, reply: { result: await runCheckoutRequest(req.checkout!, await memory()) } };
  } catch (e) {
    const err =
      e instanceof CkvcError
        ? e
        : new CkvcError('CKVC_INTERNAL', `unexpected error: ${(e as Error)?.stack ?? String(e)}`, {});
    return { code: err.exitCode, reply: { error: err.toJSON() } };
  }
}

async function runCaptured(
  run: Run,
  req: Request,
  setCapture: (c: Capture | undefined) => void,
  memory: () => Promise<CheckoutMemory>,
): Promise<Reply> {
  const why = refusal(req);
  if (why) return { id: req.id, refused: { reason: 'command', message: why } };
  const home = process.cwd();
  if (req.cwd !== undefined) {
    try {
      process.chdir(req.cwd);
    } catch (e) {
      const err = new CkvcError(
        'CKVC_BAD_ARGUMENT',
        `cwd ${JSON.stringify(req.cwd)} cannot be entered: ` + `${(e as Error).message}`,
        { path: req.cwd },
      );
      return { id: req.id, error: err.toJSON() };
    }
  }
  const restoreEnv = swapEnv(req.env);
  const capture = new Capture();
  setCapture(capture);
  let done: { code: number; reply?: Reply };
  try {
    done = await perform(run, req, memory);
  } finally {
    setCapture(undefined);
    restoreEnv();
    process.chdir(home);
    process.exitCode = undefined;
  }
  const { code, reply } = done;
  if (capture.overflow || (reply && capture.size + JSON.stringify(reply).length > outputCap)) {
    return {
      id: req.id,
      code,
      refused: {
        reason: 'output-too-large',
        ran: true,
        message: `the output is over ${outputCap} bytes: run the command in its own process`,
      },
    };
  }
  const text = (parts: Buffer[]) => Buffer.concat(parts).toString('utf8');
  if (reply?.error) return { id: req.id, ...reply };
  if (reply) return { id: req.id, code, ...reply, stderr: text(capture.stderr) };
  return { id: req.id, code, stdout: text(capture.stdout), stderr: text(capture.stderr) };
}

/** Splits stdin into lines, dropping (and reporting) any line over MAX_REQUEST_BYTES. */
function lines(onLine: (line: string | CkvcError) => void, onEnd: () => void): void {
  let pending: Buffer[] = [];
  let size = 0;
  let oversized = false;
  process.stdin.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const last = chunk.subarray(start, nl);
      if (oversized || size + last.length > MAX_REQUEST_BYTES) {
        onLine(new CkvcError('CKVC_BAD_ARGUMENT', `helper-server request line over ${MAX_REQUEST_BYTES} bytes`, {}));
      } else {
        onLine(Buffer.concat([...pending, last]).toString('utf8'));
      }
      pending = [];
      size = 0;
      oversized = false;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    size += rest.length;
    if (size > MAX_REQUEST_BYTES) oversized = true;
    else if (rest.length) pending.push(Buffer.from(rest));
  });
  process.stdin.on('end', onEnd);
}

/** Serves requests one at a time until stdin ends; returns the exit code (0). */
export function serveHelper(run: Run): Promise<number> {
  const testCap = Number(process.env.CKVC_TEST_HELPER_OUTPUT_CAP);
  if (Number.isSafeInteger(testCap) && testCap >= 0) outputCap = Math.min(testCap, MAX_OUTPUT_BYTES);
  const send = process.stdout.write.bind(process.stdout) as (s: string) => boolean;
  const log = process.stderr.write.bind(process.stderr) as (b: string | Uint8Array) => boolean;
  let current: Capture | undefined;
  const setCapture = (c: Capture | undefined) => {
    current = c;
  };
  redirect(
    process.stdout,
    (c) => c.stdout,
    () => current,
    log,
  );
  redirect(
    process.stderr,
    (c) => c.stderr,
    () => current,
    log,
  );
  const reply = (r: Reply) => send(`${JSON.stringify(r)}\n`);
  // Made on the first checkout request (it loads the API) and kept for the server's life.
  let kept: CheckoutMemory | undefined;
  const checkoutMemory = async () => {
    const api = await loadApi();
    kept ??= { verified: new api.VerifiedFiles(), decoded: new api.DecodedObjects() };
    return kept;
  };
  let queue: Promise<unknown> = Promise.resolve();
  return new Promise((resolve) => {
    lines(
      (line) => {
        queue = queue.then(async () => {
          if (line instanceof CkvcError) return reply({ id: null, error: line.toJSON() });
          if (!line.trim()) return undefined;
          let req: Request;
          try {
            req = parseRequest(line);
          } catch (e) {
            return reply({ id: null, error: (e as CkvcError).toJSON() });
          }
          try {
            return reply(await runCaptured(run, req, setCapture, checkoutMemory));
          } catch (e) {
            // run() reports every error itself; should something escape it, this request fails, not the queue.
            const err = new CkvcError('CKVC_INTERNAL', `unexpected error: ${(e as Error)?.stack ?? String(e)}`, {});
            return reply({ id: req.id, error: err.toJSON() });
          }
        });
      },
      () => {
        void queue.then(() => resolve(0));
      },
    );
  });
}
