// `ckvc serve --stdio`: the HTTP server of http-server.ts handed one connection made of stdin and stdout
// (spec/PROTOCOL.md §5). The bytes on the pipes are plain HTTP/1.1, so every endpoint, cap and check is the same
// code as over TCP; only who may write differs: whoever could start this process (an SSH login) may.
import { Duplex, type Readable, type Writable } from 'node:stream';
import { createServer } from './http-server.js';

export interface StdioServeOptions {
  store: string;
  readOnly?: boolean;
  log?: (line: string) => void;
}

/**
 * A Duplex over two pipes with the socket methods Node's HTTP machinery calls on a connection. `setTimeout` is a
 * socket's idle timeout (an HTTP client's request timeout uses it, PROTOCOL.md §3.1): 'timeout' is emitted when
 * for `ms` no bytes arrived and none of what was written left for the pipe; keep-alive and the rest are the pipe
 * owner's business and do nothing.
 */
export function pipeConnection(readable: Readable, writable: Writable): Duplex {
  const d = Duplex.from({ readable, writable }) as Duplex & Record<string, unknown>;
  for (const m of ['setNoDelay', 'setKeepAlive', 'ref', 'unref']) d[m] = () => d;
  const idle = idleWatch(d, readable, writable);
  d.setTimeout = (ms: number, onTimeout?: () => void) => {
    idle.arm(ms);
    if (onTimeout) {
      if (ms > 0) d.once('timeout', onTimeout);
      else d.removeListener('timeout', onTimeout);
    }
    return d;
  };
  d.once('close', () => idle.arm(0));
  return d;
}

/** Emits 'timeout' on `d` after `ms` without progress on either pipe; progress is polled (a quarter of `ms`). */
function idleWatch(d: Duplex, readable: Readable, writable: Writable) {
  let timer: NodeJS.Timeout | undefined;
  let bytesIn = 0;
  let observing = false;
  // Written bytes that left the stream's buffer: a pipe's socket counts them (net.Socket.bytesWritten includes
  // what is still buffered, hence the subtraction); a reader that stopped reading stops this count.
  const bytesOut = () => ((writable as Partial<{ bytesWritten: number }>).bytesWritten ?? 0) - writable.writableLength;
  const progress = () => bytesIn + bytesOut();
  return {
    arm(ms: number) {
      clearInterval(timer);
      timer = undefined;
      if (!(ms > 0)) return;
      if (!observing) {
        // Duplex.from reads with 'readable' and read(), which keeps a 'data' listener from switching the pipe to
        // flowing: this only watches the chunks go by.
        readable.on('data', (c: Buffer) => {
          bytesIn += c.length;
        });
        observing = true;
      }
      let seen = progress();
      let since = Date.now();
      timer = setInterval(
        () => {
          const now = progress();
          if (now !== seen) {
            seen = now;
            since = Date.now();
          } else if (Date.now() - since >= ms) {
            since = Date.now(); // once per silent period, like a socket
            // After a pause of the whole process the pipes are read after the timers: confirmed a turn later.
            setImmediate(() => {
              if (progress() === seen) d.emit('timeout');
            });
          }
        },
        Math.max(10, Math.floor(ms / 4)),
      );
      timer.unref();
    },
  };
}

/** Serves one HTTP/1.1 connection on `input`/`output` until the client ends it; resolves when it is closed. */
export function serveStdio(opts: StdioServeOptions, input: Readable, output: Writable): Promise<void> {
  const server = createServer({
    store: opts.store,
    host: 'stdio',
    port: 0,
    readOnly: opts.readOnly,
    authenticatedConnection: true,
    log: opts.log,
  });
  // A push may take longer than any default: the client (and ssh) decide when the connection is dead.
  server.requestTimeout = 0;
  server.timeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 0;
  // stdin ending after whole requests (`printf ... | ckvc serve --stdio`) still gets their answers; one cut off
  // mid-request is a parse error, dropped with its quarantine.
  // (Node's own switch for this; not in its type definitions.)
  (server as typeof server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const connection = pipeConnection(input, output);
  return new Promise((resolve) => {
    connection.once('close', () => resolve());
    server.emit('connection', connection);
  });
}
