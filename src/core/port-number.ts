// A TCP port for `ckvc serve` and `ckvc ui`: one rule for what --port may be, for the command line (which keeps
// the text, so that the error quotes what was typed) and for the servers that listen on it.
import { CkvcError } from './errors.js';

export function portProblem(given: string): CkvcError {
  return new CkvcError(
    'CKVC_BAD_ARGUMENT',
    `--port must be a whole number from 0 to 65535 (0: any free port), got ${given}`,
    { port: given },
  );
}

export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** A --port as typed. */
export function parsePort(text: string): number {
  const port = /^\s*\d{1,5}\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!isPort(port)) throw portProblem(JSON.stringify(text));
  return port;
}
