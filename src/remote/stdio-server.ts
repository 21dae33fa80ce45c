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
 * A Duplex over two pipes with the socket methods Node's HTTP machinery calls on a connection (timeouts and
 * keep-alive are the pipe owner's business, so they do nothing here).
 */
export function pipeConnection(readable: Readable, writable: Writable): Duplex {
  const d = Duplex.from({ readable, writable }) as Duplex & Record<string, unknown>;
  for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref']) d[m] = () => d;
  return d;
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
