// Where `ckvc serve` and `ckvc ui` listen: one rule for the port they are given and for what listening can fail
// with, each failure a CkvcError that says what to do (Node throws a RangeError with a stack for a port out of
// range, and names EADDRINUSE or EACCES only by code).
import type { Server } from 'node:http';
import { CkvcError } from '../core/errors.js';
import { isPort, portProblem } from '../core/port-number.js';

const HINTS: Record<string, string> = {
  EADDRINUSE: 'another program is listening there; choose another --port, or --port 0 for any free one',
  EACCES: 'this user may not listen there (ports under 1024 need privileges); choose a --port of 1024 or more',
  EADDRNOTAVAIL: 'no network interface of this machine has that address; give --host one of its addresses',
  ENOTFOUND: 'that host name does not resolve; give --host an address of this machine',
};

export async function listenOn(server: Server, port: number, host: string): Promise<void> {
  if (!isPort(port)) throw portProblem(String(port));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const hint = HINTS[e.code ?? ''];
      reject(
        new CkvcError('CKVC_IO', `cannot listen on ${host}:${port}: ${e.code ?? e.message}${hint ? `; ${hint}` : ''}`, {
          host,
          port,
          code: e.code,
        }),
      );
    });
    server.listen(port, host, () => resolve());
  });
}
